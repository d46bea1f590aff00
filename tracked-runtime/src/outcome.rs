//! How a task's output tells success from failure.

use std::fmt::Display;

/// Classifies a task's output: a failure is recorded as `Failed` with its
/// text, anything else as `Completed`.
///
/// Implemented for `()`, `Result<T, E: Display>` (an `Err` is a failure) and
/// common standard types. For your own output types, implement it in one
/// line; the default method says "not a failure":
///
/// ```
/// struct Summary {
///     rows: usize,
/// }
///
/// impl tracked_runtime::Outcome for Summary {}
/// ```
///
/// The `#[tracked]` attribute does not need this trait: it inspects the
/// annotated function's return type itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `tracked::Outcome`, so a tracked task cannot return it",
    label = "the task's output must implement `Outcome`",
    note = "`()` and `Result<T, E: Display>` implement it; for your own type add `impl tracked::Outcome for {Self} {{}}`"
)]
pub trait Outcome {
    /// The failure text, if this output is a failure.
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(ToString::to_string)
    }
}

macro_rules! never_a_failure {
    ($($ty:ty),* $(,)?) => { $(impl Outcome for $ty {})* };
}

never_a_failure!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    std::time::Duration,
    std::convert::Infallible,
);

impl<T> Outcome for Option<T> {}
impl<T> Outcome for Vec<T> {}
impl<T: ?Sized> Outcome for Box<T> {}
impl<T: ?Sized> Outcome for std::sync::Arc<T> {}
impl<K, V, S> Outcome for std::collections::HashMap<K, V, S> {}
impl<K, V> Outcome for std::collections::BTreeMap<K, V> {}
impl<A, B> Outcome for (A, B) {}
impl<A, B, C> Outcome for (A, B, C) {}

/// How the tracker classifies an output of type `T`; a zero-sized strategy
/// chosen at compile time, so it costs nothing per task.
#[doc(hidden)]
pub trait Classify<T> {
    /// The failure text, if `output` is a failure.
    fn failure(output: &T) -> Option<String>;
}

/// Classifies through [`Outcome`]; what the public spawn functions use.
#[doc(hidden)]
#[derive(Debug)]
pub enum ByOutcome {}

impl<T: Outcome> Classify<T> for ByOutcome {
    fn failure(output: &T) -> Option<String> {
        output.failure()
    }
}

/// Treats every output as success; for outputs that are not `Outcome`.
#[doc(hidden)]
#[derive(Debug)]
pub enum NeverFails {}

impl<T> Classify<T> for NeverFails {
    fn failure(_: &T) -> Option<String> {
        None
    }
}

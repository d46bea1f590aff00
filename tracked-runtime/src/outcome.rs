//! How a task's output tells success from failure.

use std::fmt::{Debug, Display};

/// Classifies a task's output: a failure is recorded as `Failed` with its
/// text, anything else as `Completed`.
///
/// Implemented for `()`, `Result<T, E: Display>` (an `Err` is a failure)
/// and common standard types. For your own output types, implement it in
/// one line; the default method says "not a failure":
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// struct Summary {
///     rows: usize,
/// }
///
/// impl tracked::Outcome for Summary {}
/// ```
///
/// `#[tracked]` and the spawns it rewrites accept any output: they use this
/// trait when the output implements it, and otherwise still record an `Err`
/// as `Failed`, with its `Debug` text, or with
/// [`ERR_WITHOUT_TEXT`](crate::ERR_WITHOUT_TEXT) when its type shows neither
/// `Display` nor `Debug` where the attribute expands (an unbounded generic
/// `E` included). The spawn functions require this trait, and stable Rust
/// cannot implement it for `Result<T, E: Debug>` beside `Result<T, E:
/// Display>`, so they reject an error type without `Display` at compile
/// time; map it to a text first:
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// #[derive(Debug)]
/// struct DbError;
///
/// # fn spawn_lookup() {
/// tracked::spawn("lookup", tracked::TaskType::DATABASE, async {
///     Err::<(), _>(DbError).map_err(|e| format!("{e:?}")) // Failed with "DbError"
/// });
/// # }
/// ```
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
    std::time::Duration,
    std::time::Instant,
    std::time::SystemTime,
    std::path::PathBuf,
    std::ffi::OsString,
    std::net::SocketAddr,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::process::ExitStatus,
    std::process::Output,
    std::fs::File,
    tokio_util::sync::CancellationToken,
    // This crate's reports: a supervisor task (a signal handler) may hand
    // them back.
    crate::TaskId,
    crate::TaskState,
    crate::TaskSnapshot,
    crate::TaskDetail,
    crate::Stats,
    crate::Counts,
    crate::Health,
    crate::CancelReport,
    crate::ShutdownReport,
);

/// Of any lifetime: an annotated fn may return a borrow of its argument.
/// Not `&T` for every `T`: the compiler would then suggest borrowing an
/// output whose error type lacks `Display`, instead of saying so.
impl Outcome for &str {}

// Standard containers and wrappers: the caller cannot implement a trait of
// this crate for them.
impl<T> Outcome for Option<T> {}
impl<T, const N: usize> Outcome for [T; N] {}
impl<T> Outcome for Vec<T> {}
impl<T> Outcome for std::collections::VecDeque<T> {}
impl<T> Outcome for std::collections::BinaryHeap<T> {}
impl<T, S> Outcome for std::collections::HashSet<T, S> {}
impl<T> Outcome for std::collections::BTreeSet<T> {}
impl<K, V, S> Outcome for std::collections::HashMap<K, V, S> {}
impl<K, V> Outcome for std::collections::BTreeMap<K, V> {}
impl<T: ?Sized> Outcome for Box<T> {}
impl<T: ?Sized> Outcome for std::sync::Arc<T> {}
impl<T: ?Sized> Outcome for std::rc::Rc<T> {}
impl<B: ?Sized + ToOwned> Outcome for std::borrow::Cow<'_, B> {}
impl<A, B> Outcome for (A, B) {}
impl<A, B, C> Outcome for (A, B, C) {}
impl<A, B, C, D> Outcome for (A, B, C, D) {}
impl<A, B, C, D, E> Outcome for (A, B, C, D, E) {}

/// A task that starts others may hand back their handles (and the caller
/// cannot implement a trait of this crate for them).
impl<T> Outcome for crate::JoinHandle<T> {}
impl Outcome for crate::AbortHandle {}
impl<T> Outcome for crate::JoinSet<T> {}
impl<T> Outcome for tokio::task::JoinHandle<T> {}
impl Outcome for tokio::task::AbortHandle {}
impl<T> Outcome for tokio::task::JoinSet<T> {}
impl<T> Outcome for std::thread::JoinHandle<T> {}

/// A set-up task may hand back the ends of the channels it made.
impl<T> Outcome for tokio::sync::mpsc::Sender<T> {}
impl<T> Outcome for tokio::sync::mpsc::Receiver<T> {}
impl<T> Outcome for tokio::sync::mpsc::UnboundedSender<T> {}
impl<T> Outcome for tokio::sync::mpsc::UnboundedReceiver<T> {}
impl<T> Outcome for tokio::sync::oneshot::Sender<T> {}
impl<T> Outcome for tokio::sync::oneshot::Receiver<T> {}
impl<T> Outcome for tokio::sync::watch::Sender<T> {}
impl<T> Outcome for tokio::sync::watch::Receiver<T> {}
impl<T> Outcome for tokio::sync::broadcast::Sender<T> {}
impl<T> Outcome for tokio::sync::broadcast::Receiver<T> {}

/// What a tracked task may return: every [`Outcome`], and `!`, the output
/// of a task that never returns (an accept loop, a ticker). The spawn
/// functions take it, so that such a task needs no annotation; implement
/// [`Outcome`] for your own types, not this.
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # async fn demo(listener: tokio::net::TcpListener) {
/// tracked::spawn("accept", tracked::TaskType::NETWORK, async move {
///     loop {
///         let _ = listener.accept().await;
///     }
/// });
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `tracked::Outcome`, so a tracked task cannot return it",
    label = "the task's output must implement `Outcome`",
    note = "`()` and `Result<T, E: Display>` implement it; for your own type add `impl tracked::Outcome for {Self} {{}}`"
)]
pub trait TaskOutput {
    /// The failure text, if this output is a failure.
    fn failure(&self) -> Option<String>;
}

impl<T: Outcome> TaskOutput for T {
    fn failure(&self) -> Option<String> {
        Outcome::failure(self)
    }
}

/// `!` is not [`Outcome`] itself: a type stable Rust names only through a
/// projection ([`Never`](crate::private::Never)) cannot be in an impl of a
/// trait that other crates implement, or each of their impls would conflict
/// with it. (Nor is `Infallible`, which is `!` once the never type is
/// stable: this impl then covers it.) Not offered in errors, where the
/// projection would only puzzle.
#[diagnostic::do_not_recommend]
impl TaskOutput for crate::private::Never {
    fn failure(&self) -> Option<String> {
        None
    }
}

/// How the tracker classifies an output of type `T`; a zero-sized strategy
/// chosen at compile time, so it costs nothing per task.
#[doc(hidden)]
pub trait Classify<T> {
    /// The failure text, if `output` is a failure.
    fn failure(output: &T) -> Option<String>;
}

/// Classifies through [`TaskOutput`]; what the public spawn functions use.
#[doc(hidden)]
#[derive(Debug)]
pub enum ByOutcome {}

impl<T: TaskOutput> Classify<T> for ByOutcome {
    fn failure(output: &T) -> Option<String> {
        TaskOutput::failure(output)
    }
}

/// Fails an `Err` with its `Debug` text; for a `Result` that is not
/// `Outcome` because its error type has no `Display`.
#[doc(hidden)]
#[derive(Debug)]
pub enum ByDebug {}

impl<T, E: Debug> Classify<Result<T, E>> for ByDebug {
    fn failure(output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(|e| format!("{e:?}"))
    }
}

/// The failure text of an `Err` whose type shows neither `Display` nor
/// `Debug` where `#[tracked]` expands, an unbounded generic `E` included.
pub const ERR_WITHOUT_TEXT: &str =
    "Err of a type that shows neither Display nor Debug (bound a generic E by one to record its text)";

/// Fails an `Err` with [`ERR_WITHOUT_TEXT`]; for a `Result` whose error
/// type shows neither `Display` nor `Debug`.
#[doc(hidden)]
#[derive(Debug)]
pub enum ErrWithoutText {}

impl<T, E> Classify<Result<T, E>> for ErrWithoutText {
    fn failure(output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(|_| ERR_WITHOUT_TEXT.to_owned())
    }
}

/// Treats every output as success; for outputs that are neither `Outcome`
/// nor `Result`.
#[doc(hidden)]
#[derive(Debug)]
pub enum NeverFails {}

impl<T> Classify<T> for NeverFails {
    fn failure(_: &T) -> Option<String> {
        None
    }
}

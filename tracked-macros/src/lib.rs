//! The `#[tracked]` attribute macro. Use it through the `tracked` crate,
//! which re-exports it as `tracked::tracked`.
//!
//! The crate depends on `syn`, `quote` and `proc-macro2` only; the code it
//! generates calls `::tracked::__private`, so users need one dependency.

mod attr;
mod expand;
mod path;
mod spawn;

use proc_macro::TokenStream;

/// Tracks an `async fn` as a task unit and turns the tokio spawns in its
/// body into tracked spawns.
///
/// Also accepted: the forms other attributes turn an `async fn` into, so
/// that it composes with them (see Composition): a fn whose body ends in
/// `Box::pin(async move { … })` (what `#[async_trait]` writes, accepted
/// written by hand too, with no `return` before it: a call taking it
/// would go unrecorded), and the `let body = async { … };` body of
/// `#[tokio::main]` and `#[tokio::test]`. Any other fn is a compile error.
///
/// ```ignore
/// #[tracked::tracked(type = "Consensus")]
/// async fn run_round(state: Arc<State>) -> Result<(), RoundError> {
///     tokio::spawn(vote_processor(state.clone())); // a tracked child task
///     collect_votes(&state).await
/// }
/// ```
///
/// # Arguments
///
/// All optional, comma-separated:
/// - `type = "…"`: the task type (default `General`); the same string as
///   `TaskType::new`, so `"Consensus"` equals `TaskType::CONSENSUS`.
/// - `name = "…"`: the unit's name (default: `module_path!()::fn_name`). An
///   attribute sees only its fn, not the `impl` around it, so a method's
///   default name has no type in it: methods of the same name on two types
///   of one module share it. Name them (`name = "net::Server::accept"`) to
///   tell them apart.
/// - `owner = <expr>`: the owner (group, session, tenant), any expression
///   converting `Into<Arc<str>>`, evaluated before the body starts (when
///   the fn is called; at its first poll if it stays an `async fn`, see
///   below); it may use the fn's arguments. Default: inherited from the
///   parent task.
/// - `tier = <0..=255>`: a shutdown tier, kept in the catalogue site (and
///   shown by the HTTP catalogue) for listing and linting. A
///   `ShutdownPlan` stops tasks by type: the tier does not order them.
/// - `crate = <path>`: where the `tracked` crate is, when not at
///   `::tracked` (see the end of this page).
///
/// # What is tracked
///
/// - Awaited directly (`run_round(s).await`), the fn is a unit of its own:
///   a record of kind `SpawnKind::Inline`, child of the task awaiting it (a
///   root in the global tracker when there is none), current while polled so
///   tasks it spawns are its children, ending `Completed`, `Failed` (an
///   `Err` output, see below), `Panicked` or `Cancelled` (dropped before
///   the end).
/// - Spawned by a rewritten spawn (`tokio::spawn(run_round(s))` or
///   `tokio::spawn(async move { run_round(s).await })` inside an annotated
///   fn), the fn *is* the task: when the spawned call's fn or method name
///   matches the annotated fn's, that call made the fn, and the fn starts
///   in the task's first poll, it claims the task, which takes the fn's
///   name, type and owner, and links the fn's site (`fn_site`); its `site`
///   stays where the spawn was written. One record, no double
///   registration. Wrappers that keep the output are looked
///   through: `Box::pin(run_round(s))`, `run_round(s).instrument(span)`,
///   `.in_current_span()`, `.with_subscriber(…)`, `.boxed()`. An annotated
///   fn of the same name that the spawned one calls (`worker.run()`, not
///   annotated, awaiting an annotated `db.run()`) is a unit in the task,
///   which keeps the spawn's name and type. So is a fn that stays an `async
///   fn` (see Composition): its future is made only when the spawned
///   call's future first runs, as a fn it calls would be.
/// - Spawned any other way (`tracked::spawn("x", ty, run_round(s))`, a
///   plain `tokio::spawn` outside annotated code), the fn is an inline unit
///   inside that task (or a root, when the task is untracked).
///
/// # Outcome
///
/// The output's type, as the fn declares it (aliases such as `io::Result`
/// included), decides how the end is recorded, at compile time:
/// - an output implementing `tracked::Outcome` (`Result<T, E: Display>`,
///   `()`, your own types): `Failed` when its `failure()` gives a text, so
///   an `Err` with the error's `Display` text;
/// - `Result<T, E: Debug>`: an `Err` is `Failed` with its `{:?}` text;
/// - any other `Result<T, E>`: an `Err` is `Failed` with the fixed text
///   `tracked::ERR_WITHOUT_TEXT`. So is a generic `E` without a `Display`
///   or `Debug` bound, even if the caller's type has one, when the fn is
///   awaited or spawned by plain tokio (a spawn `#[tracked]` rewrote
///   classifies the concrete output it spawns): bound it to get the text;
/// - anything else is `Completed`.
///
/// The spawns rewritten in the body are classified the same way by their
/// future's or closure's output. `tracked::spawn` accepts only `Outcome`
/// outputs, so it rejects an error type without `Display`.
///
/// # Spawn rewriting
///
/// In the body, including closures, async blocks and the arguments of
/// `vec!`, `join!`, `try_join!`, `select!`, `select_biased!`, `pin!`,
/// `dbg!`, `matches!` and the `assert` macros, but not nested items or other macros (whose tokens
/// may mean something else, as in `stringify!`): `tokio::spawn`,
/// `tokio::task::spawn`, `tokio::task::spawn_blocking`,
/// `tokio::task::spawn_local`, and calls through names that a `use`
/// *inside the fn body* imports from tokio (`use tokio::spawn;`, `use
/// tokio::task;`, `use tokio as tk;`, `use tokio::*;`), within the `use`'s
/// block and where nothing of the same name hides it, as rustc resolves
/// it: a local binding (including one that a `select!` branch's or
/// `matches!`'s pattern makes for its handler or guard), an item, an inner
/// block's import, or an inner block's glob import of anything but tokio
/// (`use crate::pool::*;`, which may bring in the name). A `#[cfg]` on such
/// a `use`, item, `let` or closure parameter, written or applied by a
/// `#[cfg_attr(…, cfg(…))]`, is followed: under the cfgs where the call
/// names tokio's function it is rewritten, under the others it stays as
/// written (`#[cfg(test)] use mock::spawn;`).
///
/// Each becomes a tracked spawn with its own catalogue site named `<fn
/// name>::<spawned fn, method or variable>` (`async_block`, `closure` or
/// `task` otherwise, numbered `#2`, `#3`… when repeated), of the fn's type,
/// child of the current task. The site is declared only in builds that
/// keep the spawn: under the `#[cfg]`s (written or applied by a
/// `cfg_attr`) of the statements, expressions, match arms and struct fields
/// around it, and the cfgs where its path names tokio's function. A spawn's
/// number counts every spawn of that name written before it, cfg'd out or
/// not, so it is the same in every build (`f#3` stays `f#3` when `f#2` is
/// cfg'd out). It still returns tokio's `JoinHandle`, and
/// std's `dbg!` prints it as written, not as rewritten. A `dbg!` the body
/// may bring in itself (`macro_rules! dbg`, `use … as dbg`, `use
/// some::dbg`, a glob import of anything but tokio) is called as written,
/// the spawns in its arguments rewritten as in any macro of these names.
/// A path starting `tokio::` is taken to name the tokio crate: a
/// module-level `mod tokio` or `use … as tokio` shadowing it is invisible
/// to the attribute, and the call is rewritten to tokio's spawn (name a
/// shim module otherwise).
/// Not rewritten: module-level imports (invisible to the attribute), method
/// calls such as `join_set.spawn(…)`, a spawn function passed as a value
/// (`futures.into_iter().map(tokio::spawn)`: only calls are rewritten), and
/// spawns inside other macros, `macro_rules!` defined in the body included
/// (its rules are an item, and the tokens passed to it are its own); the
/// audit covers those.
///
/// # Expansion
///
/// `async fn f(args) -> R` becomes `fn f(args) -> impl Future<Output = R>`
/// whose body builds the tracked future around `async move { body }`: it is
/// called, awaited, spawned and used in trait impls (where the trait
/// declares `async fn` or `-> impl Future`) like the `async fn`, and its
/// future holds each argument once, as the unannotated fn's does, and all
/// of them, used or not, until the body ends. The `impl Future` captures
/// every lifetime and type parameter in scope, as an `async fn` does. A fn
/// declared `-> !` returns a future of `!`, though stable Rust can name `!`
/// only as a return type. The body keeps its braces, and with them the
/// rules of your crate's edition: before 2024, the temporaries of its tail
/// expression are dropped after its locals, as in the `async fn`.
///
/// Lints see the expansion at your fn's spans, so they report it as the
/// `async fn` (`dead_code`, `missing_docs`, `unused_variables`,
/// `clippy::missing_panics_doc`, …), with two exceptions, as it is no
/// `async fn` and returns no `Result` itself:
/// `clippy::unused_async` does not lint it, though
/// `#[expect(clippy::unused_async)]` holds when the body does not await,
/// as it would on the `async fn`; and `clippy::missing_errors_doc` does not
/// see the `Result` the fn's future gives.
///
/// # Composition
///
/// `#[async_trait]`, `#[tokio::main]`, `#[tokio::test]` and
/// `#[tracing::instrument]` compose in either order. Applied after them
/// (written below them), the attribute wraps the async block they produce.
/// Applied before an attribute other than lint, doc, `cfg`, `inline`,
/// `cold` and `deprecated` (which may be a macro that needs an `async fn`,
/// as these do), the fn stays an `async fn` awaiting the tracked future:
/// the same behaviour, one state machine more, except that it never claims
/// a spawned task (see above). So does a `#[must_use]` fn,
/// whose output rustc reports unused when awaited only from an `async fn`. A fake
/// return edge keeps inference and type errors on the body, as in the
/// unannotated fn.
///
/// The expansion names the runtime as `::tracked`. A crate that depends on
/// it under another name, or reaches it through a crate of its own, says
/// where it is with `crate = …`, a path as tokio's and serde's `crate`
/// arguments take (a string holding one works too): `#[tracked(crate =
/// trk)]`, `#[obs::tracked::tracked(crate = obs::tracked)]`. A
/// `#[macro_export]` macro that writes the attribute for its users passes
/// `crate = $crate::tracked` (with `pub use tracked;` in its crate), so
/// that they need no dependency on `tracked` of their own.
#[proc_macro_attribute]
pub fn tracked(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}

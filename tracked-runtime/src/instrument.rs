//! The wrappers that run a tracked task: a future for async tasks and a
//! closure for blocking ones. They keep the task's record current while it
//! runs and record exactly one ending.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::events::EventKind;
use crate::outcome::Classify;
use crate::record::Record;
use crate::shutdown::AtSpawn;
use crate::snapshot::Ending;
use crate::{TaskId, Tracker};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use tracing::Span;

/// The task being run on this thread, if it is tracked.
pub(crate) struct Current {
    pub(crate) record: Arc<Record>,
    pub(crate) tracker: TrackerRef,
}

/// A tracker reference that costs no reference count for the global tracker,
/// whose `Arc` would otherwise be one counter bumped by every spawn and end
/// on every thread.
#[derive(Clone)]
pub(crate) enum TrackerRef {
    Global(&'static Tracker),
    Other(Tracker),
}

impl TrackerRef {
    pub(crate) fn of(tracker: &Tracker) -> Self {
        match Tracker::installed_global() {
            Some(global) if global.ptr_eq(tracker) => TrackerRef::Global(global),
            _ => TrackerRef::Other(tracker.clone()),
        }
    }
}

impl std::ops::Deref for TrackerRef {
    type Target = Tracker;

    fn deref(&self) -> &Tracker {
        match self {
            TrackerRef::Global(tracker) => tracker,
            TrackerRef::Other(tracker) => tracker,
        }
    }
}

thread_local! {
    /// Holds the running task's `Current` while its poll runs. It is moved in
    /// and out rather than cloned, so entering a poll costs no atomics.
    ///
    /// `ManuallyDrop` leaves the thread-local without drop glue, so reaching
    /// it is a plain thread-local access, with no destructor registration to
    /// check twice per poll. It never has anything to drop: a `Current` is
    /// moved back out before the poll that moved it in returns.
    static CURRENT: Cell<Option<ManuallyDrop<Current>>> = const { Cell::new(None) };
}

/// Runs `f` with the current task, if any. `f` must not panic or re-enter.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    CURRENT.with(|cell| {
        let current = cell.take();
        let result = f(current.as_deref());
        cell.set(current);
        result
    })
}

impl Current {
    /// Polls so far. Only the polling thread writes the count, so a plain
    /// load and store suffice; Relaxed because readers only report it.
    #[inline]
    fn polls(&self) -> u64 {
        self.record.polls.load(Ordering::Relaxed)
    }

    /// Whether the task, not polled yet, was spawned after shutdown and must
    /// not run its body: the abort sent at spawn ends it.
    #[cold]
    #[inline(never)]
    fn doomed(&self) -> bool {
        self.record.doomed.load(Ordering::Relaxed)
    }

    /// Book-keeping at the start of each poll, `polls` being the count so far.
    #[inline]
    fn enter(&self, polls: u64) {
        let record = &self.record;
        record.polls.store(polls + 1, Ordering::Relaxed);
        if polls == 0 {
            self.first_poll();
        }
        // Relaxed: the watchdog samples this flag; a stale read only delays
        // a warning by one scan.
        record.in_poll.store(true, Ordering::Relaxed);
    }

    /// What only a task's first poll records, out of the per-poll path.
    #[cold]
    #[inline(never)]
    fn first_poll(&self) {
        let record = &self.record;
        let inner = &self.tracker.inner;
        record
            .first_poll_at
            .store(inner.clock.now(), Ordering::Relaxed);
        record.set_state(crate::TaskState::Running);
        inner.registry.started(record);
        self.tracker.emit(record, EventKind::Started);
    }

    /// Runs `f` as this task, polled `polls` times before: current for
    /// parent links and progress, with panics caught so the ending is
    /// recorded before they continue.
    #[inline]
    fn run<R>(
        self,
        polls: u64,
        f: impl FnOnce() -> R,
    ) -> (Current, Result<R, Box<dyn Any + Send>>) {
        let running = self.begin(polls);
        let result = catch_unwind(AssertUnwindSafe(f));
        // A blocking closure's run is not a poll: not in the poll histogram.
        (running.end(false), result)
    }

    /// Makes this task current for one poll (or its blocking run), polled
    /// `polls` times before; [`Running::end`] takes it back.
    #[inline]
    fn begin(self, polls: u64) -> Running {
        self.enter(polls);
        let inner = &self.tracker.inner;
        let busy_from = inner.busy_time.then(|| inner.clock.now());
        let previous = CURRENT.replace(Some(ManuallyDrop::new(self)));
        Running {
            previous,
            busy_from,
        }
    }

    /// Finishes registering a task that `spawn` hands to tokio: records the
    /// handle that aborts it, and applies the tracker's shutdown state.
    pub(crate) fn launch<H: Abortable>(self, spawn: impl FnOnce(Current) -> H) -> H {
        let record = Arc::clone(&self.record);
        let tracker = self.tracker.clone();
        let at_spawn = tracker.inner.shutdown.at_spawn(record.ty);
        // A blocking closure cannot be skipped (there is no output to give);
        // if a thread picks it up before the abort lands, it runs.
        if at_spawn == AtSpawn::Abort && record.kind != crate::SpawnKind::Blocking {
            record.doomed.store(true, Ordering::Relaxed);
        }
        let handle = spawn(self);
        tracker
            .inner
            .registry
            .set_abort(&record, handle.abort_handle());
        match at_spawn {
            AtSpawn::Run => {}
            AtSpawn::Cancel => {
                tracker.inner.registry.request_cancel(&record);
            }
            AtSpawn::Abort => handle.abort_handle().abort(),
        }
        handle
    }

    /// Records how the task ended and logs failures.
    pub(crate) fn finish(self, ending: Ending) {
        let record = &self.record;
        match &ending {
            Ending::Failed(text) => tracing::warn!(
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site,
                "tracked task failed: {text}"
            ),
            Ending::Panicked { message, location } => tracing::error!(
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site,
                panic.location = location.as_deref().unwrap_or("unknown"),
                "tracked task panicked: {message}"
            ),
            Ending::Completed | Ending::Cancelled => {}
        }
        if self.tracker.inner.events.wanted() {
            let (state, error) = match &ending {
                Ending::Failed(text) => (ending.state(), Some(text.clone())),
                Ending::Panicked { message, .. } => (ending.state(), Some(message.clone())),
                _ => (ending.state(), None),
            };
            self.tracker
                .emit(&self.record, EventKind::Finished { state, error });
        }
        let inner = &self.tracker.inner;
        inner.registry.finish(self.record, ending, &inner.clock);
    }
}

/// A task made current by [`Current::begin`] for the length of a poll.
#[must_use = "the task stays current until `end` takes it back"]
struct Running {
    /// What was current before, put back at the end.
    previous: Option<ManuallyDrop<Current>>,
    busy_from: Option<u64>,
}

impl Running {
    /// Takes the task back out of the thread-local once its poll returned
    /// (or unwound into `catch_unwind`). `is_poll` says whether it was a
    /// poll of a future, counted in the poll histogram when polls are timed.
    #[inline]
    fn end(self, is_poll: bool) -> Current {
        let current = ManuallyDrop::into_inner(
            CURRENT
                .replace(self.previous)
                .expect("the running task stays current until its poll returns"),
        );
        current.record.in_poll.store(false, Ordering::Relaxed);
        if let Some(from) = self.busy_from {
            let inner = &current.tracker.inner;
            let spent = inner.clock.now().saturating_sub(from);
            current.record.busy_ns.fetch_add(spent, Ordering::Relaxed);
            if is_poll {
                // After the poll, so a claim during it counts the poll in the
                // type the task has now.
                inner.registry.polled(&current.record, spent);
            }
        }
        current
    }
}

/// Hands the running task to the `#[tracked]` fn `site` if the task was
/// spawned to run exactly that fn (see [`Record::claimable_by`]); gives
/// `owner` back when it does not.
pub(crate) fn claim_current(
    site: &'static crate::StaticSite,
    owner: Option<Arc<str>>,
) -> Result<(), Option<Arc<str>>> {
    let mut owner = Some(owner);
    let claimed = CURRENT.with(|cell| {
        let Some(current) = cell.take().map(ManuallyDrop::into_inner) else {
            return false;
        };
        let claim = current.record.claimable_by(site);
        let current = if claim {
            let Current { record, tracker } = current;
            let owner = owner.take().flatten();
            let record = tracker.inner.registry.claim(record, site, owner);
            Current { record, tracker }
        } else {
            current
        };
        cell.set(Some(ManuallyDrop::new(current)));
        claim
    });
    if claimed {
        Ok(())
    } else {
        Err(owner.flatten())
    }
}

/// Holds a task while it is not being polled, with its `tracing` span if
/// one is enabled; records `Cancelled` if the task is dropped before it ends.
pub(crate) struct Guard {
    current: Option<Current>,
    /// `None` when spans are off for the tracker or no subscriber wants the
    /// span, so a poll then pays one branch for it. Boxed: an unboxed `Span`
    /// (40 bytes) pushed the wrapped task past a 128-byte step of tokio's
    /// task cells, +128 bytes per live task even with spans disabled.
    span: Option<Box<Span>>,
}

impl Guard {
    /// A guard holding no task: a `#[tracked]` fn's that claimed the task
    /// polling it, whose own wrapper records the end.
    pub(crate) fn empty() -> Self {
        Guard {
            current: None,
            span: None,
        }
    }

    /// Whether the guard holds its task, i.e. the task has not ended and is
    /// not being polled.
    #[inline]
    pub(crate) fn holds_task(&self) -> bool {
        self.current.is_some()
    }

    /// Must be called in the spawning context: the span's parent is the
    /// span current there, and the spawn event is logged there.
    pub(crate) fn new(current: Current) -> Self {
        let span = if current.tracker.inner.spans {
            task_span(&current.record)
        } else {
            None
        };
        spawned_event(&current.record);
        Guard {
            current: Some(current),
            span,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(current) = self.current.take() {
            current.finish(Ending::Cancelled);
        }
    }
}

/// The span a task runs in, or `None` if no subscriber is interested; its
/// parent is the span current at the spawn (contextual parent).
#[inline(never)]
fn task_span(record: &Record) -> Option<Box<Span>> {
    let span = tracing::info_span!(
        "task",
        task.id = record.id.as_u64(),
        task.name = %record.name,
        task.r#type = %record.ty,
        task.parent = record.parent.map(TaskId::as_u64),
    );
    (!span.is_disabled()).then(|| Box::new(span))
}

/// The spawn, at debug level, in the spawning context.
#[inline]
fn spawned_event(record: &Record) {
    tracing::debug!(
        task.id = record.id.as_u64(),
        task.name = %record.name,
        task.r#type = %record.ty,
        task.parent = record.parent.map(TaskId::as_u64),
        task.kind = ?record.kind,
        task.site = %record.site,
        "tracked task spawned"
    );
}

/// Records a claimed task's new name and type in its span, so that layers
/// keeping the latest value (not `fmt`, which appends) show them.
#[cold]
#[inline(never)]
fn claimed(span: &Span, record: &Record) {
    span.record("task.name", tracing::field::display(&record.name));
    span.record("task.type", tracing::field::display(&record.ty));
}

pin_project_lite::pin_project! {
    /// A tracked async task, as handed to tokio; `C` tells failures apart.
    pub(crate) struct Instrumented<F, C> {
        #[pin]
        future: F,
        guard: Guard,
        classify: PhantomData<fn() -> C>,
    }
}

impl<F, C> Instrumented<F, C> {
    pub(crate) fn new(future: F, current: Current) -> Self {
        Instrumented {
            future,
            guard: Guard::new(current),
            classify: PhantomData,
        }
    }
}

impl<F, C> Future for Instrumented<F, C>
where
    F: Future,
    C: Classify<F::Output>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        poll_as::<C, F>(Some(this.guard), this.future, cx)
    }
}

/// Polls `future` as the task in `guard`, recording its ending; shared by
/// spawned tasks and by `#[tracked]` fns awaited directly. With no guard (a
/// `#[tracked]` fn that claimed the task polling it) it polls `future` as
/// it is, the wrapper outside recording the task.
///
/// `future` is polled at one call site for both, so that rustc can inline a
/// `#[tracked]` fn's body into its wrapper (a second call site made the body
/// an out-of-line call on every poll). A claimed task's panic is therefore
/// caught here too and resumed at once for the wrapper outside.
#[inline]
pub(crate) fn poll_as<C, F>(
    guard: Option<&mut Guard>,
    mut future: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output>
where
    F: Future,
    C: Classify<F::Output>,
{
    let mut unit = None;
    if let Some(Guard {
        current: slot,
        span,
    }) = guard
    {
        let current = slot
            .take()
            .expect("a tracked task is not polled after it completes");
        let polls = current.polls();
        if polls == 0 && current.doomed() {
            // Spawned after shutdown: the abort already sent ends the task.
            *slot = Some(current);
            return Poll::Pending;
        }
        // Entered for the poll and the ending, so the failure and panic
        // events are inside the span too.
        let entered = span.as_ref().map(|span| span.enter());
        let first_with_span = polls == 0 && span.is_some();
        let before = first_with_span.then_some(Arc::as_ptr(&current.record));
        unit = Some((slot, &*span, entered, before, current.begin(polls)));
    }
    let result = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
    let Some((slot, span, _entered, before, running)) = unit else {
        return result.unwrap_or_else(|payload| resume_unwind(payload));
    };
    let current = running.end(true);
    if let (Some(before), Some(span)) = (before, span) {
        if !std::ptr::eq(before, Arc::as_ptr(&current.record)) {
            claimed(span, &current.record);
        }
    }
    match result {
        Ok(Poll::Pending) => {
            // The slot is empty, its task taken above. Putting the task back
            // without dropping what was there spares a check per poll that
            // the compiler cannot elide once the body's poll is inlined.
            let previous = slot.replace(current);
            debug_assert!(
                previous.is_none(),
                "a task's slot is empty while it is polled"
            );
            std::mem::forget(previous);
            Poll::Pending
        }
        Ok(Poll::Ready(output)) => {
            current.finish(ending_of::<C, _>(&output));
            Poll::Ready(output)
        }
        Err(payload) => {
            current.finish(panicked(&*payload));
            resume_unwind(payload)
        }
    }
}

/// Wraps a blocking closure so it runs as the tracked task `current`.
pub(crate) fn blocking<C, F, R>(f: F, current: Current) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
    C: Classify<R>,
{
    let mut guard = Guard::new(current);
    move || {
        let current = guard.current.take().expect("a blocking task runs once");
        let _entered = guard.span.as_ref().map(|span| span.enter());
        let polls = current.polls();
        let (current, result) = current.run(polls, f);
        match result {
            Ok(output) => {
                current.finish(ending_of::<C, _>(&output));
                output
            }
            Err(payload) => {
                current.finish(panicked(&*payload));
                resume_unwind(payload)
            }
        }
    }
}

fn ending_of<C: Classify<T>, T>(output: &T) -> Ending {
    match C::failure(output) {
        Some(text) => Ending::Failed(text),
        None => Ending::Completed,
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

fn panicked(payload: &(dyn Any + Send)) -> Ending {
    Ending::Panicked {
        message: panic_message(payload),
        location: crate::panic::take_location(),
    }
}

/// The id of the tracked task running on this thread, if any.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = tracked_runtime::spawn("who-am-i", Default::default(), async {
///     tracked_runtime::task_id()
/// });
/// let id = handle.id();
/// assert_eq!(handle.await.unwrap(), Some(id));
/// assert_eq!(tracked_runtime::task_id(), None);
/// # }
/// ```
pub fn task_id() -> Option<TaskId> {
    with_current(|current| current.map(|c| c.record.id))
}

/// What tokio hands back from a spawn, as far as aborting goes.
pub(crate) trait Abortable {
    fn abort_handle(&self) -> tokio::task::AbortHandle;
}

impl<T> Abortable for tokio::task::JoinHandle<T> {
    fn abort_handle(&self) -> tokio::task::AbortHandle {
        tokio::task::JoinHandle::abort_handle(self)
    }
}

impl Abortable for tokio::task::AbortHandle {
    fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.clone()
    }
}

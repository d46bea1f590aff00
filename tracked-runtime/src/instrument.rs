//! The wrappers that run a tracked task: a future for async tasks and a
//! closure for blocking ones. They keep the task's record current while it
//! runs and record exactly one ending.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::events::EventKind;
use crate::outcome::Classify;
use crate::panic::Unwound;
use crate::record::Record;
use crate::shutdown::AtSpawn;
use crate::snapshot::Ending;
use crate::text::{cut, cut_copy, MAX_FAILURE_BYTES};
use crate::wake::WakeState;
use crate::{TaskId, Tracker};
use std::marker::PhantomData;
use std::ptr::NonNull;
use tracing::Span;

/// A task registered and being handed to tokio (see [`Current::launching`]).
pub(crate) struct Launch {
    record: Arc<Record>,
    tracker: TrackerRef,
    at_spawn: AtSpawn,
}

impl Launch {
    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.record.id
    }

    /// Whether the task is spawned after shutdown, to be aborted before it
    /// runs. A blocking closure is then not handed to tokio's blocking pool,
    /// whose threads may start it before the abort lands: [`unrun`] stands
    /// in for it.
    pub(crate) fn doomed(&self) -> bool {
        self.at_spawn == AtSpawn::Abort
    }

    /// Finishes registering the task tokio took: records the handle that
    /// aborts it, and applies the shutdown state the launch found.
    pub(crate) fn launched<H: Abortable>(self, handle: H) -> H {
        let registry = &self.tracker.inner.registry;
        registry.set_abort(&self.record, handle.abort_handle());
        match self.at_spawn {
            AtSpawn::Run => {}
            AtSpawn::Cancel => {
                registry.request_cancel(&self.record);
            }
            AtSpawn::Abort => handle.abort_handle().abort(),
        }
        handle
    }
}

/// The task being run on this thread, if it is tracked.
pub(crate) struct Current {
    pub(crate) record: Arc<Record>,
    pub(crate) tracker: TrackerRef,
}

/// A tracker reference that costs no reference count for a tracker that
/// lives for the rest of the process (the global one, or a leaked one),
/// whose `Arc` would otherwise be one counter bumped by every spawn and end
/// on every thread.
#[derive(Clone)]
pub(crate) enum TrackerRef {
    Forever(&'static Tracker),
    Other(Tracker),
}

impl TrackerRef {
    pub(crate) fn of(tracker: &Tracker) -> Self {
        match tracker.inner.forever.get() {
            Some(forever) => TrackerRef::Forever(forever),
            None => TrackerRef::Other(tracker.clone()),
        }
    }
}

impl std::ops::Deref for TrackerRef {
    type Target = Tracker;

    fn deref(&self) -> &Tracker {
        match self {
            TrackerRef::Forever(tracker) => tracker,
            TrackerRef::Other(tracker) => tracker,
        }
    }
}

thread_local! {
    /// The task being run on this thread: a pointer to the `Current` its
    /// wrapper holds, set by [`Entered`] for the length of one poll (or one
    /// blocking run). Entering a poll writes one pointer, with no reference
    /// counting and no move of the `Current`; the const initializer and the
    /// lack of drop glue make each access a plain thread-local read or write.
    static CURRENT: Cell<Option<NonNull<Current>>> = const { Cell::new(None) };
}

/// Runs `f` with the current task, if any. `f` must not re-enter the
/// tracker's poll path (it runs inside a poll, with the task current).
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    let current = CURRENT.with(Cell::get);
    // SAFETY: a pointer in `CURRENT` was set by an `Entered` that is still
    // alive further up this thread's stack (it restores the previous value
    // when dropped, unwinding included), so the `Current` it points at is
    // alive and stays in place: its wrapper does not touch it until the
    // `Entered` is gone. The only write through the pointer is
    // `claim_current`'s, which never runs inside `f`, so the shared
    // reference lent to `f` is not aliased by a mutable one.
    f(current.map(|ptr| unsafe { ptr.as_ref() }))
}

/// The id and poll count of the record current on this thread, if any.
pub(crate) fn running() -> Option<(TaskId, u64)> {
    with_current(|current| current.map(|c| (c.record.id, c.polls())))
}

/// Makes a task current on this thread until dropped, when whatever was
/// current before is restored (also when the poll unwinds).
#[must_use = "the task is current only while this is alive"]
struct Entered {
    previous: Option<NonNull<Current>>,
}

impl Entered {
    /// Until the returned value is dropped, `current` is reached only through
    /// the thread-local pointer: the caller must not use it in between.
    #[inline]
    fn new(current: &mut Current) -> Self {
        Entered {
            previous: CURRENT.replace(Some(NonNull::from(current))),
        }
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        CURRENT.set(self.previous);
    }
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
        self.record.doomed()
    }

    /// Book-keeping at the start of each poll, `polls` being the count so far.
    #[inline]
    fn enter(&self, polls: u64) {
        let record = &self.record;
        // The flag, then the count with Release: a reader that sees the new
        // count sees the task in its poll (see `Record::idle_polled`; the
        // loom model in `wake.rs`). Both plain stores on x86.
        record.enter_poll();
        record.polls.store(polls + 1, Ordering::Release);
        if polls == 0 {
            self.first_poll();
        }
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
        if inner.events.wanted() {
            self.tracker.emit(record, EventKind::Started);
        }
    }

    /// Book-keeping before a poll (or a blocking run), `polls` being the
    /// count so far; returns when it started if busy time is measured.
    #[inline]
    fn begin(&self, polls: u64) -> Option<u64> {
        self.enter(polls);
        // A tracker that times polls gives every record a `timing`: the
        // default, untimed, reads the record's line it already has, not
        // the tracker's flag two pointers away.
        let timing = self.record.timing.as_ref()?;
        let inner = &self.tracker.inner;
        if !inner.busy_time {
            return None;
        }
        let now = inner.clock.now();
        timing.busy.begin(now);
        Some(now)
    }

    /// Starts a poll with wakes followed: `tokio_waker` is the one tokio
    /// polls the task with, `now` the poll's start (wakes time polls).
    #[cold]
    #[inline(never)]
    fn wake_begins(
        &self,
        state: &Arc<WakeState>,
        tokio_waker: &Waker,
        now: Option<u64>,
    ) -> ManuallyDrop<Waker> {
        let inner = &self.tracker.inner;
        let now = now.unwrap_or_else(|| inner.clock.now());
        if let Some(delay) = state.poll_starts(tokio_waker, now) {
            // A `#[tracked]` fn awaited in a task is polled within that
            // task's poll, which counts the delay already.
            if !self.record.nested() {
                inner.registry.scheduled(&self.record, delay);
            }
        }
        WakeState::lend(state)
    }

    /// Book-keeping after a poll (or a blocking run) that [`Current::begin`]
    /// started; `is_poll` says whether it was a poll of a future, counted in
    /// the poll histogram when polls are timed. A task whose run `ended`
    /// stays "in a poll" until [`Current::finish`] records the end: never
    /// seen idle, or without a waker, between the two.
    #[inline]
    fn end(&self, busy_from: Option<u64>, is_poll: bool, ended: bool) {
        if !ended {
            // Release: a reader that sees the poll over sees what it did,
            // the wakers it cloned included (see `Record::lost_waker`).
            self.record.leave_poll();
        }
        if let Some(from) = busy_from {
            self.count_busy(from, is_poll);
        }
    }

    /// Adds a timed poll to the busy time and the poll histogram; out of
    /// line, so that the untimed default keeps `end` small.
    #[inline(never)]
    fn count_busy(&self, from: u64, is_poll: bool) {
        let inner = &self.tracker.inner;
        let now = inner.clock.now();
        let spent = now.saturating_sub(from);
        if let Some(timing) = &self.record.timing {
            timing.busy.end(from, now);
            timing.last_poll_end.store(now, Ordering::Relaxed);
        }
        // A `#[tracked]` fn awaited in a task is polled within that task's
        // poll, which the histogram counts already: it has busy time of its
        // own, but no poll of tokio's.
        if is_poll && !self.record.nested() {
            // After the poll, so a claim during it counts the poll in the
            // type the task has now.
            inner.registry.polled(&self.record, spent);
        }
    }

    /// Readies the launch of a task about to be handed to tokio (by the
    /// caller itself, so that a panic of tokio's, outside a runtime, names
    /// the caller's site): applies the tracker's shutdown state at spawn;
    /// [`Launch::launched`] finishes once tokio has the task.
    pub(crate) fn launching(&self) -> Launch {
        let at_spawn = self.tracker.inner.shutdown.at_spawn(&self.record);
        if at_spawn == AtSpawn::Abort {
            self.record.doom();
        }
        Launch {
            record: Arc::clone(&self.record),
            tracker: self.tracker.clone(),
            at_spawn,
        }
    }

    /// Records how the task ended and logs failures.
    pub(crate) fn finish(self, ending: Ending) {
        self.finish_unwinding(ending, Unwound::default(), None);
    }

    /// [`finish`](Self::finish) for a panic that unwound out of the records
    /// in `unwound` first (`#[tracked]` fns awaited in this one); then, if
    /// the panic leaves the task, carries out the strongest of the tracker's
    /// [`OnPanic`](crate::OnPanic) for their types and this one's. `payload`
    /// is the panic's, which identifies it to the record it unwinds into.
    fn finish_unwinding(
        self,
        ending: Ending,
        mut unwound: Unwound,
        payload: Option<&(dyn Any + Send)>,
    ) {
        let record = &self.record;
        if let Some(state) = record.wake_state() {
            state.ended();
        }
        let mut panic_action = None;
        match &ending {
            Ending::Failed(text) => {
                if !crate::failure::told(record, text) {
                    tracing::warn!(
                        task.id = record.id.as_u64(),
                        task.name = %record.name,
                        task.r#type = %record.ty,
                        task.site = %record.site(),
                        "tracked task failed: {text}"
                    );
                }
                if record.nested() {
                    crate::failure::pass_on(text);
                }
            }
            Ending::Panicked { message, location } => {
                let at = location.as_deref().unwrap_or("unknown");
                if !unwound.told {
                    tracing::error!(
                        task.id = record.id.as_u64(),
                        task.name = %record.name,
                        task.r#type = %record.ty,
                        task.site = %record.site(),
                        panic.location = at,
                        "tracked task panicked: {message}"
                    );
                }
                let action = self.tracker.inner.on_panic.action(record.ty);
                unwound.add(action, || {
                    format!(
                        "task {} #{} ({}, spawned at {}) panicked at {at}: {message}",
                        record.name,
                        record.id.as_u64(),
                        record.ty,
                        record.site()
                    )
                });
                if let (true, Some(payload)) = (record.nested(), payload) {
                    // It unwinds on into the record polling this one, the
                    // current one again: the task acts if it ends with it.
                    unwound.told = true;
                    crate::panic::hand_on(payload, location.clone(), unwound);
                } else {
                    panic_action = unwound.action;
                }
            }
            Ending::Completed | Ending::Cancelled => {}
        }
        if self.tracker.inner.events.wanted() {
            let (state, error) = match &ending {
                Ending::Failed(text) => (ending.state(), Some(text.clone())),
                Ending::Panicked { message, .. } => (ending.state(), Some(message.clone())),
                _ => (ending.state(), None),
            };
            // The state first, while the record's progress is held: a
            // progress report or a watchdog warning, which check the state
            // under that lock before sending their event, then comes before
            // this event or not at all. Only when someone listens: the end
            // of a task nobody follows takes no lock for it.
            let _reports = record.progress();
            record.set_state(state);
            self.tracker
                .emit(&self.record, EventKind::Finished { state, error });
        }
        let inner = &self.tracker.inner;
        inner.registry.finish(self.record, ending, &inner.clock);
        if let Some((action, cause)) = panic_action {
            crate::panic::act(&self.tracker, action, cause);
        }
    }
}

/// Hands the running task to the `#[tracked]` fn `site` if the task was
/// spawned to run exactly that fn (see [`Record::claimable_by`]); gives
/// `owner` back when it does not.
pub(crate) fn claim_current(
    site: &'static crate::StaticSite,
    owner: Option<Arc<str>>,
) -> Result<(), Option<Arc<str>>> {
    let Some(mut current) = CURRENT.with(Cell::get) else {
        return Err(owner);
    };
    // SAFETY: the pointer is valid as in `with_current`. No other reference
    // to the `Current` exists while this one is used: its wrapper is inside
    // the poll that made it current (below us on the stack, not touching
    // it), and `with_current` lends it out only for the length of a call
    // that does not come here.
    let current = unsafe { current.as_mut() };
    if !current.record.claimable_by(site) {
        return Err(owner);
    }
    let Current { record, tracker } = current;
    tracker.inner.registry.claim(record, site, owner);
    Ok(())
}

/// Holds a task until it ends (while it is polled, the thread-local current
/// task points into it), with its `tracing` span if one is enabled; records
/// `Cancelled` if the task is dropped before it ends.
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

    /// Whether the guard holds its task, i.e. the task has not ended (and is
    /// not a claimed fn's empty guard).
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
        task.site = %record.site(),
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
        // Dropped by hand, with its task current: see the drop below.
        #[pin]
        future: ManuallyDrop<F>,
        guard: Guard,
        classify: PhantomData<fn() -> C>,
    }

    impl<F, C> PinnedDrop for Instrumented<F, C> {
        /// A task dropped before its end (aborted, or dropped with its
        /// runtime) drops its future as the current task, so that what the
        /// future's drop spawns (a cleanup task, say) is a child of the task
        /// in its tracker, not a root of the global one; then the guard
        /// records the cancellation.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let entered = this.guard.current.as_mut().map(Entered::new);
            // SAFETY: the future is dropped in place, as pinning allows, and
            // once: this is the wrapper's own drop, after which nothing
            // reaches the field (`ManuallyDrop` keeps the compiler from
            // dropping it again).
            unsafe { ManuallyDrop::drop(this.future.get_unchecked_mut()) };
            drop(entered);
        }
    }
}

impl<F, C> Instrumented<F, C> {
    pub(crate) fn new(future: F, current: Current) -> Self {
        Instrumented {
            future: ManuallyDrop::new(future),
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
        // SAFETY: `ManuallyDrop<F>` is `F` with its drop left to the
        // wrapper, which drops it in place: the pinned future is never moved.
        let future = unsafe { this.future.map_unchecked_mut(|future| &mut **future) };
        poll_as::<C, F>(Some(this.guard), future, cx)
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
    let mut lent = None;
    if let Some(Guard {
        current: slot,
        span,
    }) = guard
    {
        let current = slot
            .as_mut()
            .expect("a tracked task is not polled after it completes");
        let polls = current.polls();
        if polls == 0 && current.doomed() {
            // Spawned after shutdown: the abort already sent ends the task.
            return Poll::Pending;
        }
        // Entered for the poll and the ending, so the failure and panic
        // events are inside the span too.
        let span_entered = span.as_ref().map(|span| span.enter());
        let first_with_span = polls == 0 && span.is_some();
        let before = first_with_span.then_some(Arc::as_ptr(&current.record));
        let busy_from = current.begin(polls);
        if let Some(state) = current.record.wake_state() {
            lent = Some(current.wake_begins(state, cx.waker(), busy_from));
        }
        unit = Some((slot, &*span, span_entered, before, busy_from));
    }
    // Made current only once `slot` has moved into `unit`: the move is a
    // fresh borrow that would invalidate a pointer taken from it before.
    let entered = unit
        .as_mut()
        .and_then(|(slot, ..)| slot.as_mut())
        .map(Entered::new);
    // With wakes followed, the task is polled with the tracker's waker. It
    // points at the wake state, which the task's record keeps alive beyond
    // this poll (and a claim during it hands on to the new record).
    // One call site either way (see above), so a context of our own.
    let mut cx = Context::from_waker(lent.as_deref().unwrap_or(cx.waker()));
    let result = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
    drop(entered);
    let Some((slot, span, _span_entered, before, busy_from)) = unit else {
        return result.unwrap_or_else(|payload| resume_unwind(payload));
    };
    let Some(current) = slot.as_mut() else {
        unreachable!("a task's slot holds it while it is polled")
    };
    current.end(busy_from, true, !matches!(result, Ok(Poll::Pending)));
    if let (Some(before), Some(span)) = (before, span) {
        if !std::ptr::eq(before, Arc::as_ptr(&current.record)) {
            claimed(span, &current.record);
        }
    }
    match result {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(output)) => {
            if let Some(current) = slot.take() {
                current.finish(ending_of::<C, _>(&output));
            }
            Poll::Ready(output)
        }
        Err(payload) => {
            if let Some(current) = slot.take() {
                let (ending, unwound) = panicked(&current.record, &*payload);
                current.finish_unwinding(ending, unwound, Some(&*payload));
            }
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
        let mut current = guard.current.take().expect("a blocking task runs once");
        let _span_entered = guard.span.as_ref().map(|span| span.enter());
        let busy_from = current.begin(current.polls());
        let result = {
            let _entered = Entered::new(&mut current);
            catch_unwind(AssertUnwindSafe(f))
        };
        // A blocking closure's run is not a poll: not in the poll histogram.
        current.end(busy_from, false, true);
        match result {
            Ok(output) => {
                current.finish(ending_of::<C, _>(&output));
                output
            }
            Err(payload) => {
                let (ending, unwound) = panicked(&current.record, &*payload);
                current.finish_unwinding(ending, unwound, Some(&*payload));
                resume_unwind(payload)
            }
        }
    }
}

/// What tokio runs in place of a blocking closure spawned after shutdown
/// (see [`Launch::doomed`]): an async task that is never ready and holds the
/// closure, which the abort sent at spawn drops unrun; the task ends
/// `Cancelled`, and its handle gives a cancelled `JoinError`.
pub(crate) async fn unrun<R>(closure: impl FnOnce() -> R) -> R {
    let _closure = closure;
    std::future::pending().await
}

/// How a task returning `output` ended; an `Err`'s text is cut to
/// [`MAX_FAILURE_BYTES`]. The text is the user's code (a `Display`, an
/// `Outcome`): if making it panics, the task still ends, `Failed`, and its
/// output still goes to its handle.
fn ending_of<C: Classify<T>, T>(output: &T) -> Ending {
    match catch_unwind(AssertUnwindSafe(|| C::failure(output))) {
        Ok(Some(text)) => Ending::Failed(cut(text, MAX_FAILURE_BYTES)),
        Ok(None) => Ending::Completed,
        Err(payload) => {
            // Caught here: no panic unwinding later in this poll is it.
            crate::panic::forget_seen();
            Ending::Failed(format!(
                "(no text: formatting the error panicked: {})",
                panic_message(&*payload)
            ))
        }
    }
}

/// The text of a panic payload, cut to [`MAX_FAILURE_BYTES`].
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        cut_copy(text, MAX_FAILURE_BYTES)
    } else if let Some(text) = payload.downcast_ref::<String>() {
        cut_copy(text, MAX_FAILURE_BYTES)
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// The ending of `record`'s task, unwinding with `payload`, and what the
/// records the panic unwound out of before left to it.
fn panicked(record: &Record, payload: &(dyn Any + Send)) -> (Ending, Unwound) {
    let (location, unwound) = crate::panic::take(record, payload);
    let message = panic_message(payload);
    (Ending::Panicked { message, location }, unwound)
}

/// The id of the tracked task running on this thread, if any.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = tracked::spawn("who-am-i", Default::default(), async {
///     tracked::task_id()
/// });
/// let id = handle.id();
/// assert_eq!(handle.await.unwrap(), Some(id));
/// assert_eq!(tracked::task_id(), None);
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

/// The current task is a raw pointer into the wrapper of the task being
/// polled (`CURRENT`). These tests take it through every way it is set,
/// read, written (a claim) and restored (nesting, panics, blocking runs), and
/// are meant for Miri, which checks each access against the borrow rules:
///
/// ```text
/// MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test -p tracked-runtime --lib instrument
/// ```
#[cfg(test)]
mod tests {
    use super::task_id;
    use crate::private::{probe, PickAny, SiteKind, StaticSite, TrackedFn};
    use crate::{Builder, TaskState, TaskType, Tracker};
    use std::future::{poll_fn, Future};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::pin;

    /// A site as the macro would declare it, here in this file; `target` is
    /// the fn's name (for a spawn, the name of the fn it calls).
    const fn site(
        name: &'static str,
        ty: TaskType,
        kind: SiteKind,
        target: &'static str,
    ) -> StaticSite {
        StaticSite::__new(
            name,
            ty,
            kind,
            module_path!(),
            file!(),
            line!(),
            1,
            None,
            target,
        )
    }

    /// A `#[tracked]` fn named `work`.
    static WORK_FN: StaticSite = site("tests::work", TaskType::DATABASE, SiteKind::Fn, "work");

    /// A rewritten `tokio::spawn(work(..))`.
    static WORK_SPAWN: StaticSite = site(
        "tests::caller::work",
        TaskType::GENERAL,
        SiteKind::Spawn,
        "work",
    );

    /// A `#[tracked]` fn named `unit`, awaited inside a task.
    static UNIT_FN: StaticSite = site("tests::unit", TaskType::MAINTENANCE, SiteKind::Fn, "unit");

    /// What `#[tracked]` makes of `async fn` with `site` and this body.
    fn annotated<F: Future>(site: &'static StaticSite, body: F) -> impl Future<Output = F::Output> {
        let pick = probe(&body).pick();
        TrackedFn::new(site, None, pick, body)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_task_is_current_during_its_polls_only() {
        let tracker = Tracker::new();
        runtime().block_on(async {
            assert_eq!(task_id(), None);
            let handle = Builder::new("outer", TaskType::NETWORK)
                .tracker(&tracker)
                .spawn(async {
                    let me = task_id();
                    tokio::task::yield_now().await;
                    assert_eq!(task_id(), me, "the same task after a yield");
                    // Spawned from inside: parent and tracker come from here.
                    let child = crate::spawn("child", TaskType::NETWORK, async { task_id() });
                    let child_id = child.id();
                    assert_eq!(child.await.expect("child"), Some(child_id));
                    assert_eq!(task_id(), me, "restored after awaiting a child");
                    me
                });
            let id = handle.id();
            assert_eq!(handle.await.expect("outer"), Some(id));
            assert_eq!(task_id(), None, "nothing current outside tasks");
        });
        let stats = tracker.stats();
        assert_eq!(stats.total.completed, 2);
        let child = tracker.finished(&crate::Query::new().name_prefix("child"));
        assert_eq!(child.len(), 1);
        assert!(child[0].parent.is_some());
    }

    #[test]
    fn an_awaited_unit_is_current_inside_and_its_caller_after() {
        let tracker = Tracker::new();
        runtime().block_on(async {
            let handle = Builder::new("caller", TaskType::GENERAL)
                .tracker(&tracker)
                .spawn(async {
                    let caller = task_id();
                    let inside = annotated(&UNIT_FN, async {
                        tokio::task::yield_now().await;
                        task_id()
                    })
                    .await;
                    assert_ne!(inside, caller, "the unit has an id of its own");
                    assert_eq!(task_id(), caller);
                    (caller, inside)
                });
            let (caller, inside) = handle.await.expect("caller");
            let unit = tracker
                .task(inside.expect("unit id"))
                .expect("unit in history");
            assert_eq!(unit.task.parent, caller);
            assert_eq!(unit.task.name, UNIT_FN.name());
        });
    }

    /// With wakes followed, the task is polled with a waker lent from its
    /// record's wake state; a claim in that poll replaces the record, which
    /// must hand the state on for the lent waker and its clones to use.
    #[test]
    fn the_trackers_waker_outlives_a_claim_in_the_poll_it_was_lent_to() {
        let tracker = Tracker::builder().wakes(true).build();
        runtime().block_on(async {
            let (reply, replied) = tokio::sync::oneshot::channel::<()>();
            let body = annotated(&WORK_FN, async move {
                let mut kept = None;
                poll_fn(|cx| {
                    if kept.is_some() {
                        return std::task::Poll::Ready(());
                    }
                    cx.waker().wake_by_ref();
                    kept = Some(cx.waker().clone());
                    std::task::Poll::Pending
                })
                .await;
                kept.take().expect("kept").wake();
                replied.await.ok();
            });
            let handle = Builder::new(WORK_SPAWN.name(), WORK_SPAWN.ty())
                .static_site(&WORK_SPAWN)
                .tracker(&tracker)
                .spawn(body);
            tokio::task::yield_now().await;
            reply.send(()).expect("the task waits");
            handle.await.expect("work");
        });
        let done = tracker.finished(&crate::Query::new().name_prefix(WORK_FN.name()));
        let wakes = done[0].wakes.as_ref().expect("followed");
        // Two from inside its own polls, one from the reply.
        assert_eq!((wakes.wakes, wakes.self_wakes, wakes.wakers), (3, 2, 0));
    }

    #[test]
    fn a_claim_renames_the_task_through_the_current_pointer() {
        let tracker = Tracker::new();
        runtime().block_on(async {
            let body = annotated(&WORK_FN, async {
                tokio::task::yield_now().await;
                task_id()
            });
            let handle = Builder::new(WORK_SPAWN.name(), WORK_SPAWN.ty())
                .static_site(&WORK_SPAWN)
                .tracker(&tracker)
                .spawn(body);
            let id = handle.id();
            assert_eq!(handle.await.expect("work"), Some(id), "claimed, not a unit");
            let task = tracker.task(id).expect("in history").task;
            assert_eq!(task.name, WORK_FN.name());
            assert_eq!(task.ty, TaskType::DATABASE);
            assert_eq!(task.polls, 2);
        });
        let stats = tracker.stats();
        assert_eq!(stats.total.spawned, 1, "one task, claimed, not two");
    }

    #[test]
    fn a_panicking_poll_restores_what_was_current() {
        let tracker = Tracker::new();
        runtime().block_on(async {
            let handle = Builder::new("survivor", TaskType::GENERAL)
                .tracker(&tracker)
                .spawn(async {
                    let caller = task_id();
                    let mut unit = pin!(annotated(&UNIT_FN, async {
                        if task_id().is_some() {
                            panic!("the unit fails");
                        }
                    }));
                    // Polled by hand to catch the unwind inside this task.
                    let caught = poll_fn(|cx| {
                        let polled = catch_unwind(AssertUnwindSafe(|| unit.as_mut().poll(cx)));
                        std::task::Poll::Ready(polled.is_err())
                    })
                    .await;
                    assert!(caught, "the panic reaches the poller");
                    assert_eq!(task_id(), caller);
                    caller
                });
            let id = handle.id();
            assert_eq!(handle.await.expect("survivor"), Some(id));
            let panicker = crate::spawn("panics", TaskType::GENERAL, async {
                if task_id().is_some() {
                    panic!("the task fails");
                }
            });
            assert!(panicker.await.expect_err("panicked").is_panic());
            assert_eq!(task_id(), None);
        });
        let panicked = tracker.finished(&crate::Query::new().state(TaskState::Panicked));
        assert_eq!(panicked.len(), 1, "the unit's panic is recorded");
    }

    #[test]
    fn a_blocking_run_is_current_on_its_thread() {
        let tracker = Tracker::new();
        runtime().block_on(async {
            let handle = Builder::new("blocking", TaskType::GENERAL)
                .tracker(&tracker)
                .spawn_blocking(task_id);
            let id = handle.id();
            assert_eq!(handle.await.expect("blocking"), Some(id));
        });
    }

    /// A task aborted while parked drops its future as the current task:
    /// what the drop spawns is its child, in its tracker (it used to be a
    /// root of the global tracker, out of reach of this tracker's queries
    /// and shutdown).
    #[test]
    fn a_spawn_from_an_aborted_tasks_drop_is_its_child() {
        struct Cleanup;
        impl Drop for Cleanup {
            fn drop(&mut self) {
                assert!(task_id().is_some(), "dropped as the current task");
                drop(crate::spawn("cleanup", TaskType::MAINTENANCE, async {}));
            }
        }
        let tracker = Tracker::new();
        runtime().block_on(async {
            let handle = tracker.spawn("holder", TaskType::GENERAL, async {
                let _cleanup = Cleanup;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            let id = handle.id();
            handle.abort();
            assert!(handle.await.expect_err("aborted").is_cancelled());
            assert_eq!(task_id(), None, "restored after the drop");
            let query = crate::Query::new().name_prefix("cleanup");
            let mut cleanup = tracker.tasks(&query);
            cleanup.extend(tracker.finished(&query));
            assert_eq!(cleanup.len(), 1, "spawned in the holder's tracker");
            assert_eq!(cleanup[0].parent, Some(id));
        });
        let holder = tracker.finished(&crate::Query::new().name_prefix("holder"));
        assert_eq!(holder[0].state, TaskState::Cancelled);
    }
}

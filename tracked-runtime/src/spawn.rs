//! Spawning tracked tasks: the builder, the free functions, and the handles.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::{JoinError, LocalSet};

use crate::instrument::{blocking, unrun, with_current, Current, Instrumented, TrackerRef};
use crate::outcome::{ByOutcome, Classify};
use crate::record::{Label, SpawnKind, TaskName};
use crate::{SiteKind, StaticSite, TaskId, TaskOutput, TaskType, Tracker};

/// Describes a task to spawn: name, type, and optionally owner, labels and
/// tracker.
///
/// Without [`Builder::tracker`], a task spawned from inside a tracked task
/// joins that task's tracker, otherwise [`Tracker::global`]. Without
/// [`Builder::owner`], it inherits its parent's owner.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{Builder, TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let handle = Builder::new("sync-peer", TaskType::NETWORK)
///     .owner("session-42")
///     .label("peer", "10.0.0.7")
///     .tracker(&tracker)
///     .spawn(async { Ok::<_, std::io::Error>(3) });
/// assert_eq!(handle.await.unwrap().unwrap(), 3);
/// # }
/// ```
#[must_use = "a builder does nothing until a spawn method is called"]
#[derive(Debug)]
pub struct Builder<'a> {
    name: TaskName,
    ty: TaskType,
    owner: Option<Arc<str>>,
    labels: Vec<Label>,
    tracker: Option<&'a Tracker>,
    static_site: Option<&'static StaticSite>,
    /// Marks for the record of a task of the library's own: `KEPT`,
    /// `SERVICE` (see [`Builder::service`]).
    marks: u8,
}

impl Builder<'static> {
    /// A task named `name`, of type `ty`.
    pub fn new(name: impl Into<TaskName>, ty: TaskType) -> Self {
        Builder {
            name: name.into(),
            ty,
            owner: None,
            labels: Vec::new(),
            tracker: None,
            static_site: None,
            marks: 0,
        }
    }
}

impl<'a> Builder<'a> {
    /// The owner (group, session, tenant) the task belongs to.
    pub fn owner(mut self, owner: impl Into<Arc<str>>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Adds a key-value label.
    pub fn label(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Whether a tracker was chosen with [`Builder::tracker`].
    pub(crate) fn has_tracker(&self) -> bool {
        self.tracker.is_some()
    }

    /// The tracker to register with.
    pub fn tracker<'b>(self, tracker: &'b Tracker) -> Builder<'b> {
        Builder {
            name: self.name,
            ty: self.ty,
            owner: self.owner,
            labels: self.labels,
            tracker: Some(tracker),
            static_site: self.static_site,
            marks: self.marks,
        }
    }

    /// Marks the task as one of the library's own long-lived services (the
    /// HTTP server, a heartbeat, the journal's tasks): the watchdog's idle
    /// and long-running thresholds skip it.
    pub(crate) fn service(mut self) -> Self {
        self.marks |= crate::record::SERVICE;
        self
    }

    /// Has shutdowns leave the task alone: not stopped with its tier, not
    /// aborted, not cancelled when spawned during or after one. For the
    /// journal's tasks, which write how the others ended; they watch
    /// [`Tracker::shutdown_finished`] instead.
    #[cfg(feature = "journal")]
    pub(crate) fn outliving_shutdown(mut self) -> Self {
        self.marks |= crate::record::KEPT;
        self
    }

    /// Links the task to a catalogue site, whose location it records; for
    /// the `#[tracked]` attribute.
    #[doc(hidden)]
    pub fn static_site(mut self, site: &'static StaticSite) -> Self {
        self.static_site = Some(site);
        self
    }

    /// Spawns a future on the current runtime, like `tokio::spawn`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does. The task was
    /// registered by then: it counts as spawned, and ends `Cancelled`.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput + Send + 'static,
    {
        let current = self.register(SpawnKind::Async, Location::caller());
        let launch = current.launching();
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let handle = tokio::spawn(Instrumented::<_, ByOutcome>::new(future, current));
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Spawns a future whose output is classified by `C`; for code
    /// generators, which pick `C` from the output type.
    #[doc(hidden)]
    #[track_caller]
    pub fn spawn_classified<C, F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: Classify<F::Output> + 'static,
    {
        let current = self.register(SpawnKind::Async, Location::caller());
        let launch = current.launching();
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let handle = tokio::spawn(Instrumented::<_, C>::new(future, current));
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Spawns a future on the runtime behind `handle`.
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput + Send + 'static,
    {
        let current = self.register(SpawnKind::Async, Location::caller());
        let launch = current.launching();
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let handle = handle.spawn(Instrumented::<_, ByOutcome>::new(future, current));
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Runs a closure on tokio's blocking pool, like `spawn_blocking`.
    ///
    /// Tasks it spawns have it as their parent.
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: TaskOutput + Send + 'static,
    {
        let current = self.register(SpawnKind::Blocking, Location::caller());
        let launch = current.launching();
        let f = blocking::<ByOutcome, _, _>(f, current);
        let handle = if launch.doomed() {
            // tracked: allow(untracked-spawn) -- stands in for the closure, unrun.
            tokio::spawn(unrun(f))
        } else {
            // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
            tokio::task::spawn_blocking(f)
        };
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Runs a closure on the blocking pool of the runtime behind `handle`.
    #[track_caller]
    pub fn spawn_blocking_on<F, R>(self, f: F, handle: &Handle) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: TaskOutput + Send + 'static,
    {
        let current = self.register(SpawnKind::Blocking, Location::caller());
        let launch = current.launching();
        let f = blocking::<ByOutcome, _, _>(f, current);
        let handle = if launch.doomed() {
            // tracked: allow(untracked-spawn) -- stands in for the closure, unrun.
            handle.spawn(unrun(f))
        } else {
            // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
            handle.spawn_blocking(f)
        };
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Spawns a `!Send` future on the current `LocalSet`, like `spawn_local`.
    ///
    /// # Panics
    ///
    /// Outside a `LocalSet`, as `tokio::task::spawn_local` does; the task
    /// counts as spawned, and ends `Cancelled`.
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: TaskOutput + 'static,
    {
        let current = self.register(SpawnKind::Local, Location::caller());
        let launch = current.launching();
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let handle = tokio::task::spawn_local(Instrumented::<_, ByOutcome>::new(future, current));
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Spawns a `!Send` future on `local_set`, like `LocalSet::spawn_local`:
    /// from outside the set too, before it runs (the task runs once the set
    /// is awaited or `run_until` polls it).
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::rc::Rc;
    /// use tokio::task::LocalSet;
    /// use tracked::{Builder, TaskType};
    ///
    /// let local = LocalSet::new();
    /// let shared = Rc::new(5);
    /// let task = Builder::new("ui-refresh", TaskType::UI).spawn_local_on(async move { *shared }, &local);
    /// assert_eq!(local.run_until(task).await.unwrap(), 5);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local_on<F>(self, future: F, local_set: &LocalSet) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: TaskOutput + 'static,
    {
        let current = self.register(SpawnKind::Local, Location::caller());
        let launch = current.launching();
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let handle = local_set.spawn_local(Instrumented::<_, ByOutcome>::new(future, current));
        let id = launch.id();
        JoinHandle::new(launch.launched(handle), id)
    }

    /// Registers the task and returns its `Current`, ready to run.
    pub(crate) fn register(self, kind: SpawnKind, caller: &'static Location<'static>) -> Current {
        let (tracker, parent, parent_owner) = with_current(|current| match current {
            Some(c) => (
                self.tracker
                    .map_or_else(|| c.tracker.clone(), TrackerRef::of),
                Some(c.record.id),
                self.owner
                    .is_none()
                    .then(|| c.record.owner().cloned())
                    .flatten(),
            ),
            None => (
                self.tracker
                    .map_or_else(|| TrackerRef::Forever(Tracker::global()), TrackerRef::of),
                None,
                None,
            ),
        });
        let spawned_at = tracker.inner.clock.now();
        if let Some(static_site) = self.static_site {
            static_site.mark_ran();
        }
        let record = tracker.inner.registry.insert(|record| {
            record.id = TaskId::next();
            record.parent = parent;
            record.name = self.name;
            record.ty = self.ty;
            record.set_meta(self.owner.or(parent_owner), self.labels.into_boxed_slice());
            record.caller = caller;
            record.kind = kind;
            match self.static_site {
                Some(s) if s.kind() == SiteKind::Fn => record.fn_site = Some(s),
                static_site => record.spawn_site = static_site,
            }
            record.spawned_at = spawned_at;
            record.mark(self.marks);
        });
        if tracker.inner.events.wanted() {
            let kind = crate::EventKind::Spawned {
                parent,
                kind: record.kind,
                labels: record.labels().into(),
            };
            tracker.emit(&record, kind);
        }
        Current { record, tracker }
    }
}

/// Spawns a tracked task on the current runtime: `tokio::spawn` with a name
/// and a type.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::TaskType;
///
/// let handle = tracked::spawn("warm-cache", TaskType::DATABASE, async { 42 });
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(name: impl Into<TaskName>, ty: TaskType, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: TaskOutput + Send + 'static,
{
    Builder::new(name, ty).spawn(future)
}

/// Runs a tracked closure on tokio's blocking pool.
#[track_caller]
pub fn spawn_blocking<F, R>(name: impl Into<TaskName>, ty: TaskType, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: TaskOutput + Send + 'static,
{
    Builder::new(name, ty).spawn_blocking(f)
}

/// Spawns a tracked `!Send` future on the current `LocalSet`.
#[track_caller]
pub fn spawn_local<F>(name: impl Into<TaskName>, ty: TaskType, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: TaskOutput + 'static,
{
    Builder::new(name, ty).spawn_local(future)
}

impl Tracker {
    /// A [`Builder`] registering with this tracker.
    pub fn task_builder(&self, name: impl Into<TaskName>, ty: TaskType) -> Builder<'_> {
        Builder::new(name, ty).tracker(self)
    }

    /// Spawns a tracked task on the current runtime.
    #[track_caller]
    pub fn spawn<F>(
        &self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput + Send + 'static,
    {
        self.task_builder(name, ty).spawn(future)
    }

    /// Runs a tracked closure on tokio's blocking pool.
    #[track_caller]
    pub fn spawn_blocking<F, R>(
        &self,
        name: impl Into<TaskName>,
        ty: TaskType,
        f: F,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: TaskOutput + Send + 'static,
    {
        self.task_builder(name, ty).spawn_blocking(f)
    }

    /// Spawns a tracked `!Send` future on the current `LocalSet`.
    #[track_caller]
    pub fn spawn_local<F>(
        &self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: TaskOutput + 'static,
    {
        self.task_builder(name, ty).spawn_local(future)
    }

    /// Spawns a tracked task on the runtime behind `handle`.
    #[track_caller]
    pub fn spawn_on<F>(
        &self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
        handle: &Handle,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput + Send + 'static,
    {
        self.task_builder(name, ty).spawn_on(future, handle)
    }
}

/// An owned permission to await a tracked task, like tokio's `JoinHandle`.
///
/// Awaiting it gives the task's output, or a [`JoinError`] that keeps the
/// panic payload (`JoinError::into_panic`) or says the task was cancelled.
/// Dropping it detaches the task, which keeps running and stays tracked.
pub struct JoinHandle<T> {
    inner: tokio::task::JoinHandle<T>,
    id: TaskId,
}

impl<T> JoinHandle<T> {
    fn new(inner: tokio::task::JoinHandle<T>, id: TaskId) -> Self {
        JoinHandle { inner, id }
    }

    /// The tracked task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Aborts the task; it is recorded as `Cancelled` unless it already ended.
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// A handle that can abort the task without awaiting it.
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            inner: self.inner.abort_handle(),
            id: self.id,
        }
    }

    /// The underlying tokio handle.
    pub fn into_inner(self) -> tokio::task::JoinHandle<T> {
        self.inner
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Aborts a tracked task without awaiting it.
#[derive(Clone, Debug)]
pub struct AbortHandle {
    inner: tokio::task::AbortHandle,
    id: TaskId,
}

impl AbortHandle {
    pub(crate) fn new(inner: tokio::task::AbortHandle, id: TaskId) -> Self {
        AbortHandle { inner, id }
    }

    /// The tracked task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Aborts the task.
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

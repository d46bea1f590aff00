//! A tracked `JoinSet`: a collection of tracked tasks awaited in completion order.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinError;

use crate::instrument::{blocking, Instrumented};
use crate::outcome::ByOutcome;
use crate::record::{SpawnKind, TaskName};
use crate::spawn::{AbortHandle, Builder};
use crate::{Outcome, TaskType, Tracker};

/// Like `tokio::task::JoinSet`, but every task in it is tracked.
///
/// Dropping the set aborts its tasks, which are then recorded as `Cancelled`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked_runtime::{JoinSet, TaskType};
///
/// let mut set = JoinSet::new();
/// for shard in 0..3u32 {
///     set.spawn("compact-shard", TaskType::MAINTENANCE, async move { shard });
/// }
/// let mut done = 0;
/// while let Some(result) = set.join_next().await {
///     result.unwrap();
///     done += 1;
/// }
/// assert_eq!(done, 3);
/// # }
/// ```
#[derive(Debug)]
pub struct JoinSet<T> {
    inner: tokio::task::JoinSet<T>,
    tracker: Option<Tracker>,
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set whose tasks register like [`crate::spawn`]'s.
    pub fn new() -> Self {
        JoinSet {
            inner: tokio::task::JoinSet::new(),
            tracker: None,
        }
    }

    /// An empty set whose tasks register with `tracker`.
    pub fn with_tracker(tracker: &Tracker) -> Self {
        JoinSet {
            inner: tokio::task::JoinSet::new(),
            tracker: Some(tracker.clone()),
        }
    }

    /// Tasks in the set, finished or not, not yet joined.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Aborts every task in the set.
    pub fn abort_all(&mut self) {
        self.inner.abort_all();
    }

    /// Aborts every task and waits until they have all stopped.
    pub async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }

    /// Awaits the next task to end; `None` when the set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.inner.join_next().await
    }

    /// The output of a task that has already ended, without waiting; `None`
    /// if none has (or the set is empty). Reaps finished tasks in a loop that
    /// spawns into the set.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.inner.try_join_next()
    }
}

impl<T: Outcome + Send + 'static> JoinSet<T> {
    /// Spawns a tracked task into the set.
    #[track_caller]
    pub fn spawn<F>(&mut self, name: impl Into<TaskName>, ty: TaskType, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.spawn_with(Builder::new(name, ty), future)
    }

    /// Spawns a task described by `builder` into the set, for owners and
    /// labels; the set's tracker applies unless the builder names one.
    #[track_caller]
    pub fn spawn_with<F>(&mut self, builder: Builder<'_>, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        let current = in_set(builder, self.tracker.as_ref())
            .register(SpawnKind::Async, std::panic::Location::caller());
        let id = current.record.id;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        AbortHandle::new(
            current.launch(|current| {
                self.inner
                    .spawn(Instrumented::<_, ByOutcome>::new(future, current))
            }),
            id,
        )
    }

    /// Spawns a tracked task into the set, on the runtime behind `handle`.
    #[track_caller]
    pub fn spawn_on<F>(
        &mut self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
        handle: &Handle,
    ) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        let current = in_set(Builder::new(name, ty), self.tracker.as_ref())
            .register(SpawnKind::Async, std::panic::Location::caller());
        let id = current.record.id;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        AbortHandle::new(
            current.launch(|current| {
                self.inner
                    .spawn_on(Instrumented::<_, ByOutcome>::new(future, current), handle)
            }),
            id,
        )
    }

    /// Runs a tracked closure on the blocking pool as part of the set.
    #[track_caller]
    pub fn spawn_blocking<F>(
        &mut self,
        name: impl Into<TaskName>,
        ty: TaskType,
        f: F,
    ) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let current = in_set(Builder::new(name, ty), self.tracker.as_ref())
            .register(SpawnKind::Blocking, std::panic::Location::caller());
        let id = current.record.id;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        AbortHandle::new(
            current.launch(|current| {
                self.inner
                    .spawn_blocking(blocking::<ByOutcome, _, _>(f, current))
            }),
            id,
        )
    }
}

impl<T: Outcome + 'static> JoinSet<T> {
    /// Spawns a tracked `!Send` task into the set, on the current `LocalSet`.
    #[track_caller]
    pub fn spawn_local<F>(
        &mut self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
    ) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        let current = in_set(Builder::new(name, ty), self.tracker.as_ref())
            .register(SpawnKind::Local, std::panic::Location::caller());
        let id = current.record.id;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        AbortHandle::new(
            current.launch(|current| {
                self.inner
                    .spawn_local(Instrumented::<_, ByOutcome>::new(future, current))
            }),
            id,
        )
    }
}

fn in_set<'a>(builder: Builder<'a>, tracker: Option<&'a Tracker>) -> Builder<'a> {
    match tracker {
        Some(tracker) if !builder.has_tracker() => builder.tracker(tracker),
        _ => builder,
    }
}

//! A tracked `JoinSet`: a collection of tracked tasks awaited in completion order.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::task::{Context, Poll};

use tokio::runtime::Handle;
use tokio::task::{JoinError, LocalSet};

use crate::instrument::{blocking, unrun, Current, Instrumented, Launch};
use crate::outcome::ByOutcome;
use crate::record::{SpawnKind, TaskName};
use crate::spawn::{AbortHandle, Builder};
use crate::{TaskId, TaskOutput, TaskType, Tracker};

/// Like `tokio::task::JoinSet`, but every task in it is tracked.
///
/// Dropping the set aborts its tasks, which are then recorded as `Cancelled`.
///
/// Ids it hands out are tracked [`TaskId`]s, the ones [`Tracker::task`]
/// looks up, not tokio's `task::Id`.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{JoinSet, TaskType};
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
pub struct JoinSet<T> {
    inner: Inner<T>,
    tracker: Option<Tracker>,
    /// The tracked id of each task in `inner`, by tokio's id: tokio's join
    /// methods give only that one (a `JoinError` too). An entry is added as
    /// its task joins `inner` and removed as it leaves, so both hold the
    /// same tasks; tokio does not reuse an id while the set holds its task.
    ids: HashMap<tokio::task::Id, TaskId, BuildHasherDefault<IdHasher>>,
}

/// The tokio set underneath.
type Inner<T> = tokio::task::JoinSet<T>;

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.inner.len())
            .field("tracker", &self.tracker)
            .finish()
    }
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
            ids: HashMap::default(),
        }
    }

    /// An empty set whose tasks register with `tracker`.
    pub fn with_tracker(tracker: &Tracker) -> Self {
        JoinSet {
            inner: tokio::task::JoinSet::new(),
            tracker: Some(tracker.clone()),
            ids: HashMap::default(),
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

    /// Aborts every task and waits until they have all stopped. Cancel
    /// safe: dropped before the end (under a timeout, say), it leaves in
    /// the set the tasks it has not joined yet.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next_with_id().await.is_some() {}
    }

    /// Awaits the next task to end; `None` when the set is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        Some(self.join_next_with_id().await?.1)
    }

    /// Awaits the next task to end and gives its tracked id with its result,
    /// whether it returned, panicked or was aborted; `None` when the set is
    /// empty. Cancel safe, like [`JoinSet::join_next`].
    ///
    /// Unlike tokio's, the id comes beside the result rather than inside it
    /// (as tokio-util's `JoinMap` gives its keys): `JoinError::id` is tokio's
    /// id, which the tracker does not know.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskState, TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let mut set = JoinSet::with_tracker(&tracker);
    /// let spawned = set.spawn("fetch", TaskType::NETWORK, async { 7 }).id();
    /// let (id, result) = set.join_next_with_id().await.unwrap();
    /// assert_eq!((id, result.unwrap()), (spawned, 7));
    /// assert_eq!(tracker.task(id).unwrap().task.state, TaskState::Completed);
    /// # }
    /// ```
    pub async fn join_next_with_id(&mut self) -> Option<(TaskId, Result<T, JoinError>)> {
        std::future::poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// The output of a task that has already ended, without waiting; `None`
    /// if none has (or the set is empty). Reaps finished tasks in a loop that
    /// spawns into the set.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        Some(self.try_join_next_with_id()?.1)
    }

    /// [`JoinSet::try_join_next`] with the task's tracked id, as
    /// [`JoinSet::join_next_with_id`] gives it.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let mut set = JoinSet::new();
    /// let spawned = set.spawn("parse", TaskType::GENERAL, async { 1 }).id();
    /// assert!(set.try_join_next_with_id().is_none()); // not run yet
    /// tokio::task::yield_now().await;
    /// let (id, result) = set.try_join_next_with_id().unwrap();
    /// assert_eq!((id, result.unwrap()), (spawned, 1));
    /// # }
    /// ```
    pub fn try_join_next_with_id(&mut self) -> Option<(TaskId, Result<T, JoinError>)> {
        let joined = self.inner.try_join_next_with_id()?;
        Some(self.tracked(joined))
    }

    /// Polls for the next task to end, for hand-written futures and streams:
    /// `Ready(None)` when the set is empty, `Pending` (waking `cx` later)
    /// while no task's output is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let mut set = JoinSet::new();
    /// set.spawn("tick", TaskType::GENERAL, async { 2 });
    /// let next = std::future::poll_fn(|cx| set.poll_join_next(cx)).await;
    /// assert_eq!(next.unwrap().unwrap(), 2);
    /// # }
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|joined| Some(joined?.1))
    }

    /// [`JoinSet::poll_join_next`] with the task's tracked id, as
    /// [`JoinSet::join_next_with_id`] gives it.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let mut set = JoinSet::new();
    /// let spawned = set.spawn("tick", TaskType::GENERAL, async { 2 }).id();
    /// let (id, _) = std::future::poll_fn(|cx| set.poll_join_next_with_id(cx))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(id, spawned);
    /// # }
    /// ```
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(TaskId, Result<T, JoinError>)>> {
        match self.inner.poll_join_next_with_id(cx) {
            Poll::Ready(Some(joined)) => Poll::Ready(Some(self.tracked(joined))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Awaits every task and returns their outputs in the order they ended.
    ///
    /// # Panics
    ///
    /// If a task panicked, with its payload (after aborting the others, as
    /// dropping the set does); if one was aborted, saying so with its
    /// tracked id. Join in a loop with [`JoinSet::join_next_with_id`] to
    /// handle either.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let mut set = JoinSet::new();
    /// for page in 0..3u32 {
    ///     set.spawn("render", TaskType::GENERAL, async move { page * 10 });
    /// }
    /// let mut pages = set.join_all().await;
    /// pages.sort();
    /// assert_eq!(pages, [0, 10, 20]);
    /// # }
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some((id, result)) = self.join_next_with_id().await {
            match result {
                Ok(output) => outputs.push(output),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // The `JoinError`'s text gives tokio's id, which the tracker
                // does not know.
                Err(_) => panic!("tracked task #{id} in the JoinSet was cancelled"),
            }
        }
        outputs
    }

    /// Empties the set without aborting its tasks: they run on, stay
    /// tracked, and are no longer aborted when the set is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{JoinSet, TaskState, TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let mut set = JoinSet::with_tracker(&tracker);
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let id = set
    ///     .spawn("flush", TaskType::DATABASE, async move { tx.send(()).unwrap() })
    ///     .id();
    /// set.detach_all();
    /// assert!(set.is_empty());
    /// drop(set);
    /// rx.await.unwrap(); // the task ran to its end
    /// tokio::task::yield_now().await;
    /// assert_eq!(tracker.task(id).unwrap().task.state, TaskState::Completed);
    /// # }
    /// ```
    pub fn detach_all(&mut self) {
        self.inner.detach_all();
        self.ids.clear();
    }

    /// Swaps tokio's id of a task that left `inner` for the tracked one.
    fn tracked(
        &mut self,
        joined: Result<(tokio::task::Id, T), JoinError>,
    ) -> (TaskId, Result<T, JoinError>) {
        let (tokio_id, result) = match joined {
            Ok((tokio_id, output)) => (tokio_id, Ok(output)),
            Err(error) => (error.id(), Err(error)),
        };
        let id = self
            .ids
            .remove(&tokio_id)
            .expect("every task in a tracked JoinSet has a tracked id");
        (id, result)
    }

    /// Registers a task of `kind` described by `builder` (the set's tracker
    /// applies unless the builder names one), for the caller to put into
    /// `inner` itself (so that a panic of tokio's names the caller's site).
    fn register(
        &self,
        builder: Builder<'_>,
        kind: SpawnKind,
        site: &'static Location<'static>,
    ) -> (Current, Launch) {
        let current = in_set(builder, self.tracker.as_ref()).register(kind, site);
        let launch = current.launching();
        (current, launch)
    }

    /// Finishes registering a task now in the set, and keeps its tracked id.
    fn launched(&mut self, launch: Launch, handle: tokio::task::AbortHandle) -> AbortHandle {
        let id = launch.id();
        let handle = launch.launched(handle);
        self.ids.insert(handle.id(), id);
        AbortHandle::new(handle, id)
    }
}

impl<T: TaskOutput + Send + 'static> JoinSet<T> {
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
        let site = Location::caller();
        let (current, launch) = self.register(builder, SpawnKind::Async, site);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let task = set.spawn(Instrumented::<_, ByOutcome>::new(future, current));
        self.launched(launch, task)
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
        let (builder, site) = (Builder::new(name, ty), Location::caller());
        let (current, launch) = self.register(builder, SpawnKind::Async, site);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let task = set.spawn_on(Instrumented::<_, ByOutcome>::new(future, current), handle);
        self.launched(launch, task)
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
        let (builder, site) = (Builder::new(name, ty), Location::caller());
        let (current, launch) = self.register(builder, SpawnKind::Blocking, site);
        let f = blocking::<ByOutcome, _, _>(f, current);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        let task = if launch.doomed() {
            // tracked: allow(untracked-spawn) -- stands in for the closure, unrun.
            set.spawn(unrun(f))
        } else {
            // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
            set.spawn_blocking(f)
        };
        self.launched(launch, task)
    }

    /// Runs a tracked closure on the blocking pool of the runtime behind
    /// `handle`, as part of the set. Like [`JoinSet::spawn_blocking`], its
    /// parent is the task spawning it, and tasks it spawns have it as theirs.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tokio::runtime::Handle;
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let mut set = JoinSet::new();
    /// let handle = Handle::current();
    /// set.spawn_blocking_on("hash-file", TaskType::GENERAL, || 40 + 2, &handle);
    /// assert_eq!(set.join_next().await.unwrap().unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking_on<F>(
        &mut self,
        name: impl Into<TaskName>,
        ty: TaskType,
        f: F,
        handle: &Handle,
    ) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let (builder, site) = (Builder::new(name, ty), Location::caller());
        let (current, launch) = self.register(builder, SpawnKind::Blocking, site);
        let f = blocking::<ByOutcome, _, _>(f, current);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        let task = if launch.doomed() {
            // tracked: allow(untracked-spawn) -- stands in for the closure, unrun.
            set.spawn_on(unrun(f), handle)
        } else {
            // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
            set.spawn_blocking_on(f, handle)
        };
        self.launched(launch, task)
    }
}

impl<T: TaskOutput + 'static> JoinSet<T> {
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
        let (builder, site) = (Builder::new(name, ty), Location::caller());
        let (current, launch) = self.register(builder, SpawnKind::Local, site);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let task = set.spawn_local(Instrumented::<_, ByOutcome>::new(future, current));
        self.launched(launch, task)
    }

    /// Spawns a tracked `!Send` task into the set, on `local_set`, which need
    /// not be running: the task starts when it next runs.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::rc::Rc;
    /// use tokio::task::LocalSet;
    /// use tracked::{JoinSet, TaskType};
    ///
    /// let local = LocalSet::new();
    /// let mut set = JoinSet::new();
    /// let shared = Rc::new(5);
    /// set.spawn_local_on("ui-refresh", TaskType::GENERAL, async move { *shared }, &local);
    /// let output = local.run_until(set.join_next()).await.unwrap().unwrap();
    /// assert_eq!(output, 5);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local_on<F>(
        &mut self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
        local_set: &LocalSet,
    ) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        let (builder, site) = (Builder::new(name, ty), Location::caller());
        let (current, launch) = self.register(builder, SpawnKind::Local, site);
        let set: &mut tokio::task::JoinSet<T> = &mut self.inner;
        // tracked: allow(untracked-spawn) -- this is the tracked spawn itself.
        let task = set.spawn_local_on(
            Instrumented::<_, ByOutcome>::new(future, current),
            local_set,
        );
        self.launched(launch, task)
    }
}

/// Spawns a tracked task into the set for each `(name, type, future)`, as
/// [`JoinSet::spawn`] does; each records the line calling `extend` as its site.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{JoinSet, TaskType};
///
/// let mut set = JoinSet::new();
/// set.extend((0..3u32).map(|n| (format!("fetch-{n}"), TaskType::NETWORK, async move { n })));
/// assert_eq!(set.join_all().await.len(), 3);
/// # }
/// ```
impl<T, N, F> Extend<(N, TaskType, F)> for JoinSet<T>
where
    T: TaskOutput + Send + 'static,
    N: Into<TaskName>,
    F: Future<Output = T> + Send + 'static,
{
    #[track_caller]
    fn extend<I: IntoIterator<Item = (N, TaskType, F)>>(&mut self, iter: I) {
        // A loop, not `for_each`: a closure would be the caller recorded.
        for (name, ty, future) in iter {
            self.spawn(name, ty, future);
        }
    }
}

/// Collects `(name, type, future)`s into a set of tracked tasks, as
/// [`JoinSet::new`] then [`JoinSet::spawn`] for each would.
///
/// Through `Iterator::collect` the tasks' site is `collect`'s, in the
/// standard library, which does not pass its caller on; call
/// `JoinSet::from_iter` or [`Extend::extend`] to record your own line.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{JoinSet, TaskType};
///
/// let set: JoinSet<u32> = (0..3u32)
///     .map(|n| ("compact", TaskType::MAINTENANCE, async move { n }))
///     .collect();
/// assert_eq!(set.len(), 3);
/// # }
/// ```
impl<T, N, F> FromIterator<(N, TaskType, F)> for JoinSet<T>
where
    T: TaskOutput + Send + 'static,
    N: Into<TaskName>,
    F: Future<Output = T> + Send + 'static,
{
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = (N, TaskType, F)>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

fn in_set<'a>(builder: Builder<'a>, tracker: Option<&'a Tracker>) -> Builder<'a> {
    match tracker {
        Some(tracker) if !builder.has_tracker() => builder.tracker(tracker),
        _ => builder,
    }
}

/// Hashes tokio's task ids, which are distinct numbers already: one
/// multiplication, rather than SipHash on every spawn into a set.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id map holds exactly the tasks the set does, whichever way they
    /// leave it.
    #[tokio::test]
    async fn ids_leave_the_map_with_their_tasks() {
        let tracker = Tracker::new();
        let mut set = JoinSet::with_tracker(&tracker);
        let spawn = |set: &mut JoinSet<u32>, n| {
            set.spawn("n", TaskType::GENERAL, async move { n });
        };
        for n in 0..4 {
            spawn(&mut set, n);
        }
        set.spawn("stuck", TaskType::GENERAL, std::future::pending())
            .abort();
        set.spawn("boom", TaskType::GENERAL, async { panic!("boom") });
        assert_eq!(set.ids.len(), 6);

        set.join_next().await.unwrap().ok();
        set.join_next_with_id().await.unwrap().1.ok();
        let _ = std::future::poll_fn(|cx| set.poll_join_next(cx)).await;
        let _ = std::future::poll_fn(|cx| set.poll_join_next_with_id(cx)).await;
        assert_eq!((set.len(), set.ids.len()), (2, 2));
        tokio::task::yield_now().await;
        set.try_join_next().unwrap().ok();
        set.try_join_next_with_id().unwrap().1.ok();
        assert_eq!((set.len(), set.ids.len()), (0, 0));

        spawn(&mut set, 9);
        set.spawn("stuck", TaskType::GENERAL, std::future::pending());
        set.shutdown().await;
        assert_eq!((set.len(), set.ids.len()), (0, 0));

        set.spawn("stuck", TaskType::GENERAL, std::future::pending());
        set.detach_all();
        assert_eq!((set.len(), set.ids.len()), (0, 0));
    }

    /// A shutdown dropped before its end (under a timeout) leaves the ids
    /// of the tasks it did not join, and only those.
    #[tokio::test]
    async fn a_shutdown_cut_short_keeps_the_ids_of_what_it_did_not_join() {
        let tracker = Tracker::new();
        let mut set = JoinSet::with_tracker(&tracker);
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel();
        set.spawn_blocking("export", TaskType::GENERAL, move || {
            started.send(()).unwrap();
            released.recv().unwrap();
            1
        });
        let quick = set.spawn("quick", TaskType::GENERAL, async { 2 });
        running.recv().unwrap();
        while !quick.is_finished() {
            tokio::task::yield_now().await;
        }
        // Joins the quick task, then waits on the closure, which runs on.
        let cut = tokio::time::timeout(std::time::Duration::from_millis(20), set.shutdown());
        assert!(cut.await.is_err());
        assert_eq!((set.len(), set.ids.len()), (1, 1));
        release.send(()).unwrap();
        assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
        assert!(set.ids.is_empty());
    }

    /// A table picks the bucket by the low bits and a tag by the top 7:
    /// sequential ids must spread over both.
    #[test]
    fn sequential_ids_hash_apart() {
        use std::collections::HashSet;
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=1024u64).map(|n| build.hash_one(n)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!((low.len(), tags.len()), (1024, 128));
    }
}

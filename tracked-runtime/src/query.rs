//! Queries over live tasks and history: filtered lists, one task, the tree.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::history::Finished;
use crate::record::{Record, TaskName, TaskState};
use crate::snapshot::TaskSnapshot;
use crate::{TaskId, TaskType, Tracker};

/// A filter over tasks. Every field left unset matches everything.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::{Query, TaskState, TaskType};
///
/// let q = Query::new()
///     .ty(TaskType::NETWORK)
///     .state(TaskState::Running)
///     .name_prefix("peer::")
///     .limit(20);
/// # drop(q);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Query {
    ty: Option<TaskType>,
    state: Option<TaskState>,
    owner: Option<String>,
    name_prefix: Option<String>,
    parent: Option<TaskId>,
    warned: Option<bool>,
    idle_for: Option<Duration>,
    orphaned: Option<bool>,
    lost_waker: Option<bool>,
    limit: Option<usize>,
}

impl Query {
    /// Matches every task.
    pub fn new() -> Self {
        Query::default()
    }

    /// Only tasks of this type.
    pub fn ty(mut self, ty: TaskType) -> Self {
        self.ty = Some(ty);
        self
    }

    /// Only tasks in this state.
    pub fn state(mut self, state: TaskState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only tasks with this owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only tasks whose name starts with `prefix`.
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Only children of this task.
    pub fn parent(mut self, parent: TaskId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Only tasks the watchdog warned about (any threshold), or with
    /// `false` only those it did not.
    pub fn warned(mut self, warned: bool) -> Self {
        self.warned = Some(warned);
        self
    }

    /// Only live tasks that have waited at least `at_least` since their
    /// latest poll ended (see [`TaskSnapshot::idle`]): the ones to look at
    /// for a leak or a lost wake-up. Polls must be timed
    /// ([`TrackerBuilder::busy_time`](crate::TrackerBuilder::busy_time));
    /// without that, no task matches.
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # use std::time::Duration;
    /// # use tracked::{Query, Tracker};
    /// let tracker = Tracker::builder().busy_time(true).build();
    /// let stuck = tracker.tasks(&Query::new().idle_for(Duration::from_secs(30)));
    /// # assert!(stuck.is_empty());
    /// ```
    pub fn idle_for(mut self, at_least: Duration) -> Self {
        self.idle_for = Some(at_least);
        self
    }

    /// Only live tasks whose parent has ended: they outlived the task that
    /// spawned them, as a fire-and-forget spawn does, and as a leaked task
    /// does. With `false`, only tasks whose parent is live or that have
    /// none. Finished tasks never match. It costs one more pass over the live
    /// tasks, to know which are live.
    ///
    /// Only this tracker's live tasks are looked at: a task spawned into this
    /// tracker ([`Builder::tracker`](crate::Builder::tracker)) by a task of
    /// another tracker records that task as its parent, and matches while
    /// that task still runs.
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{Query, TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let parent = tracker.spawn("request", TaskType::NETWORK, async {
    ///     // Left running when the request is done.
    ///     tracked::spawn("audit-log", TaskType::GENERAL, std::future::pending::<()>());
    /// });
    /// parent.await.unwrap();
    /// let orphans = tracker.tasks(&Query::new().orphaned(true));
    /// assert_eq!(orphans[0].name, "audit-log");
    /// # }
    /// ```
    pub fn orphaned(mut self, orphaned: bool) -> Self {
        self.orphaned = Some(orphaned);
        self
    }

    /// Only live tasks that have lost their waker (see
    /// [`Wakes::lost_waker`](crate::Wakes::lost_waker)), or with `false` only
    /// live tasks that have not; finished tasks never match. The tracker
    /// must follow wakes ([`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes));
    /// without that, no task matches either way.
    pub fn lost_waker(mut self, lost: bool) -> Self {
        self.lost_waker = Some(lost);
        self
    }

    /// At most this many results.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether a record matches, `now` being the tracker clock's reading
    /// for the whole query.
    fn matches_record(&self, r: &Record, now: u64) -> bool {
        let warned = r.warned.load(std::sync::atomic::Ordering::Relaxed) != 0;
        self.matches(r.ty, r.state(), r.owner().map(|o| &**o), &r.name, r.parent)
            && self.warned.is_none_or(|want| want == warned)
            && self.idle_enough(
                r.idle_since()
                    .map(|since| Duration::from_nanos(now.saturating_sub(since))),
            )
            && self.lost_enough(|| r.lost_waker())
    }

    /// Whether a snapshot matches, `now` being the same moment as in
    /// [`Query::matches_record`].
    fn matches_snapshot(&self, t: &TaskSnapshot, now: Instant) -> bool {
        self.matches(t.ty, t.state, t.owner.as_deref(), &t.name, t.parent)
            && self.warned.is_none_or(|want| want == t.warned.any())
            && self.idle_enough(t.idle(now))
            && self.lost_enough(|| t.wakes.as_ref().map(|w| w.lost_waker))
    }

    /// Whether a task passes `lost_waker`, given whether it lost its waker
    /// (`None`: wakes not followed).
    fn lost_enough(&self, lost: impl FnOnce() -> Option<bool>) -> bool {
        self.lost_waker.is_none_or(|want| lost() == Some(want))
    }

    /// Whether a task idle for `idle` (`None`: not idle) passes `idle_for`.
    fn idle_enough(&self, idle: Option<Duration>) -> bool {
        self.idle_for
            .is_none_or(|want| idle.is_some_and(|idle| idle >= want))
    }

    fn matches(
        &self,
        ty: TaskType,
        state: TaskState,
        owner: Option<&str>,
        name: &str,
        parent: Option<TaskId>,
    ) -> bool {
        self.ty.is_none_or(|want| want == ty)
            && self.state.is_none_or(|want| want == state)
            && self.owner.as_deref().is_none_or(|want| owner == Some(want))
            && self
                .name_prefix
                .as_deref()
                .is_none_or(|prefix| name.starts_with(prefix))
            && self.parent.is_none_or(|want| parent == Some(want))
    }
}

/// One task with its children, live and recently finished.
#[derive(Clone, Debug)]
pub struct TaskDetail {
    /// The task.
    pub task: TaskSnapshot,
    /// Tasks it spawned that are live or still in history, oldest first.
    pub children: Vec<TaskSnapshot>,
}

/// A live task and the live tasks below it.
///
/// `Display` prints one line per task, children indented under their
/// parent:
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let server = tracker.spawn("server", TaskType::NETWORK, async {
///     tracked::spawn("conn", TaskType::NETWORK, std::future::pending::<()>());
///     std::future::pending::<()>().await
/// });
/// tokio::task::yield_now().await;
/// let tree = tracker.tree();
/// let id = server.id();
/// assert!(tree[0].to_string().starts_with(&format!("#{id} server (Network, running)\n  #")));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TaskTree {
    /// The task.
    pub task: TaskSnapshot,
    /// Its live children, oldest first.
    pub children: Vec<TaskTree>,
}

impl std::fmt::Display for TaskTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Iteratively: a very deep chain of tasks cannot overflow the stack.
        let mut stack = vec![(self, 0)];
        while let Some((node, depth)) = stack.pop() {
            let task = &node.task;
            let indent = 2 * depth;
            let (id, name, ty, state) = (task.id, &task.name, task.ty, task.state);
            writeln!(f, "{:indent$}#{id} {name} ({ty}, {state})", "")?;
            stack.extend(node.children.iter().rev().map(|child| (child, depth + 1)));
        }
        Ok(())
    }
}

impl Tracker {
    /// Live tasks matching `query`, oldest first.
    ///
    /// Each registry shard is locked only while its matching records are
    /// cloned out (a reference count each), so spawners are never held up
    /// for long; the snapshots are built afterwards.
    pub fn tasks(&self, query: &Query) -> Vec<TaskSnapshot> {
        let take = query.limit.unwrap_or(usize::MAX);
        self.live_in_order(query, |_| true, |r| (r.spawned_at, r.id), take)
    }

    /// Live tasks matching `query` with ids above `after`, lowest id first,
    /// at most `take`: a page of the HTTP API. Snapshots are built for the
    /// page only, not for every match.
    #[cfg(feature = "http")]
    pub(crate) fn live_page(
        &self,
        query: &Query,
        after: Option<u64>,
        take: usize,
    ) -> Vec<TaskSnapshot> {
        let above = |r: &Record| after.is_none_or(|after| r.id.as_u64() > after);
        self.live_in_order(query, above, |r| r.id, take)
    }

    /// The first `take` live tasks matching `query` and `also`, in the order
    /// of `key`.
    fn live_in_order<K: Ord>(
        &self,
        query: &Query,
        also: impl Fn(&Record) -> bool,
        key: impl Fn(&Record) -> K,
        take: usize,
    ) -> Vec<TaskSnapshot> {
        let clock = &self.inner.clock;
        let now = clock.now();
        let at = clock.instant(now);
        let registry = &self.inner.registry;
        let records = match query.orphaned {
            None => registry.live(|r| also(r) && query.matches_record(r, now)),
            Some(want) => {
                // One walk gives both the live ids and the candidates.
                let all = registry.live(|_| true);
                let live: HashSet<TaskId> = all.iter().map(|r| r.id).collect();
                all.into_iter()
                    .filter(|r| {
                        let orphan = r.parent.is_some_and(|parent| !live.contains(&parent));
                        orphan == want && also(r) && query.matches_record(r, now)
                    })
                    .collect()
            }
        };
        let mut keyed: Vec<_> = records.into_iter().map(|r| (key(&r), r)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // A task may move on between the clone and its snapshot: keep only
        // what still matches, so every result was live and matching at one
        // moment during the call. Snapshots are built lazily, up to `take`.
        keyed
            .iter()
            .map(|(_, r)| self.snapshot_of(r))
            .filter(|t| !t.state.is_finished() && query.matches_snapshot(t, at))
            .take(take)
            .collect()
    }

    /// Finished tasks still in history matching `query`, most recent first.
    pub fn finished(&self, query: &Query) -> Vec<TaskSnapshot> {
        let newest_first = |e: &Finished| Reverse((e.finished_at, e.record.id));
        self.finished_in_order(query, |_| true, newest_first, query.limit)
    }

    /// A page of finished tasks matching `query`: the first `take` below
    /// the id `before`, highest id first (see [`Tracker::live_page`]).
    #[cfg(feature = "http")]
    pub(crate) fn finished_page(
        &self,
        query: &Query,
        before: Option<u64>,
        take: usize,
    ) -> Vec<TaskSnapshot> {
        let below = |r: &Record| before.is_none_or(|before| r.id.as_u64() < before);
        self.finished_in_order(query, below, |e| Reverse(e.record.id), Some(take))
    }

    /// The type named `name` of a live or finished task, if any: how the
    /// HTTP API finds a type past those the registry counts apart.
    #[cfg(feature = "http")]
    pub(crate) fn type_named(&self, name: &str) -> Option<TaskType> {
        let inner = &self.inner;
        let named = |r: &Record| r.ty.name() == name;
        let live = inner.registry.live(named).first().map(|r| r.ty);
        live.or_else(|| {
            let finished = inner.registry.history_entries(named, &inner.clock);
            finished.first().map(|e| e.record.ty)
        })
    }

    /// The first `take` (or all) history entries matching `query` and
    /// `also`, in the order of `key`; only those are snapshotted.
    fn finished_in_order<K: Ord>(
        &self,
        query: &Query,
        also: impl Fn(&Record) -> bool,
        key: impl Fn(&Finished) -> K,
        take: Option<usize>,
    ) -> Vec<TaskSnapshot> {
        if query.orphaned.is_some() || query.lost_waker.is_some() {
            // Whether a parent is live, or a waker lost, is a question
            // about live tasks.
            return Vec::new();
        }
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut entries = inner
            .registry
            .history_entries(|r| also(r) && query.matches_record(r, now), &inner.clock);
        let take = take.unwrap_or(usize::MAX).min(entries.len());
        if take < entries.len() {
            entries.select_nth_unstable_by_key(take, &key);
            entries.truncate(take);
        }
        entries.sort_unstable_by_key(key);
        entries.iter().map(|e| e.snapshot(&inner.clock)).collect()
    }

    /// One task, live or in history, with its children.
    ///
    /// One walk over the live tasks and one over history find the task and
    /// its children together. A task that ends between the two walks is in
    /// both: it is reported once, as it ended.
    pub fn task(&self, id: TaskId) -> Option<TaskDetail> {
        let inner = &self.inner;
        let related = |r: &Record| r.id == id || r.parent == Some(id);
        let live = inner.registry.live(related);
        // History first, so that the stable sort below puts a task's
        // finished snapshot before a live one of the same task.
        let mut found = inner.registry.history(related, &inner.clock);
        found.extend(live.iter().map(|r| self.snapshot_of(r)));
        found.sort_by_key(|t| (t.spawned_at, t.id));
        found.dedup_by_key(|t| t.id);
        let at = found.iter().position(|t| t.id == id)?;
        let task = found.remove(at);
        Some(TaskDetail {
            task,
            children: found,
        })
    }

    /// Live tasks as a forest: a task whose parent is not live in this
    /// tracker (it ended, or it belongs to another tracker) is a root.
    pub fn tree(&self) -> Vec<TaskTree> {
        let tasks = self.tasks(&Query::new());
        let live: HashMap<TaskId, usize> =
            tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let mut children: HashMap<TaskId, Vec<usize>> = HashMap::new();
        let mut roots = Vec::new();
        for (index, task) in tasks.iter().enumerate() {
            match task.parent.filter(|p| live.contains_key(p)) {
                Some(parent) => children.entry(parent).or_default().push(index),
                None => roots.push(index),
            }
        }
        // Built iteratively so that a very deep chain of tasks cannot
        // overflow the stack.
        let mut slots: Vec<Option<TaskTree>> = tasks
            .into_iter()
            .map(|task| {
                Some(TaskTree {
                    task,
                    children: Vec::new(),
                })
            })
            .collect();
        let mut order = Vec::with_capacity(slots.len());
        let mut stack = roots.clone();
        while let Some(index) = stack.pop() {
            order.push(index);
            if let Some(kids) = slots[index].as_ref().and_then(|t| children.get(&t.task.id)) {
                stack.extend(kids.iter().copied());
            }
        }
        for &index in order.iter().rev() {
            let Some(id) = slots[index].as_ref().map(|t| t.task.id) else {
                continue;
            };
            if let Some(kids) = children.get(&id) {
                let built: Vec<TaskTree> = kids.iter().filter_map(|&k| slots[k].take()).collect();
                if let Some(node) = slots[index].as_mut() {
                    node.children = built;
                    node.children
                        .sort_by_key(|t| (t.task.spawned_at, t.task.id));
                }
            }
        }
        roots.into_iter().filter_map(|r| slots[r].take()).collect()
    }

    /// The live tree in depth-first order, each task with its depth, as
    /// [`Tracker::tree`] orders it: at most `max` tasks, and whether more
    /// were left out. A task `show` rejects is skipped and its children
    /// move up. Only the tasks returned are snapshotted, so a page of a
    /// large tree costs a walk over the records, not a snapshot of each.
    #[cfg(feature = "http")]
    pub(crate) fn tree_walk(
        &self,
        max: usize,
        show: impl Fn(&Record) -> bool,
    ) -> (Vec<(usize, TaskSnapshot)>, bool) {
        let mut records = self.inner.registry.live(|_| true);
        records.sort_unstable_by_key(|r| (r.spawned_at, r.id));
        let index: HashMap<TaskId, usize> =
            records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        let mut children = vec![Vec::new(); records.len()];
        let mut roots = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match record.parent.and_then(|parent| index.get(&parent)) {
                Some(&parent) => children[parent].push(i),
                None => roots.push(i),
            }
        }
        let mut nodes = Vec::new();
        let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            let record = &records[i];
            // A task that ended since the walk began is left out, as a
            // listing leaves it out.
            let task = show(record)
                .then(|| self.snapshot_of(record))
                .filter(|task| !task.state.is_finished());
            let below = match task {
                Some(_) if nodes.len() == max => return (nodes, true),
                Some(task) => {
                    nodes.push((depth, task));
                    depth + 1
                }
                None => depth,
            };
            stack.extend(children[i].iter().rev().map(|&child| (child, below)));
        }
        (nodes, false)
    }

    /// Live tasks per owner; tasks without an owner count under `None`.
    pub fn live_by_owner(&self) -> BTreeMap<Option<Arc<str>>, u64> {
        let mut counts = BTreeMap::new();
        for record in self.inner.registry.live(|_| true) {
            *counts.entry(record.owner().cloned()).or_insert(0) += 1;
        }
        counts
    }

    /// Live tasks per type and name, counted on the records without building
    /// snapshots: what a per-name gauge needs.
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # let tracker = tracked::Tracker::new();
    /// for (ty, names) in tracker.live_by_name() {
    ///     for (name, count) in names {
    ///         println!("{ty} {name}: {count}");
    ///     }
    /// }
    /// ```
    pub fn live_by_name(&self) -> BTreeMap<TaskType, BTreeMap<TaskName, u64>> {
        let mut counts: BTreeMap<TaskType, BTreeMap<TaskName, u64>> = BTreeMap::new();
        for record in self.inner.registry.live(|_| true) {
            let names = counts.entry(record.ty).or_default();
            // Looked up by `&str` first: a name made at runtime is cloned
            // once per distinct name, not once per task.
            match names.get_mut(&*record.name) {
                Some(count) => *count += 1,
                None => {
                    names.insert(record.name.clone(), 1);
                }
            }
        }
        counts
    }

    /// Drops history entries that finished more than `older_than` ago;
    /// returns how many were dropped.
    pub fn cleanup(&self, older_than: Duration) -> usize {
        let clock = &self.inner.clock;
        self.inner.registry.cleanup(clock.ago(older_than))
    }

    /// Drops history entries older than the configured time-to-live.
    pub(crate) fn cleanup_expired(&self) -> usize {
        let ttl = self.inner.registry.ttl();
        self.cleanup(ttl)
    }

    fn snapshot_of(&self, record: &Record) -> TaskSnapshot {
        TaskSnapshot::of_live(record, &self.inner.clock)
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use std::future::pending;

    use crate::record::Record;
    use crate::{Query, TaskId, TaskType, Tracker};

    const ANY: TaskType = TaskType::GENERAL;

    /// `tree_walk` is `Tracker::tree` flattened depth first, cut at `max`;
    /// a hidden task's children move up to its depth.
    #[test]
    fn a_tree_walk_is_the_tree_flattened_and_cut() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let tracker = Tracker::new();
        runtime.block_on(async {
            // root ── hidden ── grandchild
            //      └─ visible
            // second
            let t = tracker.clone();
            tracker.spawn("root", ANY, async move {
                let inner = t.clone();
                t.spawn("hidden", ANY, async move {
                    inner.spawn("grandchild", ANY, pending::<()>());
                    pending::<()>().await
                });
                t.spawn("visible", ANY, pending::<()>());
                pending::<()>().await
            });
            tracker.spawn("second", ANY, pending::<()>());
            while tracker.stats().total.running < 5 {
                tokio::task::yield_now().await;
            }
        });
        let mut flat: Vec<(usize, TaskId)> = Vec::new();
        let mut stack: Vec<_> = tracker.tree().into_iter().rev().map(|t| (0, t)).collect();
        while let Some((depth, node)) = stack.pop() {
            flat.push((depth, node.task.id));
            stack.extend(node.children.into_iter().rev().map(|c| (depth + 1, c)));
        }
        assert_eq!(flat.len(), 5);
        let walk = |max, show: &dyn Fn(&Record) -> bool| {
            let (nodes, cut) = tracker.tree_walk(max, show);
            let ids: Vec<_> = nodes.into_iter().map(|(d, t)| (d, t.id)).collect();
            (ids, cut)
        };
        assert_eq!(walk(usize::MAX, &|_| true), (flat.clone(), false));
        assert_eq!(walk(5, &|_| true), (flat.clone(), false));
        assert_eq!(walk(2, &|_| true), (flat[..2].to_vec(), true));
        let (shown, _) = walk(usize::MAX, &|r: &Record| r.name != "hidden");
        let depth_of = |nodes: &[(usize, TaskId)], name| {
            let id = tracker.tasks(&Query::new().name_prefix(name))[0].id;
            nodes.iter().find(|(_, t)| *t == id).map(|(d, _)| *d)
        };
        assert_eq!(depth_of(&flat, "grandchild"), Some(2));
        assert_eq!(depth_of(&shown, "grandchild"), Some(1), "{shown:?}");
        assert_eq!(depth_of(&shown, "hidden"), None);
        assert_eq!(shown.len(), 4);
    }
}

//! Parent links and tracker inheritance across nested spawns.

use tracked::{Query, SpawnKind, TaskState, TaskType, Tracker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_propagate_through_nested_spawns_and_spawn_blocking() {
    let tracker = Tracker::new();
    let root = tracker.spawn("root", TaskType::CONSENSUS, async {
        let child = tracked::spawn("child", TaskType::CONSENSUS, async {
            let blocking = tracked::spawn_blocking("hash", TaskType::GENERAL, || {
                // A task spawned from a blocking closure has it as its parent.
                let grandchild = tracked::spawn("from-blocking", TaskType::GENERAL, async {
                    tracked::task_id()
                });
                (tracked::task_id(), grandchild)
            });
            let (blocking_id, grandchild) = blocking.await.unwrap();
            let grandchild_id = grandchild.id();
            // Awaited, so that it has finished when the test counts.
            grandchild.await.unwrap();
            (tracked::task_id(), blocking_id, grandchild_id)
        });
        child.await.unwrap()
    });
    let root_id = root.id();
    let (child_id, blocking_id, grandchild_id) = root.await.unwrap();

    // Everything joined the root's tracker.
    let finished = tracker.finished(&Query::new());
    assert_eq!(finished.len(), 4);
    let find = |id| finished.iter().find(|t| Some(t.id) == id).unwrap();
    let child = find(child_id);
    let blocking = find(blocking_id);
    let grandchild = find(Some(grandchild_id));
    assert_eq!(child.parent, Some(root_id));
    assert_eq!(blocking.parent, child_id);
    assert_eq!(blocking.kind, SpawnKind::Blocking);
    assert_eq!(grandchild.parent, blocking_id);
    assert_eq!(tracker.task(root_id).unwrap().children.len(), 1);
}

#[tokio::test]
async fn owner_is_inherited_unless_set() {
    let tracker = Tracker::new();
    let root = tracker
        .task_builder("session", TaskType::NETWORK)
        .owner("tenant-a")
        .spawn(async {
            let inherits = tracked::spawn("inherits", TaskType::NETWORK, async {}).id();
            let overrides = tracked::Builder::new("overrides", TaskType::NETWORK)
                .owner("tenant-b")
                .spawn(async {})
                .id();
            (inherits, overrides)
        });
    let (inherits, overrides) = root.await.unwrap();
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let owner_of = |id| tracker.task(id).unwrap().task.owner.unwrap();
    assert_eq!(&*owner_of(inherits), "tenant-a");
    assert_eq!(&*owner_of(overrides), "tenant-b");
}

#[tokio::test]
async fn untracked_context_has_no_parent_and_uses_the_global_tracker() {
    let handle = tracked::spawn("top-level", TaskType::GENERAL, async { tracked::task_id() });
    let id = handle.id();
    assert_eq!(handle.await.unwrap(), Some(id));
    let task = Tracker::global().task(id).unwrap().task;
    assert_eq!(task.parent, None);
}

#[tokio::test]
async fn spawn_local_and_spawn_on_are_tracked() {
    let tracker = Tracker::new();
    let local = tokio::task::LocalSet::new();
    let rc = std::rc::Rc::new(5);
    let out = local
        .run_until({
            let tracker = tracker.clone();
            async move {
                tracker
                    .spawn_local("local", TaskType::UI, async move { *rc })
                    .await
                    .unwrap()
            }
        })
        .await;
    assert_eq!(out, 5);
    let handle = tokio::runtime::Handle::current();
    tracker
        .spawn_on("on-handle", TaskType::GENERAL, async {}, &handle)
        .await
        .unwrap();
    let kinds: Vec<_> = tracker
        .finished(&Query::new())
        .into_iter()
        .map(|t| (t.name.into_owned(), t.kind))
        .collect();
    assert!(kinds.contains(&("local".into(), SpawnKind::Local)));
    assert!(kinds.contains(&("on-handle".into(), SpawnKind::Async)));
}

/// `Builder::spawn_local_on` is `LocalSet::spawn_local`: it spawns onto a
/// set that is not running yet, from a tracked task (its parent), and a set
/// dropped before running its tasks cancels them.
#[tokio::test]
async fn spawn_local_on_spawns_onto_a_set_from_outside_it() {
    let tracker = Tracker::new();
    let outer = tokio::task::LocalSet::new();
    // A local parent: the set it spawns onto is not `Send`.
    let child = {
        let tracker = tracker.clone();
        async move {
            let unrun = tokio::task::LocalSet::new();
            let task = tracked::Builder::new("on-dropped-set", TaskType::UI)
                .tracker(&tracker)
                .spawn_local_on(async { std::rc::Rc::new(7) }, &unrun);
            drop(unrun);
            assert!(task.await.unwrap_err().is_cancelled());
        }
    };
    let parent = tracked::Builder::new("parent", TaskType::GENERAL)
        .tracker(&tracker)
        .spawn_local_on(child, &outer);
    let parent_id = parent.id();
    outer.run_until(parent).await.unwrap();

    let local = tokio::task::LocalSet::new();
    let rc = std::rc::Rc::new(5);
    let task = tracked::Builder::new("on-set", TaskType::UI)
        .tracker(&tracker)
        .spawn_local_on(async move { *rc }, &local);
    assert_eq!(local.run_until(task).await.unwrap(), 5);

    let dropped = &tracker.finished(&Query::new().name_prefix("on-dropped-set"))[0];
    assert_eq!(dropped.state, TaskState::Cancelled);
    assert_eq!(dropped.kind, SpawnKind::Local);
    assert_eq!(dropped.parent, Some(parent_id));
    assert_eq!(dropped.site.file, file!());
    let ran = &tracker.finished(&Query::new().name_prefix("on-set"))[0];
    assert_eq!(
        (ran.state, ran.kind),
        (TaskState::Completed, SpawnKind::Local)
    );
    assert_eq!(ran.parent, None);
}

#[tokio::test]
async fn join_set_tasks_are_tracked_and_dropping_the_set_cancels_them() {
    let tracker = Tracker::new();
    let mut set = tracked::JoinSet::with_tracker(&tracker);
    for i in 0..4u32 {
        set.spawn("part", TaskType::DATABASE, async move { i });
    }
    let mut sum = 0;
    while let Some(result) = set.join_next().await {
        sum += result.unwrap();
    }
    assert_eq!(sum, 6);
    set.spawn("stuck", TaskType::DATABASE, std::future::pending());
    drop(set);
    tokio::task::yield_now().await;
    let stats = tracker.stats().total;
    assert_eq!((stats.completed, stats.cancelled, stats.live()), (4, 1, 0));
}

#[tokio::test]
async fn tree_nests_live_children_under_live_parents() {
    let tracker = Tracker::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let root = tracker.spawn("root", TaskType::GENERAL, async move {
        let a = tracked::spawn("a", TaskType::GENERAL, async {
            let b = tracked::spawn("b", TaskType::GENERAL, std::future::pending::<()>());
            std::future::pending::<()>().await;
            drop(b);
        });
        tx.send(a.id()).unwrap();
        std::future::pending::<()>().await;
    });
    let a_id = rx.await.unwrap();
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let tree = tracker.tree();
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].task.name, "root");
    assert_eq!(tree[0].children[0].task.id, a_id);
    assert_eq!(tree[0].children[0].children[0].task.name, "b");
    root.abort();
    let _ = root.await;
    tracker
        .tasks(&Query::new())
        .iter()
        .for_each(|t| assert_ne!(t.name, "root"));
}

//! The tracked `JoinSet`: ids it gives are the tracker's, and each of tokio's
//! `JoinSet` methods keeps its meaning.

use std::future::{poll_fn, Future};
use std::task::{Context, Poll, Waker};

use tracked::{JoinSet, SpawnKind, TaskState, TaskType, Tracker};

/// What the tracker knows of `id`: its name and state.
fn known(tracker: &Tracker, id: tracked::TaskId) -> (String, TaskState) {
    let task = tracker.task(id).expect("the tracker knows the task").task;
    (task.name.into_owned(), task.state)
}

#[tokio::test]
async fn join_next_with_id_gives_the_id_the_tracker_knows() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let spawned: Vec<_> = (0..4usize)
        .map(|n| {
            set.spawn(format!("part-{n}"), TaskType::GENERAL, async move { n })
                .id()
        })
        .collect();
    let mut seen = Vec::new();
    while let Some((id, result)) = set.join_next_with_id().await {
        let n = result.unwrap();
        assert_eq!(id, spawned[n]);
        assert_eq!(
            known(&tracker, id),
            (format!("part-{n}"), TaskState::Completed)
        );
        seen.push(n);
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
}

#[tokio::test]
async fn panicked_and_aborted_tasks_come_with_their_ids() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let done = set.spawn("done", TaskType::GENERAL, async {}).id();
    let boom = set
        .spawn("boom", TaskType::GENERAL, async { panic!("boom") })
        .id();
    let stuck = set.spawn("stuck", TaskType::GENERAL, std::future::pending());
    stuck.abort();
    let mut ended = Vec::new();
    while let Some((id, result)) = set.join_next_with_id().await {
        let how = match result {
            Ok(()) => "returned",
            Err(e) if e.is_panic() => "panicked",
            Err(e) if e.is_cancelled() => "cancelled",
            Err(e) => panic!("{e}"),
        };
        ended.push((id, how, known(&tracker, id)));
    }
    ended.sort_by_key(|(id, ..)| *id);
    assert_eq!(
        ended,
        [
            (done, "returned", ("done".into(), TaskState::Completed)),
            (boom, "panicked", ("boom".into(), TaskState::Panicked)),
            (
                stuck.id(),
                "cancelled",
                ("stuck".into(), TaskState::Cancelled)
            ),
        ]
    );
}

/// `try_join_next_with_id`, yielding between tries, a bounded number of times.
async fn try_until_ended<T: 'static>(
    set: &mut JoinSet<T>,
) -> (tracked::TaskId, Result<T, tokio::task::JoinError>) {
    for _ in 0..100 {
        if let Some(ended) = set.try_join_next_with_id() {
            return ended;
        }
        tokio::task::yield_now().await;
    }
    panic!("no task ended in 100 yields");
}

#[tokio::test]
async fn try_join_next_with_id_gives_ended_tasks_only() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let quick = set.spawn("quick", TaskType::GENERAL, async { 1 }).id();
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let slow = set
        .spawn("slow", TaskType::GENERAL, {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                2
            }
        })
        .id();
    // Current-thread runtime: nothing has run yet.
    assert!(set.try_join_next_with_id().is_none());
    let (id, result) = try_until_ended(&mut set).await;
    assert_eq!((id, result.unwrap()), (quick, 1));
    assert!(set.try_join_next_with_id().is_none());
    gate.notify_one();
    let (id, result) = try_until_ended(&mut set).await;
    assert_eq!((id, result.unwrap()), (slow, 2));
    assert_eq!(known(&tracker, slow), ("slow".into(), TaskState::Completed));
    assert!(set.try_join_next_with_id().is_none());
    assert!(set.is_empty());
}

#[tokio::test]
async fn poll_join_next_with_id_gives_ids_and_ready_none_when_empty() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let a = set.spawn("a", TaskType::GENERAL, async { 'a' }).id();
    let b = set
        .spawn("b", TaskType::GENERAL, async { panic!("b") })
        .id();
    let mut ended = Vec::new();
    for _ in 0..2 {
        let (id, result) = poll_fn(|cx| set.poll_join_next_with_id(cx)).await.unwrap();
        ended.push((id, result.ok()));
    }
    ended.sort();
    assert_eq!(ended, [(a, Some('a')), (b, None)]);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        set.poll_join_next_with_id(&mut cx),
        Poll::Ready(None)
    ));
    assert!(matches!(set.poll_join_next(&mut cx), Poll::Ready(None)));

    set.spawn("c", TaskType::GENERAL, async { 'c' });
    assert!(set.poll_join_next(&mut cx).is_pending());
    let next = poll_fn(|cx| set.poll_join_next(cx)).await;
    assert_eq!(next.unwrap().unwrap(), 'c');
    assert!(set.is_empty());
}

#[tokio::test]
async fn plain_joins_and_id_joins_mix() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    for n in 0..6u32 {
        set.spawn("n", TaskType::GENERAL, async move { n });
    }
    let mut sum = set.join_next().await.unwrap().unwrap();
    while let Some((id, result)) = set.join_next_with_id().await {
        assert_eq!(known(&tracker, id).0, "n");
        sum += result.unwrap();
        if let Some(result) = set.join_next().await {
            sum += result.unwrap();
        }
    }
    assert_eq!(sum, 15);
    assert_eq!(tracker.stats().total.completed, 6);
}

#[tokio::test]
async fn detach_all_empties_the_set_and_leaves_its_tasks_running_and_tracked() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let ids: Vec<_> = (0..2u32)
        .map(|n| {
            let (go, done_tx) = (go.clone(), done_tx.clone());
            set.spawn("detached", TaskType::GENERAL, async move {
                go.notified().await;
                done_tx.send(n).unwrap();
            })
            .id()
        })
        .collect();
    tokio::task::yield_now().await;
    set.detach_all();
    assert!(set.is_empty());
    assert!(set.join_next().await.is_none());
    set.abort_all();
    drop(set);
    tokio::task::yield_now().await;
    for &id in &ids {
        assert_eq!(known(&tracker, id), ("detached".into(), TaskState::Running));
    }

    go.notify_waiters();
    let mut done = vec![done_rx.recv().await.unwrap(), done_rx.recv().await.unwrap()];
    done.sort();
    assert_eq!(done, [0, 1]);
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    for &id in &ids {
        assert_eq!(
            known(&tracker, id),
            ("detached".into(), TaskState::Completed)
        );
    }
}

#[tokio::test]
async fn join_all_returns_every_output() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    for n in 0..5u32 {
        set.spawn("n", TaskType::GENERAL, async move { n * n });
    }
    let mut outputs = set.join_all().await;
    outputs.sort();
    assert_eq!(outputs, [0, 1, 4, 9, 16]);
    assert_eq!(tracker.stats().total.completed, 5);
    assert!(JoinSet::<()>::new().join_all().await.is_empty());
}

#[tokio::test]
async fn join_all_gives_outputs_in_the_order_tasks_ended() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let mut gates = Vec::new();
    let mut ids = Vec::new();
    for n in 0..3u32 {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        gates.push(Some(tx));
        ids.push(
            set.spawn("gated", TaskType::GENERAL, async move {
                rx.await.unwrap();
                n
            })
            .id(),
        );
    }
    let mut all = std::pin::pin!(set.join_all());
    let mut cx = Context::from_waker(Waker::noop());
    // Open one gate at a time and let join_all take that task alone.
    for n in [2, 0] {
        gates[n].take().unwrap().send(()).unwrap();
        ended(&tracker, ids[n]).await;
        assert!(all.as_mut().poll(&mut cx).is_pending());
    }
    gates[1].take().unwrap().send(()).unwrap();
    assert_eq!(all.await, [2, 0, 1]);
}

/// Waits, a bounded number of yields, until the tracker has seen `id` end.
async fn ended(tracker: &Tracker, id: tracked::TaskId) {
    for _ in 0..100 {
        if tracker.task(id).unwrap().task.finished_at.is_some() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("task {id:?} did not end in 100 yields");
}

#[derive(Debug, PartialEq)]
struct Payload(u32);

#[tokio::test]
async fn join_all_resumes_a_panic_with_its_payload_and_aborts_the_rest() {
    let tracker = Tracker::new();
    let mut set = JoinSet::<()>::with_tracker(&tracker);
    let stuck = set
        .spawn("stuck", TaskType::GENERAL, std::future::pending())
        .id();
    set.spawn("boom", TaskType::GENERAL, async {
        std::panic::panic_any(Payload(7))
    });
    // tracked: allow(untracked-spawn) -- catches the panic join_all resumes.
    let error = tokio::spawn(set.join_all()).await.unwrap_err();
    let payload = error.into_panic().downcast::<Payload>().unwrap();
    assert_eq!(*payload, Payload(7));
    tokio::task::yield_now().await;
    assert_eq!(
        known(&tracker, stuck),
        ("stuck".into(), TaskState::Cancelled)
    );
}

#[tokio::test]
async fn join_all_panics_on_an_aborted_task() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    set.spawn("done", TaskType::GENERAL, async {});
    let stuck = set.spawn("stuck", TaskType::GENERAL, std::future::pending());
    stuck.abort();
    // tracked: allow(untracked-spawn) -- catches the panic join_all raises.
    let error = tokio::spawn(set.join_all()).await.unwrap_err();
    let message = error.into_panic().downcast::<String>().unwrap();
    // The tracked id, which the tracker knows; not tokio's.
    let expected = format!("tracked task #{} in the JoinSet was cancelled", stuck.id());
    assert_eq!(*message, expected);
    assert_eq!(tracker.task(stuck.id()).unwrap().task.name, "stuck");
}

#[tokio::test]
async fn spawn_blocking_on_runs_on_that_runtime_with_parents_like_spawn_blocking() {
    let tracker = Tracker::new();
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("other-runtime")
        .build()
        .unwrap();
    let handle = other.handle().clone();
    let parent = tracker.spawn("parent", TaskType::GENERAL, async move {
        // No tracker named: the set's tasks take the spawning task's.
        let mut set = JoinSet::new();
        let blocking = set
            .spawn_blocking_on(
                "blocking",
                TaskType::GENERAL,
                || {
                    let thread = std::thread::current().name().map(str::to_owned);
                    let child = tracked::spawn("child", TaskType::GENERAL, async {});
                    let child_id = child.id();
                    tokio::runtime::Handle::current().block_on(child).unwrap();
                    (thread, child_id)
                },
                &handle,
            )
            .id();
        let (id, result) = set.join_next_with_id().await.unwrap();
        assert_eq!(id, blocking);
        let (thread, child) = result.unwrap();
        (blocking, thread, child)
    });
    let parent_id = parent.id();
    let (blocking, thread, child) = parent.await.unwrap();
    other.shutdown_background();

    assert_eq!(thread.as_deref(), Some("other-runtime"));
    let task = tracker.task(blocking).unwrap().task;
    assert_eq!(
        (task.name.as_ref(), task.kind, task.parent, task.state),
        (
            "blocking",
            SpawnKind::Blocking,
            Some(parent_id),
            TaskState::Completed
        )
    );
    let task = tracker.task(child).unwrap().task;
    assert_eq!((task.name.as_ref(), task.parent), ("child", Some(blocking)));
}

#[tokio::test]
async fn spawn_local_on_waits_for_its_local_set() {
    let tracker = Tracker::new();
    let local = tokio::task::LocalSet::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let not_send = std::rc::Rc::new(3u32);
    let id = set
        .spawn_local_on(
            "local",
            TaskType::GENERAL,
            async move { *not_send * 2 },
            &local,
        )
        .id();
    // Spawned outside any running LocalSet, where `spawn_local` panics.
    tokio::task::yield_now().await;
    assert_eq!(known(&tracker, id), ("local".into(), TaskState::Pending));
    let (joined, result) = local.run_until(set.join_next_with_id()).await.unwrap();
    assert_eq!((joined, result.unwrap()), (id, 6));
    let task = tracker.task(id).unwrap().task;
    assert_eq!(
        (task.kind, task.state),
        (SpawnKind::Local, TaskState::Completed)
    );
}

#[tokio::test]
async fn extend_spawns_each_task_named_at_the_callers_line() {
    let tracker = Tracker::new();
    let mut set = JoinSet::with_tracker(&tracker);
    let parts = (0..3u32).map(|n| (format!("part-{n}"), TaskType::NETWORK, async move { n }));
    let line = line!() + 1;
    set.extend(parts);
    assert_eq!(set.len(), 3);
    let mut seen = Vec::new();
    while let Some((id, result)) = set.join_next_with_id().await {
        let n = result.unwrap();
        let task = tracker.task(id).unwrap().task;
        assert_eq!(
            (task.name.as_ref(), task.ty),
            (format!("part-{n}").as_str(), TaskType::NETWORK)
        );
        assert!(
            task.site.file.ends_with("tests/join_set.rs"),
            "{}",
            task.site
        );
        assert_eq!(task.site.line, line);
        seen.push(n);
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
}

#[tokio::test]
async fn collected_tasks_are_tracked_like_spawned_ones() {
    let tracker = Tracker::new();
    let parent = tracker.spawn("parent", TaskType::GENERAL, async {
        // Inside a tracked task: its tracker, and it as their parent.
        let mut set: JoinSet<u32> = (0..3u32)
            .map(|n| (format!("item-{n}"), TaskType::GENERAL, async move { n }))
            .collect();
        let mut joined = Vec::new();
        while let Some((id, result)) = set.join_next_with_id().await {
            joined.push((id, result.unwrap()));
        }
        let line = line!() + 1;
        let mut set = JoinSet::from_iter([("direct", TaskType::GENERAL, async { 9 })]);
        let (direct, result) = set.join_next_with_id().await.unwrap();
        joined.push((direct, result.unwrap()));
        (joined, direct, line)
    });
    let parent_id = parent.id();
    let (mut joined, direct, line) = parent.await.unwrap();
    joined.sort_by_key(|&(_, n)| n);
    let names: Vec<_> = joined
        .iter()
        .map(|&(id, n)| {
            let task = tracker.task(id).unwrap().task;
            assert_eq!(
                (task.parent, task.state),
                (Some(parent_id), TaskState::Completed)
            );
            (task.name.into_owned(), n)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("item-0".into(), 0),
            ("item-1".into(), 1),
            ("item-2".into(), 2),
            ("direct".into(), 9)
        ]
    );
    let site = tracker.task(direct).unwrap().task.site;
    assert!(site.file.ends_with("tests/join_set.rs"), "{site}");
    assert_eq!(site.line, line);
}

//! Every lifecycle transition and how each ending is recorded.

use std::time::Duration;

use tracked::{Query, TaskState, TaskType, Tracker};

fn only_finished(tracker: &Tracker) -> tracked::TaskSnapshot {
    let mut finished = tracker.finished(&Query::new());
    assert_eq!(finished.len(), 1, "expected exactly one finished task");
    finished.remove(0)
}

#[tokio::test]
async fn pending_then_running_then_completed() {
    let tracker = Tracker::new();
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();

    // On a current-thread runtime the task cannot run before we yield, so
    // the first look must see it pending.
    let handle = tracker.spawn("worker", TaskType::GENERAL, {
        let gate = gate.clone();
        async move {
            started_tx.send(()).unwrap();
            gate.notified().await;
        }
    });
    let live = tracker.tasks(&Query::new());
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].state, TaskState::Pending);
    assert_eq!(live[0].polls, 0);
    assert!(live[0].first_polled_at.is_none());

    started_rx.await.unwrap();
    let live = tracker.tasks(&Query::new());
    assert_eq!(live[0].state, TaskState::Running);
    assert!(live[0].polls >= 1);
    assert!(live[0].first_polled_at.unwrap() >= live[0].spawned_at);

    gate.notify_one();
    handle.await.unwrap();
    let done = only_finished(&tracker);
    assert_eq!(done.state, TaskState::Completed);
    assert!(done.finished_at.unwrap() >= done.first_polled_at.unwrap());
    assert!(tracker.tasks(&Query::new()).is_empty());
}

#[tokio::test]
async fn records_name_type_site_and_labels() {
    let tracker = Tracker::new();
    let builder = tracker
        .task_builder("fetch-blocks", TaskType::NETWORK)
        .owner("session-1")
        .label("peer", "10.0.0.1");
    let line = line!() + 1;
    let handle = builder.spawn(async {});
    handle.await.unwrap();
    let task = only_finished(&tracker);
    assert_eq!(task.name, "fetch-blocks");
    assert_eq!(task.ty, TaskType::NETWORK);
    assert_eq!(task.owner.as_deref(), Some("session-1"));
    assert_eq!(task.labels, vec![("peer".into(), "10.0.0.1".into())]);
    assert!(task.site.file.ends_with("lifecycle.rs"), "{}", task.site);
    assert_eq!(task.site.line, line);
}

#[tokio::test]
async fn err_output_is_failed_with_its_display_text() {
    let tracker = Tracker::new();
    let result = tracker
        .spawn("load", TaskType::DATABASE, async {
            Err::<(), _>(std::io::Error::other("disk on fire"))
        })
        .await
        .unwrap();
    assert!(result.is_err());
    let task = only_finished(&tracker);
    assert_eq!(task.state, TaskState::Failed);
    assert_eq!(task.error.as_deref(), Some("disk on fire"));
    assert_eq!(tracker.stats().total.failed, 1);
}

#[tokio::test]
async fn ok_output_is_completed() {
    let tracker = Tracker::new();
    let out = tracker
        .spawn("load", TaskType::DATABASE, async { Ok::<_, String>(7) })
        .await
        .unwrap();
    assert_eq!(out, Ok(7));
    assert_eq!(only_finished(&tracker).state, TaskState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_recorded_and_still_delivered_to_the_awaiter() {
    let tracker = Tracker::new();
    let explode = true;
    let line = line!() + 3;
    let handle = tracker.spawn("explode", TaskType::GAME_LOGIC, async move {
        if explode {
            panic!("boom {}", 42);
        }
    });
    let err = handle.await.unwrap_err();
    assert!(err.is_panic());
    let payload = err.into_panic();
    // The payload is a `String` or, when rustc folds the format arguments
    // into a literal, a `&'static str`: either way it is the original one.
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(text, Some("boom 42"));

    let task = only_finished(&tracker);
    assert_eq!(task.state, TaskState::Panicked);
    assert_eq!(task.error.as_deref(), Some("boom 42"));
    let location = task.panic_location.expect("panic location recorded");
    assert!(location.contains("lifecycle.rs"), "{location}");
    assert!(
        location.contains(&format!(":{line}:")),
        "{location} vs line {line}"
    );
    assert_eq!(tracker.stats().total.panicked, 1);
}

#[tokio::test]
async fn abort_before_first_poll_is_cancelled() {
    let tracker = Tracker::new();
    let handle = tracker.spawn("never", TaskType::GENERAL, async {});
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    let task = only_finished(&tracker);
    assert_eq!(task.state, TaskState::Cancelled);
    assert_eq!(task.polls, 0);
    let stats = tracker.stats().total;
    assert_eq!((stats.cancelled, stats.pending, stats.running), (1, 0, 0));
}

#[tokio::test]
async fn abort_while_running_is_cancelled() {
    let tracker = Tracker::new();
    let handle = tracker.spawn("sleeper", TaskType::GENERAL, async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    tokio::task::yield_now().await;
    assert_eq!(tracker.stats().total.running, 1);
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    let task = only_finished(&tracker);
    assert_eq!(task.state, TaskState::Cancelled);
    assert!(task.polls >= 1);
}

/// Panics when dropped.
struct Explosive;

impl Drop for Explosive {
    fn drop(&mut self) {
        panic!("dropped mid-flight");
    }
}

/// A future that panics as it is aborted is `Cancelled` (tokio's
/// `JoinError` says panic): its task was stopped from outside, and
/// `OnPanic`, like tokio's `unhandled_panic`, is not about that.
#[tokio::test]
async fn a_future_panicking_as_it_is_aborted_is_cancelled_and_acts_on_nothing() {
    let tracker = Tracker::builder()
        .on_panic(None, tracked::OnPanic::Shutdown)
        .build();
    let handle = tracker.spawn("fragile", TaskType::GENERAL, async {
        let _held = Explosive;
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    handle.abort();
    assert!(handle.await.unwrap_err().is_panic());
    let task = only_finished(&tracker);
    assert_eq!(task.state, TaskState::Cancelled);
    assert!(!tracker.shutdown_token().is_cancelled());
    assert_eq!(tracker.stats().total.live(), 0);
}

/// A type of the user's: one line makes it a task's output. (Had the
/// crate implemented `Outcome` for `!`, named through a projection, every
/// such impl would conflict with it, E0119.)
struct Summary {
    rows: usize,
}

impl tracked::Outcome for Summary {}

#[tokio::test]
async fn a_task_returns_a_type_of_the_users() {
    let tracker = Tracker::new();
    let handle = tracker.spawn("summarise", TaskType::GENERAL, async {
        Summary { rows: 3 }
    });
    assert_eq!(handle.await.unwrap().rows, 3);
    assert_eq!(only_finished(&tracker).state, TaskState::Completed);
}

/// A task returns a standard type or one of this crate's reports: the
/// caller cannot implement `Outcome` for them, so this crate does.
#[tokio::test]
async fn a_task_returns_standard_types_and_this_crate_s_reports() {
    use std::collections::{BTreeSet, HashSet, VecDeque};
    use std::path::PathBuf;
    let tracker = Tracker::new();
    let found = tracker.spawn("scan", TaskType::MAINTENANCE, async {
        let dirs: HashSet<PathBuf> = [PathBuf::from("/var/lib")].into();
        (dirs, BTreeSet::from([1]), VecDeque::from([2]), [0u8; 4])
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
    let channel = tracker.spawn("wire", TaskType::GENERAL, async move { (tx, rx) });
    let addr = tracker.spawn("bind", TaskType::NETWORK, async {
        std::borrow::Cow::<str>::Borrowed("127.0.0.1:0")
            .parse::<std::net::SocketAddr>()
            .unwrap()
    });
    let inner = tracker.clone();
    let report = tracker.spawn("stop jobs", TaskType::GENERAL, async move {
        inner.group("jobs").cancel(Duration::from_secs(1)).await
    });
    let inner = tracker.clone();
    let stats = tracker.spawn("count", TaskType::GENERAL, async move { inner.stats() });
    assert_eq!(found.await.unwrap().0.len(), 1);
    channel.await.unwrap().0.send(7).await.unwrap();
    assert!(addr.await.unwrap().ip().is_loopback());
    assert!(report.await.unwrap().is_clean());
    assert!(stats.await.unwrap().total.spawned >= 4);
    for task in tracker.finished(&Query::new()) {
        assert_eq!(task.state, TaskState::Completed, "{}", task.name);
    }
}

/// A task that starts others hands back their handles: tracked's, or
/// tokio's (a user cannot implement `Outcome` for either).
#[tokio::test]
async fn a_task_returns_the_handles_of_the_tasks_it_started() {
    let tracker = Tracker::new();
    let starter = tracker.clone();
    let handles = tracker.spawn("starter", TaskType::GENERAL, async move {
        let tracked = starter.spawn("one", TaskType::GENERAL, async { 1 });
        // tracked: allow(untracked-spawn) -- tokio's handle is the point
        let plain = tokio::spawn(async { 2 });
        (tracked, plain)
    });
    let set = tracker.spawn("set", TaskType::GENERAL, async {
        let mut set = tokio::task::JoinSet::new();
        // tracked: allow(untracked-spawn) -- tokio's set is the point
        set.spawn(async { 3 });
        set
    });
    let (tracked, plain) = handles.await.unwrap();
    let mut set = set.await.unwrap();
    assert_eq!(tracked.await.unwrap() + plain.await.unwrap(), 3);
    assert_eq!(set.join_next().await.unwrap().unwrap(), 3);
}

/// An accept loop or a ticker never returns: its block's output is `!`,
/// which must be accepted as tokio accepts it (on edition 2021 a bound the
/// output must meet trips the never-type fallback lint, an error).
#[tokio::test]
async fn a_task_that_never_returns_is_spawned_and_aborted() {
    let tracker = Tracker::new();
    let ticker = tracker.spawn("ticker", TaskType::GENERAL, async {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let global = tracked::spawn("accept", TaskType::NETWORK, async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    tokio::task::yield_now().await;
    ticker.abort();
    global.abort();
    assert!(ticker.await.unwrap_err().is_cancelled());
    assert!(global.await.unwrap_err().is_cancelled());
    assert_eq!(only_finished(&tracker).state, TaskState::Cancelled);
}

#[test]
fn runtime_shutdown_cancels_live_tasks() {
    let tracker = Tracker::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..10 {
            tracker.spawn("stuck", TaskType::NETWORK, std::future::pending::<()>());
        }
        tokio::task::yield_now().await;
    });
    drop(runtime);
    let stats = tracker.stats().total;
    assert_eq!(stats.cancelled, 10);
    assert_eq!(stats.live(), 0);
    assert!(tracker.tasks(&Query::new()).is_empty());
}

#[tokio::test]
async fn stats_by_type_satisfy_the_invariant() {
    let tracker = Tracker::new();
    let mut handles = Vec::new();
    for i in 0..30u32 {
        let ty = [
            TaskType::NETWORK,
            TaskType::DATABASE,
            TaskType::new("Custom"),
        ][i as usize % 3];
        handles.push(tracker.spawn("t", ty, async move {
            if i % 5 == 0 {
                Err("bad".to_string())
            } else {
                Ok(())
            }
        }));
    }
    let pending = tracker.spawn(
        "idle",
        TaskType::NETWORK,
        std::future::pending::<Result<(), String>>(),
    );
    for handle in handles {
        let _ = handle.await;
    }
    let stats = tracker.stats();
    assert_eq!(stats.total.spawned, 31);
    assert_eq!(stats.total.failed, 6);
    assert_eq!(stats.total.completed, 24);
    assert_eq!(stats.total.live(), 1);
    assert_eq!(stats.by_type.len(), 3);
    assert_eq!(stats.by_type[&TaskType::new("Custom")].spawned, 10);
    for counts in stats.by_type.values().chain([&stats.total]) {
        assert_eq!(counts.spawned, counts.live() + counts.finished());
    }
    pending.abort();
}

/// Polls count in the shard of the thread polling, not the spawner's: the
/// type's row there is its own, and the histogram still adds up by type.
#[test]
fn polls_count_in_their_type_whichever_thread_polls_them() {
    let tracker = Tracker::builder().busy_time(true).build();
    let workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let undriven = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Spawned from this thread, not a worker: first a type never polled,
    // so that the polled type has a different row here than on the workers.
    let never = tracker.spawn_on("db::never", TaskType::DATABASE, async {}, undriven.handle());
    let ticks: Vec<_> = (0..50)
        .map(|_| {
            tracker.spawn_on(
                "tick",
                TaskType::MAINTENANCE,
                async {
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                },
                workers.handle(),
            )
        })
        .collect();
    workers.block_on(async {
        for tick in ticks {
            tick.await.unwrap();
        }
    });
    let polls = tracker.poll_durations();
    assert_eq!(polls[&TaskType::MAINTENANCE].count(), 50 * 4);
    assert!(!polls.contains_key(&TaskType::DATABASE), "{polls:?}");
    let stats = tracker.stats();
    assert_eq!(stats.by_type[&TaskType::MAINTENANCE].completed, 50);
    assert_eq!(stats.by_type[&TaskType::DATABASE].spawned, 1);
    assert_eq!(stats.by_type.len(), 2, "{:?}", stats.by_type.keys());
    drop(never);
    undriven.shutdown_background();
}

/// A panic a task catches itself leaves its location with the panic hook;
/// a later panic that the hook never sees (`resume_unwind`, as when a task
/// re-raises a child's payload) must not be given that stale location,
/// neither in another task on the same thread nor in a later poll of the
/// same task.
#[test]
fn a_caught_panic_lends_its_location_to_no_later_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let tracker = Tracker::new();
    runtime.block_on(async {
        let caught = tracker.spawn("re-raises-later", TaskType::GENERAL, async {
            let caught = std::panic::catch_unwind(|| panic!("handled inside the task"));
            assert!(caught.is_err());
            tokio::task::yield_now().await;
            let resumed = true;
            if resumed {
                // Raised without the hook: its location is unknown.
                std::panic::resume_unwind(Box::new("re-raised"));
            }
        });
        assert!(caught.await.unwrap_err().is_panic());
        let other = tracker.spawn("catches-then-ends", TaskType::GENERAL, async {
            let caught = std::panic::catch_unwind(|| panic!("handled, then done"));
            assert!(caught.is_err());
        });
        other.await.unwrap();
        // Same thread (current-thread runtime): the hook saw no panic of it.
        let reraised = tracker.spawn("re-raises-another", TaskType::GENERAL, async {
            let resumed = true;
            if resumed {
                std::panic::resume_unwind(Box::new("not from here"));
            }
        });
        assert!(reraised.await.unwrap_err().is_panic());
    });
    for name in ["re-raises-later", "re-raises-another"] {
        let task = tracker.finished(&Query::new().name_prefix(name)).remove(0);
        assert_eq!(task.state, TaskState::Panicked, "{name}");
        assert_eq!(task.panic_location, None, "{name}: a stale location");
    }
}

/// The estimated completion is a forecast for a live task: once the task has
/// ended (here at 20 %, never to reach 100), a snapshot must not promise one.
#[tokio::test]
async fn a_finished_task_has_no_estimated_completion() {
    let tracker = Tracker::new();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tracker.spawn("import", TaskType::DATABASE, async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        tracked::progress(20, "a fifth of the rows");
        seen_tx.send(()).unwrap();
        let _ = done_rx.await;
        Ok::<_, String>(())
    });
    seen_rx.await.unwrap();
    let live = tracker.tasks(&Query::new()).remove(0);
    let progress = live.progress.expect("progress reported");
    assert!(progress.estimated_completion.is_some(), "live: a forecast");
    done_tx.send(()).unwrap();
    handle.await.unwrap().unwrap();
    let done = only_finished(&tracker);
    let progress = done.progress.expect("progress kept in history");
    assert_eq!(progress.percent, 20);
    assert_eq!(progress.log.len(), 1);
    assert_eq!(progress.estimated_completion, None, "it ended");
}

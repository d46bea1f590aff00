//! Groups, cancellation with timeouts, tiered shutdown: each feature and the
//! adversarial cases (ignoring cancellation, blocking a worker, panicking
//! while cancelling, spawning during shutdown, cancel racing completion).

#[path = "common/polite.rs"]
mod polite;
use polite::polite;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracked::{Counts, Query, ShutdownPlan, SpawnKind, TaskState, TaskType, Tracker};

mod common;
use common::assert_invariant;

/// Waits (bounded) until the tracker has no live task.
async fn drained(tracker: &Tracker) -> Counts {
    for _ in 0..500 {
        let total = tracker.stats().total;
        if total.live() == 0 {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("tasks still live: {:?}", tracker.tasks(&Query::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_cancel_asks_then_aborts_and_reports_stubborn_tasks() {
    let tracker = Tracker::new();
    let group = tracker.group("session-7");
    group.spawn("polite", TaskType::NETWORK, polite());
    let stubborn_line = line!() + 1;
    group.spawn("stubborn", TaskType::DATABASE, async {
        tracked::progress(40, "waiting on the disk");
        // Never returns, as an accept loop: a group takes what
        // `tracked::spawn` takes.
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    group
        .spawn("quick", TaskType::NETWORK, async {})
        .await
        .unwrap();
    tracker.spawn("bystander", TaskType::NETWORK, polite());
    until("the stubborn task's progress", || {
        let stubborn = tracker.tasks(&Query::new().name_prefix("stubborn"));
        stubborn.first().is_some_and(|t| t.progress.is_some())
    })
    .await;

    let live = group.live();
    assert_eq!(live.total, 2);
    assert_eq!(live.by_type[&TaskType::NETWORK], 1);
    assert_eq!(live.by_type[&TaskType::DATABASE], 1);

    let timeout = Duration::from_millis(150);
    let report = group.cancel(timeout).await;
    assert_eq!(report.stopped, 1, "{report:?}");
    assert_eq!(report.aborted.len(), 1, "{report:?}");
    let stubborn = &report.aborted[0];
    assert_eq!(stubborn.name, "stubborn");
    assert_eq!(stubborn.ty, TaskType::DATABASE);
    assert_eq!(stubborn.site.line, stubborn_line);
    assert_eq!(
        stubborn.last_progress.as_deref(),
        Some("waiting on the disk")
    );
    assert!(stubborn.age >= timeout);
    assert!(report.elapsed >= timeout && report.elapsed < timeout * 20);

    // The aborted task ends once tokio drops it.
    until("the group's end", || group.live().total == 0).await;
    // The bystander, outside the group, still runs.
    assert_eq!(
        tracker.tasks(&Query::new().name_prefix("bystander")).len(),
        1
    );
    assert_invariant(&tracker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_inherit_the_group_and_are_cancelled_with_it() {
    let tracker = Tracker::new();
    let group = tracker.group("tenant-a");
    group.spawn("parent", TaskType::GENERAL, async {
        for _ in 0..3 {
            tracked::spawn("child", TaskType::GENERAL, polite());
        }
        polite().await;
    });
    until("the parent's children", || group.live().total == 4).await;
    let report = group.cancel(Duration::from_secs(5)).await;
    assert_eq!((report.stopped, report.aborted.len()), (4, 0));
    assert!(report.is_clean());
    assert_invariant(&tracker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_by_type_leaves_other_types_running() {
    let tracker = Tracker::new();
    for _ in 0..3 {
        tracker.spawn("net", TaskType::NETWORK, polite());
        tracker.spawn("db", TaskType::DATABASE, polite());
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = tracker
        .cancel_type(TaskType::NETWORK, Duration::from_secs(5))
        .await;
    assert_eq!(report.stopped, 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stats = tracker.stats();
    assert_eq!(stats.by_type[&TaskType::NETWORK].live(), 0);
    assert_eq!(stats.by_type[&TaskType::DATABASE].live(), 3);
    assert_invariant(&tracker);
}

#[tokio::test]
async fn cancelling_one_task_says_whether_it_had_ended() {
    let tracker = Tracker::new();
    let done = tracker.spawn("ping", TaskType::NETWORK, async {});
    let ended = done.id();
    done.await.unwrap();
    let report = tracker.cancel_task(ended, Duration::from_secs(1)).await;
    assert_eq!(report.already_finished, 1);
    assert_eq!(report.stopped, 0);
    assert!(report.is_clean());
    // An id this tracker never spawned: nothing to say.
    let elsewhere = Tracker::new().spawn("other", TaskType::NETWORK, async {});
    let unknown = elsewhere.id();
    elsewhere.await.unwrap();
    let report = tracker.cancel_task(unknown, Duration::from_secs(1)).await;
    assert_eq!(report.already_finished, 0);
    // A live one stops, and is not also counted as ended.
    let live = tracker.spawn("serve", TaskType::NETWORK, polite());
    let report = tracker.cancel_task(live.id(), Duration::from_secs(5)).await;
    assert_eq!((report.stopped, report.already_finished), (1, 0));
    assert_invariant(&tracker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_completion_accounts_for_every_task() {
    let tracker = Tracker::new();
    for round in 0..20u64 {
        let group = tracker.group(format!("race-{round}"));
        for i in 0..50u64 {
            group.spawn("racer", TaskType::GENERAL, async move {
                // Some finish on their own right as the cancel starts, some
                // stop when asked, some ignore it.
                match i % 3 {
                    0 => tokio::task::yield_now().await,
                    1 => polite().await,
                    _ => tokio::time::sleep(Duration::from_millis(i % 7)).await,
                }
            });
        }
        let report = group.cancel(Duration::from_millis(30)).await;
        let accounted = report.stopped + report.already_finished + report.aborted.len();
        assert!(accounted <= 50, "{report:?}");
    }
    let total = drained(&tracker).await;
    assert_eq!(total.spawned, 1000);
    assert_invariant(&tracker);
}

/// A task that ignores its cancellation and keeps spawning into its group
/// spawns until its abort lands, after the deadline: the cancel aborts those
/// children too and lists them, so none outlives it unreported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_aborts_what_stubborn_spawners_spawn_until_their_abort_lands() {
    let tracker = Tracker::new();
    for round in 0..3 {
        let group = tracker.group(format!("spawners-{round}"));
        for _ in 0..2 {
            group.spawn("spawner", TaskType::GENERAL, async {
                #[allow(clippy::infinite_loop)]
                loop {
                    tracked::spawn("child", TaskType::GENERAL, std::future::pending::<()>());
                    tokio::task::yield_now().await;
                }
                #[allow(unreachable_code)]
                ()
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let report = group.cancel(Duration::from_millis(30)).await;
        for _ in 0..500 {
            if group.live().total == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(group.live().total, 0, "left behind by {report}");
        assert_eq!(report.stopped + report.already_finished, 0, "{report}");
    }
    let total = drained(&tracker).await;
    let finished = tracker.finished(&Query::new());
    assert!(finished.iter().all(|t| t.state == TaskState::Cancelled));
    assert_eq!(total.cancelled, total.spawned);
    assert_invariant(&tracker);
}

/// A task that ends by itself (with its output) just as its abort is
/// issued was not aborted: it counts as stopped, and every task the report
/// lists as aborted did end `Cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_ending_by_itself_as_it_is_aborted_is_not_listed_aborted() {
    let tracker = Tracker::new();
    let mut aborted = Vec::new();
    for round in 0..20u64 {
        let group = tracker.group(format!("deadline-{round}"));
        for i in 0..40u64 {
            // Deaf, and ending around the deadline.
            group.spawn("sleeper", TaskType::GENERAL, async move {
                tokio::time::sleep(Duration::from_millis(20 + i % 20)).await;
            });
        }
        let report = group.cancel(Duration::from_millis(30)).await;
        let accounted = report.stopped + report.already_finished + report.aborted.len();
        assert!(accounted <= 40, "{report:?}");
        aborted.extend(report.aborted.iter().map(|t| t.id));
    }
    drained(&tracker).await;
    for id in aborted {
        let state = tracker.task(id).unwrap().task.state;
        assert_eq!(state, TaskState::Cancelled, "task #{id} listed as aborted");
    }
    assert_invariant(&tracker);
}

/// A task aborted by someone else while a cancel waits for it (its
/// `AbortHandle`, a shutdown) did not stop by itself: the report counts it
/// as cancelled elsewhere, not as stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cancelled_elsewhere_during_a_cancel_is_not_counted_stopped() {
    let tracker = Tracker::new();
    let group = tracker.group("jobs");
    let (asked, was_asked) = tokio::sync::oneshot::channel();
    let deaf = group.spawn("deaf", TaskType::GENERAL, async move {
        polite().await;
        asked.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    group.spawn("polite", TaskType::GENERAL, polite());
    let (report, ()) = tokio::join!(group.cancel(Duration::from_secs(30)), async {
        was_asked.await.unwrap();
        deaf.abort();
    });
    assert_eq!(
        (report.stopped, report.cancelled_elsewhere),
        (1, 1),
        "{report}"
    );
    assert!(report.is_clean(), "{report}");
    assert!(report.to_string().contains(", 1 cancelled elsewhere in "));

    // A shutdown aborts the deaf ones while the group's cancel waits. It
    // starts once the group's request has stopped the polite ones: had it
    // asked them first, they would have ended before the group's cancel
    // (on a thread of its own) listed its tasks, and not be in its report.
    for _ in 0..3 {
        group.spawn("deaf", TaskType::GENERAL, std::future::pending::<()>());
        group.spawn("polite", TaskType::GENERAL, polite());
    }
    let plan = ShutdownPlan::new().rest("all", Duration::from_millis(50));
    let (report, shutdown) = tokio::join!(group.cancel(Duration::from_secs(30)), async {
        for _ in 0..3000 {
            if group.live().total == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracker.shutdown(plan).await
    });
    assert_eq!(shutdown.tiers[0].report.aborted.len(), 3, "{shutdown}");
    assert_eq!(
        (report.stopped, report.cancelled_elsewhere),
        (3, 3),
        "{report}"
    );
    drained(&tracker).await;
    assert_invariant(&tracker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_tiers_in_order_while_later_tiers_keep_running() {
    let tracker = Tracker::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    for ty in [
        TaskType::DATABASE,
        TaskType::NETWORK,
        TaskType::UI,
        TaskType::MAINTENANCE,
    ] {
        let order = order.clone();
        tracker.spawn("service", ty, async move {
            polite().await;
            order.lock().unwrap().push(ty);
        });
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = tracker
        .shutdown(ShutdownPlan::default_with(Duration::from_secs(2)))
        .await;
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order,
        [
            TaskType::UI,
            TaskType::MAINTENANCE,
            TaskType::NETWORK,
            TaskType::DATABASE
        ]
    );
    let names: Vec<_> = report.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ui", "maintenance", "network", "logic", "state"]);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.tiers[0].report.stopped, 1);
    assert_eq!(report.tiers[4].report.stopped, 1);
    assert_invariant(&tracker);
}

#[test]
fn shutdown_meets_its_deadline_whatever_the_tasks_do() {
    let tracker = Tracker::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tier = Duration::from_millis(200);
    let plan = ShutdownPlan::new()
        .tier("front", [TaskType::UI], tier)
        .tier("middle", [TaskType::NETWORK], tier)
        .rest("rest", tier);
    let report = runtime.block_on(async {
        // Ignores cancellation.
        tracker.spawn("deaf", TaskType::UI, std::future::pending::<()>());
        // Panics while cancelling.
        tracker.spawn("panicky", TaskType::UI, async {
            polite().await;
            if tracked::task_id().is_some() {
                panic!("panicked while cancelling");
            }
        });
        // Blocks its worker thread well past every deadline once asked.
        tracker.spawn("blocker", TaskType::NETWORK, async {
            polite().await;
            std::thread::sleep(Duration::from_secs(2));
        });
        // Keeps spawning children, even while being cancelled.
        tracker.spawn("spawner", TaskType::GENERAL, async {
            while tracked::task_id().is_some() {
                tracked::spawn(
                    "spawned-child",
                    TaskType::GENERAL,
                    std::future::pending::<()>(),
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let started = Instant::now();
        let report = tracker.shutdown(plan.clone()).await;
        let took = started.elapsed();
        // Generous bound from the configuration: three tiers plus a margin
        // (well below the 2 s the blocker would hold a wait-for-all up).
        assert!(
            took < plan.total_timeout() + Duration::from_millis(1000),
            "took {took:?}"
        );
        report
    });
    assert_eq!(report.tiers.len(), 3);
    // The deaf task is aborted. The panicky one usually ends by itself, but
    // printing its panic (a backtrace with RUST_BACKTRACE=1, on a loaded
    // machine) can outlast the tier, and then it is aborted too.
    let front: Vec<_> = report.tiers[0]
        .report
        .aborted
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(front.iter().any(|n| n == "deaf"), "{report:?}");
    assert!(
        front.iter().all(|n| n == "deaf" || n == "panicky"),
        "{report:?}"
    );
    // The blocker's poll outlives its tier: it is reported as aborted.
    assert!(report.tiers[1]
        .report
        .aborted
        .iter()
        .any(|t| t.name == "blocker"));
    assert!(!report.is_clean());

    // After shutdown, spawns are aborted before they run.
    let late =
        runtime.block_on(async { tracker.spawn("late", TaskType::GENERAL, async { 1 }).await });
    assert!(late.unwrap_err().is_cancelled());
    assert!(tracker.is_shut_down());

    drop(runtime);
    let total = tracker.stats().total;
    assert_eq!(total.live(), 0, "{total:?}");
    assert!(total.panicked >= 1);
    assert_invariant(&tracker);
    let late = tracker.finished(&Query::new().name_prefix("late"));
    assert_eq!(late[0].state, TaskState::Cancelled);
}

/// A signal handler task can return the shutdown's report, and a task
/// that cancels a group the cancel's: both are `Outcome`s, never failures.
#[tokio::test]
async fn a_task_can_return_a_cancel_or_shutdown_report() {
    let tracker = Tracker::new();
    let group = tracker.group("batch");
    group.spawn("job", TaskType::GENERAL, polite());
    let canceller = tracker.spawn("canceller", TaskType::GENERAL, {
        let group = group.clone();
        async move { group.cancel(Duration::from_secs(5)).await }
    });
    let cancelled = canceller.id();
    assert_eq!(canceller.await.unwrap().stopped, 1);
    let signals = tracker.spawn("signals", TaskType::GENERAL, {
        let tracker = tracker.clone();
        async move { tracker.shutdown(ShutdownPlan::new()).await }
    });
    let shut_down = signals.id();
    assert!(signals.await.unwrap().is_clean());
    drained(&tracker).await;
    for id in [cancelled, shut_down] {
        assert_eq!(tracker.task(id).unwrap().task.state, TaskState::Completed);
    }
}

/// A task's blocking closure, spawned by a rewritten `spawn_blocking`.
#[tracked::tracked(type = "General")]
async fn rewritten_blocking(ran: Arc<AtomicUsize>) -> Result<(), tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || ran.fetch_add(1, Ordering::SeqCst)).await?;
    Ok(())
}

/// A blocking closure spawned after shutdown never runs, whichever way it
/// is spawned: its handle gives a cancelled `JoinError` and it is recorded
/// `Cancelled` (the abort sent at spawn used to race the blocking pool,
/// whose threads mostly ran the closure first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_closure_spawned_after_shutdown_never_runs() {
    let tracker = Tracker::new();
    let ran = Arc::new(AtomicUsize::new(0));
    // The rewritten spawn, in the task that shut down (left alone by it).
    let signals = tracker.spawn("signals", TaskType::GENERAL, {
        let (tracker, ran) = (tracker.clone(), ran.clone());
        async move {
            tracker.shutdown(ShutdownPlan::new()).await;
            rewritten_blocking(ran).await
        }
    });
    assert!(signals.await.unwrap().unwrap_err().is_cancelled());
    let closure = || {
        let ran = ran.clone();
        move || ran.fetch_add(1, Ordering::SeqCst)
    };
    let runtime = tokio::runtime::Handle::current();
    let mut handles = Vec::new();
    for _ in 0..20 {
        handles.push(tracker.spawn_blocking("late", TaskType::GENERAL, closure()));
        let on = tracker.task_builder("late", TaskType::GENERAL);
        handles.push(on.spawn_blocking_on(closure(), &runtime));
    }
    let mut set = tracked::JoinSet::with_tracker(&tracker);
    for _ in 0..20 {
        set.spawn_blocking("late", TaskType::GENERAL, closure());
        set.spawn_blocking_on("late", TaskType::GENERAL, closure(), &runtime);
    }
    for handle in handles {
        assert!(handle.await.unwrap_err().is_cancelled());
    }
    while let Some(joined) = set.join_next().await {
        assert!(joined.unwrap_err().is_cancelled());
    }
    drained(&tracker).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "closures ran after shutdown");
    let closures: Vec<_> = tracker
        .finished(&Query::new())
        .into_iter()
        .filter(|t| t.kind == SpawnKind::Blocking)
        .collect();
    assert_eq!(closures.len(), 81);
    assert!(closures.iter().all(|t| t.state == TaskState::Cancelled));
}

#[tokio::test]
async fn a_second_shutdown_returns_at_once() {
    let tracker = Tracker::new();
    tracker.shutdown(ShutdownPlan::new()).await;
    let again = tracker.shutdown(ShutdownPlan::default()).await;
    assert!(again.tiers.is_empty());
}

/// Two shutdowns at once (a signal handler and `main`, say): the plan runs
/// once, and the call that lost the race waits for it and gets its report,
/// rather than an empty "clean" one while tasks still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_racing_another_waits_for_it_and_gives_its_report() {
    let tracker = Tracker::new();
    tracker.spawn("deaf", TaskType::NETWORK, std::future::pending::<()>());
    tracker.spawn("polite", TaskType::GENERAL, polite());
    let plan = ShutdownPlan::default_with(Duration::from_millis(100));
    let first = std::thread::spawn({
        let (tracker, plan) = (tracker.clone(), plan.clone());
        move || tracker.shutdown_blocking(plan)
    });
    // The first call has begun (it requests the shutdown before its tiers).
    tracker.shutdown_token().cancelled().await;
    let second = tracker.shutdown(plan).await;
    assert!(tracker.is_shut_down());
    assert!(!second.is_clean(), "{second}");
    let network = &second.tiers[2].report;
    assert_eq!(network.aborted[0].name, "deaf", "{second}");
    let first = first.join().unwrap();
    assert_eq!(first.to_string(), second.to_string());
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// A task that calls shutdown while one runs (`main` after a signal
/// handler, say), after its own tier asked it to stop, is left alone as the
/// first caller is: not aborted at the tier's deadline, not in the report,
/// and it gets the report too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_joining_a_running_shutdown_is_left_alone_and_gets_the_report() {
    let tracker = Tracker::new();
    tracker.spawn("worker", TaskType::NETWORK, polite());
    let plan = ShutdownPlan::new()
        .tier("network", [TaskType::NETWORK], Duration::from_secs(5))
        .rest("rest", Duration::from_millis(500));
    let signals = tracker.spawn("signals", TaskType::GENERAL, {
        let (tracker, plan) = (tracker.clone(), plan.clone());
        async move { tracker.shutdown(plan).await }
    });
    let main = tracker.spawn("main", TaskType::GENERAL, {
        let tracker = tracker.clone();
        async move {
            // Asked by the rest tier, which has picked this task.
            polite().await;
            tracker.shutdown(plan).await
        }
    });
    let first = signals.await.expect("the first caller is left alone");
    let second = main.await.expect("a later caller is left alone");
    assert_eq!(first.to_string(), second.to_string());
    assert!(second.is_clean(), "{second}");
    let rest = &second.tiers[1].report;
    assert_eq!((rest.stopped, rest.cancelled_elsewhere), (0, 0), "{second}");
    assert_eq!(second.tiers[0].report.stopped, 1, "{second}");
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// A task a tier aborted or left running may still be live when later
/// tiers and the leftover pass look (a blocking closure that runs on, a
/// task on a `LocalSet` not running): the report lists it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_reports_each_stubborn_task_once() {
    let tracker = Tracker::new();
    let (started, running) = std::sync::mpsc::channel();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let closure = tracker.spawn_blocking("export", TaskType::DATABASE, move || {
        started.send(()).unwrap();
        finished.recv().unwrap();
        7
    });
    running.recv().unwrap();
    let local = tokio::task::LocalSet::new();
    let mut set = tracked::JoinSet::with_tracker(&tracker);
    set.spawn_local_on("refresh", TaskType::DATABASE, async {}, &local);

    let tier = Duration::from_millis(50);
    let plan = ShutdownPlan::new()
        .tier("db", [TaskType::DATABASE], tier)
        .tier("db again", [TaskType::DATABASE], tier)
        .rest("rest", tier);
    let report = tracker.shutdown(plan).await;
    let mut listed: Vec<_> = report
        .tiers
        .iter()
        .map(|t| &t.report)
        .chain([&report.leftover])
        .flat_map(|r| r.aborted.iter().chain(&r.left_running))
        .map(|t| t.name.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["export", "refresh"], "{report}");
    assert_eq!(report.tiers[0].report.left_running[0].name, "export");
    assert_eq!(report.tiers[0].report.aborted[0].name, "refresh");

    finish.send(()).unwrap();
    assert_eq!(closure.await.unwrap(), 7, "the closure ran to its end");
    drop(local);
    assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// A task spawned after the deadline by a spawner whose abort has not
/// landed yet, and aborted then, reports its age since its spawn, not 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_aborted_after_the_deadline_reports_its_age_since_spawn() {
    let tracker = Tracker::new();
    for round in 0..3 {
        let group = tracker.group(format!("bursts-{round}"));
        group.spawn("burster", TaskType::GENERAL, async {
            #[allow(clippy::infinite_loop)]
            loop {
                // Ten at a time without yielding: an abort lands between.
                for _ in 0..10 {
                    tracked::spawn("child", TaskType::GENERAL, std::future::pending::<()>());
                    std::thread::sleep(Duration::from_millis(1));
                }
                tokio::task::yield_now().await;
            }
            #[allow(unreachable_code)]
            ()
        });
        let report = group.cancel(Duration::from_millis(30)).await;
        assert!(report.aborted.len() > 1, "{report}");
        let ageless: Vec<_> = report.aborted.iter().filter(|t| t.age.is_zero()).collect();
        assert!(ageless.is_empty(), "{ageless:?}");
    }
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// Waits (bounded) until `done` holds; `what` says what it waits for.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still waiting for {what}");
}

/// Waits (bounded) until a live task matches `query`.
async fn live_match(tracker: &Tracker, query: &Query) -> tracked::TaskSnapshot {
    for _ in 0..500 {
        if let Some(task) = tracker.tasks(query).into_iter().next() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no live task matches {query:?}");
}

/// `Duration::MAX` ("as long as it takes") is too large for a deadline: a
/// cancel or a shutdown given it waits for the tasks rather than failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_too_large_for_a_deadline_waits_for_the_tasks() {
    let tracker = Tracker::new();
    tracker.spawn("polite", TaskType::NETWORK, polite());
    let report = tracker.cancel_type(TaskType::NETWORK, Duration::MAX).await;
    assert_eq!((report.stopped, report.aborted.len()), (1, 0), "{report:?}");

    let plan = ShutdownPlan::new()
        .tier("network", [TaskType::NETWORK], Duration::MAX)
        .rest("all", Duration::MAX);
    assert_eq!(plan.total_timeout(), Duration::MAX);
    tracker.spawn("polite", TaskType::DATABASE, polite());
    let report = tracker.shutdown(plan).await;
    assert_eq!(report.tiers.len(), 2, "{report}");
    assert_eq!(report.tiers[1].report.stopped, 1, "{report}");
    assert!(report.is_clean(), "{report}");
    assert!(tracker.is_shut_down());
}

/// A connection's session: a `#[tracked]` fn awaited by the task that
/// accepted the connection, owned by the connection, deaf to cancellation.
#[tracked::tracked(type = "Network", owner = format!("conn-{id}"))]
async fn deaf_session(id: u32) {
    let _ = id;
    std::future::pending::<()>().await;
}

/// An abort cannot stop a `#[tracked]` fn awaited inside another task (it
/// is not a task of tokio's), nor a blocking closure already running: a
/// cancel reports them as left running, not as aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_an_abort_cannot_stop_is_reported_left_running() {
    let tracker = Tracker::new();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let host = tracker.spawn("accept", TaskType::GENERAL, async move {
        tokio::select! {
            () = deaf_session(7) => {}
            _ = released => {}
        }
    });
    let session = live_match(&tracker, &Query::new().owner("conn-7")).await;
    let report = tracker
        .cancel_owner("conn-7", Duration::from_millis(50))
        .await;
    assert!(report.aborted.is_empty(), "{report:?}");
    let left: Vec<_> = report.left_running.iter().map(|t| t.id).collect();
    assert_eq!(left, [session.id], "{report:?}");
    assert!(!report.is_clean());
    assert!(report.to_string().contains("1 left running"), "{report}");
    release.send(()).unwrap();
    host.await.expect("the host task was not aborted");

    let (started, running) = std::sync::mpsc::channel();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let batch = tracker.group("batch");
    let closure = batch
        .builder("export", TaskType::DATABASE)
        .spawn_blocking(move || {
            started.send(()).unwrap();
            finished.recv().unwrap();
            7
        });
    running.recv().unwrap();
    let report = batch.cancel(Duration::from_millis(50)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
    assert_eq!(report.left_running.len(), 1, "{report:?}");
    assert_eq!(report.left_running[0].name, "export");
    finish.send(()).unwrap();
    assert_eq!(closure.await.unwrap(), 7, "the closure ran to its end");
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// A `#[tracked]` fn awaited in a task that the cancel aborts ends with it
/// (`Cancelled`, counted with its task: the task is reported aborted), and
/// a blocking closure still waiting for a thread is ended by its abort
/// before it starts: neither is reported left running.
#[test]
fn what_an_abort_did_stop_is_not_reported_left_running() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tracker = Tracker::new();
    runtime.block_on(async {
        let group = tracker.group("conn-8");
        let host = group.spawn("accept", TaskType::GENERAL, async {
            deaf_session(8).await;
        });
        let session = live_match(&tracker, &Query::new().parent(host.id())).await;
        let report = group.cancel(Duration::from_millis(50)).await;
        assert!(report.left_running.is_empty(), "{report}");
        let aborted: Vec<_> = report.aborted.iter().map(|t| t.id).collect();
        assert_eq!(aborted, [host.id()], "{report}");
        assert!(host.await.unwrap_err().is_cancelled());

        // The only blocking thread runs this one; the next one queues.
        let (started, running) = std::sync::mpsc::channel();
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let busy = tracker.spawn_blocking("busy", TaskType::DATABASE, move || {
            started.send(()).unwrap();
            finished.recv().unwrap();
        });
        running.recv().unwrap();
        let queued = tracker.spawn_blocking("queued", TaskType::DATABASE, || 7);
        let report = tracker
            .cancel_task(queued.id(), Duration::from_millis(50))
            .await;
        assert!(report.left_running.is_empty(), "{report}");
        assert_eq!(report.aborted.len(), 1, "{report}");
        assert_eq!(report.aborted[0].name, "queued");
        finish.send(()).unwrap();
        busy.await.unwrap();
        assert!(queued.await.unwrap_err().is_cancelled(), "it never ran");
        drained(&tracker).await;
        let session = tracker.task(session.id).unwrap().task;
        assert_eq!(session.state, TaskState::Cancelled);
    });
    assert_invariant(&tracker);
}

/// What a signal handler does: a `#[tracked]` fn, awaited in a tracked
/// task, that shuts the service down and logs the report.
#[tracked::tracked(type = "General")]
async fn on_signal(tracker: Tracker) -> tracked::ShutdownReport {
    tracker.shutdown(ShutdownPlan::default()).await
}

/// A shutdown called from a tracked task leaves that task alone, and the
/// `#[tracked]` fn in it that awaits the shutdown: they wait for it, so it
/// can neither wait for them nor abort them (which would lose the report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_leaves_the_task_that_awaits_it_alone() {
    let tracker = Tracker::new();
    tracker.spawn("worker", TaskType::GENERAL, polite());
    let handler = tracker.clone();
    let main = tracker.spawn("main", TaskType::GENERAL, async move {
        let report = on_signal(handler).await;
        let stopped: usize = report.tiers.iter().map(|t| t.report.stopped).sum();
        (report.is_clean(), stopped)
    });
    let (clean, stopped) = main
        .await
        .expect("the task awaiting the shutdown is not aborted");
    assert!(clean);
    assert_eq!(stopped, 1, "the worker only");
    drained(&tracker).await;
    assert_eq!(tracker.stats().total.cancelled, 0, "{:?}", tracker.stats());
}

/// A session that stops when asked, through its own token: a `#[tracked]`
/// fn of another type than the task awaiting it, `depth` fns deep.
#[tracked::tracked(type = "GameLogic")]
async fn session(depth: u32) -> &'static str {
    if depth > 0 {
        return Box::pin(session(depth - 1)).await;
    }
    let me = tracked::current().expect("inside a tracked fn");
    me.cancellation_token().cancelled().await;
    assert!(me.is_cancelled());
    "stopped cleanly"
}

/// What asks a task to stop asks the `#[tracked]` fns awaited in it: their
/// tokens are cancelled with the task's, so one watching its own stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_fn_awaited_in_a_task_is_asked_with_it() {
    let tracker = Tracker::new();
    let sessions = Query::new().ty(TaskType::GAME_LOGIC);
    let one = tracker.spawn("conn", TaskType::NETWORK, session(0));
    live_match(&tracker, &sessions).await;
    let report = tracker.cancel_task(one.id(), Duration::from_secs(20)).await;
    assert_eq!((report.stopped, report.aborted.len()), (1, 0), "{report:?}");
    assert_eq!(one.await.unwrap(), "stopped cleanly");

    // Nested three deep, stopped by the task's type and by a shutdown tier.
    let two = tracker.spawn("conn", TaskType::NETWORK, session(3));
    until("the innermost session", || {
        tracker.tasks(&sessions).len() == 4
    })
    .await;
    let report = tracker
        .cancel_type(TaskType::NETWORK, Duration::from_secs(20))
        .await;
    assert_eq!((report.stopped, report.aborted.len()), (1, 0), "{report:?}");
    assert_eq!(two.await.unwrap(), "stopped cleanly");

    let three = tracker.spawn("conn", TaskType::NETWORK, session(1));
    until("the sessions", || tracker.tasks(&sessions).len() == 2).await;
    let report = tracker
        .shutdown(ShutdownPlan::default_with(Duration::from_secs(20)))
        .await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(three.await.unwrap(), "stopped cleanly");
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// Whether the fn was asked to stop when it started.
#[tracked::tracked(type = "GameLogic")]
async fn asked_at_start() -> bool {
    tracked::current().unwrap().is_cancelled()
}

/// A fn that starts after its task was asked to stop is asked as it starts
/// (not only by the cancel's next scan, which a task spawned into a tier
/// already stopped never gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_fn_starting_in_an_asked_task_is_asked() {
    let tracker = Tracker::new();
    let task = tracker.spawn("conn", TaskType::NETWORK, async {
        // Does not watch its token: only the fns it then starts do.
        let me = tracked::current().unwrap();
        while !me.is_cancelled() {
            tokio::task::yield_now().await;
        }
        (asked_at_start().await, session(0).await)
    });
    let report = tracker
        .cancel_task(task.id(), Duration::from_secs(20))
        .await;
    assert_eq!((report.stopped, report.aborted.len()), (1, 0), "{report:?}");
    assert_eq!(task.await.unwrap(), (true, "stopped cleanly"));
    assert_invariant(&tracker);
}

/// `Group::wait` is `TaskTracker::wait`: it waits for the group's tasks,
/// those that join it meanwhile included, and asks none to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_group_waits_for_every_task_and_stops_none() {
    let tracker = Tracker::new();
    let uploads = tracker.group("uploads");
    tokio::time::timeout(Duration::from_secs(5), uploads.wait())
        .await
        .expect("an empty group is waited for at once");

    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..50u64 {
        let done = Arc::clone(&done);
        uploads.spawn("upload", TaskType::NETWORK, async move {
            tokio::time::sleep(Duration::from_millis(i % 7 * 10)).await;
            // A child joins the group (it inherits the owner), late.
            let child = tracked::spawn("upload::part", TaskType::NETWORK, {
                let done = Arc::clone(&done);
                async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    assert!(!tracked::current().unwrap().is_cancelled());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
            drop(child);
            done.fetch_add(1, Ordering::Relaxed);
        });
    }
    // Other work of the tracker is not waited for.
    let other = tracker.spawn("serve", TaskType::NETWORK, std::future::pending::<()>());
    tokio::time::timeout(Duration::from_secs(30), uploads.wait())
        .await
        .expect("the uploads end");
    assert_eq!(done.load(Ordering::Relaxed), 100);
    assert_eq!(uploads.live().total, 0);
    let cancelled = tracker.finished(&Query::new().state(TaskState::Cancelled));
    assert!(cancelled.is_empty(), "{cancelled:?}");
    other.abort();
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// More spawns and ends than the event buffer holds while waiting (one
/// thread: the waiter runs only when the test awaits): the wait counts the
/// group again rather than missing one.
#[tokio::test]
async fn waiting_for_a_group_survives_falling_behind_the_events() {
    let tracker = Tracker::new();
    let burst = tracker.group("burst");
    let gate = tokio_util::sync::CancellationToken::new();
    let member = |gate: &tokio_util::sync::CancellationToken| {
        let gate = gate.clone();
        async move { gate.cancelled().await }
    };
    burst.spawn("first", TaskType::GENERAL, member(&gate));
    let waiter = tracker.spawn("waiter", TaskType::GENERAL, {
        let burst = burst.clone();
        async move { burst.wait().await }
    });
    // The waiter subscribes and finds the first member.
    tokio::time::sleep(Duration::from_millis(10)).await;
    for _ in 0..20_000 {
        burst.spawn("short", TaskType::GENERAL, member(&gate));
    }
    gate.cancel();
    tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the burst ends")
        .unwrap();
    assert_eq!(burst.live().total, 0);
    assert_eq!(tracker.stats().total.completed, 20_002);
}

/// A network session: a `#[tracked]` fn of the task's own type, awaiting
/// a game session inside it.
#[tracked::tracked(type = "Network")]
async fn net_session() -> &'static str {
    session(0).await
}

/// A cancel counts tasks: the `#[tracked]` fns in them that it selects too
/// (a group's owner is inherited, a fn may have the task's type) are asked
/// with their task, not counted beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_counts_the_tasks_not_the_fns_in_them() {
    let tracker = Tracker::new();
    let group = tracker.group("sessions");
    let handles: Vec<_> = (0..3)
        .map(|_| group.spawn("conn", TaskType::NETWORK, net_session()))
        .collect();
    let fns = || {
        let live = tracker.tasks(&Query::new());
        live.iter().filter(|t| t.kind == SpawnKind::Inline).count()
    };
    until("the fns", || fns() == 6).await;
    let report = group.cancel(Duration::from_secs(20)).await;
    assert_eq!(
        (
            report.stopped,
            report.already_finished,
            report.aborted.len()
        ),
        (3, 0, 0),
        "{report:?}"
    );
    for handle in handles {
        assert_eq!(handle.await.unwrap(), "stopped cleanly");
    }

    let conn = tracker.spawn("conn", TaskType::NETWORK, net_session());
    until("the fns", || fns() == 2).await;
    let report = tracker
        .cancel_type(TaskType::NETWORK, Duration::from_secs(20))
        .await;
    assert_eq!((report.stopped, report.aborted.len()), (1, 0), "{report:?}");
    assert_eq!(conn.await.unwrap(), "stopped cleanly");
    drained(&tracker).await;
    assert_invariant(&tracker);
}

/// An upload that joins its group when it starts: the fn claims the task a
/// rewritten spawn started, and gives it its owner.
#[tracked::tracked(type = "Network", owner = "claimed-uploads")]
async fn claimed_upload(done: Arc<AtomicUsize>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.fetch_add(1, Ordering::Relaxed);
}

#[tracked::tracked(type = "General")]
async fn start_upload(done: Arc<AtomicUsize>) {
    drop(tokio::spawn(claimed_upload(done)));
}

/// A task that joined the group by a claim sends no spawn event of the
/// group's: the wait still finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_group_waits_for_tasks_that_joined_it_by_a_claim() {
    let tracker = Tracker::new();
    let uploads = tracker.group("claimed-uploads");
    uploads.spawn("short", TaskType::NETWORK, async {
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    let done = Arc::new(AtomicUsize::new(0));
    let waiting = tracker.spawn("waiter", TaskType::GENERAL, {
        let uploads = uploads.clone();
        async move { uploads.wait().await }
    });
    tracker
        .spawn("driver", TaskType::GENERAL, start_upload(Arc::clone(&done)))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the uploads end")
        .unwrap();
    assert_eq!(
        done.load(Ordering::Relaxed),
        1,
        "the wait ended before the claimed upload"
    );
    assert_eq!(uploads.live().total, 0);
}

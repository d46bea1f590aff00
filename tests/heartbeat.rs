//! The heartbeat: phases on one timer, schedules, isolation, housekeeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracked::{Heartbeat, Query, Received, TaskState, TaskType, Tracker, Watchdog};

mod common;
use common::assert_invariant;
#[path = "common/logs.rs"]
mod logs;
use logs::logged;

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_run_in_order_on_their_schedules_and_a_panic_is_isolated() {
    let tracker = Tracker::new();
    let ticks = Arc::new(AtomicU64::new(0));
    let healthy = Arc::new(AtomicU64::new(0));
    let heartbeat = Heartbeat::new(Duration::from_millis(5))
        .every("count", 1, {
            let ticks = ticks.clone();
            move || {
                ticks.fetch_add(1, Ordering::Relaxed);
                async {}
            }
        })
        .every("every-third", 3, || async {})
        .every("flaky", 2, || async { Err::<(), _>("backend unavailable") })
        .every("panics", 4, || async { panic!("phase bug") })
        .every(
            "panics-making-its-future",
            4,
            || -> std::future::Ready<()> { panic!("sync phase bug") },
        )
        .adaptive(
            "panicking-schedule",
            |_| -> u64 { panic!("schedule bug") },
            || async {},
        )
        .adaptive(
            "reconnect",
            {
                let healthy = healthy.clone();
                move |_| {
                    if healthy.load(Ordering::Relaxed) < 3 {
                        1
                    } else {
                        4
                    }
                }
            },
            {
                let healthy = healthy.clone();
                move || {
                    healthy.fetch_add(1, Ordering::Relaxed);
                    async {}
                }
            },
        )
        .spawn(&tracker);
    until(|| ticks.load(Ordering::Relaxed) >= 24).await;
    let stats = heartbeat.stats();
    // The heartbeat is one tracked task and it survived the panics.
    let hb = tracker.tasks(&Query::new().name_prefix("tracked::heartbeat"));
    heartbeat.stop();
    assert_eq!(hb.len(), 1);
    assert_eq!(hb[0].ty, TaskType::MAINTENANCE);
    until(|| tracker.stats().total.live() == 0).await;
    assert_invariant(&tracker);
    let runs = |name: &str| stats.iter().find(|p| p.name == name).unwrap().runs;
    let count = runs("count");
    // Every phase keyed to the tick count, within one tick of slack.
    assert!(
        runs("every-third").abs_diff(count.div_ceil(3)) <= 1,
        "{stats:?}"
    );
    let flaky = stats.iter().find(|p| p.name == "flaky").unwrap();
    assert_eq!(flaky.errors, flaky.runs);
    assert_eq!(flaky.last_error.as_deref(), Some("backend unavailable"));
    let panics = stats.iter().find(|p| p.name == "panics").unwrap();
    assert!(
        panics.panics >= 5 && panics.panics == panics.runs,
        "{panics:?}"
    );
    assert_eq!(panics.last_error.as_deref(), Some("phase bug"));
    for (name, message) in [
        ("panics-making-its-future", "sync phase bug"),
        ("panicking-schedule", "schedule bug"),
    ] {
        let phase = stats.iter().find(|p| p.name == name).unwrap();
        assert!(phase.panics >= 5 && phase.panics == phase.runs, "{phase:?}");
        assert_eq!(phase.last_error.as_deref(), Some(message));
    }
    // Adaptive: every tick for the first three runs, then every fourth.
    let reconnect = runs("reconnect");
    assert!(
        reconnect >= 3 + (count - 3) / 4 - 1 && reconnect <= 3 + (count - 3) / 4 + 2,
        "{reconnect} of {count}"
    );
    assert!(stats.iter().all(|p| p.total_duration >= p.last_duration));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_the_heartbeat_cooperatively_between_phases() {
    let tracker = Tracker::new();
    let runs = Arc::new(AtomicU64::new(0));
    let heartbeat = Heartbeat::new(Duration::from_millis(5))
        .housekeeping(&tracker)
        .every("slow", 1, {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20))
            }
        })
        .spawn(&tracker);
    until(|| runs.load(Ordering::Relaxed) >= 3).await;

    let report = tracker
        .shutdown(tracked::ShutdownPlan::default_with(Duration::from_secs(10)))
        .await;
    assert!(report.is_clean(), "{report:?}");
    let maintenance = &report.tiers[1];
    assert_eq!(maintenance.name, "maintenance");
    assert_eq!(maintenance.report.stopped, 1);
    let task = tracker.task(heartbeat.id()).expect("in history").task;
    // It returned by itself: a cooperative stop ends as Completed.
    assert_eq!(task.state, TaskState::Completed);
    let stats = tracker.stats().total;
    assert_eq!(stats.live(), 0);
    assert_eq!(stats.spawned, stats.finished());
}

/// A tracker with `watchdog`, its event stream, and a housekeeping heartbeat
/// scanning every 10 ms on the current runtime.
fn watched(watchdog: Watchdog) -> (Tracker, tracked::EventStream, tracked::HeartbeatHandle) {
    let tracker = Tracker::builder().watchdog(watchdog).build();
    let events = tracker.subscribe();
    let housekeeping = Heartbeat::new(Duration::from_millis(10))
        .housekeeping(&tracker)
        .spawn(&tracker);
    (tracker, events, housekeeping)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_reports_long_polls_and_long_running_tasks_once() {
    let (tracker, mut events, housekeeping) = watched(
        Watchdog::new()
            .long_poll(None, Duration::from_millis(40))
            .long_running(Some(TaskType::NETWORK), Duration::from_millis(50)),
    );
    let blocker = tracker.spawn("blocker", TaskType::DATABASE, async {
        std::thread::sleep(Duration::from_millis(250));
    });
    let lingering = tracker.spawn("lingering", TaskType::NETWORK, std::future::pending::<()>());
    blocker.await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    housekeeping.stop();
    lingering.abort();

    let mut warnings = Vec::new();
    while let Some(received) = events.try_recv() {
        if let Received::Event(event) = received {
            if let tracked::EventKind::Warning(w) = event.kind {
                warnings.push((event.name.to_string(), w));
            }
        }
    }
    let long_polls = warnings
        .iter()
        .filter(|(n, w)| n == "blocker" && matches!(w, tracked::Warning::LongPoll { .. }))
        .count();
    let long_running = warnings
        .iter()
        .filter(|(n, w)| n == "lingering" && matches!(w, tracked::Warning::LongRunning { .. }))
        .count();
    assert_eq!((long_polls, long_running), (1, 1), "{warnings:?}");
    until(|| tracker.stats().total.live() == 0).await;
    assert_invariant(&tracker);
}

/// A `#[tracked]` fn awaited inside a task, blocking in its poll: the task
/// and the fn are both in that poll, and the watchdog reports it once, at
/// the fn, which says where. (It used to warn once per level.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_inside_nested_fns_is_reported_once_at_the_innermost() {
    #[tracked::tracked(type = "Database")]
    async fn blocking_query() {
        std::thread::sleep(Duration::from_millis(250));
    }
    #[tracked::tracked(type = "Database")]
    async fn load() {
        blocking_query().await;
    }
    let (tracker, mut events, housekeeping) =
        watched(Watchdog::new().long_poll(None, Duration::from_millis(40)));
    tracker
        .spawn("outer", TaskType::NETWORK, load())
        .await
        .unwrap();
    housekeeping.stop();
    let names = warned(&mut events, |w| {
        matches!(w, tracked::Warning::LongPoll { .. })
    });
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("blocking_query"), "{names:?}");
    let counted: u64 = tracker.warnings().values().map(|c| c.long_poll).sum();
    assert_eq!(counted, 1);
}

/// A scan that looks at a task just before the fn it awaits enters their
/// poll sees the fn in it a scan later than the task: the task crosses the
/// threshold first. The fn still gets the warning, one scan later; if the
/// poll ends before that scan, the task gets it then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fn_seen_in_its_task_s_long_poll_a_scan_late_still_gets_the_warning() {
    assert_eq!(
        seen_a_scan_late(false).await,
        ["heartbeat::query_seen_late"]
    );
    assert_eq!(seen_a_scan_late(true).await, ["outer"]);
}

/// Runs the scenario above, the fn's poll ending before the third scan if
/// `ends_early`; the tasks warned about a long poll.
async fn seen_a_scan_late(ends_early: bool) -> Vec<String> {
    use std::sync::mpsc;
    #[tracked::tracked(type = "Database")]
    async fn query_seen_late(entered: mpsc::Sender<()>, done: mpsc::Receiver<()>) {
        entered.send(()).unwrap();
        done.recv().unwrap();
    }
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(40)))
        .build();
    let mut events = tracker.subscribe();
    let (entered, in_poll) = mpsc::channel();
    let (go, went) = mpsc::channel::<()>();
    let (done, finish) = mpsc::channel();
    let task = tracker.spawn("outer", TaskType::NETWORK, async move {
        entered.send(()).unwrap();
        went.recv().unwrap();
        query_seen_late(entered, finish).await;
        // Live, out of its poll.
        std::future::pending::<()>().await;
    });
    let wait = |what: &str| {
        in_poll
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{what} never entered its poll"))
    };
    wait("the task");
    tracker.watchdog_scan(); // the task in its poll, the fn not yet
    go.send(()).unwrap();
    wait("the fn");
    std::thread::sleep(Duration::from_millis(50));
    tracker.watchdog_scan(); // the task over its threshold, the fn just seen
    let fn_ended = || {
        tracker
            .tasks(&Query::new().name_prefix("heartbeat::"))
            .is_empty()
    };
    if ends_early {
        done.send(()).unwrap();
        until(fn_ended).await;
    } else {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracker.watchdog_scan(); // the fn over, or ended
    if !ends_early {
        done.send(()).unwrap();
        until(fn_ended).await;
    }
    task.abort();
    warned(&mut events, |w| {
        matches!(w, tracked::Warning::LongPoll { .. })
    })
}

/// The same for a wait that never ends: a task awaiting a `#[tracked]` fn
/// that awaits forever is idle at both levels, and reported once, at the fn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_wait_inside_a_nested_fn_is_reported_once_at_the_fn() {
    #[tracked::tracked(type = "Network")]
    async fn wait_for_peer() {
        std::future::pending::<()>().await;
    }
    let (tracker, mut events, housekeeping) =
        watched(Watchdog::new().idle(None, Duration::from_millis(40)));
    let waiting = tracker.spawn("outer", TaskType::NETWORK, wait_for_peer());
    until(|| tracker.warnings().values().any(|c| c.idle > 0)).await;
    // Scans enough for the outer task to have been warned about, had it not
    // been covered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    housekeeping.stop();
    waiting.abort();
    let names = warned(&mut events, |w| matches!(w, tracked::Warning::Idle { .. }));
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("wait_for_peer"), "{names:?}");
}

/// A task calling a `#[tracked]` fn in a loop, each call waiting longer
/// than the idle threshold (a worker waiting for its next job): the task is
/// warned about once, at the first call, as a task waiting in its own body
/// is, not once per call; and a listing shows the task itself as warned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fn_awaited_in_a_loop_is_warned_about_once_per_task() {
    #[tracked::tracked(type = "Network")]
    async fn next_job(jobs: &tokio::sync::Notify) {
        jobs.notified().await;
    }
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().idle(None, Duration::from_millis(30)))
        .build();
    let mut events = tracker.subscribe();
    let jobs = Arc::new(tokio::sync::Notify::new());
    let worker = tracker.spawn("worker", TaskType::NETWORK, {
        let jobs = jobs.clone();
        async move {
            loop {
                next_job(&jobs).await;
            }
        }
    });
    let mut calls = Vec::new();
    for _ in 0..3 {
        // The next call, polled and waiting for its job.
        let mut call = None;
        until(|| {
            call = tracker.tasks(&Query::new()).into_iter().find(|task| {
                task.name.ends_with("next_job") && task.polls > 0 && !calls.contains(&task.id)
            });
            call.is_some()
        })
        .await;
        calls.push(call.unwrap().id);
        // Seen idle by two scans further apart than the threshold.
        tracker.watchdog_scan();
        tokio::time::sleep(Duration::from_millis(40)).await;
        tracker.watchdog_scan();
        jobs.notify_one();
    }
    let names = warned(&mut events, |w| matches!(w, tracked::Warning::Idle { .. }));
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("next_job"), "{names:?}");
    assert_eq!(tracker.warnings()[&TaskType::NETWORK].idle, 1);
    let listed = tracker.tasks(&Query::new().name_prefix("worker"));
    assert!(listed[0].warned.idle(), "{listed:?}");
    worker.abort();
}

/// A task whose whole body is a `#[tracked]` fn runs as long as the fn: one
/// long-running warning, at the fn, not one per level. A fn of a type with
/// no long-running threshold does not cover its task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_inside_a_nested_fn_is_reported_once_at_the_fn() {
    #[tracked::tracked(type = "Network")]
    async fn wait_for_leader() {
        std::future::pending::<()>().await;
    }
    #[tracked::tracked(type = "Database")]
    async fn wait_for_row() {
        std::future::pending::<()>().await;
    }
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_running(Some(TaskType::NETWORK), Duration::from_millis(30)))
        .build();
    let mut events = tracker.subscribe();
    let peer = tracker.spawn("peer", TaskType::NETWORK, wait_for_leader());
    let row = tracker.spawn("row", TaskType::NETWORK, wait_for_row());
    tokio::time::sleep(Duration::from_millis(40)).await;
    tracker.watchdog_scan();
    tracker.watchdog_scan();
    let mut names = warned(&mut events, |w| {
        matches!(w, tracked::Warning::LongRunning { .. })
    });
    names.sort();
    assert_eq!(names, ["heartbeat::wait_for_leader", "row"]);
    assert_eq!(tracker.warnings()[&TaskType::NETWORK].long_running, 2);
    let listed = tracker.tasks(&Query::new().name_prefix("peer"));
    assert!(listed[0].warned.long_running(), "{listed:?}");
    peer.abort();
    row.abort();
}

/// A task blocking through `tracked::block_in_place` means its long poll
/// (tokio moves its worker's other tasks to another thread): not warned
/// about, at any level of the fns it is in. Through tokio's own the
/// watchdog cannot tell, and warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_blocking_in_place_is_not_a_long_poll() {
    #[tracked::tracked(type = "Database")]
    async fn read_file(ours: bool) {
        let read = || std::thread::sleep(Duration::from_millis(250));
        if ours {
            tracked::block_in_place(read);
        } else {
            // tracked: allow(untracked-block-in-place) -- the unmarked block this test compares against
            tokio::task::block_in_place(read);
        }
    }
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(40)))
        .build();
    let mut events = tracker.subscribe();
    // Scans from a thread of their own, whatever the runtime's workers do.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = std::thread::spawn({
        let (tracker, stop) = (tracker.clone(), stop.clone());
        move || {
            while !stop.load(Ordering::Relaxed) {
                tracker.watchdog_scan();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let in_place = async {
        tracked::block_in_place(|| std::thread::sleep(Duration::from_millis(250)));
    };
    let tasks = [
        tracker.spawn("in place", TaskType::DATABASE, in_place),
        tracker.spawn("fn in place", TaskType::DATABASE, read_file(true)),
    ];
    for task in tasks {
        task.await.unwrap();
    }
    let tokio_s = tracker.spawn("tokio's", TaskType::DATABASE, read_file(false));
    tokio_s.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    scanner.join().unwrap();
    let names = warned(&mut events, |w| {
        matches!(w, tracked::Warning::LongPoll { .. })
    });
    assert_eq!(names, ["heartbeat::read_file"]);
    assert_eq!(tracker.warnings()[&TaskType::DATABASE].long_poll, 1);
}

/// The time a fn spends blocking in place does not count towards the long
/// poll of the task it is awaited in: scans that come after the fn's
/// `block_in_place` has returned, its poll not yet over, warn about
/// nothing (they warned about the task, in its poll for 150 ms by then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_blocked_in_place_does_not_count_for_the_task() {
    use std::sync::mpsc;
    #[tracked::tracked(type = "Database")]
    async fn read_in_place(in_place: mpsc::Sender<()>, out: mpsc::Receiver<()>) {
        tracked::block_in_place(|| {
            in_place.send(()).unwrap();
            out.recv().unwrap();
        });
        // Still in the poll, no longer in place.
        in_place.send(()).unwrap();
        out.recv().unwrap();
    }
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(40)))
        .build();
    let mut events = tracker.subscribe();
    let (in_place, reached) = mpsc::channel();
    let (go_on, out) = mpsc::channel();
    let task = tracker.spawn("outer", TaskType::DATABASE, read_in_place(in_place, out));
    let reach = || {
        reached
            .recv_timeout(Duration::from_secs(30))
            .expect("the fn goes on")
    };
    reach();
    for _ in 0..3 {
        tracker.watchdog_scan();
        std::thread::sleep(Duration::from_millis(50));
    }
    go_on.send(()).unwrap();
    reach(); // out of `block_in_place`, in the same poll
    tracker.watchdog_scan();
    tracker.watchdog_scan();
    go_on.send(()).unwrap();
    task.await.unwrap();
    let names = warned(&mut events, |w| {
        matches!(w, tracked::Warning::LongPoll { .. })
    });
    assert_eq!(names, Vec::<String>::new());
}

/// The names of the tasks `events` warned about with `kind`, in order.
fn warned(events: &mut tracked::EventStream, kind: fn(&tracked::Warning) -> bool) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(received) = events.try_recv() {
        if let Received::Event(event) = received {
            if let tracked::EventKind::Warning(w) = &event.kind {
                if kind(w) {
                    names.push(event.name.to_string());
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_reports_a_task_left_waiting_once_and_not_a_busy_one() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().idle(Some(TaskType::NETWORK), Duration::from_millis(500)))
        .build();
    let mut events = tracker.subscribe();
    // The reply never comes: its sender is kept but never used.
    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel::<()>();
    let waiting = tracker.spawn("awaiting-reply", TaskType::NETWORK, async move {
        let _ = reply_rx.await;
    });
    let ticking = tracker.spawn("ticking", TaskType::NETWORK, async {
        let mut ticks = tokio::time::interval(Duration::from_millis(1));
        for _ in 0u64.. {
            ticks.tick().await;
        }
    });
    // Idle as long, but of a type without an idle threshold.
    let parked = tracker.spawn("parked", TaskType::DATABASE, std::future::pending::<()>());
    // Scans by hand, 50 ms apart, for at least twice the threshold.
    for _ in 0..20 {
        tracker.watchdog_scan();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = warned(&mut events, |w| matches!(w, tracked::Warning::Idle { .. }));
    assert_eq!(
        idle,
        ["awaiting-reply"],
        "once, and only the one left waiting"
    );
    let warned = |id| tracker.task(id).expect("live").task.warned;
    assert!(warned(waiting.id()).idle());
    assert_eq!(warned(waiting.id()).kinds().collect::<Vec<_>>(), ["idle"]);
    assert!(!warned(ticking.id()).any());
    let flagged: Vec<String> = tracker
        .tasks(&Query::new().warned(true))
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(flagged, ["awaiting-reply"]);
    let counts = tracker.warnings();
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&TaskType::NETWORK]);
    let network = counts[&TaskType::NETWORK];
    assert_eq!(
        (network.idle, network.long_poll, network.long_running),
        (1, 0, 0)
    );

    drop(reply_tx);
    waiting.await.unwrap();
    ticking.abort();
    parked.abort();
    until(|| tracker.stats().total.live() == 0).await;
    assert_invariant(&tracker);
}

/// With polls timed the record says when the task went idle, so the first
/// scan reports it; sampling needs a second scan to see it has not moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_timed_polls_the_first_scan_reports_an_idle_task() {
    let threshold = Duration::from_millis(30);
    let watchdog = || Watchdog::new().idle(Some(TaskType::NETWORK), threshold);
    let timed = Tracker::builder()
        .busy_time(true)
        .watchdog(watchdog())
        .build();
    let sampled = Tracker::builder().watchdog(watchdog()).build();
    let mut handles = Vec::new();
    for tracker in [&timed, &sampled] {
        handles.push(tracker.spawn(
            "awaiting-reply",
            TaskType::NETWORK,
            std::future::pending::<()>(),
        ));
        until(|| tracker.tasks(&Query::new())[0].polls == 1).await;
    }
    // Past the threshold since the first poll ended, before any scan.
    tokio::time::sleep(threshold * 2).await;
    timed.watchdog_scan();
    sampled.watchdog_scan();
    assert!(timed.tasks(&Query::new())[0].warned.idle());
    assert!(!sampled.tasks(&Query::new())[0].warned.idle());
    for handle in handles {
        handle.abort();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_dedicated_heartbeat_sees_a_long_poll_that_blocks_the_only_worker() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(40)))
        .build();
    let mut events = tracker.subscribe();
    let heartbeat = Heartbeat::new(Duration::from_millis(10))
        .housekeeping(&tracker)
        .spawn_dedicated(&tracker)
        .expect("a thread and a runtime");
    // This runtime has one thread; the blocker stalls it for the whole poll,
    // so a heartbeat spawned here could not tick until the poll had ended.
    tracker
        .spawn("blocker", TaskType::DATABASE, async {
            std::thread::sleep(Duration::from_millis(250));
        })
        .await
        .unwrap();
    heartbeat.stop();
    for _ in 0..1000 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    let mut long_polls = 0;
    while let Some(received) = events.try_recv() {
        if let Received::Event(event) = received {
            if event.name == "blocker" && matches!(event.kind, tracked::EventKind::Warning(_)) {
                long_polls += 1;
            }
        }
    }
    assert_eq!(long_polls, 1);
    let stats = tracker.stats().total;
    assert_eq!(stats.live(), 0, "the heartbeat ended on its own thread");
    assert_eq!(stats.spawned, stats.finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_bad_when_too_many_tasks_of_a_type_fail() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().health(20, 0.10))
        .build();
    for i in 0..20 {
        tracker
            .spawn("ok-or-not", TaskType::NETWORK, async move {
                if i % 4 == 0 {
                    Err("refused")
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap()
            .ok();
        tracker
            .spawn("fine", TaskType::DATABASE, async {})
            .await
            .unwrap();
    }
    tracker.watchdog_scan();
    let health = tracker.health();
    assert!(!health.by_type[&TaskType::NETWORK].healthy);
    assert_eq!(health.by_type[&TaskType::NETWORK].failures, 5);
    assert!(health.by_type[&TaskType::DATABASE].healthy);
    assert!(!health.is_healthy());
    // Twenty good endings push the failures out of the window.
    for _ in 0..20 {
        tracker
            .spawn("ok", TaskType::NETWORK, async {})
            .await
            .unwrap();
    }
    tracker.watchdog_scan();
    assert!(tracker.health().is_healthy());
}

/// A readiness probe or a metrics scrape asking while a scan is under way
/// (here held up by the subscriber writing its warning, as a slow log sink
/// or a scan of 20,000 tasks would) gets its answer without waiting for it.
#[test]
fn health_and_warnings_do_not_wait_for_a_scan() {
    use std::sync::mpsc;
    use std::sync::Mutex;

    logs::second_dispatch();
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_running(None, Duration::ZERO))
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let _stuck = tracker.spawn("stuck", TaskType::NETWORK, std::future::pending::<()>());
    let (writing, scan_writes) = mpsc::channel();
    let (answered, go_on) = mpsc::channel::<()>();
    let hold = Mutex::new(Some((writing, go_on)));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || {
            if let Some((writing, go_on)) = hold.lock().unwrap().take() {
                writing.send(()).unwrap();
                // Bounded, so that a failing test ends.
                let _ = go_on.recv_timeout(Duration::from_secs(60));
            }
            std::io::sink()
        })
        .finish();
    let scanner = std::thread::spawn({
        let tracker = tracker.clone();
        move || tracing::subscriber::with_default(subscriber, || tracker.watchdog_scan())
    });
    scan_writes
        .recv_timeout(Duration::from_secs(60))
        .expect("the scan warns about the stuck task");
    let (answer, answers) = mpsc::channel();
    std::thread::spawn({
        let tracker = tracker.clone();
        move || answer.send((tracker.health(), tracker.warnings())).unwrap()
    });
    let during_scan = answers.recv_timeout(Duration::from_secs(30));
    answered.send(()).unwrap();
    scanner.join().unwrap();
    let (health, warnings) = during_scan.expect("health() and warnings() waited for the scan");
    assert!(health.is_healthy());
    assert_eq!(warnings[&TaskType::NETWORK].long_running, 1);
}

/// A rare type's endings stay in its window however many updates a busy
/// type's endings make meanwhile: the window is its last endings, not the
/// last few thousand health updates.
#[tokio::test]
async fn a_rare_type_keeps_its_window_while_a_busy_type_ends_tasks() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().health(10, 0.2))
        .build();
    let nightly = tracker.spawn("vacuum", TaskType::MAINTENANCE, async {
        Err::<(), _>("disk full")
    });
    nightly.await.unwrap().unwrap_err();
    for _ in 0..5000 {
        tracker
            .spawn("ping", TaskType::NETWORK, async {})
            .await
            .unwrap();
        tracker.health();
    }
    let health = tracker.health();
    let rare = &health.by_type[&TaskType::MAINTENANCE];
    assert_eq!((rare.endings, rare.failures, rare.healthy), (1, 1, false));
    assert_eq!(health.by_type[&TaskType::NETWORK].endings, 10);

    // A window longer than the updates kept per type still counts every
    // ending in it: the oldest updates are merged, not dropped.
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().health(1000, 0.5))
        .build();
    for i in 0..300 {
        let task = tracker.spawn("dial", TaskType::NETWORK, async move {
            if i % 3 == 0 {
                Err("refused")
            } else {
                Ok(())
            }
        });
        task.await.unwrap().ok();
        tracker.health();
    }
    let network = &tracker.health().by_type[&TaskType::NETWORK];
    assert_eq!((network.endings, network.failures), (300, 100));
}

#[tokio::test]
async fn health_is_current_without_a_scan_and_asking_often_keeps_the_window() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().health(10, 0.2))
        .build();
    // No heartbeat, no scan: a readiness check still sees the failure.
    let refused = tracker.spawn("dial", TaskType::NETWORK, async { Err::<(), _>("refused") });
    refused.await.unwrap().unwrap_err();
    let health = tracker.health();
    assert_eq!(health.by_type[&TaskType::NETWORK].endings, 1);
    assert!(!health.is_healthy());
    // Asked far more often than the window keeps updates, with nothing
    // ending in between: the failure is still in the window.
    for _ in 0..5_000 {
        tracker.health();
    }
    tracker.watchdog_scan();
    let health = tracker.health();
    assert_eq!(health.by_type[&TaskType::NETWORK].failures, 1);
    assert!(!health.is_healthy());
}

/// A report through a task's handle kept past its end is ignored, as the
/// handle's docs say: the task's last event stays its `Finished`.
#[tokio::test]
async fn progress_reported_after_the_end_sends_no_event() {
    let tracker = Tracker::new();
    let mut events = tracker.subscribe();
    let kept = tracker
        .spawn("short", TaskType::GENERAL, async { tracked::current() })
        .await
        .unwrap()
        .expect("a tracked task");
    kept.progress(77, "reported after the task ended");
    let mut kinds = Vec::new();
    while let Some(Received::Event(event)) = events.try_recv() {
        kinds.push(event.kind);
    }
    assert!(
        matches!(kinds.last(), Some(tracked::EventKind::Finished { .. })),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn events_cover_the_lifecycle_and_a_slow_subscriber_is_told_what_it_missed() {
    let tracker = Tracker::new();
    let mut events = tracker.subscribe();
    tracker
        .spawn("observed", TaskType::GENERAL, async {
            tracked::progress(50, "half");
            Err::<(), _>("nope")
        })
        .await
        .unwrap()
        .ok();
    let mut kinds = Vec::new();
    while let Some(Received::Event(event)) = events.try_recv() {
        assert_eq!(event.name, "observed");
        kinds.push(event.kind);
    }
    assert!(matches!(
        kinds[0],
        tracked::EventKind::Spawned { parent: None, .. }
    ));
    assert_eq!(kinds[1], tracked::EventKind::Started);
    assert!(
        matches!(&kinds[2], tracked::EventKind::Progress { percent: 50, message: Some(m) } if m == "half")
    );
    assert!(
        matches!(&kinds[3], tracked::EventKind::Finished { state: TaskState::Failed, error: Some(e) } if e == "nope")
    );

    // A subscriber that never reads loses the oldest events, is told how
    // many, and the tasks were never slowed.
    let mut slow = tracker.subscribe();
    for _ in 0..3000 {
        tracker
            .spawn("flood", TaskType::GENERAL, async {})
            .await
            .unwrap();
    }
    match slow.try_recv() {
        Some(Received::Missed(n)) => assert!(n > 0),
        other => panic!("expected a missed count, got {other:?}"),
    }
}

async fn ticking(tracker: &Tracker) -> tracked::HeartbeatHandle {
    let heartbeat = Heartbeat::new(Duration::from_millis(5))
        .name("ops-heartbeat")
        .housekeeping(tracker)
        .spawn(tracker);
    until(|| heartbeat.stats()[1].runs >= 2).await;
    heartbeat
}

#[test]
fn a_heartbeat_cancelled_outside_a_shutdown_says_its_phases_stopped() {
    let logs = logged(|tracker| async move {
        let heartbeat = ticking(&tracker).await;
        let report = tracker
            .cancel_task(heartbeat.id(), Duration::from_secs(10))
            .await;
        assert_eq!(report.stopped, 1, "{report:?}");
    });
    let warning = logs
        .lines()
        .find(|l| l.contains("heartbeat cancelled outside a shutdown"))
        .unwrap_or_else(|| panic!("no warning in:\n{logs}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("ops-heartbeat"), "{warning}");
    assert!(warning.contains("tracked::watchdog"), "{warning}");

    // Cancelled by its type, the same.
    let logs = logged(|tracker| async move {
        ticking(&tracker).await;
        let report = tracker
            .cancel_type(TaskType::MAINTENANCE, Duration::from_secs(10))
            .await;
        assert_eq!(report.stopped, 1, "{report:?}");
    });
    assert!(
        logs.contains("heartbeat cancelled outside a shutdown"),
        "{logs}"
    );
}

#[test]
fn a_heartbeat_stopped_by_a_shutdown_or_its_handle_says_nothing() {
    let logs = logged(|tracker| async move {
        ticking(&tracker).await;
        let report = tracker
            .shutdown(tracked::ShutdownPlan::default_with(Duration::from_secs(10)))
            .await;
        assert_eq!(report.tiers[1].report.stopped, 1, "{report:?}");
    });
    assert!(!logs.contains("heartbeat cancelled"), "{logs}");

    // Asked to stop (a signal handler's `request_shutdown`), then cancelled
    // by the service's own cancel of its type: expected too.
    let logs = logged(|tracker| async move {
        ticking(&tracker).await;
        tracker.request_shutdown("SIGTERM");
        let report = tracker
            .cancel_type(TaskType::MAINTENANCE, Duration::from_secs(10))
            .await;
        assert_eq!(report.stopped, 1, "{report:?}");
    });
    assert!(!logs.contains("heartbeat cancelled"), "{logs}");

    let logs = logged(|tracker| async move {
        let heartbeat = ticking(&tracker).await;
        heartbeat.stop();
        until(|| tracker.stats().total.live() == 0).await;
    });
    assert!(!logs.contains("heartbeat cancelled"), "{logs}");
}

/// A blocking closure runs on tokio's blocking pool, where taking long is
/// what it is for: it holds up no worker, so it is no long poll. An async
/// task stuck the same way inside a poll is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_blocking_closure_is_not_taken_for_a_long_poll() {
    let tracker = Tracker::builder()
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(1)))
        .build();
    let (release_pool, pool_waits) = std::sync::mpsc::channel::<()>();
    let (release_worker, worker_waits) = std::sync::mpsc::channel::<()>();
    let pool = tracker.spawn_blocking("pool-io", TaskType::DATABASE, move || {
        let _ = pool_waits.recv();
    });
    let worker = tracker.spawn("worker-io", TaskType::DATABASE, async move {
        let _ = worker_waits.recv(); // blocking inside a poll
    });
    let running = |id| {
        let tracker = tracker.clone();
        move || tracker.task(id).unwrap().task.state == TaskState::Running
    };
    until(running(pool.id())).await;
    until(running(worker.id())).await;
    // Two scans that see each inside the same run, longer apart than the
    // threshold.
    tracker.watchdog_scan();
    tokio::time::sleep(Duration::from_millis(20)).await;
    tracker.watchdog_scan();

    let warned = |id| tracker.task(id).unwrap().task.warned;
    assert!(warned(worker.id()).long_poll());
    assert!(!warned(pool.id()).any(), "{:?}", warned(pool.id()));
    assert_eq!(tracker.warnings()[&TaskType::DATABASE].long_poll, 1);
    release_pool.send(()).unwrap();
    release_worker.send(()).unwrap();
    pool.await.unwrap();
    worker.await.unwrap();
}

/// A phase slower than the period holds up the phases after it and the
/// ticks: its first such run is reported while it runs (a phase that never
/// ends would otherwise stop the watchdog unseen), once.
#[test]
fn a_phase_slower_than_the_period_is_reported_once() {
    let logs = logged(|tracker| async move {
        let heartbeat = Heartbeat::new(Duration::from_millis(2))
            .every("quick", 1, || async {})
            .every("sluggish", 1, || {
                tokio::time::sleep(Duration::from_millis(20))
            })
            .every("blocking", 1, || {
                std::thread::sleep(Duration::from_millis(20));
                std::future::ready(())
            })
            .housekeeping(&tracker)
            .spawn(&tracker);
        until(|| heartbeat.stats()[2].runs >= 3).await;
        heartbeat.stop();
    });
    for phase in ["sluggish", "blocking"] {
        let slow: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("longer than the period") && l.contains(phase))
            .collect();
        assert_eq!(slow.len(), 1, "{phase}: {logs}");
        assert!(slow[0].contains("WARN"), "{logs}");
    }
    // A phase that never ends is reported while it runs: nothing else would
    // say that the heartbeat, and the watchdog with it, has stopped.
    let logs = logged(|tracker| async move {
        let heartbeat = Heartbeat::new(Duration::from_millis(2))
            .every("stuck", 1, std::future::pending::<()>)
            .spawn(&tracker);
        // Ample time for a 2 ms period to pass, however loaded the machine.
        tokio::time::sleep(Duration::from_millis(500)).await;
        heartbeat.stop();
    });
    assert!(
        logs.lines()
            .any(|l| l.contains("is running longer than the period") && l.contains("stuck")),
        "{logs}"
    );
}

/// The library's own long-lived tasks (the heartbeat, the HTTP server, the
/// journal's writer) run and wait for the life of the service by design:
/// idle and long-running thresholds skip them, while a task of the
/// service's own that does the same is warned about.
#[cfg(all(feature = "http", feature = "journal"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_librarys_own_tasks_are_not_warned_about_for_waiting() {
    let threshold = Duration::from_millis(20);
    let (tracker, mut events, housekeeping) = watched(
        Watchdog::new()
            .idle(None, threshold)
            .long_running(None, threshold),
    );
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("heartbeat-own-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = tracked::journal::Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    let server = tracked::http::serve(tracker.clone(), tracked::http::Config::new())
        .await
        .unwrap();
    let own = [
        "tracked::heartbeat",
        "tracked::http::server",
        "tracked::journal",
    ];
    until(|| {
        own.iter()
            .all(|name| !tracker.tasks(&Query::new().name_prefix(*name)).is_empty())
    })
    .await;
    let waiting = tracker.spawn("waits", TaskType::NETWORK, std::future::pending::<()>());
    until(|| {
        let counts = tracker.warnings();
        counts
            .get(&TaskType::NETWORK)
            .is_some_and(|c| c.idle > 0 && c.long_running > 0)
    })
    .await;
    // Scans enough for the library's tasks to have been warned about too.
    tokio::time::sleep(threshold * 5).await;
    housekeeping.stop();
    waiting.abort();
    let names = warned(&mut events, |_| true);
    assert_eq!(
        names,
        ["waits", "waits"],
        "idle and long-running, once each"
    );
    server.shutdown().await;
    journal.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a runtime without its timer, spawning a heartbeat panics at the call,
/// as `tokio::time::interval` does, instead of leaving a task that panics
/// at its first poll.
#[test]
fn a_runtime_without_timers_is_refused_at_the_spawn() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tracker = Tracker::new();
    let _runtime = runtime.enter();
    let panic = std::panic::catch_unwind(|| {
        Heartbeat::new(Duration::from_millis(5))
            .housekeeping(&tracker)
            .spawn(&tracker)
    })
    .expect_err("no timer");
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.contains("timers are disabled"), "{message}");
    assert_eq!(tracker.stats().total.spawned, 0, "no task left to panic");
}

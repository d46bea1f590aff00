//! Queries: filters, limits, one task with its children, owners, progress.

use std::time::Duration;

use tracked::{Query, TaskState, TaskType, Tracker};

#[tokio::test]
async fn filters_combine_and_limit_keeps_the_oldest() {
    let tracker = Tracker::new();
    let mut handles = Vec::new();
    for i in 0..10 {
        let ty = if i % 2 == 0 {
            TaskType::NETWORK
        } else {
            TaskType::DATABASE
        };
        let name = if i < 5 {
            format!("net::conn-{i}")
        } else {
            format!("db::query-{i}")
        };
        let owner = if i < 3 { "alice" } else { "bob" };
        handles.push(
            tracker
                .task_builder(name, ty)
                .owner(owner)
                .spawn(std::future::pending::<()>()),
        );
    }
    tokio::task::yield_now().await;
    let q = |q: Query| tracker.tasks(&q).len();
    assert_eq!(q(Query::new()), 10);
    assert_eq!(q(Query::new().ty(TaskType::NETWORK)), 5);
    assert_eq!(q(Query::new().name_prefix("net::")), 5);
    assert_eq!(
        q(Query::new().name_prefix("net::").ty(TaskType::NETWORK)),
        3
    );
    assert_eq!(q(Query::new().owner("alice")), 3);
    assert_eq!(q(Query::new().state(TaskState::Running)), 10);
    assert_eq!(q(Query::new().state(TaskState::Pending)), 0);
    let oldest = tracker.tasks(&Query::new().limit(2));
    assert_eq!(oldest.len(), 2);
    assert_eq!(oldest[0].name, "net::conn-0");
    assert_eq!(oldest[1].name, "net::conn-1");

    let by_owner = tracker.live_by_owner();
    assert_eq!(by_owner[&Some("alice".into())], 3);
    assert_eq!(by_owner[&Some("bob".into())], 7);
    handles.iter().for_each(|h| h.abort());
}

#[tokio::test]
async fn live_tasks_are_counted_by_type_and_name() {
    let tracker = Tracker::new();
    let mut handles = Vec::new();
    for i in 0..5 {
        // Names made at runtime, two distinct ones.
        let name = format!("conn-{}", i % 2);
        handles.push(tracker.spawn(name, TaskType::NETWORK, std::future::pending::<()>()));
    }
    handles.push(tracker.spawn("conn-0", TaskType::DATABASE, std::future::pending::<()>()));
    tracker
        .spawn("gone", TaskType::NETWORK, async {})
        .await
        .unwrap();
    let counts = tracker.live_by_name();
    let network: Vec<_> = counts[&TaskType::NETWORK]
        .iter()
        .map(|(name, n)| (name.to_string(), *n))
        .collect();
    assert_eq!(
        network,
        [("conn-0".to_owned(), 3), ("conn-1".to_owned(), 2)]
    );
    assert_eq!(counts[&TaskType::DATABASE]["conn-0"], 1);
    assert_eq!(counts.len(), 2);
    handles.iter().for_each(|h| h.abort());
}

#[tokio::test]
async fn task_by_id_includes_live_and_finished_children() {
    let tracker = Tracker::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let parent = tracker.spawn("parent", TaskType::GENERAL, async move {
        tracked::spawn("done-child", TaskType::GENERAL, async {})
            .await
            .unwrap();
        let live = tracked::spawn(
            "live-child",
            TaskType::GENERAL,
            std::future::pending::<()>(),
        );
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
        drop(live);
    });
    rx.await.unwrap();
    let detail = tracker.task(parent.id()).unwrap();
    assert_eq!(detail.task.name, "parent");
    let names: Vec<_> = detail.children.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(names, ["done-child", "live-child"]);
    assert!(tracker
        .task(tracked::TaskId::from_u64(u64::MAX - 1).unwrap())
        .is_none());
    parent.abort();
}

#[tokio::test]
async fn progress_is_reported_from_inside_with_a_bounded_log_and_an_estimate() {
    let tracker = Tracker::builder().progress_log(3).build();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tracker.spawn("import", TaskType::DATABASE, async move {
        let task = tracked::current().unwrap();
        for step in 1..=5u8 {
            std::thread::sleep(Duration::from_millis(2));
            task.progress(step * 10, format!("step {step}"));
        }
        assert!(tracked::progress(55, "via the shortcut"));
        rx.await.unwrap();
    });
    while tracker
        .tasks(&Query::new())
        .first()
        .and_then(|t| t.progress.as_ref())
        .is_none_or(|p| p.percent < 55)
    {
        tokio::task::yield_now().await;
    }
    let task = tracker.task(handle.id()).unwrap().task;
    let progress = task.progress.unwrap();
    assert_eq!(progress.percent, 55);
    let log: Vec<_> = progress.log.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(log, ["step 4", "step 5", "via the shortcut"]);
    let eta = progress
        .estimated_completion
        .expect("an estimate after progress");
    assert!(eta > progress.updated_at);
    tx.send(()).unwrap();
    handle.await.unwrap();
    // The log survives into history.
    let done = tracker.finished(&Query::new()).remove(0);
    assert_eq!(done.progress.unwrap().log.len(), 3);
    assert!(!tracked::progress(1, "outside any task"));
}

#[tokio::test]
async fn busy_time_is_measured_when_enabled() {
    let tracker = Tracker::builder().busy_time(true).build();
    tracker
        .spawn("spin", TaskType::GENERAL, async {
            std::thread::sleep(Duration::from_millis(5));
        })
        .await
        .unwrap();
    let task = tracker.finished(&Query::new()).remove(0);
    assert!(task.busy.unwrap() >= Duration::from_millis(4));
    let plain = Tracker::new();
    plain.spawn("x", TaskType::GENERAL, async {}).await.unwrap();
    assert!(plain.finished(&Query::new())[0].busy.is_none());
}

/// A task stuck in a poll, or a blocking closure stuck in its run, shows it:
/// its busy time counts the run so far, and `in_poll_since` says since
/// when. Once over, the time is counted once.
#[test]
fn a_poll_running_now_counts_in_busy_time() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let _runtime = runtime.enter();
    let tracker = Tracker::builder().busy_time(true).build();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (blocking_tx, blocking_entered) = std::sync::mpsc::channel();
    let (release_blocking, blocking_released) = std::sync::mpsc::channel::<()>();
    let stuck = tracker.spawn("stuck", TaskType::DATABASE, async move {
        tokio::task::yield_now().await;
        entered_tx.send(()).unwrap();
        released.recv().unwrap();
    });
    let blocking = tracker.spawn_blocking("blocking", TaskType::DATABASE, move || {
        blocking_tx.send(()).unwrap();
        blocking_released.recv().unwrap();
    });
    entered.recv().unwrap();
    blocking_entered.recv().unwrap();
    let inside_since = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(30));

    let now = std::time::Instant::now();
    for name in ["stuck", "blocking"] {
        let task = tracker
            .tasks(&Query::new().name_prefix(name))
            .pop()
            .unwrap_or_else(|| panic!("{name} is live"));
        let since = task.in_poll_since.expect("inside its run");
        // A margin for the tracker's TSC clock against `Instant`.
        assert!(since <= inside_since + Duration::from_millis(5), "{name}");
        assert!(
            task.in_poll(now).unwrap() >= Duration::from_millis(25),
            "{name}"
        );
        assert!(task.busy.unwrap() >= Duration::from_millis(25), "{name}");
        assert_eq!(task.idle_since, None, "{name}");
    }

    release.send(()).unwrap();
    release_blocking.send(()).unwrap();
    runtime.block_on(async {
        stuck.await.unwrap();
        blocking.await.unwrap();
    });
    let done = tracker.finished(&Query::new());
    assert_eq!(done.len(), 2);
    for task in done {
        assert_eq!(task.in_poll_since, None);
        let busy = task.busy.unwrap();
        let lived = task.age(now);
        assert!(
            busy >= Duration::from_millis(25) && busy <= lived,
            "{busy:?} of {lived:?}"
        );
    }
}

/// A timed tracker tells how long a live task has waited since its latest
/// poll: not while a poll runs, not before one has ended, not once it ended.
#[test]
fn idle_time_is_known_when_polls_are_timed_and_queries_filter_on_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let _runtime = runtime.enter();
    let tracker = Tracker::builder().busy_time(true).build();
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    let waiter = tracker.spawn("waiter", TaskType::GENERAL, async move {
        woken.await.ok();
    });
    // Polled once, then held inside its second poll until released.
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = tracker.spawn("holder", TaskType::GENERAL, async move {
        tokio::task::yield_now().await;
        entered_tx.send(()).unwrap();
        released.recv().unwrap();
    });
    entered.recv().unwrap();
    let find = |name: &str| {
        tracker
            .tasks(&Query::new().name_prefix(name))
            .pop()
            .unwrap_or_else(|| panic!("{name} is live"))
    };
    // Once its first poll has ended, it waits: at least 30 ms after this.
    while find("waiter").idle_since.is_none() {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(30));

    let now = std::time::Instant::now();
    let waiting = find("waiter");
    let since = waiting.idle_since.expect("idle since its first poll ended");
    assert!(since >= waiting.first_polled_at.unwrap() && since <= now);
    // A margin for the tracker's TSC clock against `Instant`.
    assert!(waiting.idle(now).unwrap() >= Duration::from_millis(25));
    let inside = find("holder");
    assert_eq!(inside.polls, 2);
    assert_eq!(inside.idle_since, None, "inside a poll is not idle");
    assert_eq!(waiting.in_poll_since, None);

    let names = |query: Query| -> Vec<String> {
        tracker
            .tasks(&query)
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    };
    assert_eq!(
        names(Query::new().idle_for(Duration::from_millis(25))),
        ["waiter"]
    );
    assert!(names(Query::new().idle_for(Duration::from_secs(3600))).is_empty());
    assert!(tracker
        .finished(&Query::new().idle_for(Duration::ZERO))
        .is_empty());

    wake.send(()).unwrap();
    release.send(()).unwrap();
    runtime.block_on(async {
        waiter.await.unwrap();
        holder.await.unwrap();
    });
    let ended = tracker.finished(&Query::new());
    assert_eq!(ended.len(), 2);
    assert!(ended
        .iter()
        .all(|t| t.idle_since.is_none() && t.busy.is_some()));

    // Untimed: nothing is known, and nothing matches.
    let plain = Tracker::new();
    let (_wake, woken) = tokio::sync::oneshot::channel::<()>();
    let parked = plain.spawn("parked", TaskType::GENERAL, async move {
        woken.await.ok();
    });
    while plain.tasks(&Query::new())[0].polls == 0 {
        std::thread::yield_now();
    }
    assert_eq!(plain.tasks(&Query::new())[0].idle_since, None);
    assert!(plain
        .tasks(&Query::new().idle_for(Duration::ZERO))
        .is_empty());
    parked.abort();
}

/// A task whose parent has ended outlived it: a fire-and-forget spawn, or
/// a leak. Roots and children of live tasks are not orphans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_the_live_tasks_that_outlived_their_parent() {
    let tracker = Tracker::new();
    let request = tracker.spawn("request", TaskType::NETWORK, async {
        for name in ["left-a", "left-b"] {
            tracked::spawn(name, TaskType::GENERAL, std::future::pending::<()>());
        }
    });
    request.await.unwrap();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let server = tracker.spawn("server", TaskType::NETWORK, async move {
        tracked::spawn("conn", TaskType::NETWORK, std::future::pending::<()>());
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    started.await.unwrap();
    let lonely = tracker.spawn("lonely", TaskType::GENERAL, std::future::pending::<()>());

    let names = |query: Query| -> Vec<String> {
        let mut names: Vec<String> = tracker
            .tasks(&query)
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(Query::new().orphaned(true)), ["left-a", "left-b"]);
    assert_eq!(
        names(Query::new().orphaned(false)),
        ["conn", "lonely", "server"]
    );
    assert_eq!(
        names(Query::new().orphaned(true).name_prefix("left-b")),
        ["left-b"]
    );
    assert!(names(Query::new().orphaned(true).limit(1)).len() == 1);
    assert!(tracker.finished(&Query::new().orphaned(false)).is_empty());

    // The server ends: its connection is an orphan now.
    server.abort();
    let _ = server.await;
    assert_eq!(
        names(Query::new().orphaned(true)),
        ["conn", "left-a", "left-b"]
    );
    lonely.abort();
}

#[test]
fn task_states_parse_from_their_names() {
    assert_eq!("running".parse::<TaskState>(), Ok(TaskState::Running));
    assert!("sleeping"
        .parse::<TaskState>()
        .unwrap_err()
        .contains("expected one of"));
}

/// Children that end while a detail is taken are listed once each: a child
/// can be seen live by the walk over live tasks and then in history.
#[test]
fn task_detail_under_churn_lists_each_child_once() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A short history keeps each detail's walk over it short.
    let tracker = Tracker::builder().history_capacity(256).build();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = std::sync::Arc::clone(&stop);
        tracker.spawn_on(
            "parent",
            TaskType::GENERAL,
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let children: Vec<_> = (0..64)
                        .map(|_| {
                            tracked::spawn("child", TaskType::GENERAL, tokio::task::yield_now())
                        })
                        .collect();
                    for child in children {
                        child.await.unwrap();
                    }
                }
            },
            runtime.handle(),
        )
    };
    let parent = churn.id();
    // The details below must overlap the churn: wait for the parent to run
    // (a loaded machine may keep it off the workers for a while), but not
    // forever: without children listed, the assertion at the end fails.
    for _ in 0..10_000 {
        if !tracker
            .task(parent)
            .expect("the parent is live")
            .children
            .is_empty()
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut children_seen = 0;
    for _ in 0..200 {
        let detail = tracker.task(parent).expect("the parent is live");
        assert_eq!(detail.task.id, parent);
        let mut ids: Vec<_> = detail.children.iter().map(|c| c.id).collect();
        children_seen += ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), detail.children.len(), "a child listed twice");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    runtime.block_on(churn).unwrap();
    assert!(children_seen > 0);
}

/// An `Err`'s text and a panic message are kept up to 4 KiB, cut on a
/// character boundary with `…`: an error that embeds a whole response body
/// must not make history's memory grow with it.
#[tokio::test]
async fn failure_texts_are_kept_bounded_in_size() {
    let tracker = Tracker::new();
    let huge = "é".repeat(1_000_000); // 2 MB, two bytes a character
    let body = huge.clone();
    let failed = tracker.spawn(
        "fetch",
        TaskType::NETWORK,
        async move { Err::<(), _>(body) },
    );
    assert_eq!(failed.await.unwrap().unwrap_err().len(), huge.len());
    let panicked = tracker.spawn("parse", TaskType::NETWORK, async move {
        std::panic::panic_any(huge);
    });
    assert!(panicked.await.unwrap_err().is_panic(), "still delivered");
    let finished = tracker.finished(&Query::new());
    assert_eq!(finished.len(), 2);
    for task in finished {
        let kept = task.error.expect("a failure text");
        assert!(
            kept.len() <= 4096,
            "{}: {} bytes kept",
            task.name,
            kept.len()
        );
        assert!(
            kept.len() > 4000,
            "{}: {} bytes kept",
            task.name,
            kept.len()
        );
        assert!(
            kept.starts_with("éé") && kept.ends_with('…'),
            "{}",
            task.name
        );
    }
}

/// The progress log is bounded in bytes as well as in messages: a task that
/// logs huge messages (a whole response body, say) keeps a bounded prefix
/// of each, cut on a character boundary, in its live record and in history.
#[tokio::test]
async fn progress_messages_are_kept_bounded_in_size() {
    let tracker = Tracker::builder().progress_log(4).build();
    let huge = "é".repeat(1_000_000); // 2 MB, two bytes a character
    let handle = tracker.spawn("upload", TaskType::NETWORK, async move {
        for step in 0..10u8 {
            tracked::progress(step * 10, huge.clone());
        }
        let task = tracked::current().expect("a tracked task");
        task.message("short");
        task.snapshot().progress
    });
    let live = handle.await.unwrap().expect("progress");
    let done = tracker.finished(&Query::new()).remove(0).progress.unwrap();
    for progress in [live, done] {
        assert_eq!(progress.log.len(), 4);
        assert_eq!(progress.log[3].message, "short");
        for entry in &progress.log[..3] {
            let kept = &entry.message;
            assert!(kept.len() <= 4096, "{} bytes kept", kept.len());
            assert!(kept.starts_with("éé"), "a prefix of the message");
            assert!(kept.len() > 100, "{} bytes kept", kept.len());
        }
    }
}

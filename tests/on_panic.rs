//! What a tracker does when a task panics: `OnPanic` per type, the
//! shutdown token and its cause, and aborting the process.

use std::time::Duration;

use tracked::{OnPanic, Query, TaskState, TaskType, Tracker};

/// Set in the child process that `a_panic_under_abort_ends_the_process`
/// starts: only there does `abort_child` run its panicking task.
const ABORT_CHILD: &str = "TRACKED_ON_PANIC_ABORT_CHILD";

/// A task body that panics with `message`.
fn boom(message: &str) {
    panic!("{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_under_shutdown_asks_the_service_to_stop_and_still_reaches_the_handle() {
    let tracker = Tracker::builder()
        .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
        .build();
    let stop = tracker.shutdown_token();

    // Another type panics: recorded, and nothing more.
    let other = tracker.spawn("net::peer", TaskType::NETWORK, async {
        boom("peer went away")
    });
    assert!(other.await.unwrap_err().is_panic());
    assert!(!stop.is_cancelled());
    assert_eq!(tracker.shutdown_cause(), None);

    let round = tracker.spawn("consensus::round", TaskType::CONSENSUS, async {
        boom("two leaders in round 7")
    });
    let id = round.id();
    let error = round.await.unwrap_err();
    assert!(error.is_panic(), "the handle still gets the panic");
    tokio::time::timeout(Duration::from_secs(10), stop.cancelled())
        .await
        .expect("the shutdown token is cancelled");
    let cause = tracker.shutdown_cause().expect("a cause");
    for part in [
        "consensus::round",
        &format!("#{}", id.as_u64()),
        "Consensus",
        "tests/on_panic.rs",
        "two leaders in round 7",
    ] {
        assert!(cause.contains(part), "{part:?} in {cause:?}");
    }
    // Recorded before the action: both panics are in history and counted.
    let panicked = tracker.finished(&Query::new().state(TaskState::Panicked));
    assert_eq!(panicked.len(), 2);
    assert_eq!(tracker.stats().total.panicked, 2);
    // Nothing was stopped: asking is the tracker's part, stopping the service's.
    assert!(!tracker.is_shut_down());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_action_and_a_type_override_apply_to_blocking_tasks_too() {
    let tracker = Tracker::builder()
        .on_panic(None, OnPanic::Shutdown)
        .on_panic(Some(TaskType::MAINTENANCE), OnPanic::Continue)
        .build();
    let sweep = tracker.spawn_blocking("sweep", TaskType::MAINTENANCE, || boom("disk full"));
    assert!(sweep.await.unwrap_err().is_panic());
    assert!(!tracker.shutdown_token().is_cancelled());

    let load = tracker.spawn_blocking("db::load", TaskType::DATABASE, || boom("corrupt page"));
    assert!(load.await.unwrap_err().is_panic());
    assert!(tracker.shutdown_token().is_cancelled());
    assert!(tracker.shutdown_cause().unwrap().contains("corrupt page"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_cause_is_kept_and_a_shutdown_cancels_the_token() {
    let tracker = Tracker::new();
    let stop = tracker.shutdown_token();
    tracker.request_shutdown("SIGTERM");
    tracker.request_shutdown("Ctrl-C");
    assert!(stop.is_cancelled());
    assert_eq!(tracker.shutdown_cause(), Some("SIGTERM"));

    let plain = Tracker::new();
    let report = plain.shutdown(tracked::ShutdownPlan::new()).await;
    assert!(report.is_clean());
    assert!(plain.shutdown_token().is_cancelled());
    assert_eq!(plain.shutdown_cause(), Some("shutdown started"));
}

/// Runs as its own process (see the test below): aborts there.
#[test]
fn abort_child() {
    if std::env::var_os(ABORT_CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tracker = Tracker::builder()
        .on_panic(Some(TaskType::DATABASE), OnPanic::Abort)
        .build();
    runtime.block_on(async {
        let survivor = tracker.spawn("db::other", TaskType::GENERAL, async { boom("not fatal") });
        assert!(survivor.await.unwrap_err().is_panic());
        eprintln!("child: survived the first panic");
        let fatal = tracker.spawn("db::wal", TaskType::DATABASE, async { boom("torn write") });
        let _ = fatal.await;
    });
    eprintln!("child: still running after the fatal panic");
}

#[test]
fn a_panic_under_abort_ends_the_process() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["abort_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ABORT_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(6), "SIGABRT: {stderr}");
    }
    assert!(
        stderr.contains("child: survived the first panic"),
        "{stderr}"
    );
    assert!(
        stderr.contains("task db::wal") && stderr.contains("torn write"),
        "{stderr}"
    );
    assert!(stderr.contains("aborting the process"), "{stderr}");
    assert!(!stderr.contains("still running"), "{stderr}");
}

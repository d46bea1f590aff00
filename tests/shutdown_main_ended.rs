//! A `#[tracked]` `main` awaiting a signal handler task that a task of its
//! own spawned and handed back before it ended. In a file of its own: it
//! shuts the global tracker down, where `#[tracked]` fns awaited outside any
//! task register.

use std::time::Duration;

use tracked::{ShutdownPlan, ShutdownReport, TaskType, Tracker};

/// What a service's `#[tracked]` `main` does, through a `#[tracked]` fn.
#[tracked::tracked]
async fn main_like() -> ShutdownReport {
    serve().await
}

#[tracked::tracked]
async fn serve() -> ShutdownReport {
    let tracker = Tracker::global();
    let plan = ShutdownPlan::new().rest("rest", Duration::from_millis(500));
    // A set-up task starts the signal handler and ends, handing it back.
    #[allow(
        clippy::async_yields_async,
        reason = "the handle is the set-up's result, awaited below"
    )]
    let setup = tracker.spawn("setup", TaskType::GENERAL, async move {
        tracker.spawn("signals", TaskType::GENERAL, tracker.shutdown(plan))
    });
    let signals = setup.await.expect("set up");
    signals.await.expect("the caller is left alone")
}

/// The caller's parent has ended, yet the `#[tracked]` fns at the root
/// awaiting the caller are still its callers: left alone, not waited for
/// until the tier's deadline and reported left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_called_below_an_ended_task_leaves_the_tracked_main_alone() {
    let report = main_like().await;
    assert!(report.is_clean(), "{report}");
    let rest = &report.tiers[0].report;
    assert!(rest.left_running.is_empty(), "{report}");
}

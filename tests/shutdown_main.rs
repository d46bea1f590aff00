//! A `#[tracked]` `main` awaiting a signal handler task that shuts the
//! service down. In a file of its own: it shuts the global tracker down,
//! where `#[tracked]` fns awaited outside any task register.

#[path = "common/polite.rs"]
mod polite;
use polite::polite;

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
    tracker.spawn("worker", TaskType::NETWORK, polite());
    let plan = ShutdownPlan::new()
        .tier("network", [TaskType::NETWORK], Duration::from_secs(5))
        .rest("rest", Duration::from_millis(500));
    let signals = tracker.spawn("signals", TaskType::GENERAL, tracker.shutdown(plan));
    signals.await.expect("the caller is left alone")
}

/// The `#[tracked]` fns at the root (which nothing can abort) await the
/// task calling shutdown: they are left alone with it, rather than waited
/// for until their tier's deadline and reported left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_leaves_the_tracked_main_awaiting_it_alone() {
    let report = main_like().await;
    assert!(report.is_clean(), "{report}");
    let rest = &report.tiers[1].report;
    assert_eq!((rest.stopped, rest.already_finished), (0, 0), "{report}");
    assert_eq!(report.tiers[0].report.stopped, 1, "{report}");
}

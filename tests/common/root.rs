//! Runs a future as the root task of a fresh tracker. Included by the
//! tests that need it (`#[path = "common/root.rs"] mod root;`).

use std::time::Duration;

use tracked::{TaskId, TaskType, Tracker};

/// Runs `future` as the root task `root` of a fresh tracker, waits for it,
/// and returns the tracker, with every task finished, and the root's id.
pub(crate) async fn run_in_tracker<F>(future: F) -> (Tracker, TaskId)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tracker = Tracker::new();
    let handle = tracker.spawn("root", TaskType::GENERAL, future);
    let id = handle.id();
    handle.await.unwrap();
    // Spawned children may still be finishing on other workers.
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (tracker, id)
}

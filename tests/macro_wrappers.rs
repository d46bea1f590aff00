//! A spawned `#[tracked]` fn wrapped in a future that keeps its output
//! (`Box::pin`, `tracing::Instrument`) still claims the task that runs it,
//! and the spawn site is named after the fn, not after the wrapper.

// What a rewritten spawn expands to is checked by clippy as the user's code.
#![deny(clippy::items_after_statements)]

use std::time::Duration;

use tracing::Instrument;
use tracked::{tracked, Query, SpawnKind, TaskSnapshot, TaskType, Tracker};

const MODULE: &str = module_path!();

#[tracked(type = "Network")]
async fn vote(round: u32) -> u32 {
    tokio::task::yield_now().await;
    round
}

#[tracked(type = "Consensus")]
async fn wrapped_spawns() -> u32 {
    let boxed = tokio::spawn(Box::pin(vote(1)));
    let instrumented = tokio::spawn(vote(2).instrument(tracing::info_span!("vote")));
    let in_span = tokio::spawn(vote(3).in_current_span());
    let awaited = tokio::spawn(async move { Box::pin(vote(4)).await });
    boxed.await.unwrap()
        + instrumented.await.unwrap()
        + in_span.await.unwrap()
        + awaited.await.unwrap()
}

async fn finished(future: impl std::future::Future<Output = ()> + Send + 'static) -> Tracker {
    let tracker = Tracker::new();
    tracker
        .spawn("root", TaskType::GENERAL, future)
        .await
        .unwrap();
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracker
}

#[tokio::test]
async fn a_wrapped_spawned_fn_claims_its_task() {
    let tracker = finished(async {
        assert_eq!(wrapped_spawns().await, 10);
    })
    .await;
    let tasks: Vec<TaskSnapshot> = tracker.finished(&Query::new());
    let votes: Vec<&TaskSnapshot> = tasks
        .iter()
        .filter(|t| t.name == format!("{MODULE}::vote"))
        .collect();
    assert_eq!(votes.len(), 4, "one record per spawned vote: {tasks:#?}");
    for task in &votes {
        assert_eq!(task.kind, SpawnKind::Async, "the fn claimed its task");
        assert_eq!(task.ty, TaskType::NETWORK);
    }
    let mut spawn_sites: Vec<&str> = votes
        .iter()
        .map(|t| t.spawn_site.expect("spawned by a rewritten spawn").name())
        .collect();
    spawn_sites.sort_unstable();
    let expected: Vec<String> = ["vote", "vote#2", "vote#3", "vote#4"]
        .iter()
        .map(|suffix| format!("{MODULE}::wrapped_spawns::{suffix}"))
        .collect();
    assert_eq!(spawn_sites, expected);
    // Nothing else: no spawned wrapper task left under the fn's unit.
    assert_eq!(
        tasks.len(),
        1 + 1 + 4,
        "root, wrapped_spawns, 4 votes: {tasks:#?}"
    );
}

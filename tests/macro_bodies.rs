//! Bodies as services write them: each annotated fn here is tracked, with
//! its spawns rewritten, whatever its body starts with or returns. What the
//! expansion adds is checked by clippy as the user's code
//! (`cargo clippy --all-targets -- -D warnings`): it must add no lint the
//! `async fn` would not have; rustc's `unused_braces` fails the build.
#![deny(clippy::used_underscore_binding, unused_braces)]

use tracked::{tracked, Query, SiteKind, SpawnKind, TaskState, Tracker};

#[path = "common/root.rs"]
mod root;
use root::run_in_tracker;

const MODULE: &str = module_path!();

fn name(suffix: &str) -> String {
    format!("{MODULE}::{suffix}")
}

fn finished_named(tracker: &Tracker, name: &str) -> Vec<tracked::TaskSnapshot> {
    tracker
        .finished(&Query::new())
        .into_iter()
        .filter(|t| t.name == name)
        .collect()
}

/// An inner attribute first in the body, as a lint allowed for one fn.
#[tracked(type = "Network")]
async fn with_inner_attribute(votes: u32) -> u32 {
    #![allow(clippy::let_and_return)]
    let doubled = tokio::spawn(async move { votes * 2 }).await.unwrap();
    doubled
}

#[tokio::test]
async fn a_body_with_an_inner_attribute_is_tracked_and_its_spawns_rewritten() {
    let (tracker, root) = run_in_tracker(async {
        assert_eq!(with_inner_attribute(21).await, 42);
    })
    .await;

    let units = finished_named(&tracker, &name("with_inner_attribute"));
    assert_eq!(units.len(), 1, "the fn is a unit");
    assert_eq!(units[0].kind, SpawnKind::Inline);
    assert_eq!(units[0].parent, Some(root));
    let spawned = finished_named(&tracker, &name("with_inner_attribute::async_block"));
    assert_eq!(spawned.len(), 1, "its spawn is rewritten");
    assert_eq!(spawned[0].parent, Some(units[0].id));
    assert_eq!(spawned[0].state, TaskState::Completed);

    let sites: Vec<(String, SiteKind)> = tracked::catalogue()
        .in_module(MODULE)
        .into_iter()
        .filter(|s| s.name().contains("with_inner_attribute"))
        .map(|s| (s.name().to_owned(), s.kind()))
        .collect();
    assert_eq!(
        sites,
        [
            (name("with_inner_attribute"), SiteKind::Fn),
            (name("with_inner_attribute::async_block"), SiteKind::Spawn),
        ]
    );
}

/// Starts a worker and returns its handle: the body's value is a future,
/// which clippy denies (`async_yields_async`) as an async block's last
/// expression, not as an `async fn`'s.
#[tracked(type = "Network")]
async fn start_worker(jobs: u32) -> tokio::task::JoinHandle<u32> {
    tokio::task::yield_now().await;
    tokio::spawn(async move { jobs + 1 })
}

/// A permit held until the body ends, named with a leading `_` as unused.
#[tracked]
async fn with_permit(_permit: tokio::sync::OwnedSemaphorePermit, job: u32) -> u32 {
    tokio::task::yield_now().await;
    job
}

/// A stub whose body is a single diverging call.
#[tracked]
async fn not_yet(job: u32) -> u32 {
    unimplemented!("job {job}")
}

#[tokio::test]
async fn a_fn_returning_a_future_or_holding_a_permit_is_tracked() {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
    let held = std::sync::Arc::clone(&semaphore);
    let (tracker, root) = run_in_tracker(async move {
        let worker = start_worker(1).await;
        assert_eq!(worker.await.unwrap(), 2);
        let permit = held.clone().acquire_owned().await.unwrap();
        assert_eq!(with_permit(permit, 3).await, 3);
        assert_eq!(held.available_permits(), 1, "the permit ends with the body");
    })
    .await;

    let starts = finished_named(&tracker, &name("start_worker"));
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].parent, Some(root));
    assert_eq!(starts[0].state, TaskState::Completed);
    let workers = finished_named(&tracker, &name("start_worker::async_block"));
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].parent, Some(starts[0].id));
    let permits = finished_named(&tracker, &name("with_permit"));
    assert_eq!(permits.len(), 1);
    assert_eq!(permits[0].state, TaskState::Completed);
}

#[tokio::test]
async fn a_stub_that_panics_is_panicked() {
    let tracker = Tracker::new();
    let handle = tracker.spawn("stub", tracked::TaskType::GENERAL, async {
        let _ = not_yet(7).await;
    });
    assert!(handle.await.unwrap_err().is_panic());
    let stubs = finished_named(&tracker, &name("not_yet"));
    assert_eq!(stubs.len(), 1);
    assert_eq!(stubs[0].state, TaskState::Panicked);
}

/// A body whose own labels have the name of the block the macro wraps it in.
#[tracked]
async fn own_labels(n: u32) -> u32 {
    let mut total = 0;
    '__tracked_body: for i in 0..n {
        if i == 2 {
            continue '__tracked_body;
        }
        total += i;
    }
    let capped = '__tracked_body: {
        if total > 5 {
            break '__tracked_body 5;
        }
        total
    };
    capped * 10
}

/// A one-line body: its braces are needed, as the `async fn`'s are.
#[tracked]
#[rustfmt::skip]
async fn one_line(n: u32) -> u32 { n + 1 }

#[tokio::test]
async fn a_body_may_use_the_label_name_the_macro_uses() {
    // 0 + 1 + 3, then capped at 5 from 0 + 1 + 3 + 4 + 5 = 13.
    assert_eq!(own_labels(4).await, 40);
    assert_eq!(own_labels(6).await, 50);
}

#[tokio::test]
async fn a_one_line_body_runs() {
    assert_eq!(one_line(1).await, 2);
}

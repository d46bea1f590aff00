//! Finished-task history: bounded by count and by age, with explicit cleanup.

use std::time::Duration;

use tracked::{Query, TaskType, Tracker};

async fn run_many(tracker: &Tracker, n: usize) {
    for _ in 0..n {
        tracker
            .spawn("short", TaskType::GENERAL, async {})
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn history_keeps_at_most_its_capacity_and_the_newest_entries() {
    let tracker = Tracker::builder().history_capacity(100).build();
    run_many(&tracker, 1000).await;
    let finished = tracker.finished(&Query::new());
    assert_eq!(finished.len(), 100);
    // Newest first, and they are the last 100 spawned on this thread.
    assert!(finished
        .windows(2)
        .all(|w| w[0].finished_at >= w[1].finished_at));
    let stats = tracker.stats().total;
    assert_eq!(stats.completed, 1000, "counters are not bounded by history");
}

/// A limited listing is the start of the whole one: the newest endings,
/// newest first, whichever shards hold them (only those are snapshotted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_listing_is_the_newest_of_the_whole() {
    let tracker = Tracker::builder().history_capacity(1000).build();
    let mut spawners = Vec::new();
    for _ in 0..3 {
        let tracker = tracker.clone();
        // tracked: allow(untracked-spawn) -- the spawners drive a test tracker and must not count in it
        spawners.push(tokio::spawn(async move { run_many(&tracker, 200).await }));
    }
    for s in spawners {
        s.await.unwrap();
    }
    let all = tracker.finished(&Query::new());
    assert_eq!(all.len(), 600);
    let ids = |tasks: &[tracked::TaskSnapshot]| tasks.iter().map(|t| t.id).collect::<Vec<_>>();
    for limit in [0, 1, 7, 599, 600, 601] {
        let some = tracker.finished(&Query::new().limit(limit));
        assert_eq!(ids(&some), ids(&all[..limit.min(600)]), "limit {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_bound_holds_across_threads() {
    let tracker = Tracker::builder().history_capacity(64).build();
    let mut spawners = Vec::new();
    for _ in 0..4 {
        let tracker = tracker.clone();
        // tracked: allow(untracked-spawn) -- the spawners drive a test tracker and must not count in it
        spawners.push(tokio::spawn(async move { run_many(&tracker, 500).await }));
    }
    for s in spawners {
        s.await.unwrap();
    }
    let held = tracker.finished(&Query::new()).len();
    assert!(
        held <= 64 + 32,
        "held {held}: capacity plus at most one per shard"
    );
    assert!(held >= 32, "held {held}");
}

#[tokio::test]
async fn zero_capacity_keeps_no_history_but_counts_everything() {
    let tracker = Tracker::builder().history_capacity(0).build();
    run_many(&tracker, 10).await;
    assert!(tracker.finished(&Query::new()).is_empty());
    assert_eq!(tracker.stats().total.completed, 10);
}

#[tokio::test]
async fn entries_older_than_the_ttl_are_evicted() {
    let tracker = Tracker::builder()
        .history_ttl(Duration::from_millis(200))
        .shards(1)
        .build();
    run_many(&tracker, 5).await;
    assert_eq!(tracker.finished(&Query::new()).len(), 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Eviction happens as new entries arrive.
    run_many(&tracker, 1).await;
    assert_eq!(tracker.finished(&Query::new()).len(), 1);
}

/// A tracker where no task ends after these still lists none of them once
/// they are past the time-to-live (they are evicted when a task ends).
#[tokio::test]
async fn entries_past_the_ttl_are_not_listed_though_nothing_evicted_them() {
    let tracker = Tracker::builder()
        .history_ttl(Duration::from_millis(200))
        .build();
    let handle = tracker.spawn("short", TaskType::GENERAL, async {});
    let id = handle.id();
    handle.await.unwrap();
    assert!(tracker.task(id).is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tracker.finished(&Query::new()).is_empty());
    assert!(tracker.task(id).is_none());
}

#[tokio::test]
async fn cleanup_drops_entries_older_than_asked() {
    let tracker = Tracker::new();
    run_many(&tracker, 5).await;
    // Margins a loaded machine keeps: the first five are over 600 ms old,
    // the last three under 300 ms unless running them took that long.
    tokio::time::sleep(Duration::from_millis(600)).await;
    run_many(&tracker, 3).await;
    assert_eq!(tracker.cleanup(Duration::from_millis(300)), 5);
    assert_eq!(tracker.finished(&Query::new()).len(), 3);
    assert_eq!(tracker.cleanup(Duration::ZERO), 3);
    assert!(tracker.finished(&Query::new()).is_empty());
}

#[tokio::test]
async fn memory_stays_bounded_under_churn() {
    // The pool and history bound what a tracker holds: after many more tasks
    // than the bounds, only the bounds remain.
    let tracker = Tracker::builder().history_capacity(10).build();
    run_many(&tracker, 20_000).await;
    assert_eq!(tracker.finished(&Query::new()).len(), 10);
    assert!(tracker.tasks(&Query::new()).is_empty());
}

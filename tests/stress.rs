//! A million tasks from several threads: spawn, finish, fail, panic, abort
//! (racing completion) and snapshot, concurrently. At the end the tracker's
//! counters must equal what the awaiters saw, exactly, and the live registry
//! must be empty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracked::{Counts, Query, TaskType, Tracker};

const SPAWNERS: u64 = 4;
const BATCH: u64 = 1_000;

/// What awaiting a task's handle showed.
#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
struct Seen {
    completed: u64,
    failed: u64,
    panicked: u64,
    cancelled: u64,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.panicked += other.panicked;
        self.cancelled += other.cancelled;
    }
}

const TYPES: [TaskType; 4] = [
    TaskType::NETWORK,
    TaskType::DATABASE,
    TaskType::CONSENSUS,
    TaskType::new("Stress"),
];

async fn spawner(tracker: Tracker, seed: u64, per_spawner: u64) -> Seen {
    let mut seen = Seen::default();
    for batch in 0..per_spawner / BATCH {
        let mut handles = Vec::with_capacity(BATCH as usize);
        for i in 0..BATCH {
            let n = seed * per_spawner + batch * BATCH + i;
            let ty = TYPES[(n % 4) as usize];
            let handle = match n % 10 {
                0..=4 => tracker.spawn("ok", ty, async move {
                    if n.is_multiple_of(3) {
                        tokio::task::yield_now().await;
                    }
                    Ok::<u64, String>(n)
                }),
                5 => tracker.spawn("err", ty, async move { Err(format!("task {n} failed")) }),
                6 => tracker.spawn("panic", ty, async move {
                    if n % 10 == 6 {
                        panic!("task {n} panicked");
                    }
                    Ok(n)
                }),
                7 => {
                    // Aborted while (probably) parked: cancelled.
                    let h =
                        tracker.spawn("parked", ty, std::future::pending::<Result<u64, String>>());
                    h.abort();
                    h
                }
                8 => {
                    // Abort racing completion: either ending is fine, but the
                    // tracker must agree with what the awaiter sees.
                    let h = tracker.spawn("race", ty, async move { Ok(n) });
                    if n % 20 == 8 {
                        tokio::task::yield_now().await;
                    }
                    h.abort();
                    h
                }
                _ if n % 1000 == 9 => tracker.spawn_blocking("blocking", ty, move || Ok(n)),
                _ => tracker.spawn("nested", ty, async move {
                    // Children join the parent's tracker.
                    tracked::spawn(
                        "child",
                        TaskType::GENERAL,
                        async move { Ok::<u64, String>(n) },
                    )
                    .await
                    .map_err(|e| e.to_string())?
                }),
            };
            handles.push(handle);
        }
        for handle in handles {
            match handle.await {
                Ok(Ok(_)) => seen.completed += 1,
                Ok(Err(_)) => seen.failed += 1,
                Err(e) if e.is_panic() => seen.panicked += 1,
                Err(_) => seen.cancelled += 1,
            }
        }
    }
    seen
}

fn check_consistent(counts: &Counts) {
    assert_eq!(
        counts.spawned,
        counts.live() + counts.finished(),
        "{counts:?}"
    );
}

#[test]
fn a_million_tasks_account_exactly() {
    account_exactly(Tracker::builder().history_capacity(1_000).build(), 250_000);
}

/// The same churn with every opt-in detail on: timed polls, and wakes
/// followed through the tracker's waker (each record's wake state pooled,
/// and let go while stale wakers of aborted tasks still hold it).
#[test]
fn at_full_detail_the_accounting_holds_too() {
    let tracker = Tracker::builder()
        .history_capacity(1_000)
        .wakes(true)
        .build();
    account_exactly(tracker.clone(), 50_000);
    // Every task that yielded was woken, and each wake led to a poll.
    let delays = tracker.scheduling_delays();
    assert!(delays.values().map(|h| h.count()).sum::<u64>() > 0);
}

fn account_exactly(tracker: Tracker, per_spawner: u64) {
    // Silence the default hook's output for the ~100,000 expected panics,
    // and only those; the tracker's hook chains to this one.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.payload().downcast_ref::<String>();
        if !text.is_some_and(|t| t.starts_with("task ") && t.ends_with(" panicked")) {
            default_hook(info);
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let tracker = tracker.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut last = Counts::default();
            let mut looks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let stats = tracker.stats();
                check_consistent(&stats.total);
                for counts in stats.by_type.values() {
                    check_consistent(counts);
                }
                let now = stats.total;
                // Counters only grow.
                assert!(now.spawned >= last.spawned && now.finished() >= last.finished());
                assert!(now.completed >= last.completed && now.cancelled >= last.cancelled);
                last = now;
                let live = tracker.tasks(&Query::new().limit(50));
                assert!(live.len() <= 50);
                assert!(live.iter().all(|t| !t.state.is_finished()));
                let _ = tracker.finished(&Query::new().limit(10));
                looks += 1;
                std::thread::yield_now();
            }
            looks
        })
    };

    let seen = runtime.block_on(async {
        let spawners: Vec<_> = (0..SPAWNERS)
            // tracked: allow(untracked-spawn) -- spawners stay outside the tracker whose totals are asserted
            .map(|seed| tokio::spawn(spawner(tracker.clone(), seed, per_spawner)))
            .collect();
        let mut seen = Seen::default();
        for s in spawners {
            seen.add(s.await.unwrap());
        }
        seen
    });
    drop(runtime);
    stop.store(true, Ordering::Relaxed);
    let looks = observer.join().expect("observer saw consistent stats");
    assert!(looks > 0);

    let stats = tracker.stats();
    let total = stats.total;
    let roots = SPAWNERS * per_spawner;
    let children = tracker.stats().by_type[&TaskType::GENERAL].spawned;
    assert_eq!(total.spawned, roots + children);
    assert_eq!(total.live(), 0, "live registry drained: {total:?}");
    assert!(tracker.tasks(&Query::new()).is_empty());
    // Children all completed; roots' endings match what their awaiters saw.
    assert_eq!(stats.by_type[&TaskType::GENERAL].completed, children);
    assert_eq!(
        Seen {
            completed: total.completed - children,
            failed: total.failed,
            panicked: total.panicked,
            cancelled: total.cancelled,
        },
        seen
    );
    assert_eq!(total.panicked, roots / 10);
    assert!(total.cancelled >= roots / 10);
    check_consistent(&total);
}

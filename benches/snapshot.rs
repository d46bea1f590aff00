//! How long a snapshot of every live task holds up the tasks being spawned
//! and ended meanwhile (issue 2: "taking a snapshot never stalls spawners for
//! more than microseconds").
//!
//! ```text
//! cargo bench --bench snapshot              # about 30 s on 2 idle cores
//! cargo bench --bench snapshot -- --quick   # fewer tasks and iterations
//! SNAPSHOT_SLOW=1 cargo bench --bench snapshot   # which round trips took over 1 ms
//! ```
//!
//! Each registry holds 200,000 tasks parked on a `Notify`. A thread of its
//! own lists them all in a loop, 1 ms apart, as a dashboard or a scraper
//! would (back to back, the naive registry starves the spawner outright),
//! while a task on the runtime spawns a trivial task and awaits it, 50,000
//! times, timing each round trip. The runtime has one worker, which runs the
//! spawner and the spawned tasks, so it and the snapshot thread get a core
//! each on a 2-core machine and the times show lock waits, not the OS
//! scheduler.
//!
//! Registries: a naive one (one `Mutex<HashMap>`, as hand-written trackers
//! do, listed by cloning the map's entries under its lock) and ours
//! (`Tracker::tasks`), each with and without the snapshot thread, and bare
//! `tokio::spawn` with none. The table gives the round trip's percentiles
//! and worst case; a stall shows in p99.9 and the maximum.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinError;

#[path = "common/naive.rs"]
mod naive;
use naive::Naive;

/// A registry whose tasks can be listed from another thread.
trait Registry: Send + Sync + 'static {
    type Handle: Future<Output = Result<(), JoinError>> + Send + Unpin + 'static;
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Self::Handle;
    /// Lists every live task; returns how many.
    fn snapshot(&self) -> usize;
}

/// No registry: the baseline round trip.
struct Bare;

impl Registry for Bare {
    type Handle = tokio::task::JoinHandle<()>;

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Self::Handle {
        // tracked: allow(untracked-spawn) -- the baseline being measured.
        tokio::spawn(future)
    }

    fn snapshot(&self) -> usize {
        0
    }
}

impl Registry for Naive {
    type Handle = tokio::task::JoinHandle<()>;

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Self::Handle {
        Naive::spawn(self, future)
    }

    fn snapshot(&self) -> usize {
        self.list().len()
    }
}

/// Ours, on a tracker of its own at its default settings.
struct Ours(tracked::Tracker);

impl Registry for Ours {
    type Handle = tracked::JoinHandle<()>;

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Self::Handle {
        self.0.spawn("bench", tracked::TaskType::GENERAL, future)
    }

    fn snapshot(&self) -> usize {
        self.0.tasks(&tracked::Query::new()).len()
    }
}

/// The snapshot thread's pause between two listings.
const PAUSE: Duration = Duration::from_millis(1);

struct Sizes {
    parked: usize,
    /// Round trips at least.
    trips: usize,
    /// Listings by the snapshot thread during the round trips, at least.
    listings: u64,
}

/// Round-trip times in nanoseconds, sorted, and the snapshots taken.
fn measure<R: Registry>(registry: R, snapshots: bool, sizes: &Sizes) -> (Vec<u64>, u64) {
    let runtime: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime");
    let registry = Arc::new(registry);
    let gate = Arc::new(Notify::new());
    let parked: Vec<_> = runtime.block_on(async {
        (0..sizes.parked)
            .map(|_| {
                let gate = Arc::clone(&gate);
                registry.spawn(async move { gate.notified().await })
            })
            .collect()
    });
    let done = AtomicBool::new(false);
    let taken = AtomicU64::new(0);
    let times = std::thread::scope(|scope| {
        if snapshots {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let listed = registry.snapshot();
                    assert!(listed >= sizes.parked, "a parked task was not listed");
                    taken.fetch_add(1, Ordering::Relaxed);
                    // A pause between listings, as a scraper's interval
                    // would give: back to back, the naive registry's
                    // listing retakes its lock before a waiting spawner
                    // gets it, and the spawner starves outright.
                    std::thread::sleep(PAUSE);
                }
            });
        }
        let times = runtime.block_on(async {
            // With the snapshot thread, until it has listed the tasks a few
            // times: each listing of a large registry takes milliseconds.
            let listings = if snapshots { sizes.listings } else { 0 };
            let mut times = Vec::with_capacity(sizes.trips);
            while times.len() < sizes.trips || taken.load(Ordering::Relaxed) < listings {
                let start = Instant::now();
                registry.spawn(async {}).await.expect("no task fails");
                times.push(start.elapsed().as_nanos() as u64);
            }
            times
        });
        done.store(true, Ordering::Relaxed);
        times
    });
    gate.notify_waiters();
    runtime.block_on(async {
        for handle in parked {
            handle.await.expect("no task fails");
        }
    });
    let mut times = times;
    if std::env::var_os("SNAPSHOT_SLOW").is_some() {
        let slow: Vec<usize> = (0..times.len()).filter(|&i| times[i] > 1_000_000).collect();
        eprintln!("trips over 1 ms: {slow:?}");
    }
    times.sort_unstable();
    (times, taken.into_inner())
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    Duration::from_nanos(sorted[index])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("TRACKED_BENCH_QUICK").is_some();
    let sizes = if quick {
        Sizes {
            parked: 50_000,
            trips: 10_000,
            listings: 5,
        }
    } else {
        Sizes {
            parked: 200_000,
            trips: 50_000,
            listings: 20,
        }
    };
    println!(
        "{} tasks parked; at least {} spawn+await round trips on a 1-worker runtime, \
         and {} listings with the snapshot loop\n",
        sizes.parked, sizes.trips, sizes.listings
    );
    println!("| registry | listings | round trips | p50 | p99 | p99.9 | max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    row("tokio::spawn", measure(Bare, false, &sizes));
    row(
        "naive Mutex<HashMap>",
        measure(Naive::default(), false, &sizes),
    );
    let naive = measure(Naive::default(), true, &sizes);
    row("naive Mutex<HashMap>, snapshot loop", naive);
    row(
        "ours",
        measure(Ours(tracked::Tracker::new()), false, &sizes),
    );
    let ours = measure(Ours(tracked::Tracker::new()), true, &sizes);
    row("ours, snapshot loop", ours);
}

/// Prints one row of the table from sorted round-trip times.
fn row(name: &str, (times, listings): (Vec<u64>, u64)) {
    let cell = |p| format!("{:.1} µs", percentile(&times, p).as_secs_f64() * 1e6);
    println!(
        "| {name} | {listings} | {} | {} | {} | {} | {} |",
        times.len(),
        cell(0.5),
        cell(0.99),
        cell(0.999),
        cell(1.0)
    );
}

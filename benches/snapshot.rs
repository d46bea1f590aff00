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
//! Each registry holds 200,000 tasks parked on a cancellation token. A
//! thread of its own lists them all in a loop, 1 ms apart, as a dashboard or
//! a scraper would (back to back, the naive registry starves the spawner
//! outright), while a task spawns a trivial task and awaits it, at least
//! 50,000 times, timing each round trip. The runtime has one worker, which
//! runs the spawner and the tasks it spawns, so it and the snapshot thread
//! get a core each on a 2-core machine and the times show lock waits, not
//! wake-ups across threads.
//!
//! Registries: a naive one (one `Mutex<HashMap>`, as hand-written trackers
//! do, listed by cloning the map's entries under its lock) and ours
//! (`Tracker::tasks`), each with and without the snapshot thread, and bare
//! `tokio::spawn`, with none and with a control thread that does work of a
//! listing's size (allocates, fills and drops 200,000 strings) but touches
//! no registry: a stall it causes too is the OS's, not a lock's. The table
//! gives a listing's mean time on the snapshot thread, and the round trip's
//! percentiles, worst case and how many took over 100 µs.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

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

/// Bare `tokio::spawn`, and a "listing" that allocates, fills and drops
/// as many strings as a registry holds tasks, touching no registry.
struct Busy(usize);

impl Registry for Busy {
    type Handle = tokio::task::JoinHandle<()>;

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Self::Handle {
        Bare.spawn(future)
    }

    fn snapshot(&self) -> usize {
        let strings: Vec<String> = (0..self.0).map(|i| format!("task {i}")).collect();
        std::hint::black_box(&strings).len()
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

/// What one configuration measured.
struct Run {
    /// Round-trip times in nanoseconds, sorted.
    times: Vec<u64>,
    /// Listings the snapshot thread completed, and their total time.
    listings: u64,
    listing_time: Duration,
}

fn measure<R: Registry>(registry: R, snapshots: bool, sizes: &Sizes) -> Run {
    let runtime: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime");
    let registry = Arc::new(registry);
    // A token, not a `Notify`: a task not polled yet when the gate opens
    // still passes it.
    let gate = CancellationToken::new();
    let parked: Vec<_> = runtime.block_on(async {
        (0..sizes.parked)
            .map(|_| {
                let gate = gate.clone();
                registry.spawn(async move { gate.cancelled().await })
            })
            .collect()
    });
    let done = AtomicBool::new(false);
    let taken = Arc::new(AtomicU64::new(0));
    let (times, listing_time) = std::thread::scope(|scope| {
        let lister = snapshots.then(|| {
            scope.spawn(|| {
                let mut busy = Duration::ZERO;
                while !done.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let listed = registry.snapshot();
                    busy += start.elapsed();
                    assert!(listed >= sizes.parked, "a parked task was not listed");
                    taken.fetch_add(1, Ordering::Relaxed);
                    // A pause between listings, as a scraper's interval
                    // would give: back to back, the naive registry's
                    // listing retakes its lock before a waiting spawner
                    // gets it, and the spawner starves outright.
                    std::thread::sleep(PAUSE);
                }
                busy
            })
        });
        // With the snapshot thread, until it has listed the tasks a few
        // times: each listing of a large registry takes milliseconds.
        let listings = if snapshots { sizes.listings } else { 0 };
        let (trips, registry, taken) = (sizes.trips, Arc::clone(&registry), Arc::clone(&taken));
        let spawner = async move {
            let mut times = Vec::with_capacity(trips);
            while times.len() < trips || taken.load(Ordering::Relaxed) < listings {
                let start = Instant::now();
                registry.spawn(async {}).await.expect("no task fails");
                times.push(start.elapsed().as_nanos() as u64);
            }
            times
        };
        // The spawner runs as a task, on the worker: `block_on` would run it
        // on this thread, and each round trip would wake the worker and then
        // this thread again.
        // tracked: allow(untracked-spawn) -- the harness, not a measured task.
        let times = runtime.block_on(async { tokio::spawn(spawner).await.expect("no panic") });
        done.store(true, Ordering::Relaxed);
        let busy = lister.map_or(Duration::ZERO, |l| l.join().expect("no panic"));
        (times, busy)
    });
    gate.cancel();
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
    Run {
        times,
        listings: taken.load(Ordering::Relaxed),
        listing_time,
    }
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
    println!(
        "| registry | listings | listing | round trips | p50 | p99 | p99.9 | max | over 100 µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    row("tokio::spawn", measure(Bare, false, &sizes));
    row(
        "tokio::spawn, control thread",
        measure(Busy(sizes.parked), true, &sizes),
    );
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

/// Prints one row of the table.
fn row(name: &str, run: Run) {
    let times = &run.times;
    let cell = |p| format!("{:.1} µs", percentile(times, p).as_secs_f64() * 1e6);
    let listing = match run.listings {
        0 => "-".to_owned(),
        n => format!("{:.1} ms", run.listing_time.as_secs_f64() * 1e3 / n as f64),
    };
    println!(
        "| {name} | {} | {listing} | {} | {} | {} | {} | {} | {} |",
        run.listings,
        times.len(),
        cell(0.5),
        cell(0.99),
        cell(0.999),
        cell(1.0),
        times.iter().filter(|&&t| t > 100_000).count()
    );
}

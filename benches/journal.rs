//! Task journal throughput and its cost to spawning, side by side.
//!
//! ```text
//! cargo bench --features journal-postgres --bench journal            # SQLite and PostgreSQL
//! cargo bench --features journal --bench journal                     # SQLite only
//! cargo bench --features journal-postgres --bench journal -- --quick
//! ```
//!
//! - **Throughput**: 20,000 tasks (60,000 events: spawn, start, finish) are
//!   run while the writer writes batches of 512, then a flush writes the
//!   rest: events written over the time from the first spawn to the end of
//!   the flush. Spawning is ten times faster than any database here, so the
//!   time is the writer's. *Whole tasks*: one task after the other, so a
//!   batch holds each task's three events (one row). *Spread*: all 20,000
//!   are parked first and flushed, then released, so each row is written
//!   once at the start and updated at the end.
//! - **Spawn overhead**: 50,000 trivial tasks spawned and awaited in batches
//!   of 1,000 from a task on a 2-worker runtime, with bare `tokio::spawn`,
//!   a tracked spawn without a journal, and with a journal draining into
//!   each database meanwhile (ns per task, and the ratio to the journal-off
//!   spawn). Medians of several rounds, variants interleaved.
//!
//! The PostgreSQL server is a private one started like the tests' (needs
//! `initdb`/`pg_ctl`, see `scripts/install-external.sh`); without it the
//! PostgreSQL rows are skipped with a note.

#[cfg(feature = "journal-postgres")]
#[path = "../tests/journal/pg_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod pg_server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tracked::journal::{Journal, JournalBuilder};
use tracked::{TaskType, Tracker};

const THROUGHPUT_TASKS: usize = 20_000;

struct Config {
    rounds: usize,
    spawn_tasks: usize,
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracked-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A journal on a fresh database, from a name for the run.
type Make = Box<dyn Fn(&str) -> JournalBuilder>;

fn sqlite(dir: PathBuf) -> Make {
    Box::new(move |run| Journal::sqlite(dir.join(format!("{run}.sqlite"))))
}

#[cfg(feature = "journal-postgres")]
fn postgres(server: &pg_server::PgServer) -> Make {
    let url = server.url();
    Box::new(move |_| Journal::postgres(url.clone()))
}

/// Events per second written for `THROUGHPUT_TASKS` tasks. `spread`: all
/// are spawned and parked first, flushed, then released and flushed again,
/// so each task's end is written in a later batch than its start (an update
/// of its row); otherwise each task runs to its end before the next is
/// spawned, so a batch holds whole tasks.
fn throughput(rt: &Runtime, make: &Make, run: &str, spread: bool) -> f64 {
    rt.block_on(async {
        let tracker = Tracker::new();
        let journal = make(run)
            .buffer(THROUGHPUT_TASKS * 4)
            .batch_size(512)
            .flush_interval(Duration::from_secs(3600))
            .start(&tracker)
            .await
            .expect("a journal");
        journal.flush().await.unwrap();
        let before = journal.stats().written;
        let started = Instant::now();
        let t = tracker.clone();
        if spread {
            // A token, not a `Notify`: a task counted running below may not
            // have reached its wait yet, and `notify_waiters` would miss it.
            let release = CancellationToken::new();
            let mut handles = Vec::with_capacity(THROUGHPUT_TASKS);
            for _ in 0..THROUGHPUT_TASKS {
                let release = release.clone();
                handles.push(t.spawn("bench", TaskType::GENERAL, async move {
                    release.cancelled().await;
                }));
            }
            // Every task polled once (parked), so its start is sent too.
            while tracker.stats().total.running < THROUGHPUT_TASKS as u64 {
                tokio::task::yield_now().await;
            }
            journal.flush().await.unwrap();
            release.cancel();
            for handle in handles {
                handle.await.unwrap();
            }
        } else {
            // tracked: allow(untracked-spawn) -- the benchmark's driver
            tokio::spawn(async move {
                for _ in 0..THROUGHPUT_TASKS {
                    t.spawn("bench", TaskType::GENERAL, async {}).await.unwrap();
                }
            })
            .await
            .unwrap();
        }
        journal.flush().await.unwrap();
        let elapsed = started.elapsed();
        let written = journal.stats().written - before;
        assert_eq!(written, THROUGHPUT_TASKS as u64 * 3);
        assert_eq!(journal.stats().dropped, 0);
        journal.shutdown().await;
        written as f64 / elapsed.as_secs_f64()
    })
}

/// ns per task, spawned and awaited in batches of 1,000.
fn spawn_cost(rt: &Runtime, tracker: Option<&Tracker>, tasks: usize) -> f64 {
    let tracker = tracker.cloned();
    rt.block_on(async move {
        // tracked: allow(untracked-spawn) -- the benchmark's driver
        tokio::spawn(async move {
            let started = Instant::now();
            let mut handles = Vec::with_capacity(1000);
            for _ in 0..tasks / 1000 {
                match &tracker {
                    Some(t) => {
                        let mut tracked = Vec::with_capacity(1000);
                        for _ in 0..1000 {
                            tracked.push(t.spawn("bench", TaskType::GENERAL, async {}));
                        }
                        for h in tracked {
                            h.await.unwrap();
                        }
                    }
                    None => {
                        for _ in 0..1000 {
                            handles.push(tokio::spawn(async {})); // tracked: allow(untracked-spawn) -- the baseline
                        }
                        for h in handles.drain(..) {
                            h.await.unwrap();
                        }
                    }
                }
            }
            started.elapsed().as_nanos() as f64 / tasks as f64
        })
        .await
        .unwrap()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("TRACKED_BENCH_QUICK").as_deref() == Ok("1");
    let config = if quick {
        Config {
            rounds: 3,
            spawn_tasks: 20_000,
        }
    } else {
        Config {
            rounds: 7,
            spawn_tasks: 50_000,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch();
    #[cfg_attr(not(feature = "journal-postgres"), allow(unused_mut))]
    let mut backends: Vec<(&str, Make)> = vec![("SQLite", sqlite(dir.clone()))];
    #[cfg(feature = "journal-postgres")]
    let server = pg_server::PgServer::start("bench");
    #[cfg(feature = "journal-postgres")]
    match &server {
        Some(server) => backends.push(("PostgreSQL", postgres(server))),
        None => println!("(PostgreSQL not installed: its rows are skipped)"),
    }
    #[cfg(not(feature = "journal-postgres"))]
    println!("(feature journal-postgres off: PostgreSQL rows skipped)");

    println!(
        "journal benchmark: {} rounds, {} cpus",
        config.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "\nthroughput, {THROUGHPUT_TASKS} tasks = {} events, batches of 512 (events/s, median):",
        THROUGHPUT_TASKS * 3
    );
    println!("  {:<12} {:>14} {:>14}", "", "whole tasks", "spread");
    for (name, make) in &backends {
        let mut runs = [Vec::new(), Vec::new()];
        for r in 0..config.rounds {
            for (spread, samples) in runs.iter_mut().enumerate() {
                let run = format!("tp-{r}-{spread}");
                samples.push(throughput(&rt, make, &run, spread == 1));
            }
        }
        let [whole, spread] = runs.map(median);
        println!("  {name:<12} {whole:>14.0} {spread:>14.0}");
    }

    // Spawn overhead: trackers with and without a journal, built once.
    let off = Tracker::new();
    let mut with: Vec<(&str, Tracker, Journal)> = Vec::new();
    for (name, make) in &backends {
        let tracker = Tracker::new();
        let journal = rt
            .block_on(make(&format!("spawn-{name}")).start(&tracker))
            .expect("a journal");
        with.push((name, tracker, journal));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 2 + with.len()];
    for round in 0..=config.rounds {
        let n = samples.len();
        for k in 0..n {
            let v = (k + round) % n;
            let ns = match v {
                0 => spawn_cost(&rt, None, config.spawn_tasks),
                1 => spawn_cost(&rt, Some(&off), config.spawn_tasks),
                j => spawn_cost(&rt, Some(&with[j - 2].1), config.spawn_tasks),
            };
            if round > 0 {
                samples[v].push(ns);
            }
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    println!(
        "\nspawn + await, {} tasks in batches of 1,000 (ns per task, median):",
        config.spawn_tasks
    );
    println!(
        "  {:<26} {:>8.0} ns  {:>5.2}x of journal off",
        "tokio::spawn",
        medians[0],
        medians[0] / medians[1]
    );
    println!(
        "  {:<26} {:>8.0} ns  {:>5.2}x",
        "tracked, journal off", medians[1], 1.0
    );
    for (j, (name, _, journal)) in with.iter().enumerate() {
        let m = medians[2 + j];
        let stats = journal.stats();
        println!(
            "  {:<26} {:>8.0} ns  {:>5.2}x   ({} events written, {} dropped)",
            format!("tracked, journal {name}"),
            m,
            m / medians[1],
            stats.written,
            stats.dropped
        );
    }
    for (_, _, journal) in with {
        rt.block_on(journal.shutdown());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

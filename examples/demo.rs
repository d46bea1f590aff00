//! A small service whose background tasks are all tracked: network,
//! consensus, database and maintenance work, parents spawning children, some
//! reporting progress, some failing, one panicking, one blocking its worker,
//! one waiting for a reply that never comes (reported idle by the watchdog),
//! one that has lost its waker (a hand-written future's bug, which the
//! watchdog reports as such) and one ignoring cancellation.
//!
//! Every second it prints the live table by type and state and the
//! longest-running tasks. Halfway through it cancels one client session (a
//! group). It serves the HTTP/JSON API, `/metrics` and a live dashboard on
//! 127.0.0.1 (a free port, or `DEMO_HTTP_ADDR`) and prints the URL and a
//! token. After `DEMO_SECONDS` (default 20), on Ctrl-C, or if a consensus
//! task panics (`OnPanic::Shutdown`) it shuts the service down tier by tier
//! (the HTTP server stops with the network tier), prints the shutdown report
//! and a final report.
//!
//! Every task's lifecycle also goes to a task journal in SQLite
//! (`target/demo-journal.sqlite`, or `DEMO_JOURNAL`), kept across runs for
//! 30 days by a heartbeat phase; the HTTP API serves finished tasks from it
//! once they leave memory, and the final report reads it back.
//!
//! Built with the `otel` feature and run with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set (e.g. `http://127.0.0.1:4318`), it also pushes the metrics to that
//! OpenTelemetry collector every 5 s, and once more after the shutdown.
//!
//! ```text
//! cargo run --release --features http,journal --example demo
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run --release --features http,journal,otel --example demo
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracked::journal::{Journal, JournalQuery, JournalStats};
use tracked::{
    tracked, Heartbeat, OnPanic, Query, ShutdownPlan, TaskState, TaskType, Tracker, Watchdog,
};

const STORAGE: TaskType = TaskType::new("Storage");

/// Per-tier timeout of the demo's shutdown: short, so the stubborn task's
/// abort shows quickly.
const TIER_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Logs go to stderr, coloured only on a terminal: stdout carries the
    // tables, readable when redirected to a file (the smoke run greps it).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let tracker = Tracker::builder()
        // Wakes followed (and polls timed): busy and idle time, scheduling
        // delay, and tasks that lost their waker.
        .wakes(true)
        .watchdog(
            Watchdog::new()
                .long_poll(None, Duration::from_millis(50))
                .long_running(Some(STORAGE), Duration::from_secs(5))
                .idle(Some(TaskType::CONSENSUS), Duration::from_secs(3)),
        )
        // A panicking consensus task would leave the node wrong: stop then.
        // (The demo's one panic is a maintenance task's, which is recorded.)
        .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
        .install_global()
        .expect("the demo installs the global tracker first");
    let seconds = std::env::var("DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);

    // Durable history: every task from now on, in SQLite.
    // In the repository's `target/` wherever `cargo run` is started from.
    let journal_path = std::env::var("DEMO_JOURNAL").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/demo-journal.sqlite").into()
    });
    if let Some(dir) = std::path::Path::new(&journal_path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let journal = Journal::sqlite(&journal_path)
        .service("demo")
        .start(tracker)
        .await
        .unwrap_or_else(|e| panic!("the demo's journal at {journal_path}: {e}"));

    // One task on one timer for all periodic upkeep, the tracker's own
    // (history cleanup, watchdog) and the journal's retention included, on a
    // thread of its own so that a task blocking the service's workers cannot
    // silence the watchdog.
    let peers = Arc::new(AtomicUsize::new(0));
    let upkeep = Heartbeat::new(Duration::from_millis(250))
        .name("maintenance::heartbeat")
        .housekeeping(tracker);
    let heartbeat = journal
        .retention_phase(upkeep, 40)
        .adaptive(
            "reconnect",
            {
                let peers = peers.clone();
                // Every tick while below 3 peers, every 8th when healthy.
                move |_| {
                    if peers.load(Ordering::Relaxed) < 3 {
                        1
                    } else {
                        8
                    }
                }
            },
            {
                let peers = peers.clone();
                move || {
                    let peers = peers.clone();
                    async move {
                        peers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
        )
        .every("gc", 4, || async {
            tracked::spawn_blocking("maintenance::gc", TaskType::MAINTENANCE, || {
                std::thread::sleep(Duration::from_millis(20));
            });
        })
        .spawn_dedicated(tracker)
        .expect("a thread for the heartbeat");

    // The HTTP/JSON API, Prometheus `/metrics` and the live dashboard.
    let mut http = tracked::http::Config::new().journal(journal.clone());
    if let Some(addr) = std::env::var("DEMO_HTTP_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
    {
        http = http.bind(addr);
    }
    // On a thread of its own, like the heartbeat: it answers even when the
    // runtime's workers are all blocked.
    let server = tracked::http::serve_dedicated(tracker.clone(), http)
        .expect("the demo binds its HTTP server on loopback");
    println!("dashboard:  {}", server.dashboard_url());
    println!(
        "api:        {}/tasks  {}/stats  {}/metrics",
        server.url(),
        server.url(),
        server.url()
    );
    println!("token:      {} (needed to cancel: curl -X POST -H 'Authorization: Bearer <token>' {}/groups/session-7/cancel)", server.token(), server.url());
    let otel = otel_exporter(tracker, &journal);

    start_services().await;
    let session = tracker.group("session-7");
    for stream in 0..3 {
        session.spawn(
            format!("net::session-7/stream-{stream}"),
            TaskType::NETWORK,
            stream_to_client(stream),
        );
    }

    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    let halfway = tokio::time::sleep(Duration::from_secs(seconds) / 2);
    tokio::pin!(deadline, halfway);
    let mut session_cancelled = false;
    let stop = tracker.shutdown_token();
    loop {
        tokio::select! {
            _ = ticker.tick() => print_live(tracker, started),
            _ = &mut halfway, if !session_cancelled => {
                session_cancelled = true;
                let live = session.live().total;
                let report = session.cancel(Duration::from_secs(1)).await;
                print!("\nclient session-7 disconnected: asked its {live} tasks to stop: {report}");
            }
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => tracker.request_shutdown("Ctrl-C"),
            _ = stop.cancelled() => {
                println!("\n{}: shutting down", tracker.shutdown_cause().unwrap_or("asked to stop"));
                break;
            }
        }
    }

    println!(
        "\n══ tiered shutdown ({:.0}s per tier) ══",
        TIER_TIMEOUT.as_secs_f64()
    );
    let report = tokio::select! {
        report = tracker.shutdown(ShutdownPlan::default_with(TIER_TIMEOUT)) => report,
        // Ctrl-C while the tiers stop: the operator does not want to wait.
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nCtrl-C during shutdown: exiting without waiting for the tiers");
            std::process::exit(130);
        }
    };
    print!("{report}");
    // Already stopped by the network tier; this only waits for it.
    server.shutdown().await;
    finish_otel(otel);
    let phases = heartbeat.stats();
    println!("\nheartbeat phases:");
    for phase in &phases {
        println!("{}", phase_row(phase));
    }
    // The journal's writer outlived the tiers to write how they ended; it
    // stops now, once that is written.
    let written = journal.shutdown().await;
    print_final(tracker, started);
    print_journal(&journal, written, &journal_path).await;
}

/// Starts the long-lived services. `#[tracked]` turns each `tokio::spawn`
/// here into a tracked spawn, and each spawned fn's own attribute gives the
/// task its name and type.
#[tracked(type = "General", name = "service::start")]
async fn start_services() {
    tokio::spawn(listener());
    tokio::spawn(consensus());
    tokio::spawn(compaction());
    tokio::spawn(wal_writer());
    tokio::spawn(replica_fetch());
    tokio::spawn(maintenance());
}

/// Accepts a connection every 150 ms until asked to stop; each lives a
/// while, some fail.
#[tracked(type = "Network", name = "net::listener")]
async fn listener() {
    let stop = tracked::current().expect("tracked").cancellation_token();
    let mut connections = tracked::JoinSet::new();
    for n in 0u64.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(150)) => {}
        }
        connections.spawn_with(
            tracked::Builder::new(format!("net::conn-{n}"), TaskType::NETWORK)
                .owner(format!("peer-{}", n % 5))
                .label("peer", format!("10.0.0.{}", n % 5)),
            connection(n),
        );
        while connections.len() > 40 {
            connections.join_next().await;
        }
        while connections.try_join_next().is_some() {}
    }
    // Drain: open connections get to finish their request (they watch the
    // same shutdown through their own tokens).
    while connections.join_next().await.is_some() {}
}

async fn connection(n: u64) -> Result<(), String> {
    let stop = tracked::current().expect("tracked").cancellation_token();
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        _ = tokio::time::sleep(Duration::from_millis(400 + (n * 137) % 2500)) => {}
    }
    if n % 7 == 3 {
        return Err(format!("connection reset by peer-{}", n % 5));
    }
    Ok(())
}

/// A client session's stream: runs until the session is cancelled.
async fn stream_to_client(stream: u64) {
    let task = tracked::current().expect("tracked");
    let stop = task.cancellation_token();
    for chunk in 1u64.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(300 + stream * 100)) => {}
        }
        task.message(format!("sent chunk {chunk}"));
    }
}

/// A consensus round every 2 s, until asked to stop.
#[tracked(type = "Consensus", name = "consensus::driver")]
async fn consensus() {
    let stop = tracked::current().expect("tracked").cancellation_token();
    // A peer that never answers keeps the reply channel open.
    let (_unanswered, answer) = tokio::sync::oneshot::channel();
    tokio::spawn(block_sync(answer));
    for round in 1u64.. {
        // `#[tracked]` rewrites this spawn: the round is a tracked child of
        // this task, named and typed by `consensus_round`'s own attribute.
        let handle = tokio::spawn(consensus_round(round));
        let _ = handle.await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(1200)) => {}
        }
    }
}

/// Asks a peer for missing blocks. This peer never answers: the task waits
/// until shutdown, and the watchdog reports it idle after 3 s.
#[tracked(type = "Consensus", name = "consensus::block-sync")]
async fn block_sync(answer: tokio::sync::oneshot::Receiver<Vec<u64>>) {
    let task = tracked::current().expect("tracked");
    let stop = task.cancellation_token();
    task.progress(0, "asked peer-3 for blocks");
    tokio::select! {
        _ = stop.cancelled() => {}
        Ok(blocks) = answer => task.progress(100, format!("{} blocks", blocks.len())),
    }
}

/// Proposes, then gathers votes from children; every fourth round fails.
#[tracked(type = "Consensus", name = "consensus::round")]
async fn consensus_round(round: u64) -> Result<(), String> {
    let task = tracked::current().expect("tracked");
    task.progress(10, "proposing");
    let mut votes = tracked::JoinSet::new();
    for validator in 0..4u64 {
        votes.spawn("consensus::vote", TaskType::CONSENSUS, async move {
            tokio::time::sleep(Duration::from_millis(100 + validator * 150)).await;
            validator
        });
    }
    let mut got = 0;
    while votes.join_next().await.is_some() {
        got += 1;
        task.progress(10 + got * 20, format!("{got}/4 votes"));
    }
    if round.is_multiple_of(4) {
        return Err(format!("round {round}: quorum certificate rejected"));
    }
    Ok(())
}

/// A long compaction reporting progress, with a short query now and then;
/// stops between steps when asked.
#[tracked(type = "Database", name = "db::compaction")]
async fn compaction() {
    let task = tracked::current().expect("tracked");
    for pass in 1u64.. {
        for step in 0..=20u8 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if task.is_cancelled() {
                return;
            }
            task.progress(step * 5, format!("pass {pass}: level {} merged", step / 4));
            if step % 5 == 0 {
                tracked::spawn("db::query", STORAGE, async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                });
            }
        }
    }
}

/// A write-ahead-log writer with a bug: it never looks at its cancellation
/// token, so the shutdown's last tier has to abort it (and says so).
#[tracked(type = "Database", name = "db::wal-writer")]
async fn wal_writer() {
    let task = tracked::current().expect("tracked");
    for segment in 1u64.. {
        tokio::time::sleep(Duration::from_millis(500)).await;
        task.message(format!("segment {segment} flushed"));
    }
}

/// Fetches WAL segments from a replica through a hand-written future with a
/// classic bug: when nothing is ready it returns `Pending` without keeping
/// its waker (`poll_recv(cx)` would have), so nothing can ever poll it
/// again. The tracker sees no waker left and the watchdog reports it; the
/// shutdown's last tier has to abort it.
#[tracked(type = "Database", name = "db::replica-fetch")]
async fn replica_fetch() {
    let (_replica, mut segments) = tokio::sync::mpsc::channel::<u64>(8);
    let first = std::future::poll_fn(|_| match segments.try_recv() {
        Ok(segment) => std::task::Poll::Ready(Some(segment)),
        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => std::task::Poll::Ready(None),
        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => std::task::Poll::Pending,
    })
    .await;
    tracked::progress(100, format!("first segment: {first:?}"));
}

/// The OTLP exporter, when the feature is on and the environment names a
/// collector. A bad endpoint is reported, and the demo runs without it.
#[cfg(feature = "otel")]
fn otel_exporter(tracker: &Tracker, journal: &Journal) -> Option<tracked::otel::OtelExporter> {
    let config = tracked::otel::OtelConfig::from_env()?
        .interval(Duration::from_secs(5))
        .service_name("tracked-demo")
        .instance_id(std::process::id().to_string())
        .journal(journal);
    let endpoint = config.endpoint().to_owned();
    match tracked::otel::install(tracker, config) {
        Ok(exporter) => {
            println!("otel:       exporting metrics to {endpoint} every 5 s");
            Some(exporter)
        }
        Err(e) => {
            println!("otel:       not exporting: {e}");
            None
        }
    }
}

#[cfg(not(feature = "otel"))]
fn otel_exporter(_: &Tracker, _: &Journal) -> Option<()> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        println!("otel:       OTEL_EXPORTER_OTLP_ENDPOINT is set, but the demo was built without `--features otel`");
    }
    None
}

#[cfg(feature = "otel")]
fn finish_otel(exporter: Option<tracked::otel::OtelExporter>) {
    if let Some(exporter) = exporter {
        // The last export waits for the collector: off the async workers.
        match tracked::block_in_place(|| exporter.shutdown()) {
            Ok(()) => println!("\notel: last export sent"),
            Err(e) => println!("\notel: last export failed: {e}"),
        }
    }
}

#[cfg(not(feature = "otel"))]
fn finish_otel(_: Option<()>) {}

/// Housekeeping jobs; the cache refresh panics once and the index rebuild
/// blocks its worker thread (the watchdog reports the long poll).
#[tracked(type = "Maintenance", name = "maintenance::jobs")]
async fn maintenance() {
    let task = tracked::current().expect("tracked");
    for tick in 1u64.. {
        tokio::time::sleep(Duration::from_millis(900)).await;
        if task.is_cancelled() {
            return;
        }
        if tick == 2 {
            tracked::spawn("maintenance::index-rebuild", TaskType::MAINTENANCE, async {
                // A bug the watchdog makes visible: blocking inside a poll.
                std::thread::sleep(Duration::from_millis(800));
            });
        }
        if tick == 3 {
            tracked::spawn("maintenance::cache-refresh", TaskType::MAINTENANCE, async {
                let entries: Vec<u32> = Vec::new();
                // A bug the tracker makes visible: indexing an empty cache.
                let first = entries.first().copied();
                if first.is_none() {
                    panic!("cache refresh found no entries");
                }
            });
        }
    }
}

fn print_live(tracker: &Tracker, started: Instant) {
    println!(
        "\n── t+{:>2}s ──────────────────────────────────────────────",
        started.elapsed().as_secs()
    );
    print!("{}", tracker.stats());
    let now = Instant::now();
    // The live tasks that say what they are doing, latest report first.
    let mut reporting = tracker.tasks(&Query::new().state(TaskState::Running));
    reporting.retain(|t| t.progress.is_some());
    reporting.sort_by_key(|t| std::cmp::Reverse(t.progress.as_ref().map(|p| p.updated_at)));
    println!("\nlive tasks reporting progress, latest first:");
    for task in reporting.into_iter().take(6) {
        let progress = task
            .progress
            .as_ref()
            .map(|p| {
                let message = p.log.last().map_or("", |m| m.message.as_str());
                // `message()` alone reports no percentage (it reads 0).
                if p.percent > 0 || p.log.iter().any(|m| m.percent > 0) {
                    format!("{:>3}% {message}", p.percent)
                } else {
                    format!("     {message}")
                }
            })
            .unwrap_or_default();
        println!(
            "  #{:<6} {:<26} {:<12} {:>6.1}s  parent {:<6} {}",
            task.id,
            task.name,
            task.ty,
            task.age(now).as_secs_f64(),
            task.parent.map_or("-".to_string(), |p| p.to_string()),
            progress
        );
    }
    // What points at a leak: waiting long since the last poll, and running
    // on after the task that spawned it ended. The library's own tasks
    // (`tracked::…`: the HTTP server waits for requests) and the services
    // `service::start` starts to run for good are not suspects.
    let mut idle = tracker.tasks(&Query::new().idle_for(Duration::from_secs(2)));
    idle.retain(|t| !t.name.starts_with("tracked::"));
    idle.sort_by_key(|t| std::cmp::Reverse(t.idle(now)));
    let idle: Vec<_> = idle
        .iter()
        .take(3)
        .map(|t| {
            format!(
                "#{} {} {:.1}s",
                t.id,
                t.name,
                t.idle(now).unwrap_or_default().as_secs_f64()
            )
        })
        .collect();
    if !idle.is_empty() {
        println!("idle longest: {}", idle.join(", "));
    }
    let lost: Vec<_> = tracker
        .tasks(&Query::new().lost_waker(true))
        .iter()
        .map(|t| format!("#{} {}", t.id, t.name))
        .collect();
    if !lost.is_empty() {
        println!("lost their waker (never polled again): {}", lost.join(", "));
    }
    let starters: Vec<_> = tracker
        .finished(&Query::new().name_prefix("service::start"))
        .iter()
        .map(|t| t.id)
        .collect();
    let mut orphans = tracker.tasks(&Query::new().orphaned(true));
    orphans.retain(|t| !t.parent.is_some_and(|p| starters.contains(&p)));
    if !orphans.is_empty() {
        let names: Vec<_> = orphans
            .iter()
            .take(3)
            .map(|t| format!("#{} {}", t.id, t.name))
            .collect();
        println!(
            "outlived their parent: {} ({}{})",
            orphans.len(),
            names.join(", "),
            if orphans.len() > 3 { ", …" } else { "" }
        );
    }
    let unhealthy: Vec<_> = tracker
        .health()
        .by_type
        .into_iter()
        .filter(|(_, h)| !h.healthy)
        .map(|(ty, h)| format!("{ty} ({}/{} failed)", h.failures, h.endings))
        .collect();
    if !unhealthy.is_empty() {
        println!("unhealthy: {}", unhealthy.join(", "));
    }
}

/// One heartbeat phase's line of the report. A `Duration`'s `{:.2?}` is
/// at most 8 characters (`999.99µs`), so every column lines up.
fn phase_row(phase: &tracked::PhaseStats) -> String {
    format!(
        "  {:<26} runs {:>4}  last {:>8.2?}  total {:>8.2?}  errors {}  panics {}",
        phase.name,
        phase.runs,
        phase.last_duration,
        phase.total_duration,
        phase.errors,
        phase.panics
    )
}

fn print_final(tracker: &Tracker, started: Instant) {
    println!(
        "\n══ final report after {:.1}s ══",
        started.elapsed().as_secs_f64()
    );
    print!("{}", tracker.stats());
    let failures = tracker.finished(&Query::new().state(TaskState::Failed).limit(5));
    println!("\nrecent failures:");
    for task in failures {
        println!(
            "  #{} {} ({}) at {}: {}",
            task.id,
            task.name,
            task.ty,
            task.site,
            task.error.unwrap_or_default()
        );
    }
    println!("\npanics:");
    for task in tracker.finished(&Query::new().state(TaskState::Panicked)) {
        println!(
            "  #{} {} ({}) spawned at {}: {} (panicked at {})",
            task.id,
            task.name,
            task.ty,
            task.site,
            task.error.unwrap_or_default(),
            task.panic_location.unwrap_or_else(|| "unknown".into())
        );
    }
    // How long woken tasks waited for a worker (wakes are followed).
    let delays: Vec<_> = tracker
        .scheduling_delays()
        .into_iter()
        .filter(|(_, h)| h.count() > 0)
        .map(|(ty, h)| {
            let mean = h.sum() / u32::try_from(h.count()).unwrap_or(u32::MAX);
            format!("{ty} {mean:.0?} over {} wakes", h.count())
        })
        .collect();
    println!("\nmean wait for a worker once woken: {}", delays.join(", "));
    let live = tracker.stats().total.live();
    println!("\nlive tasks left: {live}");
}

/// What the journal kept, this run and earlier ones.
async fn print_journal(journal: &Journal, stats: JournalStats, path: &str) {
    println!(
        "\njournal: {} events in {} batches to {path} ({} dropped), instance {}",
        stats.written,
        stats.batches,
        stats.dropped,
        journal.instance()
    );
    let held = journal.len().await.unwrap_or(0);
    let failed = JournalQuery::new().state(TaskState::Failed).limit(3);
    match journal.tasks(&failed).await {
        Ok(page) => {
            println!("journal holds {held} tasks; latest failures across runs:");
            for t in page.tasks {
                println!(
                    "  {} #{} {} ({}): {}",
                    t.instance,
                    t.id,
                    t.name,
                    t.ty,
                    t.error.unwrap_or_default()
                );
            }
        }
        Err(e) => println!("journal unreadable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::phase_row;

    /// The heartbeat report's columns stay put whatever the durations'
    /// units: `706.58µs` and `1.06ms` are as wide as `6.66µs` there.
    #[test]
    fn heartbeat_phase_columns_line_up() {
        let columns: Vec<(usize, usize, usize)> = [
            (Duration::from_nanos(930), Duration::from_nanos(5_870)),
            (Duration::from_nanos(6_660), Duration::from_nanos(295_520)),
            (Duration::from_nanos(706_580), Duration::from_nanos(706_580)),
            (Duration::from_nanos(990_590), Duration::from_micros(1_060)),
            (Duration::from_millis(12), Duration::from_secs(3)),
        ]
        .into_iter()
        .map(|(last, total)| {
            let row = phase_row(&tracked::PhaseStats {
                name: "tracked::watchdog",
                runs: 27,
                last_duration: last,
                total_duration: total,
                errors: 0,
                panics: 0,
                last_error: None,
            });
            let at =
                |word: &str| row.chars().count() - row[row.find(word).unwrap()..].chars().count();
            (at("last"), at("total"), at("errors"))
        })
        .collect();
        assert!(
            columns.windows(2).all(|w| w[0] == w[1]),
            "columns move: {columns:?}"
        );
    }
}

//! A small service whose background tasks are all tracked: network,
//! consensus, database and maintenance work, parents spawning children, some
//! reporting progress, some failing, one panicking.
//!
//! Every second it prints the live table by type and state and the
//! longest-running tasks; after `DEMO_SECONDS` (default 20) or on Ctrl-C it
//! stops the service and prints a final report.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::time::{Duration, Instant};

use tracked::{Query, TaskState, TaskType, Tracker};

const STORAGE: TaskType = TaskType::new("Storage");

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let tracker = Tracker::builder()
        .busy_time(true)
        .install_global()
        .expect("the demo installs the global tracker first");
    let seconds = std::env::var("DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);

    let services = vec![
        tracked::spawn("net::listener", TaskType::NETWORK, listener()),
        tracked::spawn("consensus::driver", TaskType::CONSENSUS, consensus()),
        tracked::spawn("db::compaction", TaskType::DATABASE, compaction()),
        tracked::spawn(
            "maintenance::scheduler",
            TaskType::MAINTENANCE,
            maintenance(),
        ),
    ];

    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = ticker.tick() => print_live(tracker, started),
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => {
                println!("\nCtrl-C: stopping");
                break;
            }
        }
    }

    // Stop the long-lived services; their children are aborted with them
    // (they are owned by the services' JoinSets) and recorded as cancelled.
    for service in &services {
        service.abort();
    }
    for service in services {
        let _ = service.await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    print_final(tracker, started);
}

/// Accepts a connection every 150 ms; each lives a while, some fail.
async fn listener() {
    let mut connections = tracked::JoinSet::new();
    for n in 0u64.. {
        tokio::time::sleep(Duration::from_millis(150)).await;
        connections.spawn_with(
            tracked::Builder::new(format!("net::conn-{n}"), TaskType::NETWORK)
                .owner(format!("peer-{}", n % 5))
                .label("peer", format!("10.0.0.{}", n % 5)),
            connection(n),
        );
        while connections.len() > 40 {
            connections.join_next().await;
        }
        // Reap finished connections without waiting.
        while let Some(Some(_)) = futures_now(connections.join_next()).await {}
    }
}

async fn connection(n: u64) -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(400 + (n * 137) % 2500)).await;
    if n % 7 == 3 {
        return Err(format!("connection reset by peer-{}", n % 5));
    }
    Ok(())
}

/// A consensus round every 2 s: propose, then gather votes from children.
async fn consensus() {
    for round in 1u64.. {
        let handle = tracked::spawn(
            format!("consensus::round-{round}"),
            TaskType::CONSENSUS,
            async move {
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
                if round % 4 == 0 {
                    return Err(format!("round {round}: quorum certificate rejected"));
                }
                Ok(())
            },
        );
        let _ = handle.await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
}

/// A long compaction reporting progress, with a short query now and then.
async fn compaction() {
    let task = tracked::current().expect("tracked");
    for pass in 1u64.. {
        for step in 0..=20u8 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            task.progress(step * 5, format!("pass {pass}: level {} merged", step / 4));
            if step % 5 == 0 {
                tracked::spawn("db::query", STORAGE, async {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                });
            }
        }
    }
}

/// Housekeeping jobs; the cache refresh panics once.
async fn maintenance() {
    for tick in 1u64.. {
        tokio::time::sleep(Duration::from_millis(900)).await;
        tracked::spawn_blocking("maintenance::gc", TaskType::MAINTENANCE, move || {
            std::thread::sleep(Duration::from_millis(20));
            tick
        });
        if tick == 5 {
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
    println!("\nlongest-running live tasks:");
    for task in tracker.tasks(&Query::new().state(TaskState::Running).limit(6)) {
        let progress = task
            .progress
            .as_ref()
            .map(|p| {
                format!(
                    "{:>3}% {}",
                    p.percent,
                    p.log.last().map_or("", |m| m.message.as_str())
                )
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
    let live = tracker.stats().total.live();
    println!("\nlive tasks left: {live}");
}

/// Polls `future` once: `Some(output)` if it is ready now, `None` otherwise.
async fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        out = future => Some(out),
        _ = std::future::ready(()) => None,
    }
}

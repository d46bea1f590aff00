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

/// A service's two fns named `run`: the worker's, not annotated, awaits the
/// database's, annotated.
mod db {
    #[tracked::tracked(type = "Database")]
    pub(crate) async fn run(job: u32) -> u32 {
        tokio::task::yield_now().await;
        job + 1
    }
}

mod worker {
    pub(crate) async fn run(job: u32) -> u32 {
        super::db::run(job).await
    }
}

#[tracked(type = "Consensus")]
async fn supervise() -> u32 {
    let direct = tokio::spawn(worker::run(1));
    let in_block = tokio::spawn(async move { db::run(10).await });
    direct.await.unwrap() + in_block.await.unwrap()
}

/// `spawn(worker::run(..))` targets a fn named `run`, and the worker's
/// `run` awaits `db::run` in the task's first poll: that fn is a unit in
/// the task, not the task, which keeps the spawn's name and type. An
/// annotated fn made in the task's first poll by the spawned block itself
/// (`async move { db::run(..).await }`) still claims its task.
#[tokio::test]
async fn a_fn_called_by_the_spawned_one_does_not_claim_the_task() {
    let tracker = finished(async {
        assert_eq!(supervise().await, 2 + 11);
    })
    .await;
    let tasks: Vec<TaskSnapshot> = tracker.finished(&Query::new());
    let named = |name: &str| -> Vec<&TaskSnapshot> {
        let name = format!("{MODULE}::{name}");
        tasks.iter().filter(|t| t.name == name).collect()
    };
    let spawned = named("supervise::run");
    assert_eq!(spawned.len(), 1, "{tasks:#?}");
    let spawned = spawned[0];
    assert_eq!(spawned.kind, SpawnKind::Async);
    assert_eq!(spawned.ty, TaskType::CONSENSUS, "the spawning fn's type");
    assert!(spawned.fn_site.is_none(), "not claimed: {spawned:#?}");
    let runs = named("db::run");
    assert_eq!(runs.len(), 2, "{tasks:#?}");
    let unit = runs
        .iter()
        .find(|t| t.parent == Some(spawned.id))
        .expect("db::run is a unit in the worker's task");
    assert_eq!(unit.kind, SpawnKind::Inline);
    assert_eq!(unit.ty, TaskType::DATABASE);
    let claimed = runs
        .iter()
        .find(|t| t.kind == SpawnKind::Async)
        .expect("the block's db::run claimed its task");
    assert_eq!(claimed.ty, TaskType::DATABASE);
    let site = claimed.spawn_site.expect("spawned by a rewritten spawn");
    assert_eq!(site.name(), format!("{MODULE}::supervise::run#2"));
    // root, supervise, the worker's task and its unit, the claimed task.
    assert_eq!(tasks.len(), 5, "{tasks:#?}");
}

/// A plain method of the same name as the annotated fn it awaits.
struct Worker(u32);

impl Worker {
    async fn run(&self) -> u32 {
        db::run(self.0).await
    }
}

#[tracked(type = "Consensus")]
async fn supervise_in_blocks() -> u32 {
    let worker = Worker(20);
    let method = tokio::spawn(async move { worker.run().await });
    let function = tokio::spawn(async move { worker::run(30).await });
    let boxed = tokio::spawn(async move { Box::pin(worker::run(40)).await });
    method.await.unwrap() + function.await.unwrap() + boxed.await.unwrap()
}

/// `spawn(async move { worker.run().await })`: the block calls the plain
/// `run`, whose body awaits the annotated `db::run` in the task's first
/// poll. That fn is a unit in the task, not the task, which keeps the
/// spawn's name and type, whether the block calls a method, a fn, or a fn
/// through a wrapper.
#[tokio::test]
async fn a_fn_called_by_the_fn_a_spawned_block_calls_does_not_claim_the_task() {
    let tracker = finished(async {
        assert_eq!(supervise_in_blocks().await, 21 + 31 + 41);
    })
    .await;
    let tasks: Vec<TaskSnapshot> = tracker.finished(&Query::new());
    let prefix = format!("{MODULE}::supervise_in_blocks::run");
    let mut spawned: Vec<&TaskSnapshot> = tasks
        .iter()
        .filter(|t| t.name.starts_with(&prefix))
        .collect();
    spawned.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<String> = spawned.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(
        names,
        [prefix.clone(), format!("{prefix}#2"), format!("{prefix}#3")],
        "{tasks:#?}"
    );
    for task in &spawned {
        assert_eq!(task.kind, SpawnKind::Async);
        assert_eq!(task.ty, TaskType::CONSENSUS, "the spawning fn's type");
        assert!(task.fn_site.is_none(), "not claimed: {task:#?}");
        let unit = tasks
            .iter()
            .find(|t| t.parent == Some(task.id))
            .expect("db::run is a unit in the task");
        assert_eq!(unit.name, format!("{MODULE}::db::run"));
        assert_eq!(unit.kind, SpawnKind::Inline);
        assert_eq!(unit.ty, TaskType::DATABASE);
    }
    // root, supervise_in_blocks, three tasks and their three units.
    assert_eq!(tasks.len(), 8, "{tasks:#?}");
}

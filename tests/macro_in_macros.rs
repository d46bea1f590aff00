//! Spawns written inside macros whose arguments are expressions
//! (`tokio::join!`, `tokio::select!`, `vec!`) are rewritten like the others:
//! tracked children of the annotated fn, each with its catalogue site.

use std::time::Duration;

use tracked::{tracked, Query, SpawnKind, TaskSnapshot, TaskType, Tracker};

const MODULE: &str = module_path!();

#[tracked(type = "Network")]
async fn vote(round: u32) -> u32 {
    tokio::task::yield_now().await;
    round
}

#[tracked(type = "Consensus")]
async fn round_in_macros() -> u32 {
    let (a, b) = tokio::join!(tokio::spawn(vote(1)), tokio::spawn(vote(2)));
    let handles = vec![tokio::spawn(vote(3))];
    let mut total = a.unwrap() + b.unwrap();
    for handle in handles {
        total += handle.await.unwrap();
    }
    tokio::select! {
        c = tokio::spawn(vote(4)) => total += c.unwrap(),
    }
    // After a field's colon.
    let held = vec![Held {
        handle: tokio::spawn(vote(5)),
    }];
    for held in held {
        total += held.handle.await.unwrap();
    }
    // Not a spawn for the macro: left as it is.
    assert!(stringify!(tokio::spawn(vote(6))).contains("spawn"));
    // Not tokio's: the tail of another path is not taken for a spawn.
    assert_eq!(not_tokio::tokio::spawn(7), 7);
    total
}

struct Held {
    handle: tokio::task::JoinHandle<u32>,
}

mod not_tokio {
    pub(crate) mod tokio {
        pub(crate) fn spawn(n: u32) -> u32 {
            n
        }
    }
}

#[tokio::test]
async fn spawns_inside_expression_macros_are_tracked_children() {
    let tracker = Tracker::new();
    let total = tracker
        .spawn("root", TaskType::GENERAL, round_in_macros())
        .await
        .unwrap();
    assert_eq!(total, 15);
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tasks = tracker.finished(&Query::new());
    let round = tasks
        .iter()
        .find(|t| t.name == format!("{MODULE}::round_in_macros"))
        .expect("the round ran");
    let votes: Vec<&TaskSnapshot> = tasks
        .iter()
        .filter(|t| t.name == format!("{MODULE}::vote"))
        .collect();
    assert_eq!(votes.len(), 5, "{tasks:#?}");
    for vote in &votes {
        assert_eq!(vote.kind, SpawnKind::Async, "spawned and claimed");
        assert_eq!(vote.parent, Some(round.id));
    }
    let sites: Vec<String> = tracked::catalogue()
        .in_module(MODULE)
        .iter()
        .map(|site| format!("{} {}", site.kind().as_str(), site.name()))
        .collect();
    let round_name = format!("{MODULE}::round_in_macros");
    assert_eq!(
        sites,
        [
            format!("fn {MODULE}::vote"),
            format!("fn {round_name}"),
            format!("spawn {round_name}::vote"),
            format!("spawn {round_name}::vote#2"),
            format!("spawn {round_name}::vote#3"),
            format!("spawn {round_name}::vote#4"),
            format!("spawn {round_name}::vote#5"),
        ]
    );
}

//! The names `#[tracked]` gives sites and tasks.

use std::time::Duration;

use tracked::{tracked, Query, SpawnKind, TaskType, Tracker};

const MODULE: &str = module_path!();

/// A fn named by a raw identifier, as a keyword must be.
#[tracked(type = "Network")]
async fn r#match(round: u32) -> u32 {
    round
}

#[tracked(type = "Consensus")]
async fn r#loop() -> u32 {
    tokio::spawn(r#match(2)).await.unwrap()
}

#[tokio::test]
async fn a_raw_identifier_names_without_its_prefix_and_still_claims() {
    let tracker = Tracker::new();
    let value = tracker
        .spawn("root", TaskType::GENERAL, r#loop())
        .await
        .unwrap();
    assert_eq!(value, 2);
    for _ in 0..100 {
        if tracker.stats().total.live() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let names: Vec<String> = tracked::catalogue()
        .in_module(MODULE)
        .iter()
        .map(|site| site.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            format!("{MODULE}::match"),
            format!("{MODULE}::loop"),
            format!("{MODULE}::loop::match"),
        ]
    );
    let spawned = tracker.finished(&Query::new().name_prefix(format!("{MODULE}::match")));
    assert_eq!(spawned.len(), 1, "{spawned:#?}");
    assert_eq!(spawned[0].kind, SpawnKind::Async, "the fn claimed its task");
    assert_eq!(spawned[0].ty, TaskType::NETWORK);
}

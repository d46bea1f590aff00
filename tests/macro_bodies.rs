//! Bodies as services write them: each annotated fn here is tracked, with
//! its spawns rewritten, whatever its body starts with or returns.

use tracked::{tracked, Query, SiteKind, SpawnKind, TaskState, Tracker};

#[path = "common/root.rs"]
mod root;
use root::run_in_tracker;

const MODULE: &str = module_path!();

fn name(suffix: &str) -> String {
    format!("{MODULE}::{suffix}")
}

fn finished_named(tracker: &Tracker, name: &str) -> Vec<tracked::TaskSnapshot> {
    tracker
        .finished(&Query::new())
        .into_iter()
        .filter(|t| t.name == name)
        .collect()
}

/// An inner attribute first in the body, as a lint allowed for one fn.
#[tracked(type = "Network")]
async fn with_inner_attribute(votes: u32) -> u32 {
    #![allow(clippy::let_and_return)]
    let doubled = tokio::spawn(async move { votes * 2 }).await.unwrap();
    doubled
}

#[tokio::test]
async fn a_body_with_an_inner_attribute_is_tracked_and_its_spawns_rewritten() {
    let (tracker, root) = run_in_tracker(async {
        assert_eq!(with_inner_attribute(21).await, 42);
    })
    .await;

    let units = finished_named(&tracker, &name("with_inner_attribute"));
    assert_eq!(units.len(), 1, "the fn is a unit");
    assert_eq!(units[0].kind, SpawnKind::Inline);
    assert_eq!(units[0].parent, Some(root));
    let spawned = finished_named(&tracker, &name("with_inner_attribute::async_block"));
    assert_eq!(spawned.len(), 1, "its spawn is rewritten");
    assert_eq!(spawned[0].parent, Some(units[0].id));
    assert_eq!(spawned[0].state, TaskState::Completed);

    let sites: Vec<(String, SiteKind)> = tracked::catalogue()
        .in_module(MODULE)
        .into_iter()
        .filter(|s| s.name().contains("with_inner_attribute"))
        .map(|s| (s.name().to_owned(), s.kind()))
        .collect();
    assert_eq!(
        sites,
        [
            (name("with_inner_attribute"), SiteKind::Fn),
            (name("with_inner_attribute::async_block"), SiteKind::Spawn),
        ]
    );
}

//! `#[tracked]` seen through the runtime's query API: annotated fns and the
//! spawns they rewrite appear with the right name, type, parent and site.

use std::time::Duration;

use tracked::{
    tracked, CatalogueStatus, Query, SiteKind, SpawnKind, TaskSnapshot, TaskState, TaskType,
    Tracker,
};

#[path = "common/root.rs"]
mod root;
use root::run_in_tracker;

const MODULE: &str = module_path!();

fn name(suffix: &str) -> String {
    format!("{MODULE}::{suffix}")
}

fn finished_named(tracker: &Tracker, name: &str) -> Vec<TaskSnapshot> {
    tracker
        .finished(&Query::new())
        .into_iter()
        .filter(|t| t.name == name)
        .collect()
}

const ROUND_LINE: u32 = line!() + 2;
#[tracked(type = "Consensus")]
async fn run_round(votes: u32) -> u32 {
    votes * 2
}

#[tokio::test]
async fn an_awaited_fn_is_an_inline_unit_under_the_awaiting_task() {
    let (tracker, root) = run_in_tracker(async {
        assert_eq!(run_round(21).await, 42);
    })
    .await;

    let units = finished_named(&tracker, &name("run_round"));
    assert_eq!(units.len(), 1, "one record, no double registration");
    let unit = &units[0];
    assert_eq!(unit.kind, SpawnKind::Inline);
    assert_eq!(unit.ty, TaskType::CONSENSUS);
    assert_eq!(unit.parent, Some(root));
    assert_eq!(unit.state, TaskState::Completed);
    assert_eq!(unit.site.file, file!());
    assert_eq!(unit.site.line, ROUND_LINE);
    let site = unit.fn_site.expect("linked to its catalogue site");
    assert_eq!(site.kind(), SiteKind::Fn);
    assert_eq!(site.name(), name("run_round"));
    assert!(unit.spawn_site.is_none());
}

#[tracked(type = "Network")]
async fn vote_processor(votes: u32) -> u32 {
    tracked::task_id().expect("runs as a tracked task");
    votes + 1
}

const SPAWN_LINE: u32 = line!() + 4;
#[tracked(type = "Consensus")]
async fn round_with_children() -> u32 {
    let me = tracked::task_id();
    let handle = tokio::spawn(vote_processor(1));
    let plain = tokio::spawn(plain_work());
    assert_eq!(tracked::task_id(), me);
    handle.await.unwrap() + plain.await.unwrap()
}

async fn plain_work() -> u32 {
    10
}

#[tokio::test]
async fn a_spawned_annotated_fn_claims_its_task() {
    let (tracker, _) = run_in_tracker(async {
        assert_eq!(round_with_children().await, 12);
    })
    .await;

    let round = &finished_named(&tracker, &name("round_with_children"))[0];
    let children = finished_named(&tracker, &name("vote_processor"));
    assert_eq!(children.len(), 1, "the spawn and the fn are one record");
    let child = &children[0];
    assert_eq!(child.kind, SpawnKind::Async);
    assert_eq!(
        child.ty,
        TaskType::NETWORK,
        "the spawned fn's own type wins"
    );
    assert_eq!(child.parent, Some(round.id));
    assert_eq!(child.fn_site.unwrap().name(), name("vote_processor"));
    let spawn_site = child.spawn_site.expect("linked to the spawn site");
    assert_eq!(
        spawn_site.name(),
        name("round_with_children::vote_processor")
    );
    assert_eq!(spawn_site.location().line, SPAWN_LINE);
    // The claim moved the task's counts to its new type; none are lost.
    let stats = tracker.stats();
    assert_eq!(stats.by_type[&TaskType::NETWORK].completed, 1);
    assert_eq!(stats.total.spawned, stats.total.finished());
}

/// Consensus tasks spawned and claimed away so far: what the exporters
/// report as spawned.
fn consensus_spawns(tracker: &Tracker) -> u64 {
    let counts = tracker.stats().by_type[&TaskType::CONSENSUS];
    counts.spawned + counts.claimed
}

#[tracked(type = "Consensus")]
async fn round_watching_its_counts(tracker: Tracker) -> (u64, u64) {
    // Rewritten: a Consensus spawn until `vote_processor` claims it.
    let vote = tokio::spawn(vote_processor(1));
    let before = consensus_spawns(&tracker);
    vote.await.unwrap();
    (before, consensus_spawns(&tracker))
}

/// A claim moves a task to the fn's type, but no exported counter goes
/// down: the type it leaves counts it as claimed (a Prometheus counter that
/// drops reads as a reset, and `rate()` spikes).
#[tokio::test]
async fn a_claim_moves_a_task_between_types_and_no_counter_goes_down() {
    let tracker = Tracker::new();
    let root = tracker.spawn(
        "root",
        TaskType::GENERAL,
        round_watching_its_counts(tracker.clone()),
    );
    let (before, after) = root.await.unwrap();
    // The round (a unit inside `root`) and its vote, then as many.
    assert_eq!((before, after), (2, 2));
    let stats = tracker.stats();
    let of = |ty: TaskType| stats.by_type[&ty];
    assert_eq!(
        (of(TaskType::GENERAL).spawned, of(TaskType::GENERAL).claimed),
        (1, 0)
    );
    assert_eq!(
        (
            of(TaskType::CONSENSUS).spawned,
            of(TaskType::CONSENSUS).claimed
        ),
        (1, 1)
    );
    assert_eq!(
        (of(TaskType::NETWORK).spawned, of(TaskType::NETWORK).claimed),
        (1, 0)
    );
    for counts in stats.by_type.values().chain([&stats.total]) {
        assert_eq!(
            counts.spawned,
            counts.live() + counts.finished(),
            "{counts:?}"
        );
    }
    #[cfg(feature = "prometheus")]
    {
        let text = tracked::prometheus::render(&tracker, &Default::default());
        for line in [
            r#"tracked_tasks_spawned_total{type="General"} 1"#,
            r#"tracked_tasks_claimed_total{type="General"} 0"#,
            r#"tracked_tasks_spawned_total{type="Consensus"} 2"#,
            r#"tracked_tasks_claimed_total{type="Consensus"} 1"#,
            r#"tracked_tasks_spawned_total{type="Network"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}

#[tracked(type = "Network")]
async fn waits_for_a_reply(reply: tokio::sync::oneshot::Receiver<()>) {
    let _ = reply.await;
}

#[tracked(type = "Consensus")]
async fn round_awaiting_a_reply(reply: tokio::sync::oneshot::Receiver<()>) {
    tokio::spawn(waits_for_a_reply(reply)).await.unwrap();
}

/// Whether the live task named `name` is seen so that `seen` holds, within
/// a few seconds.
async fn seen_live(tracker: &Tracker, name: &str, seen: impl Fn(&TaskSnapshot) -> bool) -> bool {
    for _ in 0..1000 {
        let live = tracker.tasks(&Query::new().name_prefix(name));
        if live.first().is_some_and(&seen) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// A claim replaces the task's record: on a tracker that times polls, the
/// new record times them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_task_keeps_its_poll_timing() {
    let tracker = Tracker::builder().busy_time(true).build();
    let (reply, replied) = tokio::sync::oneshot::channel();
    let root = tracker.spawn("root", TaskType::GENERAL, round_awaiting_a_reply(replied));
    let waiter = name("waits_for_a_reply");
    assert!(
        seen_live(&tracker, &waiter, |t| t.idle_since.is_some()).await,
        "the claimed task is seen idle, waiting for its reply"
    );
    reply.send(()).unwrap();
    root.await.unwrap();
    let done = finished_named(&tracker, &waiter);
    assert_eq!(done.len(), 1);
    assert!(done[0].busy.is_some());
    assert_eq!(done[0].polls, 2);
}

/// The waker a claimed task's fn keeps (here in the oneshot) points at the
/// task's wake state, which the new record must share to count the wake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_task_keeps_its_wakes() {
    let tracker = Tracker::builder().wakes(true).build();
    let (reply, replied) = tokio::sync::oneshot::channel();
    let root = tracker.spawn("root", TaskType::GENERAL, round_awaiting_a_reply(replied));
    let waiter = name("waits_for_a_reply");
    let waiting = seen_live(&tracker, &waiter, |t| {
        t.wakes.as_ref().is_some_and(|w| w.wakers == 1)
    });
    assert!(
        waiting.await,
        "the claimed task waits, its waker in the oneshot"
    );
    reply.send(()).unwrap();
    root.await.unwrap();
    let done = finished_named(&tracker, &waiter);
    let wakes = done[0].wakes.as_ref().expect("followed after the claim");
    assert_eq!((wakes.wakes, wakes.scheduled_polls), (1, 1));
}

#[tokio::test]
async fn a_spawned_plain_fn_gets_the_spawn_sites_name_and_the_fns_type() {
    let (tracker, _) = run_in_tracker(async {
        round_with_children().await;
    })
    .await;

    let round = &finished_named(&tracker, &name("round_with_children"))[0];
    let plain = &finished_named(&tracker, &name("round_with_children::plain_work"))[0];
    assert_eq!(plain.ty, TaskType::CONSENSUS);
    assert_eq!(plain.parent, Some(round.id));
    assert_eq!(plain.kind, SpawnKind::Async);
    assert_eq!(plain.site.file, file!());
    assert_eq!(plain.site.line, SPAWN_LINE + 1);
    assert!(plain.fn_site.is_none());
}

#[derive(Debug)]
struct RoundError;

impl std::fmt::Display for RoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quorum lost")
    }
}

#[tracked(type = "Consensus", name = "failing-round")]
async fn failing_round() -> Result<(), RoundError> {
    Err(RoundError)
}

#[tracked]
async fn panicking_round() {
    panic!("boom");
}

#[tracked(type = "Consensus")]
async fn round_spawning_a_panic() -> bool {
    tokio::spawn(panicking_round()).await.is_err()
}

#[tokio::test]
async fn a_claimed_task_that_panics_is_panicked_once_with_its_location() {
    let (tracker, _) = run_in_tracker(async {
        assert!(
            round_spawning_a_panic().await,
            "the panic reaches the handle"
        );
    })
    .await;

    // The fn claimed the spawned task: its panic, caught in the fn and
    // resumed, is recorded once, by the task's wrapper, with the location
    // the panic hook saw.
    let panicked = finished_named(&tracker, &name("panicking_round"));
    assert_eq!(panicked.len(), 1, "the spawn and the fn are one record");
    assert_eq!(panicked[0].kind, SpawnKind::Async);
    assert_eq!(panicked[0].state, TaskState::Panicked);
    assert_eq!(panicked[0].error.as_deref(), Some("boom"));
    let location = panicked[0].panic_location.as_deref().expect("a location");
    assert!(location.starts_with(file!()), "{location}");
}

#[tokio::test]
async fn err_is_failed_and_panic_is_panicked() {
    let (tracker, _) = run_in_tracker(async {
        assert!(failing_round().await.is_err());
        // tracked: allow(untracked-spawn) -- isolates the panic; the test counts only the tracked round
        let panicked = tokio::spawn(async { panicking_round().await }).await;
        assert!(panicked.is_err());
    })
    .await;

    let failed = &finished_named(&tracker, "failing-round")[0];
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.error.as_deref(), Some("quorum lost"));
    // Spawned by plain tokio from an unannotated block: a root unit in the
    // global tracker, not in this one.
    assert!(finished_named(&tracker, &name("panicking_round")).is_empty());
    let global = finished_named(Tracker::global(), &name("panicking_round"));
    assert_eq!(global[0].state, TaskState::Panicked);
    assert_eq!(global[0].error.as_deref(), Some("boom"));
}

#[tracked(type = "Maintenance", owner = format!("tenant-{tenant}"))]
async fn cleanup(tenant: u32) {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[tokio::test]
async fn a_dropped_unit_is_cancelled_and_keeps_its_owner() {
    let (tracker, _) = run_in_tracker(async {
        let timed_out = tokio::time::timeout(Duration::from_millis(10), cleanup(7)).await;
        assert!(timed_out.is_err());
    })
    .await;

    let unit = &finished_named(&tracker, &name("cleanup"))[0];
    assert_eq!(unit.state, TaskState::Cancelled);
    assert_eq!(unit.owner.as_deref(), Some("tenant-7"));
    assert_eq!(unit.ty, TaskType::MAINTENANCE);
}

#[tracked(type = "Database")]
async fn with_imports() -> u32 {
    use tokio::task;
    use tokio::task::spawn_blocking as blocking;
    let a = task::spawn_blocking(|| compute(1));
    let b = blocking(move || compute(2));
    let c = tokio::spawn(async move { 3 });
    a.await.unwrap() + b.await.unwrap() + c.await.unwrap()
}

fn compute(x: u32) -> u32 {
    x
}

#[tokio::test]
async fn imported_and_blocking_spawns_are_rewritten_and_numbered() {
    let (tracker, _) = run_in_tracker(async {
        assert_eq!(with_imports().await, 6);
    })
    .await;

    let parent = &finished_named(&tracker, &name("with_imports"))[0];
    let mut children: Vec<(String, SpawnKind)> = tracker
        .finished(&Query::new().parent(parent.id))
        .into_iter()
        .map(|t| (t.name.into_owned(), t.kind))
        .collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        children,
        [
            (name("with_imports::async_block"), SpawnKind::Async),
            (name("with_imports::compute"), SpawnKind::Blocking),
            (name("with_imports::compute#2"), SpawnKind::Blocking),
        ]
    );
}

#[tracked(type = "UI")]
#[expect(dead_code, reason = "a catalogued fn that never runs")]
async fn never_called() {}

#[test]
fn the_catalogue_holds_exactly_this_crates_sites() {
    let catalogue = tracked::catalogue();
    assert!(matches!(catalogue.status(), CatalogueStatus::Collected(_)));
    let mut ours: Vec<(String, SiteKind)> = catalogue
        .in_module(MODULE)
        .into_iter()
        .map(|site| (site.name().to_owned(), site.kind()))
        .collect();
    ours.sort();
    let mut expected = vec![
        (name("cleanup"), SiteKind::Fn),
        ("failing-round".to_owned(), SiteKind::Fn),
        (name("hold"), SiteKind::Fn),
        (name("never_called"), SiteKind::Fn),
        (name("panicking_round"), SiteKind::Fn),
        (name("round_awaiting_a_reply"), SiteKind::Fn),
        (
            name("round_awaiting_a_reply::waits_for_a_reply"),
            SiteKind::Spawn,
        ),
        (name("round_watching_its_counts"), SiteKind::Fn),
        (
            name("round_watching_its_counts::vote_processor"),
            SiteKind::Spawn,
        ),
        (name("round_spawning_a_panic"), SiteKind::Fn),
        (
            name("round_spawning_a_panic::panicking_round"),
            SiteKind::Spawn,
        ),
        (name("round_with_children"), SiteKind::Fn),
        (name("round_with_children::plain_work"), SiteKind::Spawn),
        (name("round_with_children::vote_processor"), SiteKind::Spawn),
        (name("run_round"), SiteKind::Fn),
        (name("vote_processor"), SiteKind::Fn),
        (name("waits_for_a_reply"), SiteKind::Fn),
        (name("with_imports"), SiteKind::Fn),
        (name("with_imports::async_block"), SiteKind::Spawn),
        (name("with_imports::compute"), SiteKind::Spawn),
        (name("with_imports::compute#2"), SiteKind::Spawn),
        (name("yields_three_times"), SiteKind::Fn),
    ];
    expected.sort();
    assert_eq!(ours, expected);
    // Sites come in file order, and every site here is in this file.
    assert!(catalogue
        .in_module(MODULE)
        .iter()
        .all(|s| s.location().file == file!()));
    let never = catalogue.never_ran();
    assert!(never.iter().any(|s| s.name() == name("never_called")));
}

#[test]
fn the_lint_reports_undeclared_and_unused_types() {
    let catalogue = tracked::catalogue();
    let declared = [
        TaskType::CONSENSUS,
        TaskType::NETWORK,
        TaskType::new("Unused"),
    ];
    let findings = catalogue.lint(Some(&declared));
    let rules: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    assert!(
        rules
            .iter()
            .any(|f| f.starts_with("unused-type: type `Unused`")),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|f| f.starts_with("undeclared-type: ") && f.contains("never_called")),
        "{rules:?}"
    );
    assert!(
        !rules.iter().any(|f| f.starts_with("duplicate-name")),
        "{rules:?}"
    );
}

#[tokio::test]
async fn usage_counts_live_tasks_per_site() {
    let tracker = Tracker::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tracker.spawn("holder", TaskType::GENERAL, async move {
        let _ = hold(rx).await;
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let usage = tracked::catalogue().usage(&tracker);
    let hold_site = usage
        .iter()
        .find(|u| u.site.name() == name("hold"))
        .expect("hold is catalogued");
    assert_eq!(hold_site.live, 1);
    tx.send(()).unwrap();
    handle.await.unwrap();
    let usage = tracked::catalogue().usage(&tracker);
    let hold_site = usage
        .iter()
        .find(|u| u.site.name() == name("hold"))
        .unwrap();
    assert_eq!((hold_site.live, hold_site.finished), (0, 1));
}

#[tracked]
async fn hold(
    rx: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), tokio::sync::oneshot::error::RecvError> {
    rx.await
}

#[tracked(type = "Database")]
async fn yields_three_times() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// A `#[tracked]` fn awaited in a task is polled within the task's polls:
/// the per-type poll and scheduling-delay histograms count each of tokio's
/// polls once, in the task's type, not again in the fn's.
#[tokio::test]
async fn an_awaited_fns_polls_are_counted_once_in_the_tasks_type() {
    let tracker = Tracker::builder().busy_time(true).wakes(true).build();
    tracker
        .spawn("host", TaskType::NETWORK, yields_three_times())
        .await
        .unwrap();
    let counts = |histograms: std::collections::BTreeMap<TaskType, tracked::PollHistogram>| {
        histograms
            .into_iter()
            .map(|(ty, h)| (ty, h.count()))
            .filter(|(_, count)| *count > 0)
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(tracker.poll_durations()), [(TaskType::NETWORK, 4)]);
    assert_eq!(
        counts(tracker.scheduling_delays()),
        [(TaskType::NETWORK, 3)]
    );
    let unit = &finished_named(&tracker, &name("yields_three_times"))[0];
    assert_eq!(unit.kind, SpawnKind::Inline);
    assert!(unit.busy.is_some(), "the fn keeps its own busy time");
}

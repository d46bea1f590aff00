//! The task journal against real databases: an SQLite file, and a private
//! PostgreSQL server started by the test (see `journal/pg_server.rs`).

#![cfg(feature = "journal")]

#[path = "common/logs.rs"]
mod logs;
#[cfg(feature = "journal-postgres")]
#[path = "journal/pg_server.rs"]
mod pg_server;
use logs::logged;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use tracked::journal::{Journal, JournalBuilder, JournalError, JournalQuery};
use tracked::{ShutdownPlan, TaskState, TaskType, Tracker};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Flushes until the database takes it (it may be coming back up).
async fn flush_until_ok(journal: &Journal) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match journal.flush().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("flush: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the journal never recovered: {e}"),
        }
    }
}

/// Runs a task named `after` to its end, then flushes: the tests of rows
/// a database could refuse check that the events after them are written
/// too. A hang guard: a batch that fails for good is retried forever, so
/// a flush not done in 60 s fails the test, as does a flush that fails
/// (`why`: what made it fail before).
async fn after_then_flush(tracker: &Tracker, journal: &Journal, why: &str) {
    tracker
        .spawn("after", TaskType::GENERAL, async {})
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), journal.flush())
        .await
        .expect("flush hung")
        .expect(why);
}

/// Every field of every kind of ending goes in and comes back out.
async fn round_trip(builder: JournalBuilder) {
    let tracker = Tracker::new();
    let journal = builder.service("round-trip").start(&tracker).await.unwrap();
    let before = SystemTime::now();
    let parent = tracker
        .task_builder("parent", TaskType::CONSENSUS)
        .owner("tenant-1")
        .label("round", "7")
        .label("shard", "a\"b")
        .spawn(async {
            tracked::progress(10, "started");
            tracked::progress(90, "almost");
            let child = tracked::spawn("child", TaskType::NETWORK, async { 1 });
            let failed = tracked::spawn("failing", TaskType::DATABASE, async {
                Err::<(), _>("disk full: /var")
            });
            let panicked = tracked::spawn("panicking", TaskType::GAME_LOGIC, async {
                if true {
                    panic!("boom at turn 3");
                }
            });
            let blocking = tracked::spawn_blocking("blocking", TaskType::MAINTENANCE, || 2);
            let stuck = tracked::spawn("stuck", TaskType::UI, std::future::pending::<()>());
            stuck.abort();
            assert_eq!(child.await.unwrap(), 1);
            failed.await.unwrap().unwrap_err();
            panicked.await.unwrap_err();
            blocking.await.unwrap();
            stuck.await.unwrap_err();
        });
    let parent_id = parent.id();
    parent.await.unwrap();
    let after = SystemTime::now();
    journal.flush().await.unwrap();

    let detail = journal
        .task(journal.instance(), parent_id.as_u64())
        .await
        .unwrap()
        .expect("the parent is journaled");
    let live = tracker.task(parent_id).expect("still in history").task;
    let t = &detail.task;
    assert_eq!(t.instance, journal.instance());
    assert_eq!(t.name, "parent");
    assert_eq!(t.ty, "Consensus");
    assert_eq!(t.owner.as_deref(), Some("tenant-1"));
    assert_eq!(
        t.labels,
        vec![
            ("round".into(), "7".into()),
            ("shard".into(), "a\"b".into())
        ]
    );
    assert_eq!(t.site, live.site.to_string());
    assert_eq!(t.kind, "async");
    assert_eq!(t.state, TaskState::Completed);
    assert_eq!(t.progress, Some(90));
    assert_eq!(t.parent, None);
    let started = t.started_at.unwrap();
    let finished = t.finished_at.unwrap();
    assert!(before <= t.spawned_at && t.spawned_at <= started && started <= finished);
    assert!(finished <= after);
    assert_eq!(
        t.duration.unwrap(),
        finished.duration_since(t.spawned_at).unwrap()
    );
    let log: Vec<_> = detail
        .progress
        .iter()
        .map(|p| (p.percent, p.message.as_deref()))
        .collect();
    assert_eq!(log, [(10, Some("started")), (90, Some("almost"))]);

    let mut children: Vec<_> = detail
        .children
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.ty.as_str(),
                c.state,
                c.error.as_deref(),
                c.kind.as_str(),
            )
        })
        .collect();
    children.sort();
    assert_eq!(
        children,
        [
            (
                "blocking",
                "Maintenance",
                TaskState::Completed,
                None,
                "blocking"
            ),
            ("child", "Network", TaskState::Completed, None, "async"),
            (
                "failing",
                "Database",
                TaskState::Failed,
                Some("disk full: /var"),
                "async"
            ),
            (
                "panicking",
                "GameLogic",
                TaskState::Panicked,
                Some("boom at turn 3"),
                "async"
            ),
            ("stuck", "UI", TaskState::Cancelled, None, "async"),
        ]
    );
    for c in &detail.children {
        assert_eq!(c.parent, Some(parent_id.as_u64()));
        assert_eq!(c.owner.as_deref(), Some("tenant-1"), "owner is inherited");
    }
    let summary = journal.summary(journal.instance()).await.unwrap();
    assert_eq!(summary.tasks, summary.spawned, "{summary:?}");
    assert_eq!(summary.finished, summary.finished_events, "{summary:?}");
    assert_eq!(summary.progress, 2);
    assert_eq!(summary.dropped, 0);
    let stats = journal.shutdown().await;
    assert_eq!(stats.dropped, 0);
    assert!(stats.stopped);
    // The writer cannot hear of its own end, so it writes it as it stops:
    // its row is not left running.
    let writer = JournalQuery::new()
        .instance(journal.instance())
        .name_prefix("tracked::journal");
    let tasks = journal.tasks(&writer).await.unwrap().tasks;
    // PostgreSQL's connection task (`tracked::journal::postgres`) still runs.
    let writer: Vec<_> = tasks
        .iter()
        .filter(|t| t.name == "tracked::journal")
        .collect();
    assert_eq!(writer.len(), 1, "{tasks:?}");
    assert_eq!(writer[0].state, TaskState::Completed, "{:?}", writer[0]);
    assert!(writer[0].finished_at.is_some());
}

/// Texts holding NUL (a C string's tail, binary data in an error) are
/// written with U+FFFD in its place, the same in either database: the
/// batch holding them is not refused (PostgreSQL rejects NUL in text) and
/// retried for good, stalling every later event.
async fn nul_in_texts(builder: JournalBuilder) {
    let tracker = Tracker::new();
    let journal = builder.service("nul\0svc").start(&tracker).await.unwrap();
    tracker
        .task_builder(String::from("name\0tail"), TaskType::DATABASE)
        .owner("owner\0x")
        .label("k\0", "v\0")
        .spawn(async {
            tracked::progress(50, "half\0way");
            Err::<(), _>("bad\0bytes")
        })
        .await
        .unwrap()
        .unwrap_err();
    after_then_flush(&tracker, &journal, "a text with NUL makes the batch fail").await;
    // The instance id as written, so that asking by it finds its rows.
    assert_eq!(
        journal.instance().find('\0'),
        None,
        "{:?}",
        journal.instance()
    );
    let query = JournalQuery::new().instance(journal.instance());
    let page = journal.tasks(&query).await.unwrap();
    let by = |name: &str| page.tasks.iter().find(|t| t.name == name).cloned();
    assert!(by("after").is_some(), "{page:?}");
    let task = by("name\u{fffd}tail").expect("the NUL task");
    assert_eq!(task.owner.as_deref(), Some("owner\u{fffd}x"));
    assert_eq!(task.error.as_deref(), Some("bad\u{fffd}bytes"));
    assert_eq!(task.labels, [("k\0".to_owned(), "v\0".to_owned())]);
    let detail = journal.task(journal.instance(), task.id).await.unwrap();
    let detail = detail.expect("the task's detail");
    assert_eq!(
        detail.progress[0].message.as_deref(),
        Some("half\u{fffd}way")
    );
    let owned = JournalQuery::new().owner("owner\u{fffd}x");
    assert_eq!(journal.tasks(&owned).await.unwrap().tasks.len(), 1);
    // A name prefix holding NUL asks for what was written (PostgreSQL
    // refused the query before, as it refuses NUL in text).
    for prefix in ["name\0", "name\u{fffd}"] {
        let named = JournalQuery::new().name_prefix(prefix);
        assert_eq!(journal.tasks(&named).await.unwrap().tasks.len(), 1);
    }
    assert_eq!(journal.stats().dropped, 0);
    journal.shutdown().await;
}

/// `bytes` letters and digits that do not compress, so that PostgreSQL
/// cannot shrink them into an index entry.
fn noise(bytes: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(CHARS[(x % CHARS.len() as u64) as usize])
        })
        .collect()
}

/// `written` is `full` cut to at most `bound` bytes, ending with an
/// ellipsis to say so.
fn assert_cut(written: &str, full: &str, bound: usize) {
    assert!(written.len() <= bound, "{} > {bound}", written.len());
    let kept = written.strip_suffix('…').expect("ends with an ellipsis");
    assert!(full.starts_with(kept), "not a prefix of the text");
    assert!(kept.len() + 3 == bound, "cut short: {}", kept.len());
}

/// A name, type, owner, label key or value, or service name over 1 KiB is
/// cut to 1 KiB, saying so, the same in either database, and a task is
/// found by the owner or type it was given, or a prefix of its name. An owner of 2.7 KB that does not compress
/// is more than PostgreSQL's index entries hold (2704 bytes): its batch
/// failed at every retry, and every later event waited behind it until
/// dropped; a service name as long failed every batch.
async fn long_texts(builder: JournalBuilder) {
    let tracker = Tracker::new();
    let service = noise(3000);
    let journal = builder.service(&service).start(&tracker).await.unwrap();
    let (written_service, _) = journal.instance().split_once('@').unwrap();
    assert_cut(written_service, &service, 1024);
    let name = format!("long-{}", noise(3000));
    let owner = noise(2700);
    let (key, value) = (format!("key-{}", noise(2000)), noise(3000));
    let ty = TaskType::from_name(&format!("Type-{}", noise(1500)));
    tracker
        .task_builder(name.clone(), ty)
        .owner(owner.clone())
        .label(key.clone(), value.clone())
        .spawn(async {})
        .await
        .unwrap();
    after_then_flush(&tracker, &journal, "a long owner makes the batch fail").await;
    let query = JournalQuery::new().instance(journal.instance());
    let page = journal.tasks(&query).await.unwrap();
    assert!(page.tasks.iter().any(|t| t.name == "after"), "{page:?}");
    let task = page
        .tasks
        .iter()
        .find(|t| t.name.starts_with("long-"))
        .expect("the long task, written");
    assert_cut(&task.name, &name, 1024);
    let written = task.owner.clone().unwrap();
    assert_cut(&written, &owner, 1024);
    let [(written_key, written_value)] = &task.labels[..] else {
        panic!("one label: {:?}", task.labels);
    };
    assert_cut(written_key, &key, 1024);
    assert_cut(written_value, &value, 1024);
    // Asked by the owner as written, or by the owner it was given (cut
    // the same way before it is compared), the task is found.
    let owned = JournalQuery::new().owner(written);
    assert_eq!(journal.tasks(&owned).await.unwrap().tasks.len(), 1);
    let given = JournalQuery::new().owner(owner.clone());
    assert_eq!(journal.tasks(&given).await.unwrap().tasks.len(), 1);
    let other = JournalQuery::new().owner(format!("x{}", &owner[1..]));
    assert!(journal.tasks(&other).await.unwrap().tasks.is_empty());
    // So is a type over 1 KiB, written cut, by the type it was given.
    assert_cut(&task.ty, ty.name(), 1024);
    let typed = JournalQuery::new().ty(ty.name());
    assert_eq!(journal.tasks(&typed).await.unwrap().tasks.len(), 1);
    // By a name prefix reaching past the cut too, up to the whole name;
    // not by one that differs before the cut.
    let found = |prefix: String| {
        let query = JournalQuery::new().name_prefix(prefix);
        let journal = journal.clone();
        async move { journal.tasks(&query).await.unwrap().tasks.len() }
    };
    for end in [5, 1021, 1022, 1024, 1025, 2000, name.len()] {
        assert_eq!(found(name[..end].to_owned()).await, 1, "{end} bytes");
    }
    assert_eq!(found(format!("x{}", &name[1..])).await, 0);
    assert_eq!(journal.stats().dropped, 0);
    journal.shutdown().await;
}

/// A row the database refuses (here it is made to refuse the name
/// `poison`, as it refuses a value too long for an index) costs only the
/// events that carry it: the rest of the batch is written, each refused
/// event is counted dropped, on record as drops, and the writer goes on.
/// Before, the batch failed at every retry and every later event waited
/// behind it. See [`assert_refusals_logged`] for the warnings.
async fn refused_rows(tracker: &Tracker, journal: &Journal) {
    for name in ["before", "poison"] {
        tracker
            .spawn(name, TaskType::GENERAL, async {})
            .await
            .unwrap();
    }
    after_then_flush(tracker, journal, "the refused row fails its batch for good").await;
    let names = || async {
        let query = JournalQuery::new().instance(journal.instance());
        let page = journal.tasks(&query).await.unwrap();
        page.tasks
            .into_iter()
            .map(|t| t.name)
            .collect::<HashSet<_>>()
    };
    let written = names().await;
    assert!(written.contains("before"), "{written:?}");
    assert!(written.contains("after"), "{written:?}");
    assert!(!written.contains("poison"), "{written:?}");
    let stats = journal.stats();
    assert_eq!(stats.dropped, 3, "its spawn, start and end: {stats:?}");
    let summary = journal.summary(journal.instance()).await.unwrap();
    assert_eq!(summary.dropped, 3, "{summary:?}");
    assert_eq!(
        summary.events + summary.dropped,
        stats.written + stats.dropped
    );
    tracker
        .spawn("later", TaskType::GENERAL, async {})
        .await
        .unwrap();
    journal.flush().await.unwrap();
    assert!(names().await.contains("later"));
    journal.shutdown().await;
}

/// Each event [`refused_rows`] dropped is named in a warning: its task's id
/// and name, and the database's `reason`.
fn assert_refusals_logged(logs: &str, reason: &str) {
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("refused an event"))
        .collect();
    assert_eq!(refused.len(), 3, "{logs}");
    for line in refused {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("task=") && line.contains("poison"), "{line}");
        assert!(line.contains(reason), "{line}");
    }
}

/// Pages walk every task once, newest first; filters narrow them.
async fn paging_and_filters(builder: JournalBuilder) {
    let tracker = Tracker::new();
    let journal = builder.start(&tracker).await.unwrap();
    let started = SystemTime::now();
    for i in 0..250u32 {
        let owner = if i % 2 == 0 { "even" } else { "odd" };
        let ty = if i % 5 == 0 {
            TaskType::DATABASE
        } else {
            TaskType::NETWORK
        };
        let name = format!("job-{}-{i}", if i < 100 { "early" } else { "late" });
        tracker
            .task_builder(name, ty)
            .owner(owner)
            .spawn(async move {
                if i % 7 == 0 {
                    Err("seven")
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap()
            .ok();
    }
    journal.flush().await.unwrap();
    let mine = JournalQuery::new()
        .instance(journal.instance())
        .name_prefix("job-")
        .limit(100);

    let mut seen = Vec::new();
    let mut query = mine.clone();
    let mut pages = 0;
    loop {
        let page = journal.tasks(&query).await.unwrap();
        pages += 1;
        seen.extend(page.tasks.iter().map(|t| (t.spawned_at, t.id)));
        match page.next {
            Some(next) => query = mine.clone().cursor(&next).unwrap(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let unique: HashSet<_> = seen.iter().map(|s| s.1).collect();
    assert_eq!(unique.len(), 250, "no task twice");
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let count = |q: JournalQuery| {
        let journal = journal.clone();
        async move { journal.tasks(&q.limit(1000)).await.unwrap().tasks }
    };
    let even = count(mine.clone().owner("even")).await;
    assert_eq!(even.len(), 125);
    assert!(even.iter().all(|t| t.owner.as_deref() == Some("even")));
    let failed_db = count(mine.clone().ty("Database").state(TaskState::Failed)).await;
    // Multiples of 35 below 250: 0, 35, ..., 245.
    assert_eq!(failed_db.len(), 8);
    assert!(failed_db
        .iter()
        .all(|t| t.error.as_deref() == Some("seven")));
    assert_eq!(
        count(mine.clone().name_prefix("job-early-")).await.len(),
        100
    );
    assert_eq!(
        count(mine.clone().name_prefix("job-late-1")).await.len(),
        100
    );
    assert_eq!(
        count(mine.clone().name_prefix("job-%")).await.len(),
        0,
        "no wildcards"
    );
    assert_eq!(count(mine.clone().finished()).await.len(), 250);
    assert_eq!(count(mine.clone().since(started)).await.len(), 250);
    assert_eq!(count(mine.clone().until(started)).await.len(), 0);
    let everything = JournalQuery::new().instance(journal.instance());
    assert_eq!(
        count(everything.until(started)).await[0].name,
        "tracked::journal",
        "the writer is a tracked task too"
    );
    assert!(JournalQuery::new().cursor("not-a-cursor").is_err());
}

/// Time-to-live and size cap delete old entries in batches; the heartbeat
/// phase runs it.
/// Retention keeps a task still running in the instance that retains,
/// however quiet and old: its end, written later, would otherwise bring
/// back a row without its spawn's columns. Another instance's unfinished
/// rows (a process that died) go, after the finished ones.
async fn retention_keeps_running_tasks(make: impl Fn() -> JournalBuilder) {
    // A journal that stopped with a task running: its row stays `running`
    // (its process, this one, is alive, so it is not marked cancelled).
    let dead = Tracker::new();
    let journal = make().start(&dead).await.unwrap();
    let stuck = dead.spawn("dead-run", TaskType::GENERAL, std::future::pending::<()>());
    journal.flush().await.unwrap();
    journal.shutdown().await;
    stuck.abort();

    // Quiet since its spawn, the oldest row of this instance.
    let listener = |tracker: &Tracker| {
        let (end, ended) = tokio::sync::oneshot::channel::<()>();
        let task = tracker
            .task_builder("listener", TaskType::NETWORK)
            .label("port", "8080")
            .spawn(async move {
                let _ = ended.await;
            });
        (end, task)
    };
    let ended_whole = |journal: Journal,
                       end: tokio::sync::oneshot::Sender<()>,
                       task: tracked::JoinHandle<()>| async move {
        let id = task.id().as_u64();
        end.send(()).unwrap();
        task.await.unwrap();
        journal.flush().await.unwrap();
        let row = journal.task(journal.instance(), id).await.unwrap();
        let row = row.expect("the listener's row").task;
        assert_eq!(row.labels, [("port".to_owned(), "8080".to_owned())]);
        assert!(row.started_at.is_some() && row.spawned_at < row.finished_at.unwrap());
        // Its writer's end written now, not during the next part's retention.
        journal.shutdown().await;
    };

    let tracker = Tracker::new();
    let journal = make().max_tasks(1).start(&tracker).await.unwrap();
    let (end, task) = listener(&tracker);
    journal.flush().await.unwrap();
    for _ in 0..10 {
        tracker
            .spawn("short", TaskType::GENERAL, async {})
            .await
            .unwrap();
    }
    journal.flush().await.unwrap();
    let done = journal.enforce_retention().await.unwrap();
    assert!(done.trimmed >= 12, "{done:?}");
    // Left: what runs here (the listener, the writer, PostgreSQL's
    // connection task), over the cap.
    let page = journal.tasks(&JournalQuery::new()).await.unwrap();
    let names: Vec<&str> = page.tasks.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"listener"), "{names:?}");
    assert_eq!(
        names.len() as u64,
        tracker.stats().total.live(),
        "{names:?}"
    );
    assert!(
        page.tasks
            .iter()
            .all(|t| t.instance == journal.instance() && t.finished_at.is_none()),
        "{names:?}"
    );
    ended_whole(journal, end, task).await;

    // Expired by age: all but what runs here.
    let tracker = Tracker::new();
    let journal = make().ttl(Duration::ZERO).start(&tracker).await.unwrap();
    let (end, task) = listener(&tracker);
    journal.flush().await.unwrap();
    journal.enforce_retention().await.unwrap();
    let left = journal.len().await.unwrap();
    assert_eq!(left, tracker.stats().total.live(), "what runs here");
    ended_whole(journal, end, task).await;
}

/// SQL taking a journal back to schema v1 (before `tracked_instances` and
/// `writable_from`), with two batches of an instance `old@x#1`, the later
/// at 77 µs.
const BACK_TO_V1: &str = "DROP TABLE tracked_instances; \
    DELETE FROM tracked_journal_schema WHERE version >= 2; \
    ALTER TABLE tracked_journal_schema DROP COLUMN writable_from; \
    INSERT INTO tracked_batches VALUES ('old@x#1', 77, 1, 0, 1, 0, 0), \
    ('old@x#1', 70, 1, 1, 0, 0, 0);";

/// A tiered shutdown leaves the journal's writer (and its connection) alone
/// until its last tier is done: the ends of that tier's own Database tasks,
/// one stopping when asked and one aborted, are journaled with the others',
/// and the writer then stops by itself.
async fn a_shutdown_journals_every_tier(make: JournalBuilder) {
    let tracker = Tracker::new();
    let journal = make.start(&tracker).await.unwrap();
    let polite = |name: &'static str, ty| {
        tracker.spawn(name, ty, async {
            let token = tracked::current().unwrap().cancellation_token();
            token.cancelled().await;
        })
    };
    drop(polite("db-polite", TaskType::DATABASE));
    drop(polite("net-polite", TaskType::NETWORK));
    let pending = std::future::pending::<()>();
    drop(tracker.spawn("db-stubborn", TaskType::DATABASE, pending));
    // Long enough for the polite tasks to stop on a loaded machine: only
    // the stubborn one waits it out.
    let plan = ShutdownPlan::default_with(Duration::from_secs(2));
    let report = tracker.shutdown(plan).await;
    let aborted: Vec<_> = report
        .tiers
        .iter()
        .flat_map(|t| &t.report.aborted)
        .collect();
    let aborted: Vec<&str> = aborted.iter().map(|t| &*t.name).collect();
    assert_eq!(
        aborted,
        ["db-stubborn"],
        "the journal's tasks are left alone"
    );
    let mut waited = 0;
    while !journal.stats().stopped && waited < 6000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert!(
        journal.stats().stopped,
        "the writer stops once the shutdown is done"
    );
    let query = JournalQuery::new().instance(journal.instance());
    let tasks = journal.tasks(&query).await.unwrap().tasks;
    let states: HashMap<String, TaskState> = tasks.into_iter().map(|t| (t.name, t.state)).collect();
    let unfinished: Vec<_> = states.iter().filter(|(_, s)| !s.is_finished()).collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");
    let states: Vec<_> = ["db-polite", "net-polite", "db-stubborn", "tracked::journal"]
        .map(|name| (name, states.get(name).copied()))
        .into();
    assert_eq!(
        states,
        [
            ("db-polite", Some(TaskState::Completed)),
            ("net-polite", Some(TaskState::Completed)),
            ("db-stubborn", Some(TaskState::Cancelled)),
            ("tracked::journal", Some(TaskState::Completed)),
        ]
    );
    journal.shutdown().await;
}

/// Checks a v1 journal brought to v3 (see [`BACK_TO_V1`]): each instance
/// seen alive when it last wrote a batch, each version marked with the
/// builds that can write it. `number` reads one number from the database.
async fn check_migrated_from_v1(number: impl AsyncFn(&'static str) -> i64) {
    let version = "SELECT max(version) FROM tracked_journal_schema";
    assert_eq!(number(version).await, 3);
    let seen = "SELECT seen_at FROM tracked_instances WHERE instance = 'old@x#1'";
    assert_eq!(number(seen).await, 77);
    let from = "SELECT writable_from FROM tracked_journal_schema WHERE version = 3";
    assert_eq!(number(from).await, 2);
}

/// A journal whose database a newer build (v4) migrated, with a table of
/// its own, is refused unless the database says builds of this version can
/// write it: then it is written as it is. `exec` runs SQL on the database
/// `make`'s journals write, which starts with the current schema.
async fn newer_schema_written_if_it_says_so(
    make: impl Fn() -> JournalBuilder,
    exec: impl AsyncFn(&'static str),
) {
    make()
        .start(&Tracker::new())
        .await
        .unwrap()
        .shutdown()
        .await;
    exec(
        "CREATE TABLE tracked_future (x BIGINT); \
         INSERT INTO tracked_journal_schema VALUES (4, 0, NULL);",
    )
    .await;
    let refused = async |why: &str| match make().start(&Tracker::new()).await {
        Err(JournalError::Schema(message)) => assert!(message.contains(why), "{message}"),
        Err(other) => panic!("expected a schema error, got {other}"),
        Ok(_) => panic!("a schema this build cannot write was written"),
    };
    refused("schema v4, written by a newer version; this one knows up to v3").await;
    exec("UPDATE tracked_journal_schema SET writable_from = 4 WHERE version = 4").await;
    refused("newer version for builds of v4 and later").await;
    exec("UPDATE tracked_journal_schema SET writable_from = 3 WHERE version = 4").await;
    let tracker = Tracker::new();
    let journal = make().start(&tracker).await.unwrap();
    tracker
        .spawn("after-upgrade", TaskType::GENERAL, async {})
        .await
        .unwrap();
    journal.flush().await.unwrap();
    let query = JournalQuery::new().name_prefix("after-upgrade");
    let tasks = journal.tasks(&query).await.unwrap().tasks;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state, TaskState::Completed);
    journal.shutdown().await;
}

/// SQL adding two instances of another host, each with a task `*-listener`
/// running and a finished `*-job`, all touched long ago: `live-peer` seen
/// alive now (its writer's beat), `gone-peer` last seen long ago (20 µs),
/// although its listener was touched later than `live-peer`'s.
fn peers() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    [("live-peer", 5, now), ("gone-peer", 10, 20)]
        .iter()
        .map(|(peer, listener, seen)| {
            format!(
                "INSERT INTO tracked_tasks (instance, id, name, type, labels, site, kind, \
                 state, spawned_at, started_at, finished_at, last_at) VALUES \
                 ('{peer}@elsewhere#1.a', 1, '{peer}-listener', 'Network', '[]', 'x.rs:1:1', \
                 'async', 'running', 1, 1, NULL, {listener}), \
                 ('{peer}@elsewhere#1.a', 2, '{peer}-job', 'General', '[]', 'x.rs:1:1', \
                 'async', 'completed', 1, 1, 15, 15); \
                 INSERT INTO tracked_instances (instance, seen_at) \
                 VALUES ('{peer}@elsewhere#1.a', {seen});"
            )
        })
        .collect()
}

/// A journal whose retention, after [`peers`], takes three of their rows by
/// age (a time-to-live of a day) or, with a `cap`, by the size cap (the
/// time-to-live a century). Its own tasks are written first: with a cap of
/// one more than their number, the cap leaves one of the peers' tasks.
async fn peers_journal(builder: JournalBuilder, cap: Option<u64>) -> Journal {
    let day = Duration::from_secs(86_400);
    let builder = match cap {
        None => builder.ttl(day),
        Some(cap) => builder.ttl(day * 36_500).max_tasks(cap),
    };
    let journal = builder.start(&Tracker::new()).await.unwrap();
    journal.flush().await.unwrap();
    journal
}

/// After [`peers`] in `journal` (see [`peers_journal`]): retention keeps
/// the task running in the live peer (a process of a fleet: its quiet
/// listener is not expired by a peer), and takes the rest of the peers'
/// rows, the gone peer's running task included. The cap takes that one
/// before the live peer's, although it was touched later.
async fn check_peers_retained(journal: &Journal, capped: bool) {
    let done = journal.enforce_retention().await.unwrap();
    let expected = match capped {
        false => (3, 0),
        true => (0, 3),
    };
    assert_eq!((done.expired, done.trimmed), expected, "{done:?}");
    let page = journal.tasks(&JournalQuery::new()).await.unwrap();
    let names: Vec<String> = page
        .tasks
        .into_iter()
        .filter(|t| t.instance != journal.instance())
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["live-peer-listener"]);
}

async fn retention(make: impl Fn() -> JournalBuilder) {
    let tracker = Tracker::new();
    let journal = make()
        .ttl(Duration::from_secs(3600))
        .max_tasks(2500)
        .start(&tracker)
        .await
        .unwrap();
    let spawn_many = |n: usize| {
        let tracker = tracker.clone();
        async move {
            for _ in 0..n {
                tracker
                    .spawn("short", TaskType::GENERAL, async {})
                    .await
                    .unwrap();
            }
        }
    };
    spawn_many(3000).await;
    journal.flush().await.unwrap();
    let before = journal.len().await.unwrap();
    assert!(before > 3000, "{before}");
    let done = journal.enforce_retention().await.unwrap();
    assert_eq!(done.expired, 0, "nothing is an hour old");
    assert_eq!(
        done.trimmed,
        before - 2500,
        "trimmed to the cap in batches of 1000"
    );
    assert_eq!(journal.len().await.unwrap(), 2500);
    journal.shutdown().await;

    // A zero time-to-live expires everything but the tasks still running
    // in this process, through a heartbeat phase.
    let tracker = Tracker::new();
    let journal = make().ttl(Duration::ZERO).start(&tracker).await.unwrap();
    journal.flush().await.unwrap();
    let heartbeat = tracked::Heartbeat::new(Duration::from_millis(20));
    let heartbeat = journal.retention_phase(heartbeat, 1).spawn(&tracker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while journal.len().await.unwrap() > tracker.stats().total.live() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    heartbeat.stop();
}

/// The error of a task whose process died without recording its end.
const DIED: &str = "the process ended without recording how this task ended";

/// Instances like `live` (an instance id of this process) whose process is
/// gone: with a pid above any pid_max, on this host and on another one
/// (not known there).
fn dead_twins(live: &str) -> [String; 2] {
    let (front, tail) = live.rsplit_once('#').unwrap();
    let (service, _) = front.rsplit_once('@').unwrap();
    let (_, key) = tail.split_once('.').unwrap();
    [
        format!("{front}#4294967295.{key}"),
        format!("{service}@elsewhere#4294967295.{key}"),
    ]
}

/// SQL adding, for each of [`dead_twins`], a running task `old-hang`
/// spawned at 10 µs and a completed one written last at 40 µs, the
/// instance last seen alive at 50 µs (its writer's beat).
fn dead_instances(live: &str) -> String {
    dead_twins(live)
        .iter()
        .map(|instance| {
            format!(
                "INSERT INTO tracked_tasks (instance, id, name, type, labels, site, kind, \
                 state, spawned_at, started_at, finished_at, last_at) VALUES \
                 ('{instance}', 1, 'old-hang', 'General', '[]', 'x.rs:1:1', 'async', \
                 'running', 10, 20, NULL, 30), \
                 ('{instance}', 2, 'old-done', 'General', '[]', 'x.rs:1:1', 'async', \
                 'completed', 10, 20, 35, 40); \
                 INSERT INTO tracked_instances (instance, seen_at) VALUES ('{instance}', 50);"
            )
        })
        .collect()
}

/// Waits until `live` sees the task `name` of `instance` no longer running
/// (the reap runs in a task of its own), and returns it.
async fn ended(live: &Journal, instance: &str, name: &str) -> tracked::journal::JournalTask {
    let query = JournalQuery::new().instance(instance).name_prefix(name);
    for _ in 0..1000 {
        let tasks = live.tasks(&query).await.unwrap().tasks;
        let task = tasks.into_iter().find(|t| t.name == name).unwrap();
        if task.state != TaskState::Running {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} of {instance} still runs");
}

/// Spawns `name`, which never ends, and returns once it runs: its start
/// is sent, so the next flush writes it `running`.
async fn hanging(tracker: &Tracker, name: &'static str) -> tracked::JoinHandle<()> {
    let (started, running) = tokio::sync::oneshot::channel();
    let handle = tracker.spawn(name, TaskType::GENERAL, async move {
        let _ = started.send(());
        std::future::pending::<()>().await
    });
    running.await.unwrap();
    handle
}

/// After [`dead_instances`] and a journal's start: this host's dead task
/// is cancelled, finished when its instance was last seen alive; the other host's
/// and the live journal's `live-hang` still run.
async fn check_reaped(live: &Journal) {
    let [here, elsewhere] = dead_twins(live.instance());
    let task = ended(live, &here, "old-hang").await;
    let at = |micros| Some(SystemTime::UNIX_EPOCH + Duration::from_micros(micros));
    assert_eq!(
        (task.state, task.error, task.finished_at, task.duration),
        (
            TaskState::Cancelled,
            Some(DIED.to_owned()),
            at(50),
            Some(Duration::from_micros(40))
        )
    );
    let running = |instance: &str| {
        JournalQuery::new()
            .instance(instance)
            .state(TaskState::Running)
    };
    let names = |tasks: Vec<tracked::journal::JournalTask>| -> Vec<String> {
        tasks.into_iter().map(|t| t.name).collect()
    };
    let still = live.tasks(&running(&elsewhere)).await.unwrap().tasks;
    assert_eq!(names(still), ["old-hang"]);
    let own = live.tasks(&running(live.instance())).await.unwrap().tasks;
    assert!(names(own).contains(&"live-hang".to_owned()));
}

mod sqlite {
    use super::*;

    fn builder(dir: &std::path::Path) -> JournalBuilder {
        Journal::sqlite(dir.join("journal.sqlite")).flush_interval(Duration::from_millis(20))
    }

    /// One event of room, and writes only when asked: the rest is dropped.
    fn one_event_of_room(dir: &std::path::Path) -> JournalBuilder {
        builder(dir)
            .buffer(1)
            .batch_size(1000)
            .flush_interval(Duration::from_secs(3600))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_every_field() {
        round_trip(builder(&scratch("sqlite-rt"))).await;
    }

    /// Each event in a transaction of its own: rows merge across batches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_every_field_one_event_per_batch() {
        round_trip(builder(&scratch("sqlite-rt1")).batch_size(1)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_and_filters() {
        paging_and_filters(builder(&scratch("sqlite-paging"))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_texts_holding_nul() {
        nul_in_texts(builder(&scratch("sqlite-nul"))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cuts_long_texts() {
        long_texts(builder(&scratch("sqlite-long"))).await;
    }

    /// SQLite made to refuse a row by a trigger (a constraint error, as
    /// for a text over SQLite's length limit).
    #[test]
    fn a_refused_row_costs_only_its_events() {
        let dir = scratch("sqlite-refused");
        let logs = logged(move |tracker| async move {
            let journal = builder(&dir).start(&tracker).await.unwrap();
            journal.flush().await.unwrap();
            exec(
                &dir.join("journal.sqlite"),
                "CREATE TRIGGER poison BEFORE INSERT ON tracked_tasks WHEN NEW.name = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            );
            refused_rows(&tracker, &journal).await;
        });
        assert_refusals_logged(&logs, "refused by the test");
    }

    /// A schema refusing every row of a kind names ten refused events in
    /// warnings, then only counts them: not a log line per event.
    #[test]
    fn refusals_are_named_ten_at_a_time() {
        let dir = scratch("sqlite-refused-many");
        let logs = logged(move |tracker| async move {
            let journal = builder(&dir).start(&tracker).await.unwrap();
            journal.flush().await.unwrap();
            exec(
                &dir.join("journal.sqlite"),
                "CREATE TRIGGER poison BEFORE INSERT ON tracked_tasks WHEN NEW.name LIKE 'poison%'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            );
            for i in 0..12 {
                let name = format!("poison-{i}");
                tracker
                    .spawn(name, TaskType::GENERAL, async {})
                    .await
                    .unwrap();
            }
            journal.flush().await.unwrap();
            assert_eq!(journal.stats().dropped, 36);
            journal.shutdown().await;
        });
        let named: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("refused an event"))
            .collect();
        assert_eq!(named.len(), 10, "{logs}");
        assert!(named[9].contains("only counted as dropped"), "{}", named[9]);
        assert!(logs.contains("events were dropped"), "{logs}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retention_by_ttl_and_cap() {
        let dir = scratch("sqlite-retention");
        retention(|| builder(&dir)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_keeps_what_runs_here() {
        let dir = scratch("sqlite-retention-running");
        retention_keeps_running_tasks(|| builder(&dir)).await;
    }

    #[tokio::test]
    async fn retention_keeps_what_runs_in_a_live_peer() {
        // Its own task: the writer.
        for cap in [None, Some(2)] {
            let dir = scratch(&format!("sqlite-retention-peers-{cap:?}"));
            let journal = peers_journal(builder(&dir), cap).await;
            exec(&dir.join("journal.sqlite"), &peers());
            check_peers_retained(&journal, cap.is_some()).await;
            journal.shutdown().await;
        }
    }

    /// Starting a journal on `path` fails with a schema error: its message.
    async fn schema_error(path: &std::path::Path) -> String {
        match Journal::sqlite(path).start(&Tracker::new()).await {
            Err(JournalError::Schema(message)) => message,
            Err(other) => panic!("expected a schema error, got {other}"),
            Ok(_) => panic!("expected a schema error, the journal started"),
        }
    }

    /// A journal file with the current schema, then changed by `sql`.
    async fn created_then(path: &std::path::Path, sql: &str) {
        drop(Journal::sqlite(path).start(&Tracker::new()).await.unwrap());
        exec(path, sql);
    }

    fn exec(path: &std::path::Path, sql: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    /// The file deleted under a running journal (and its `-wal`, `-shm`):
    /// later batches go into a new file at the same path, not into the
    /// unlinked one that vanishes at exit. With its directory gone too,
    /// writes fail loudly and are retried until it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_deleted_while_running_is_recreated() {
        let dir = scratch("sqlite-deleted");
        let path = dir.join("journal.sqlite");
        let tracker = Tracker::new();
        let journal = builder(&dir).start(&tracker).await.unwrap();
        let remove = |what: &str| {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("{what}{suffix}")));
            }
        };
        let named = |name: &'static str| {
            let tracker = tracker.clone();
            async move {
                tracker
                    .spawn(name, TaskType::GENERAL, async {})
                    .await
                    .unwrap()
            }
        };
        named("before").await;
        journal.flush().await.unwrap();

        remove("journal.sqlite");
        named("after-rm").await;
        journal.flush().await.unwrap();
        let reader = Journal::sqlite(&path).start(&Tracker::new()).await.unwrap();
        let names = |page: tracked::journal::JournalPage| -> Vec<String> {
            page.tasks.into_iter().map(|t| t.name).collect()
        };
        let q = JournalQuery::new().instance(journal.instance());
        assert_eq!(names(reader.tasks(&q).await.unwrap()), ["after-rm"]);
        reader.shutdown().await;
        drop(reader);

        std::fs::remove_dir_all(&dir).unwrap();
        named("dir-gone").await;
        let err = journal.flush().await.unwrap_err();
        assert!(matches!(err, JournalError::Unavailable(_)), "{err}");
        let stats = journal.stats();
        assert!(!stats.connected, "{stats:?}");
        assert!(stats.pending > 0, "{stats:?}");

        std::fs::create_dir_all(&dir).unwrap();
        flush_until_ok(&journal).await;
        assert_eq!(names(journal.tasks(&q).await.unwrap()), ["dir-gone"]);
        assert_eq!(journal.stats().dropped, 0);
    }

    /// A shutdown while the database is unreachable returns at once; the
    /// events it could not write are in `pending` and named in a warning,
    /// not only in the "retrying" one logged when the database went away.
    #[test]
    fn a_shutdown_with_the_database_gone_says_what_it_lost() {
        let dir = scratch("sqlite-shutdown-down");
        let stats = std::sync::Arc::new(std::sync::Mutex::new(None));
        let logs = logged({
            let (dir, stats) = (dir.clone(), stats.clone());
            move |tracker| async move {
                let journal = builder(&dir).start(&tracker).await.unwrap();
                std::fs::remove_dir_all(&dir).unwrap();
                for _ in 0..3 {
                    tracker
                        .spawn("unwritten", TaskType::GENERAL, async {})
                        .await
                        .unwrap();
                }
                assert!(journal.flush().await.is_err());
                let stopped = tokio::time::timeout(Duration::from_secs(60), journal.shutdown())
                    .await
                    .expect("the shutdown hung");
                *stats.lock().unwrap() = Some(stopped);
            }
        });
        let stats = stats.lock().unwrap().take().unwrap();
        assert!(stats.stopped, "{stats:?}");
        // Three tasks' spawn, start and end, and the writer's own end.
        assert!(stats.pending >= 10, "{stats:?}");
        let lost: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("stopped without writing"))
            .collect();
        assert_eq!(lost.len(), 1, "{logs}");
        let n = lost[0].split("unwritten=").nth(1).unwrap();
        let n: String = n.chars().take_while(char::is_ascii_digit).collect();
        let n: usize = n.parse().unwrap();
        assert!(n >= 10 && n <= stats.pending, "{n} {stats:?}");
    }

    /// A runtime that ends before `Journal::shutdown` (a `main` that
    /// returns) drops the writer with the events it had not written yet:
    /// they are lost, and a warning says how many. Before, nothing did.
    #[test]
    fn a_runtime_ended_without_a_shutdown_says_what_it_lost() {
        let dir = scratch("sqlite-no-shutdown");
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let logs = logged({
            let (dir, sent) = (dir.clone(), sent.clone());
            move |tracker| async move {
                let mut events = tracker.subscribe();
                // Nothing is written unless asked.
                let journal = builder(&dir)
                    .batch_size(1000)
                    .flush_interval(Duration::from_secs(3600))
                    .start(&tracker)
                    .await
                    .unwrap();
                for _ in 0..3 {
                    tracker
                        .spawn("unwritten", TaskType::GENERAL, async {})
                        .await
                        .unwrap();
                }
                let mut n = 0;
                while events.try_recv().is_some() {
                    n += 1;
                }
                // The first write would be an hour in.
                assert_eq!(journal.stats().written, 0);
                sent.store(n, std::sync::atomic::Ordering::Relaxed);
                drop(journal);
            }
        });
        let lost: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("without Journal::shutdown"))
            .collect();
        assert_eq!(lost.len(), 1, "{logs}");
        let n = lost[0].split("unwritten=").nth(1).unwrap();
        let n: String = n.chars().take_while(char::is_ascii_digit).collect();
        // At least three tasks' spawn, start and end.
        let unwritten = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(unwritten >= 9, "{unwritten}");
        assert_eq!(n.parse::<usize>().unwrap(), unwritten, "{logs}");
        // Indeed none is in the file.
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let journal = builder(&dir).start(&Tracker::new()).await.unwrap();
            let q = JournalQuery::new().name_prefix("unwritten");
            assert!(journal.tasks(&q).await.unwrap().tasks.is_empty());
            journal.shutdown().await;
        });
    }

    /// A journal that falls behind drops on every batch: the warnings come
    /// at most every 10 s (plus the first and the last), each with the
    /// drops since the one before, adding up to all of them.
    #[test]
    fn drops_are_logged_without_flooding() {
        let dir = scratch("sqlite-drop-log");
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let started = std::time::Instant::now();
        let logs = logged({
            let dropped = dropped.clone();
            move |tracker| async move {
                let journal = one_event_of_room(&dir).start(&tracker).await.unwrap();
                for _ in 0..30 {
                    for _ in 0..3 {
                        tracker
                            .spawn("x", TaskType::GENERAL, async {})
                            .await
                            .unwrap();
                    }
                    journal.flush().await.unwrap();
                }
                let stats = journal.shutdown().await;
                dropped.store(stats.dropped, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
        assert!(dropped >= 30, "every round drops");
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("events were dropped"))
            .collect();
        let allowed = 2 + started.elapsed().as_secs() / 10;
        assert!(warnings.len() as u64 <= allowed, "{logs}");
        let logged: u64 = warnings
            .iter()
            .map(|l| {
                let n = l.split("dropped=").nth(1).unwrap();
                let n: String = n.chars().take_while(char::is_ascii_digit).collect();
                n.parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(logged, dropped, "{logs}");
    }

    /// A writer that gave up (the file replaced by a foreign database)
    /// still counts what it drops, without a flush to make it look: every
    /// event sent is written, pending or counted dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_gave_up_still_counts_its_drops() {
        let dir = scratch("sqlite-gave-up");
        let path = dir.join("journal.sqlite");
        let tracker = Tracker::new();
        let mut events = tracker.subscribe();
        let journal = builder(&dir).buffer(1).start(&tracker).await.unwrap();
        journal.flush().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("journal.sqlite{suffix}")));
        }
        exec(&path, "CREATE TABLE tracked_tasks (x INTEGER);");
        let spawn = || tracker.spawn("x", TaskType::GENERAL, async {});
        spawn().await.unwrap();
        let err = journal.flush().await.unwrap_err();
        assert!(matches!(err, JournalError::Schema(_)), "{err}");
        for _ in 0..20 {
            spawn().await.unwrap();
        }
        let mut sent = 0;
        while let Some(received) = events.try_recv() {
            assert!(matches!(received, tracked::Received::Event(_)));
            sent += 1;
        }
        // Room for two: the writer's ticks must count the rest.
        let accounted = || {
            let stats = journal.stats();
            stats.written + stats.dropped + stats.pending as u64
        };
        for _ in 0..1000 {
            if accounted() == sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = journal.stats();
        assert_eq!(accounted(), sent, "{stats:?}");
        assert!(matches!(stats.last_error, Some(JournalError::Schema(_))));
        assert!(!stats.connected, "it no longer writes");
    }

    /// Cancelling the Database type (or the writer's task) outside a
    /// shutdown ends the journal: it writes what it holds and says so. In
    /// a shutdown it stops as quietly as the rest.
    #[test]
    fn a_writer_cancelled_outside_a_shutdown_warns() {
        let dir = scratch("sqlite-cancelled");
        let run = |shutdown: bool| {
            let dir = dir.clone();
            logged(move |tracker| async move {
                let journal = builder(&dir).start(&tracker).await.unwrap();
                if shutdown {
                    tracker.request_shutdown("SIGTERM");
                }
                let report = tracker
                    .cancel_type(TaskType::DATABASE, Duration::from_secs(10))
                    .await;
                assert_eq!(report.stopped, 1, "{report:?}");
                assert!(journal.stats().stopped);
            })
        };
        let logs = run(false);
        assert!(
            logs.lines().any(
                |l| l.contains("WARN") && l.contains("writer was cancelled outside a shutdown")
            ),
            "{logs}"
        );
        let logs = run(true);
        assert!(!logs.contains("writer was cancelled"), "{logs}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = scratch("sqlite-garbage");
        let path = dir.join("journal.sqlite");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = schema_error(&path).await;
        assert!(err.contains("not a SQLite database"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![0x5a; 8192],
            "left untouched"
        );
    }

    #[tokio::test]
    async fn foreign_schemas_are_refused() {
        let dir = scratch("sqlite-foreign");
        let foreign = dir.join("foreign.sqlite");
        exec(&foreign, "CREATE TABLE tracked_tasks (x INTEGER);");
        let err = schema_error(&foreign).await;
        assert!(err.contains("foreign tables"), "{err}");

        let altered = dir.join("altered.sqlite");
        created_then(
            &altered,
            "ALTER TABLE tracked_tasks RENAME COLUMN owner TO proprietor;",
        )
        .await;
        let err = schema_error(&altered).await;
        assert!(err.contains("columns"), "{err}");
    }

    #[tokio::test]
    async fn a_v1_journal_is_migrated() {
        let dir = scratch("sqlite-v1");
        let path = dir.join("journal.sqlite");
        created_then(&path, BACK_TO_V1).await;
        let journal = Journal::sqlite(&path).start(&Tracker::new()).await.unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        check_migrated_from_v1(async |sql| conn.query_row(sql, [], |row| row.get(0)).unwrap())
            .await;
        journal.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_journals_its_last_tier() {
        a_shutdown_journals_every_tier(builder(&scratch("sqlite-shutdown"))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_written_if_it_says_so() {
        let dir = scratch("sqlite-newer");
        let path = dir.join("journal.sqlite");
        newer_schema_written_if_it_says_so(|| builder(&dir), async |sql| exec(&path, sql)).await;
    }

    /// A writer with nothing to write records its instance as seen alive
    /// every quarter of its time-to-live (here 1 s), without a batch,
    /// whether its flush interval is shorter than that or longer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_writer_beats() {
        for interval in [Duration::from_millis(20), Duration::from_secs(3600)] {
            idle_writer_beats(interval).await;
        }
    }

    async fn idle_writer_beats(interval: Duration) {
        let dir = scratch(&format!("sqlite-beat-{}", interval.as_millis()));
        let journal = builder(&dir)
            .flush_interval(interval)
            .ttl(Duration::from_secs(4))
            .start(&Tracker::new())
            .await
            .unwrap();
        journal.flush().await.unwrap();
        let batches = journal.stats().batches;
        let conn = rusqlite::Connection::open(dir.join("journal.sqlite")).unwrap();
        let seen = || -> i64 {
            let sql = "SELECT seen_at FROM tracked_instances WHERE instance = ?1";
            conn.query_row(sql, [journal.instance()], |row| row.get(0))
                .unwrap()
        };
        let first = seen();
        let mut waited = 0;
        while seen() == first && waited < 3000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        assert!(seen() > first, "no beat in 30 s");
        assert_eq!(journal.stats().batches, batches);
        journal.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_buffer_drops_and_counts() {
        let dir = scratch("sqlite-drops");
        let tracker = Tracker::new();
        let journal = one_event_of_room(&dir).start(&tracker).await.unwrap();
        for _ in 0..50 {
            tracker
                .spawn("x", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        journal.flush().await.unwrap();
        let stats = journal.stats();
        assert!(stats.dropped > 0, "{stats:?}");
        let summary = journal.summary(journal.instance()).await.unwrap();
        assert_eq!(summary.dropped, stats.dropped, "every drop is on record");
        assert_eq!(
            summary.events + summary.dropped,
            stats.written + stats.dropped
        );
    }

    /// What the journal holds while the database is down is bounded in
    /// bytes too: events with large texts (4 KiB errors, as the tracker
    /// cuts them) fill `buffer_bytes` long before `buffer` events, and the
    /// rest are dropped and counted as a full buffer's are. Once it is
    /// back, the ends dropped are read from the tracker's history: every
    /// row written says how its task ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_events_are_bounded_in_bytes() {
        let dir = scratch("sqlite-bytes");
        let tracker = Tracker::new();
        let journal = builder(&dir)
            .buffer_bytes(64 << 10)
            .start(&tracker)
            .await
            .unwrap();
        journal.flush().await.unwrap();
        // Down: the file cannot be created anew while its directory is gone.
        std::fs::remove_dir_all(&dir).unwrap();
        for i in 0..40 {
            let failed = tracker
                .spawn(format!("large-{i}"), TaskType::GENERAL, async {
                    Err::<(), _>("e".repeat(10_000))
                })
                .await
                .unwrap();
            assert!(failed.is_err());
        }
        // It fails, and counts the drops.
        assert!(journal.flush().await.is_err());
        let stats = journal.stats();
        // 40 errors of 4 KiB are 160 KiB; 64 KiB hold at most 15 of them.
        assert!(stats.dropped >= 25, "{stats:?}");
        std::fs::create_dir_all(&dir).unwrap();
        flush_until_ok(&journal).await;
        let rows = journal
            .tasks(&JournalQuery::new().name_prefix("large-"))
            .await
            .unwrap()
            .tasks;
        // The tasks none of whose events got in have no row.
        assert!(rows.len() >= 10, "{}", rows.len());
        for row in &rows {
            assert_eq!(row.state, TaskState::Failed, "{row:?}");
            assert_eq!(row.error.as_ref().map(String::len), Some(4096));
        }
        let stats = journal.stats();
        let summary = journal.summary(journal.instance()).await.unwrap();
        assert_eq!(summary.dropped, stats.dropped, "every drop is on record");
        // What is written gives its bytes back: as many again, each
        // written before the next, drop nothing.
        for i in 0..40 {
            tracker
                .spawn(format!("later-{i}"), TaskType::GENERAL, async {
                    Err::<(), _>("e".repeat(10_000))
                })
                .await
                .unwrap()
                .unwrap_err();
            journal.flush().await.unwrap();
        }
        assert_eq!(journal.stats().dropped, stats.dropped);
    }

    /// Ends dropped by a full buffer do not leave rows `running`: once the
    /// queue is drained, the writer reads them from the tracker's history.
    /// Parked tasks are journaled as running, then end in a burst the buffer
    /// has no room for; after a flush every row says how its task ended, and
    /// the batch rows still count only the events received.
    #[tokio::test]
    async fn ends_dropped_by_a_full_buffer_are_read_from_history() {
        let dir = scratch("sqlite-reconcile");
        let tracker = Tracker::new();
        let journal = builder(&dir)
            .buffer(4)
            .batch_size(1000)
            .flush_interval(Duration::from_secs(3600))
            .start(&tracker)
            .await
            .unwrap();
        let gate = tokio_util::sync::CancellationToken::new();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let gate = gate.clone();
            tasks.push(tracker.spawn("parked", TaskType::GENERAL, async move {
                gate.cancelled().await;
            }));
            // One at a time, so each spawn and start is written.
            tokio::task::yield_now().await;
            journal.flush().await.unwrap();
        }
        let before = journal.stats().dropped;
        gate.cancel();
        for task in tasks {
            task.await.unwrap();
        }
        journal.flush().await.unwrap();
        let stats = journal.stats();
        assert!(
            stats.dropped > before,
            "the burst of ends overflowed: {stats:?}"
        );
        let rows = journal
            .tasks(&JournalQuery::new().name_prefix("parked"))
            .await
            .unwrap()
            .tasks;
        assert_eq!(rows.len(), 20);
        for row in &rows {
            assert_eq!(row.state, TaskState::Completed, "{row:?}");
            assert!(row.finished_at.is_some(), "{row:?}");
        }
        let summary = journal.summary(journal.instance()).await.unwrap();
        assert_eq!(
            summary.events + summary.dropped,
            stats.written + stats.dropped,
            "ends read from history are not counted as received"
        );
    }

    /// A flush writes every event sent before it, also those a full buffer
    /// left in the tracker's queue: afterwards nothing is pending, and every
    /// event is written or counted dropped, in the stats and the database.
    /// On one thread, so each round's tasks have sent all their events
    /// before the flush, and the rounds leave the writer in different
    /// states: some with the buffer full and an event queued.
    #[tokio::test]
    async fn a_flush_writes_what_a_full_buffer_left_queued() {
        let dir = scratch("sqlite-queued");
        let tracker = Tracker::new();
        let mut events = tracker.subscribe();
        let journal = one_event_of_room(&dir).start(&tracker).await.unwrap();
        let mut sent = 0;
        for round in 0..24 {
            let tasks: Vec<_> = (0..round % 4)
                .map(|_| tracker.spawn("x", TaskType::GENERAL, async {}))
                .collect();
            for _ in 0..round / 4 {
                tokio::task::yield_now().await;
            }
            for task in tasks {
                task.await.unwrap();
            }
            journal.flush().await.unwrap();
            while let Some(received) = events.try_recv() {
                assert!(
                    matches!(received, tracked::Received::Event(_)),
                    "{received:?}"
                );
                sent += 1;
            }
            let stats = journal.stats();
            assert_eq!(stats.pending, 0, "round {round}: {stats:?}");
            assert_eq!(
                stats.written + stats.dropped,
                sent,
                "round {round}: {stats:?}"
            );
            let summary = journal.summary(journal.instance()).await.unwrap();
            assert_eq!(summary.events + summary.dropped, sent, "round {round}");
        }
        assert!(journal.stats().dropped > 0, "the buffer overflowed");
    }

    /// A child process journals until it is killed mid-run; the file then
    /// holds every batch the child reported committed, and no part of one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_writer_loses_at_most_the_unflushed_batch() {
        let dir = scratch("sqlite-crash");
        let path = dir.join("journal.sqlite");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sqlite::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TRACKED_JOURNAL_CHILD", &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut instance = String::new();
        let mut committed = 0u64;
        while let Some(Ok(line)) = lines.next() {
            // libtest prints the test's name on the same line first.
            if let Some((_, i)) = line.split_once("instance ") {
                instance = i.to_owned();
            }
            if let Some(n) = line.strip_prefix("committed ") {
                committed = n.parse().unwrap();
                if committed >= 2000 {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(committed >= 2000, "the child wrote");

        let journal = Journal::sqlite(&path).start(&Tracker::new()).await.unwrap();
        ended(&journal, &instance, "crash-hang").await;
        let s = journal.summary(&instance).await.unwrap();
        assert!(s.events >= committed, "{s:?} < {committed}");
        assert_eq!(s.tasks, s.spawned, "no partial batch: {s:?}");
        assert_eq!(s.progress, s.progress_events, "no partial batch: {s:?}");
        // The child's tasks that were running when it died (the one that
        // never ends, and those of the last batch whose ends it did not
        // commit) are cancelled, by the journal started after it.
        let reaped = journal
            .tasks(
                &JournalQuery::new()
                    .instance(&instance)
                    .state(TaskState::Cancelled)
                    .limit(1000),
            )
            .await
            .unwrap()
            .tasks;
        assert!(reaped.iter().any(|t| t.name == "crash-hang"), "{reaped:?}");
        for task in &reaped {
            assert_eq!(task.error.as_deref(), Some(DIED), "{task:?}");
            assert!(task.finished_at >= task.started_at, "{task:?}");
        }
        let unfinished = JournalQuery::new()
            .instance(&instance)
            .state(TaskState::Running);
        assert_eq!(journal.tasks(&unfinished).await.unwrap().tasks, []);
        assert_eq!(
            s.finished,
            s.finished_events + reaped.len() as u64,
            "no partial batch: {s:?}"
        );
    }

    /// At start, a journal cancels the unfinished tasks of this host's
    /// instances whose process is gone, and no one else's: not a live
    /// process's (here, a journal of this process), not another host's.
    #[test]
    fn a_dead_process_tasks_are_cancelled_and_a_live_ones_are_not() {
        let dir = scratch("sqlite-reap");
        let path = dir.join("journal.sqlite");
        let (dir, path) = (&dir, &path);
        let logs = logged(|tracker| async move {
            let live = builder(dir).start(&tracker).await.unwrap();
            let hang = hanging(&tracker, "live-hang").await;
            live.flush().await.unwrap();
            exec(path, &dead_instances(live.instance()));
            let _reaper = Journal::sqlite(path).start(&Tracker::new()).await.unwrap();
            check_reaped(&live).await;
            hang.abort();
        });
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("marked cancelled"))
            .collect();
        assert_eq!(warnings.len(), 1, "{logs}");
        assert!(warnings[0].contains("#4294967295."), "{logs}");
        assert!(!warnings[0].contains("@elsewhere#"), "{logs}");
        assert!(warnings[0].contains("tasks=1"), "{logs}");
    }

    /// Runs only as the child of the test above.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_child() {
        let Some(path) = std::env::var_os("TRACKED_JOURNAL_CHILD") else {
            return;
        };
        let tracker = Tracker::new();
        let journal = Journal::sqlite(path)
            .batch_size(100)
            .start(&tracker)
            .await
            .unwrap();
        println!("instance {}", journal.instance());
        let _hang = tracker.spawn(
            "crash-hang",
            TaskType::GENERAL,
            std::future::pending::<()>(),
        );
        loop {
            for i in 0..50u8 {
                tracker
                    .spawn("crash-work", TaskType::GENERAL, async move {
                        tracked::progress(i, "step");
                    })
                    .await
                    .unwrap();
            }
            journal.flush().await.unwrap();
            println!("committed {}", journal.stats().written);
        }
    }
}

#[cfg(feature = "journal-postgres")]
mod postgres {
    use super::pg_server::PgServer;
    use super::*;

    fn builder(server: &PgServer) -> JournalBuilder {
        Journal::postgres(server.url()).flush_interval(Duration::from_millis(20))
    }

    /// A client of the test's own on `server`, and the task driving its
    /// connection (it ends once the client is dropped).
    async fn client(
        server: &PgServer,
    ) -> (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ) {
        let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        // tracked: allow(untracked-spawn) -- the test's own database client
        (client, tokio::spawn(connection))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_every_field() {
        let Some(server) = PgServer::start("rt") else {
            return;
        };
        round_trip(builder(&server)).await;
    }

    /// Each event in a transaction of its own: rows merge across batches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_every_field_one_event_per_batch() {
        let Some(server) = PgServer::start("rt1") else {
            return;
        };
        round_trip(builder(&server).batch_size(1)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_and_filters() {
        let Some(server) = PgServer::start("paging") else {
            return;
        };
        paging_and_filters(builder(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_texts_holding_nul() {
        let Some(server) = PgServer::start("nul") else {
            return;
        };
        nul_in_texts(builder(&server)).await;
    }

    /// An owner of 2.7 KB was more than the owner index takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cuts_long_texts() {
        let Some(server) = PgServer::start("long") else {
            return;
        };
        long_texts(builder(&server)).await;
    }

    /// PostgreSQL made to refuse a row by a check constraint (SQLSTATE
    /// 23514; a value too long for an index is 54000).
    #[test]
    fn a_refused_row_costs_only_its_events() {
        let Some(server) = PgServer::start("refused") else {
            return;
        };
        let server = &server;
        let logs = logged(|tracker| async move {
            let journal = builder(server).start(&tracker).await.unwrap();
            journal.flush().await.unwrap();
            let (client, connection) = client(server).await;
            client
                .batch_execute(
                    "ALTER TABLE tracked_tasks ADD CONSTRAINT poison CHECK (name <> 'poison')",
                )
                .await
                .unwrap();
            refused_rows(&tracker, &journal).await;
            drop(client);
            let _ = connection.await;
        });
        assert_refusals_logged(&logs, "23514");
    }

    /// A failure that is not about a row's values (here a trigger raising
    /// `disk_full`, SQLSTATE 53100) is retried as a lost connection is:
    /// nothing is dropped, and everything is written once it clears.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_not_about_a_value_is_retried_not_dropped() {
        let Some(server) = PgServer::start("disk-full") else {
            return;
        };
        let tracker = Tracker::new();
        let journal = builder(&server).start(&tracker).await.unwrap();
        journal.flush().await.unwrap();
        let (client, connection) = client(&server).await;
        client
            .batch_execute(
                "CREATE FUNCTION journal_full() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$;
                 CREATE TRIGGER journal_full BEFORE INSERT ON tracked_tasks
                 FOR EACH ROW EXECUTE FUNCTION journal_full();",
            )
            .await
            .unwrap();
        for _ in 0..3 {
            tracker
                .spawn("held", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        let err = journal.flush().await.unwrap_err();
        assert!(
            matches!(&err, JournalError::Database(m) if m.contains("53100")),
            "{err}"
        );
        assert_eq!(journal.stats().dropped, 0);
        client
            .batch_execute("DROP TRIGGER journal_full ON tracked_tasks")
            .await
            .unwrap();
        flush_until_ok(&journal).await;
        let q = JournalQuery::new()
            .instance(journal.instance())
            .name_prefix("held")
            .finished();
        assert_eq!(journal.tasks(&q).await.unwrap().tasks.len(), 3);
        assert_eq!(journal.stats().dropped, 0);
        drop(client);
        let _ = connection.await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retention_by_ttl_and_cap() {
        let Some(server) = PgServer::start("retention") else {
            return;
        };
        retention(|| builder(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_keeps_what_runs_here() {
        let Some(server) = PgServer::start("retention-running") else {
            return;
        };
        retention_keeps_running_tasks(|| builder(&server)).await;
    }

    #[tokio::test]
    async fn retention_keeps_what_runs_in_a_live_peer() {
        // Its own tasks: the writer and the connection.
        for cap in [None, Some(3)] {
            let Some(server) = PgServer::start(&format!("retention-peers-{}", cap.is_some()))
            else {
                return;
            };
            let journal = peers_journal(builder(&server), cap).await;
            let (client, connection) = client(&server).await;
            client.batch_execute(&peers()).await.unwrap();
            check_peers_retained(&journal, cap.is_some()).await;
            journal.shutdown().await;
            drop(client);
            connection.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_v1_journal_is_migrated() {
        let Some(server) = PgServer::start("v1") else {
            return;
        };
        builder(&server)
            .start(&Tracker::new())
            .await
            .unwrap()
            .shutdown()
            .await;
        let (client, connection) = client(&server).await;
        client.batch_execute(BACK_TO_V1).await.unwrap();
        let journal = builder(&server).start(&Tracker::new()).await.unwrap();
        check_migrated_from_v1(async |sql| client.query_one(sql, &[]).await.unwrap().get(0)).await;
        journal.shutdown().await;
        drop(client);
        connection.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_journals_its_last_tier() {
        let Some(server) = PgServer::start("shutdown") else {
            return;
        };
        a_shutdown_journals_every_tier(builder(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_written_if_it_says_so() {
        let Some(server) = PgServer::start("newer") else {
            return;
        };
        let (client, connection) = client(&server).await;
        let exec = async |sql: &'static str| client.batch_execute(sql).await.unwrap();
        newer_schema_written_if_it_says_so(|| builder(&server), exec).await;
        drop(client);
        connection.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_bad_connection_string_is_a_config_error() {
        let err = Journal::postgres("postgres://host:notaport/db")
            .start(&Tracker::new())
            .await
            .unwrap_err();
        assert!(matches!(err, JournalError::Config(_)), "{err}");
    }

    /// Cancelling the Database tier (a tiered shutdown's last) stops the
    /// writer and the connection it writes on: the writer's last batch is
    /// written, and the connection's task ends with it rather than being
    /// waited for until the deadline and aborted as a stubborn task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_cancel_stops_the_connection_with_the_writer() {
        let Some(server) = PgServer::start("cancel") else {
            return;
        };
        let tracker = Tracker::new();
        let journal = builder(&server).start(&tracker).await.unwrap();
        journal.flush().await.unwrap();
        tracker
            .spawn("last", TaskType::GENERAL, async {})
            .await
            .unwrap();
        tracker.request_shutdown("SIGTERM");
        let report = tracker
            .cancel_type(TaskType::DATABASE, Duration::from_secs(30))
            .await;
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.stopped, 2, "writer and connection: {report:?}");
        let stats = journal.stats();
        assert!(stats.stopped, "{stats:?}");
        // Its last batch went through the connection (the connection's own
        // end may come after the writer stopped: not asserted).
        let reader = builder(&server).start(&Tracker::new()).await.unwrap();
        let q = JournalQuery::new()
            .instance(journal.instance())
            .name_prefix("last");
        assert_eq!(reader.tasks(&q).await.unwrap().tasks.len(), 1);
        reader.shutdown().await;
    }

    /// Down at startup, then down mid-run: tasks run on, events buffer,
    /// and everything lands once the server is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_the_database_being_down() {
        let Some(server) = PgServer::start("faults") else {
            return;
        };
        server.down();
        let tracker = Tracker::new();
        let journal = builder(&server).start(&tracker).await.unwrap();
        assert!(!journal.stats().connected);
        for _ in 0..100 {
            tracker
                .spawn("while-down", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        assert!(journal.flush().await.is_err());
        let stats = journal.stats();
        assert!(stats.pending >= 200, "buffered: {stats:?}");
        assert!(matches!(
            stats.last_error,
            Some(JournalError::Unavailable(_))
        ));

        server.up();
        flush_until_ok(&journal).await;
        let mine = JournalQuery::new()
            .instance(journal.instance())
            .name_prefix("while-down");
        assert_eq!(
            journal
                .tasks(&mine.clone().limit(1000))
                .await
                .unwrap()
                .tasks
                .len(),
            100
        );

        server.down();
        for _ in 0..100 {
            tracker
                .spawn("mid-run", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        server.up();
        flush_until_ok(&journal).await;
        let mine = JournalQuery::new()
            .instance(journal.instance())
            .name_prefix("mid-run");
        assert_eq!(
            journal.tasks(&mine.limit(1000)).await.unwrap().tasks.len(),
            100
        );
        let stats = journal.stats();
        assert_eq!(stats.dropped, 0, "{stats:?}");
        assert!(stats.connected);
    }

    /// As for SQLite: a dead process's tasks of this host are cancelled at
    /// start, a live one's and another host's are not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_process_tasks_are_cancelled_and_a_live_ones_are_not() {
        let Some(server) = PgServer::start("reap") else {
            return;
        };
        let tracker = Tracker::new();
        let live = builder(&server).start(&tracker).await.unwrap();
        let hang = hanging(&tracker, "live-hang").await;
        live.flush().await.unwrap();
        let (client, connection) = client(&server).await;
        client
            .batch_execute(&dead_instances(live.instance()))
            .await
            .unwrap();
        let _reaper = builder(&server).start(&Tracker::new()).await.unwrap();
        check_reaped(&live).await;
        hang.abort();
        drop(client);
        connection.await.unwrap().unwrap();
    }

    /// A database that stalls (another session holds a lock on the journal's
    /// table) slows no task: they all finish while the events wait, and
    /// land once the lock goes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_database_slows_no_task() {
        let Some(server) = PgServer::start("stall") else {
            return;
        };
        let tracker = Tracker::new();
        let journal = builder(&server).start(&tracker).await.unwrap();
        journal.flush().await.unwrap();
        let written_before = journal.stats().written;
        let (mut client, connection) = client(&server).await;
        let lock = client.transaction().await.unwrap();
        lock.batch_execute("LOCK TABLE tracked_tasks IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        for i in 0..200 {
            tracker
                .spawn(format!("stalled-{i}"), TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        // Every task finished although no batch could be written.
        assert_eq!(tracker.stats().total.completed, 200);
        let stats = journal.stats();
        assert_eq!(
            stats.written, written_before,
            "nothing committed: {stats:?}"
        );
        lock.rollback().await.unwrap();
        flush_until_ok(&journal).await;
        let q = JournalQuery::new()
            .instance(journal.instance())
            .name_prefix("stalled-")
            .finished()
            .limit(1000);
        assert_eq!(journal.tasks(&q).await.unwrap().tasks.len(), 200);
        assert_eq!(journal.stats().dropped, 0);
        drop(client);
        let _ = connection.await;
    }

    #[tokio::test]
    async fn a_foreign_table_is_refused() {
        let Some(server) = PgServer::start("foreign") else {
            return;
        };
        let tracker = Tracker::new();
        // Another program's table of the same name.
        let (client, connection) = client(&server).await;
        client
            .batch_execute("CREATE TABLE tracked_tasks (x int)")
            .await
            .unwrap();
        let err = builder(&server).start(&tracker).await.unwrap_err();
        assert!(
            matches!(&err, JournalError::Schema(m) if m.contains("foreign tables")),
            "{err}"
        );
        drop(client);
        let _ = connection.await;
    }

    /// Two processes write one journal at once, migrating concurrently.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_one_journal() {
        let Some(server) = PgServer::start("fleet") else {
            return;
        };
        let spawn_child = || {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "postgres::fleet_child",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("TRACKED_JOURNAL_PG", server.url())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let children = [spawn_child(), spawn_child()];
        let mut instances = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            let instance = text
                .lines()
                .find_map(|l| l.split_once("instance ").map(|(_, i)| i))
                .expect("the child names its instance");
            instances.push(instance.to_owned());
        }
        assert_ne!(instances[0], instances[1]);
        let journal = builder(&server).start(&Tracker::new()).await.unwrap();
        for instance in &instances {
            let s = journal.summary(instance).await.unwrap();
            assert_eq!(s.tasks, s.spawned, "{instance}: {s:?}");
            assert_eq!(s.dropped, 0);
            let q = JournalQuery::new()
                .instance(instance)
                .name_prefix("fleet-")
                .state(TaskState::Completed)
                .limit(1000);
            assert_eq!(journal.tasks(&q).await.unwrap().tasks.len(), 500);
        }
    }

    /// Runs only as a child of the test above.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fleet_child() {
        let Ok(url) = std::env::var("TRACKED_JOURNAL_PG") else {
            return;
        };
        let tracker = Tracker::new();
        let journal = Journal::postgres(url)
            .batch_size(64)
            .start(&tracker)
            .await
            .unwrap();
        println!("instance {}", journal.instance());
        let handles: Vec<_> = (0..500)
            .map(|i| tracker.spawn(format!("fleet-{i}"), TaskType::GENERAL, async {}))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        flush_until_ok(&journal).await;
    }
}

/// `/metrics` of a server given a journal says what the journal's stats
/// say: events written, dropped and pending, batches, connected, and
/// stopped once shut down.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_say_what_the_journal_wrote_and_lost() {
    use tracked::http::{serve, Config};

    let dir = scratch("http-metrics");
    let tracker = Tracker::new();
    // One event of room, written only when asked: the rest is dropped.
    let journal = Journal::sqlite(dir.join("journal.sqlite"))
        .buffer(1)
        .flush_interval(Duration::from_secs(3600))
        .start(&tracker)
        .await
        .unwrap();
    let server = serve(tracker.clone(), Config::new().journal(journal.clone()))
        .await
        .unwrap();
    for _ in 0..20 {
        tracker
            .spawn("x", TaskType::GENERAL, async {})
            .await
            .unwrap();
    }
    journal.flush().await.unwrap();
    let metrics = || async {
        let url = format!("{}/metrics", server.url());
        reqwest::get(url).await.unwrap().text().await.unwrap()
    };
    let series = |stats: &tracked::journal::JournalStats| {
        [
            ("tracked_journal_events_written_total", stats.written),
            ("tracked_journal_events_dropped_total", stats.dropped),
            ("tracked_journal_batches_total", stats.batches),
            ("tracked_journal_events_pending", stats.pending as u64),
            ("tracked_journal_connected", u64::from(stats.connected)),
            ("tracked_journal_stopped", u64::from(stats.stopped)),
        ]
        .map(|(name, value)| format!("\n{name} {value}\n"))
    };
    // The series and the stats read around them, once nothing moved
    // between (the server's own task may still send its start).
    let read = || async {
        loop {
            let before = series(&journal.stats());
            let text = metrics().await;
            if series(&journal.stats()) == before {
                return (before, text);
            }
        }
    };
    let (lines, text) = read().await;
    let stats = journal.stats();
    assert!(stats.dropped > 0 && stats.written > 0, "{stats:?}");
    for line in lines {
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    journal.shutdown().await;
    assert!(journal.stats().stopped);
    let (lines, text) = read().await;
    for line in lines {
        assert!(text.contains(&line), "{line:?} not in {text}");
    }
    server.shutdown().await;
}

/// A task that left memory before the writer wrote it (no history, and a
/// flush interval of an hour) is still found over HTTP: the fallback
/// flushes the journal's pending events and asks again, rather than
/// answering 404 until the next flush.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_finds_a_task_the_journal_has_not_written_yet() {
    use tracked::http::{serve, Config};

    let dir = scratch("http-unwritten");
    let tracker = Tracker::builder().history_capacity(0).build();
    let journal = Journal::sqlite(dir.join("journal.sqlite"))
        .batch_size(1000)
        .flush_interval(Duration::from_secs(3600))
        .start(&tracker)
        .await
        .unwrap();
    let config = Config::new().token("root-token").journal(journal.clone());
    let server = serve(tracker.clone(), config).await.unwrap();
    // Nothing is written for an hour but by a flush.
    let handle = tracker.spawn("just-ended", TaskType::GENERAL, async {});
    let task_id = handle.id();
    handle.await.unwrap();
    assert_eq!(journal.stats().written, 0);
    let id = task_id.as_u64();
    assert!(tracker.task(task_id).is_none(), "gone from memory");
    let response = reqwest::Client::new()
        .get(format!("{}/tasks/{id}", server.url()))
        .bearer_auth("root-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["task"]["source"], "journal");
    assert_eq!(body["task"]["state"], "completed");
    let response = reqwest::Client::new()
        .get(format!("{}/tasks/{}", server.url(), id + 1_000_000))
        .bearer_auth("root-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        404,
        "an unknown id is still a 404"
    );
}

/// The HTTP API serves tasks that left memory from the journal, and an
/// owner-scoped token sees only its owner's, there as in memory.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_falls_back_to_the_journal_with_owner_isolation() {
    use serde_json::Value;
    use tracked::http::{serve, Config};

    let dir = scratch("http");
    // No in-memory history: every finished task is only in the journal.
    let tracker = Tracker::builder().history_capacity(0).build();
    let journal = Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    let mut ids = std::collections::HashMap::<&str, Vec<u64>>::new();
    for i in 0..30 {
        let owner = if i % 3 == 0 { "alice" } else { "bob" };
        let h = tracker
            .task_builder(format!("job-{i}"), TaskType::GENERAL)
            .owner(owner)
            .spawn(async { tracked::progress(100, "done") });
        ids.entry(owner).or_default().push(h.id().as_u64());
        h.await.unwrap();
    }
    journal.flush().await.unwrap();
    let config = Config::new()
        .token("root-token")
        .owner_token("alice-token", "alice")
        .journal(journal.clone());
    let server = serve(tracker.clone(), config).await.unwrap();
    let client = reqwest::Client::new();
    // A request's status and JSON body.
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };
    let get = |path: String, token: &'static str| {
        send(
            client
                .get(format!("{}{path}", server.url()))
                .bearer_auth(token),
        )
    };

    let alice_task = ids["alice"][0];
    let bob_task = ids["bob"][0];
    let (status, body) = get(format!("/tasks/{alice_task}"), "alice-token").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"]["source"], "journal");
    assert_eq!(body["task"]["owner"], "alice");
    assert_eq!(body["task"]["state"], "completed");
    // The fields by which clients sort, as on tasks in memory.
    assert_eq!(body["task"]["age_ms"], body["task"]["duration_ms"]);
    assert!(body["task"]["age_ms"].is_u64(), "{body}");
    assert_eq!(body["task"]["progress"]["log"][0]["message"], "done");
    let (status, body) = get(format!("/tasks/{bob_task}"), "alice-token").await;
    assert_eq!(
        status, 404,
        "another owner's task is not there for alice: {body}"
    );
    assert!(body["error"].as_str().is_some(), "a JSON reason: {body}");
    let (status, _) = get(format!("/tasks/{bob_task}"), "root-token").await;
    assert_eq!(status, 200);
    // A cancel of a task the journal holds says how it ended, as in
    // memory; another owner's is still not there.
    let cancel = |id: u64, token: &'static str| {
        send(
            client
                .post(format!("{}/tasks/{id}/cancel", server.url()))
                .bearer_auth(token),
        )
    };
    for (id, token, expected) in [
        (alice_task, "alice-token", 409),
        (bob_task, "alice-token", 404),
        (bob_task, "root-token", 409),
    ] {
        let (status, body) = cancel(id, token).await;
        assert_eq!(status, expected, "{body}");
        if status == 409 {
            assert_eq!(
                body["error"],
                format!("task {id} already ended (completed)")
            );
        }
    }

    // Alice pages through her finished tasks: all ten, each once.
    let mut seen = Vec::new();
    let mut path = "/tasks?state=completed&limit=4".to_owned();
    loop {
        let (status, body) = get(path.clone(), "alice-token").await;
        assert_eq!(status, 200, "{body}");
        for t in body["tasks"].as_array().unwrap() {
            assert_eq!(t["owner"], "alice");
            seen.push(t["id"].as_u64().unwrap());
        }
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/tasks?state=completed&limit=4&cursor={c}"),
            None => break,
        }
    }
    seen.reverse();
    assert_eq!(seen, ids["alice"]);
    let (status, body) = get("/tasks?state=completed&limit=nope".into(), "alice-token").await;
    assert_eq!(status, 400, "{body}");
    server.shutdown().await;
}

/// A journaled task lists its first children and counts them all, past
/// the most the journal reads at once; `?parent=` pages through them.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_lists_a_journaled_tasks_first_children_and_counts_them_all() {
    use serde_json::Value;
    use tracked::http::{serve, Config};

    const CHILDREN: usize = tracked::journal::MAX_LIMIT + 5;
    let dir = scratch("http-children");
    let tracker = Tracker::builder().history_capacity(0).build();
    let journal = Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    let dispatcher = tracker.spawn("dispatcher", TaskType::GENERAL, async {
        for i in 0..CHILDREN {
            let conn = tracked::spawn(format!("conn-{i}"), TaskType::GENERAL, async {});
            conn.await.unwrap();
        }
    });
    let id = dispatcher.id().as_u64();
    dispatcher.await.unwrap();
    journal.flush().await.unwrap();
    let server = serve(tracker.clone(), Config::new().journal(journal.clone()))
        .await
        .unwrap();
    let get = |path: String| {
        let request = reqwest::get(format!("{}{path}", server.url()));
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    for (query, listed) in [("", 100), ("?limit=3", 3)] {
        let (status, detail) = get(format!("/tasks/{id}{query}")).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["task"]["source"], "journal");
        assert_eq!(detail["children"].as_array().unwrap().len(), listed);
        assert_eq!(detail["children_total"], CHILDREN);
    }
    let mut seen = std::collections::HashSet::new();
    let mut path = format!("/tasks?parent={id}&state=completed&limit=500");
    loop {
        let (status, page) = get(path.clone()).await;
        assert_eq!(status, 200, "{page}");
        for task in page["tasks"].as_array().unwrap() {
            assert_eq!(task["parent"], id, "{task}");
            seen.insert(task["id"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                path = format!("/tasks?parent={id}&state=completed&limit=500&cursor={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), CHILDREN);
    server.shutdown().await;
}

/// A token scoped to an owner over 1 KiB finds that owner's tasks in the
/// journal, where the owner is written cut: the journal's rows are
/// compared with the token's owner cut the same way. Before, such a
/// token got a 404 for its own task and an empty list.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_finds_the_journaled_tasks_of_a_long_owner() {
    use serde_json::Value;
    use tracked::http::{serve, Config};

    let dir = scratch("http-long-owner");
    // No in-memory history: every finished task is only in the journal.
    let tracker = Tracker::builder().history_capacity(0).build();
    let journal = Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    let owner = noise(2700);
    let mine = tracker
        .task_builder("long-owned", TaskType::GENERAL)
        .owner(owner.clone())
        .spawn(async {});
    let mine_id = mine.id().as_u64();
    mine.await.unwrap();
    // Another long owner, differing in its first byte: not seen.
    let other = format!("x{}", &owner[1..]);
    let theirs = tracker
        .task_builder("other-owned", TaskType::GENERAL)
        .owner(other)
        .spawn(async {});
    let theirs_id = theirs.id().as_u64();
    theirs.await.unwrap();
    journal.flush().await.unwrap();
    let config = Config::new()
        .owner_token("long-token", owner.clone())
        .journal(journal.clone());
    let server = serve(tracker.clone(), config).await.unwrap();
    let client = reqwest::Client::new();
    let get = |path: String| {
        let request = client
            .get(format!("{}{path}", server.url()))
            .bearer_auth("long-token");
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let (status, body) = get(format!("/tasks/{mine_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"]["source"], "journal");
    assert_eq!(body["task"]["name"], "long-owned");
    let (status, body) = get(format!("/tasks/{theirs_id}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get("/tasks?state=completed".into()).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["long-owned"], "{body}");
    server.shutdown().await;
}

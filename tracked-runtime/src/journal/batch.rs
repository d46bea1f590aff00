//! A batch of events folded into the rows it writes: one row per task,
//! however many of its events the batch holds, so a task spawned, started
//! and ended between two writes costs one row, not three statements.
//!
//! Events of one task may arrive out of order (the spawner and the thread
//! running the task send them) and spread over batches. A row therefore
//! says what the batch knows, and the database merges it into what earlier
//! batches wrote (see `schema::upsert_tasks`).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::text::{cut, cut_copy};
use crate::{Event, EventKind, SpawnKind, TaskState};

/// One event waiting to be written, with its wall-clock time (µs since the
/// epoch).
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) at: i64,
    pub(crate) event: Event,
    /// Not received: an end the writer read from the tracker's history
    /// because the event was dropped. It updates the task's row but is not
    /// counted among the batch's events.
    pub(crate) reconciled: bool,
    /// The bytes of the event queue's bound it holds until written or
    /// dropped (0 if it did not come through the queue).
    pub(crate) held: usize,
}

/// What a batch holds, as written to `tracked_batches`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) events: i64,
    pub(crate) spawned: i64,
    pub(crate) finished: i64,
    pub(crate) progress: i64,
}

/// A task's row as far as one batch knows it, column by column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TaskRow {
    pub(crate) id: i64,
    /// The batch holds the task's spawn event. Without it, `parent`,
    /// `labels`, `kind` and `spawned_at` are placeholders, used only when
    /// the task has no row yet (its spawn event was dropped, or comes in a
    /// later batch and then replaces them).
    pub(crate) spawned: bool,
    pub(crate) parent: Option<i64>,
    pub(crate) name: String,
    pub(crate) ty: String,
    pub(crate) owner: Option<String>,
    /// JSON: `[["key","value"],…]`.
    pub(crate) labels: String,
    pub(crate) site: String,
    pub(crate) kind: &'static str,
    /// `pending`, `running` or how it ended; only ever moves forward.
    pub(crate) state: &'static str,
    pub(crate) error: Option<String>,
    pub(crate) progress: Option<i64>,
    pub(crate) spawned_at: i64,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) last_at: i64,
}

impl TaskRow {
    fn new(entry: &Entry) -> TaskRow {
        let event = &entry.event;
        TaskRow {
            id: event.id.as_u64() as i64,
            spawned: false,
            parent: None,
            name: name(&event.name),
            ty: name(event.ty.name()),
            owner: event.owner.as_deref().map(name),
            labels: "[]".to_owned(),
            site: event.site.to_string(),
            kind: kind_str(SpawnKind::Async),
            state: TaskState::Pending.as_str(),
            error: None,
            progress: None,
            spawned_at: entry.at,
            started_at: None,
            finished_at: None,
            last_at: entry.at,
        }
    }

    /// From spawn to end, when the batch knows both.
    pub(crate) fn duration_us(&self) -> Option<i64> {
        self.finished_at.map(|end| end - self.spawned_at)
    }

    /// Takes the name, type and owner `event` gives the task.
    fn name_as(&mut self, event: &Event) {
        if self.name != *event.name {
            self.name = name(&event.name);
        }
        if self.ty != event.ty.name() {
            self.ty = name(event.ty.name());
        }
        if self.owner.as_deref() != event.owner.as_deref() {
            self.owner = event.owner.as_deref().map(name);
        }
    }

    fn running(&mut self) {
        if self.state == TaskState::Pending.as_str() {
            self.state = TaskState::Running.as_str();
        }
    }
}

/// One progress message, as written to `tracked_progress`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogRow {
    pub(crate) id: i64,
    pub(crate) at: i64,
    pub(crate) percent: i64,
    pub(crate) message: Option<String>,
}

/// Everything one transaction writes.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    pub(crate) instance: String,
    /// In the order of each task's first event in the batch.
    pub(crate) tasks: Vec<TaskRow>,
    pub(crate) log: Vec<LogRow>,
    pub(crate) tally: Tally,
    /// Events dropped since the last batch written.
    pub(crate) dropped: i64,
    /// When the batch was written (µs since the epoch).
    pub(crate) at: i64,
}

/// Folds `entries` (in the order they were received) into a batch.
pub(crate) fn fold(instance: &str, entries: &[Entry], dropped: u64, now: i64) -> Batch {
    let mut rows = Rows::default();
    let mut log = Vec::new();
    let mut tally = Tally::default();
    for entry in entries {
        let at = entry.at;
        match &entry.event.kind {
            EventKind::Spawned {
                parent,
                kind,
                labels,
            } => {
                tally.spawned += 1;
                let labels: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                    labels.iter().map(|(k, v)| (label(k), label(v))).collect();
                let row = rows.of(entry);
                row.spawned = true;
                row.parent = parent.map(|p| p.as_u64() as i64);
                row.labels = serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into());
                row.kind = kind_str(*kind);
                row.spawned_at = at;
            }
            EventKind::Started => {
                let row = rows.of(entry);
                row.started_at = Some(at);
                row.running();
            }
            EventKind::Progress { percent, message } => {
                tally.progress += 1;
                let row = rows.of(entry);
                row.progress = Some(i64::from(*percent));
                row.running();
                log.push(LogRow {
                    id: row.id,
                    at,
                    percent: i64::from(*percent),
                    message: message.as_deref().map(text),
                });
            }
            EventKind::Finished { state, error } => {
                let row = rows.of(entry);
                row.state = state.as_str();
                row.error = error.as_deref().map(text);
                row.finished_at = Some(at);
                if entry.reconciled {
                    continue;
                }
                tally.finished += 1;
            }
            // Cancel requests and watchdog warnings are live concerns; the
            // journal keeps how tasks ended.
            EventKind::CancelRequested | EventKind::Warning(_) => continue,
        }
        tally.events += 1;
    }
    Batch {
        instance: instance.to_owned(),
        tasks: rows.tasks,
        log,
        tally,
        dropped: dropped as i64,
        at: now,
    }
}

/// The rows being folded, found by task id.
#[derive(Default)]
struct Rows {
    tasks: Vec<TaskRow>,
    index: HashMap<i64, usize>,
    /// Per row, when the event its name, type and owner come from happened,
    /// unless that is its spawn event.
    named_at: Vec<Option<i64>>,
}

impl Rows {
    /// The row of `entry`'s task, created by its first event. Until the
    /// spawn event is seen, the earliest event stands for the spawn time.
    ///
    /// A `#[tracked]` fn that claims a task at its first poll renames it, so
    /// the name, type and owner are those of the task's latest event other
    /// than its spawn: the spawn event carries them from before the claim,
    /// and may come after the task's own events.
    fn of(&mut self, entry: &Entry) -> &mut TaskRow {
        let id = entry.event.id.as_u64() as i64;
        let i = *self.index.entry(id).or_insert_with(|| {
            self.tasks.push(TaskRow::new(entry));
            self.named_at.push(None);
            self.tasks.len() - 1
        });
        let row = &mut self.tasks[i];
        let spawn = matches!(entry.event.kind, EventKind::Spawned { .. });
        if !spawn && self.named_at[i].is_none_or(|at| at <= entry.at) {
            row.name_as(&entry.event);
            self.named_at[i] = Some(entry.at);
        }
        if !row.spawned {
            row.spawned_at = row.spawned_at.min(entry.at);
        }
        row.last_at = row.last_at.max(entry.at);
        row
    }
}

/// Bytes kept of a task's name, type and owner, of its labels' keys and
/// values, and of the service name in the instance id. PostgreSQL's index
/// entries hold at most 2704 bytes (the owner, type and instance are
/// indexed), and a text that does not compress takes its whole length
/// there; labels are not indexed, but cut alike so that no text a task
/// chooses grows its row without bound. Errors and progress messages need
/// no bound of the journal's: the tracker cuts them (4 KiB, 1 KiB).
pub(crate) const NAME_BYTES: usize = 1024;

/// `s` as a name, type or owner column: [`text`], cut as the tracker cuts
/// an error, to [`NAME_BYTES`] ending with an ellipsis.
pub(crate) fn name(s: &str) -> String {
    cut(text(s), NAME_BYTES)
}

/// A label's key or value as written: cut as [`name`] cuts, to
/// [`NAME_BYTES`] ending with an ellipsis, but keeping NUL (the labels'
/// JSON escapes it). Borrowed when whole.
pub(crate) fn label(s: &str) -> Cow<'_, str> {
    if s.len() <= NAME_BYTES {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(cut_copy(s, NAME_BYTES))
    }
}

/// `s` as a column's text: NUL, which PostgreSQL refuses in text (failing
/// the whole batch, for good), becomes U+FFFD in either database. Labels
/// need not: their JSON escapes it.
pub(crate) fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s.to_owned()
    }
}

fn kind_str(kind: SpawnKind) -> &'static str {
    match kind {
        SpawnKind::Async => "async",
        SpawnKind::Blocking => "blocking",
        SpawnKind::Local => "local",
        SpawnKind::Inline => "inline",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::borrow::Cow;
    use std::time::Instant;

    use super::*;
    use crate::journal::schema::{Row, Statement, Value};
    use crate::journal::JournalError;
    use crate::{Site, TaskId, TaskType};

    /// Four tasks' events in the order sent: one failed with progress, one
    /// running, one pending (both children of the first), one completed. The
    /// last was claimed by a `#[tracked]` fn in its first poll: its spawn and
    /// start events carry the spawn's name and type, its end the fn's.
    fn events() -> Vec<Entry> {
        vec![
            entry(1, 100, spawned(None)),
            entry(2, 105, spawned(Some(1))),
            entry(3, 108, spawned(Some(1))),
            entry(1, 110, EventKind::Started),
            entry(2, 115, EventKind::Started),
            entry(1, 120, progress(40, Some("half"))),
            entry(1, 130, progress(80, None)),
            entry(1, 140, finished(TaskState::Failed, Some("boom"))),
            before_claim(entry(4, 150, spawned(None))),
            before_claim(entry(4, 155, EventKind::Started)),
            entry(4, 160, finished(TaskState::Completed, None)),
        ]
    }

    /// The same events written in different batches, each under an instance
    /// of its own: whole; one per batch; one per batch with every spawn
    /// event last (the spawner's events may trail the task's own); and in
    /// threes, spawns last. The journal must end up the same for all.
    pub(crate) fn splits() -> Vec<(&'static str, Vec<Vec<Entry>>)> {
        let all = events();
        let (spawns, rest): (Vec<Entry>, Vec<Entry>) = all
            .iter()
            .cloned()
            .partition(|e| matches!(e.event.kind, EventKind::Spawned { .. }));
        let spawns_last: Vec<Entry> = rest.into_iter().chain(spawns).collect();
        let ones = |entries: &[Entry]| entries.chunks(1).map(<[Entry]>::to_vec).collect();
        vec![
            ("whole", vec![all.clone()]),
            ("ones", ones(&all)),
            ("ones-spawns-last", ones(&spawns_last)),
            (
                "threes-spawns-last",
                spawns_last.chunks(3).map(<[Entry]>::to_vec).collect(),
            ),
        ]
    }

    /// Statements reading back what an instance wrote, each with its
    /// columns' kinds (`i`nteger or `t`ext).
    pub(crate) fn dumps(instance: &str) -> Vec<(Statement, &'static str)> {
        let read = |sql: &'static str| Statement {
            sql: Cow::Borrowed(sql),
            params: vec![Value::Text(instance.to_owned())],
        };
        vec![
            (
                read(
                    "SELECT id, parent, name, type, owner, labels, site, kind, state, error, \
                     progress, spawned_at, started_at, finished_at, duration_us, last_at \
                     FROM tracked_tasks WHERE instance = $1 ORDER BY id",
                ),
                "iittttttttiiiiii",
            ),
            (
                read(
                    "SELECT id, at, percent, message FROM tracked_progress \
                     WHERE instance = $1 ORDER BY id, at",
                ),
                "iiit",
            ),
            (
                read(
                    "SELECT CAST(sum(events) AS BIGINT), CAST(sum(spawned) AS BIGINT), \
                     CAST(sum(finished) AS BIGINT), CAST(sum(progress) AS BIGINT) \
                     FROM tracked_batches WHERE instance = $1",
                ),
                "iiii",
            ),
        ]
    }

    /// One row read by a statement from [`dumps`], as text.
    pub(crate) fn dump(row: &impl Row, kinds: &str) -> Result<String, JournalError> {
        let mut out = Vec::new();
        for (i, kind) in kinds.chars().enumerate() {
            out.push(match kind {
                'i' => format!("{:?}", row.int(i)?),
                _ => format!("{:?}", row.text(i)?),
            });
        }
        Ok(out.join(" | "))
    }

    /// The whole batch's rows say what the events say, and each split's
    /// rows equal them.
    pub(crate) fn assert_splits_agree(written: &[(&str, Vec<String>)]) {
        let task = |id: i64, parent: &str, state: &str, rest: &str| {
            format!(
                r#"Some({id}) | {parent} | Some("t{id}") | Some("Database") | Some("tenant") | Some("[[\"k\",\"v\"]]") | Some("src/db.rs:7:9") | Some("blocking") | Some("{state}") | {rest}"#
            )
        };
        let whole = [
            task(
                1,
                "None",
                "failed",
                r#"Some("boom") | Some(80) | Some(100) | Some(110) | Some(140) | Some(40) | Some(140)"#,
            ),
            task(
                2,
                "Some(1)",
                "running",
                "None | None | Some(105) | Some(115) | None | None | Some(115)",
            ),
            task(
                3,
                "Some(1)",
                "pending",
                "None | None | Some(108) | None | None | None | Some(108)",
            ),
            task(
                4,
                "None",
                "completed",
                "None | None | Some(150) | Some(155) | Some(160) | Some(10) | Some(160)",
            ),
            r#"Some(1) | Some(120) | Some(40) | Some("half")"#.to_owned(),
            "Some(1) | Some(130) | Some(80) | None".to_owned(),
            "Some(11) | Some(4) | Some(2) | Some(2)".to_owned(),
        ];
        for (split, rows) in written {
            assert_eq!(rows, &whole, "{split}");
        }
    }

    /// An entry at `at` µs for task `id` (its name is `t{id}`).
    pub(crate) fn entry(id: u64, at: i64, kind: EventKind) -> Entry {
        Entry {
            at,
            reconciled: false,
            held: 0,
            event: Event {
                at: Instant::now(),
                id: TaskId::from_u64(id).unwrap(),
                name: Cow::Owned(format!("t{id}")),
                ty: TaskType::DATABASE,
                site: Site {
                    file: "src/db.rs",
                    line: 7,
                    column: 9,
                },
                owner: Some("tenant".into()),
                kind,
            },
        }
    }

    /// `entry` as an event of a task from before the `#[tracked]` fn `t{id}`
    /// claimed it: under the spawn's name and type.
    fn before_claim(mut entry: Entry) -> Entry {
        entry.event.name = Cow::Owned(format!("spawn::{}", entry.event.name));
        entry.event.ty = TaskType::GENERAL;
        entry.event.owner = None;
        entry
    }

    pub(crate) fn spawned(parent: Option<u64>) -> EventKind {
        EventKind::Spawned {
            parent: parent.and_then(TaskId::from_u64),
            kind: SpawnKind::Blocking,
            labels: vec![(Cow::Borrowed("k"), Cow::Borrowed("v"))].into(),
        }
    }

    pub(crate) fn progress(percent: u8, message: Option<&str>) -> EventKind {
        EventKind::Progress {
            percent,
            message: message.map(str::to_owned),
        }
    }

    pub(crate) fn finished(state: TaskState, error: Option<&str>) -> EventKind {
        EventKind::Finished {
            state,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn a_long_name_is_cut_after_nul_is_replaced() {
        let long = format!("a\0{}", "é".repeat(600));
        let cut = name(&long);
        assert!(cut.len() <= NAME_BYTES, "{}", cut.len());
        assert!(cut.starts_with("a\u{fffd}é"), "{cut}");
        assert!(cut.ends_with("é…"), "{cut}");
        assert_eq!(name("short\0"), "short\u{fffd}");
    }

    #[test]
    fn long_label_keys_and_values_are_cut_keeping_nul() {
        let key = format!("k\0{}", "é".repeat(600));
        let value = "v".repeat(NAME_BYTES + 1);
        let mut spawn = entry(1, 100, spawned(None));
        let EventKind::Spawned { labels, .. } = &mut spawn.event.kind else {
            unreachable!()
        };
        *labels = vec![
            (Cow::Owned(key.clone()), Cow::Owned(value.clone())),
            (Cow::Borrowed("short\0"), Cow::Owned("v".repeat(NAME_BYTES))),
        ]
        .into();
        let row = &fold("svc", &[spawn], 0, 0).tasks[0];
        let written: Vec<(String, String)> = serde_json::from_str(&row.labels).unwrap();
        let (k, v) = &written[0];
        assert!(k.len() <= NAME_BYTES && k.starts_with("k\0é") && k.ends_with("é…"));
        assert_eq!(*v, format!("{}…", &value[..NAME_BYTES - 3]));
        // Up to the bound, kept whole, NUL and all.
        assert_eq!(written[1], ("short\0".into(), "v".repeat(NAME_BYTES)));
    }

    #[test]
    fn a_task_whole_in_one_batch_is_one_row() {
        let entries = [
            entry(1, 100, spawned(Some(9))),
            entry(1, 110, EventKind::Started),
            entry(1, 120, progress(40, Some("half"))),
            entry(1, 125, EventKind::CancelRequested),
            entry(1, 130, finished(TaskState::Failed, Some("boom"))),
        ];
        let batch = fold("svc", &entries, 3, 999);
        assert_eq!(
            batch.tasks,
            [TaskRow {
                id: 1,
                spawned: true,
                parent: Some(9),
                name: "t1".into(),
                ty: "Database".into(),
                owner: Some("tenant".into()),
                labels: r#"[["k","v"]]"#.into(),
                site: "src/db.rs:7:9".into(),
                kind: "blocking",
                state: "failed",
                error: Some("boom".into()),
                progress: Some(40),
                spawned_at: 100,
                started_at: Some(110),
                finished_at: Some(130),
                last_at: 130,
            }]
        );
        assert_eq!(batch.tasks[0].duration_us(), Some(30));
        assert_eq!(
            batch.log,
            [LogRow {
                id: 1,
                at: 120,
                percent: 40,
                message: Some("half".into())
            }]
        );
        let tally = Tally {
            events: 4,
            spawned: 1,
            finished: 1,
            progress: 1,
        };
        assert_eq!((batch.tally, batch.dropped, batch.at), (tally, 3, 999));
    }

    #[test]
    fn events_out_of_order_fold_to_the_same_row() {
        let in_order = [
            entry(1, 100, spawned(None)),
            entry(1, 110, EventKind::Started),
            entry(1, 130, finished(TaskState::Completed, None)),
        ];
        let mut shuffled = in_order.clone();
        shuffled.reverse();
        assert_eq!(
            fold("svc", &shuffled, 0, 0).tasks,
            fold("svc", &in_order, 0, 0).tasks
        );
        // A start that arrives after the end does not bring the task back.
        let late_start = [
            entry(1, 130, finished(TaskState::Cancelled, None)),
            entry(1, 110, EventKind::Started),
        ];
        assert_eq!(fold("svc", &late_start, 0, 0).tasks[0].state, "cancelled");
    }

    #[test]
    fn a_task_without_its_spawn_event_gets_placeholders() {
        let entries = [
            entry(2, 50, EventKind::Started),
            entry(1, 60, spawned(None)),
            entry(2, 40, progress(10, None)),
        ];
        let batch = fold("svc", &entries, 0, 0);
        let ids: Vec<i64> = batch.tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [2, 1], "rows in order of first event");
        let late = &batch.tasks[0];
        assert!(!late.spawned);
        assert_eq!(
            (late.parent, late.labels.as_str(), late.kind),
            (None, "[]", "async")
        );
        assert_eq!(
            (late.spawned_at, late.last_at),
            (40, 50),
            "earliest event stands in"
        );
        assert_eq!(late.state, "running");
        assert_eq!(batch.tasks[1].state, "pending");
    }
}

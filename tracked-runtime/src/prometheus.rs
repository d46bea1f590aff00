//! Prometheus text exposition (format 0.0.4) of a tracker's counters, live
//! gauges and duration histograms, written by hand: no dependency.
//!
//! Everything is read from the registry when [`render`] is called, on the
//! caller's thread; nothing runs on the poll path. Labels are the task type
//! and the state, so the number of series stays small whatever the number of
//! tasks; a per-name gauge of live tasks is available as an opt-in.
//!
//! | series | kind | labels |
//! | --- | --- | --- |
//! | `tracked_tasks_spawned_total` | counter | `type` |
//! | `tracked_tasks_claimed_total` | counter | `type` |
//! | `tracked_tasks_finished_total` | counter | `type`, `state` (completed, failed, panicked, cancelled) |
//! | `tracked_tasks_live` | gauge | `type`, `state` (pending, running) |
//! | `tracked_task_duration_seconds` | histogram | `type`, `le` |
//! | `tracked_task_poll_duration_seconds` (with busy time) | histogram | `type`, `le` |
//! | `tracked_task_scheduled_duration_seconds` (with wakes) | histogram | `type`, `le` |
//! | `tracked_watchdog_last_scan_timestamp_seconds` (once it has scanned) | gauge | |
//! | `tracked_watchdog_warnings_total` | counter | `type`, `kind` (long_running, long_poll, idle, lost_waker) |
//! | `tracked_type_healthy` | gauge (1 or 0) | `type` |
//! | `tracked_tasks_live_by_name` (opt-in) | gauge | `type`, `name` |
//! | `tracked_journal_events_written_total` (with a journal) | counter | |
//! | `tracked_journal_events_dropped_total` (with a journal) | counter | |
//! | `tracked_journal_batches_total` (with a journal) | counter | |
//! | `tracked_journal_events_pending` (with a journal) | gauge | |
//! | `tracked_journal_connected` (with a journal) | gauge (1 or 0) | |
//! | `tracked_journal_stopped` (with a journal) | gauge (1 or 0) | |
//!
//! A task that a `#[tracked]` fn of another type claims in its first poll
//! (a rewritten `tokio::spawn(other_fn())`) moves to the fn's type. It counts
//! in `tracked_tasks_spawned_total` of both types and in
//! `tracked_tasks_claimed_total` of the first, so every counter only grows,
//! and per type live = spawned − claimed − finished.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::{Counts, DurationHistogram, PollHistogram, TaskState, TaskType, Tracker};

/// Reads one counter of a type's [`Counts`].
type CountOf = fn(&Counts) -> u64;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What [`render`] writes beyond the default series.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::prometheus::MetricsOptions;
///
/// let options = MetricsOptions::new().name_label(true);
/// # drop(options);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MetricsOptions {
    name_label: bool,
    #[cfg(feature = "journal")]
    journal: Option<crate::journal::Journal>,
}

impl MetricsOptions {
    /// Only the low-cardinality series, labelled by type and state.
    pub fn new() -> Self {
        MetricsOptions::default()
    }

    /// Also write `tracked_tasks_live_by_name{type,name}`, one series per
    /// distinct live task name. Off by default: names can be many, and each
    /// one is a series in Prometheus.
    pub fn name_label(mut self, enabled: bool) -> Self {
        self.name_label = enabled;
        self
    }

    /// Also write `journal`'s health (`tracked_journal_*`): the events it
    /// wrote, dropped and holds, its batches, whether its last write
    /// succeeded and whether its writer stopped, so that lost events and a
    /// database gone away can be alerted on. The HTTP server's `/metrics`
    /// writes them for the journal given to its `Config::journal`.
    #[cfg(feature = "journal")]
    pub fn journal(mut self, journal: &crate::journal::Journal) -> Self {
        self.journal = Some(journal.clone());
        self
    }

    /// These options, with `journal`'s series unless they name a journal
    /// already.
    #[cfg(all(feature = "journal", feature = "http"))]
    pub(crate) fn or_journal(self, journal: Option<&crate::journal::Journal>) -> Self {
        match (&self.journal, journal) {
            (None, Some(journal)) => self.journal(journal),
            _ => self,
        }
    }
}

/// The tracker's metrics in the Prometheus text format.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::prometheus::{render, MetricsOptions};
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// tracker.spawn("tick", TaskType::MAINTENANCE, async {}).await.unwrap();
///
/// let text = render(&tracker, &MetricsOptions::new());
/// assert!(text.contains(r#"tracked_tasks_finished_total{type="Maintenance",state="completed"} 1"#));
/// # }
/// ```
pub fn render(tracker: &Tracker, options: &MetricsOptions) -> String {
    let stats = tracker.stats();
    let durations = tracker.durations();
    let mut out = String::with_capacity(4096);

    let per_type: [(&str, &str, CountOf); 2] = [
        (
            "tracked_tasks_spawned_total",
            "Tasks spawned, per type; a task a #[tracked] fn of another type claims counts in both.",
            |c| c.spawned + c.claimed,
        ),
        (
            "tracked_tasks_claimed_total",
            "Tasks spawned as this type that a #[tracked] fn of another type took over: live = spawned - claimed - finished.",
            |c| c.claimed,
        ),
    ];
    for (name, help, value) in per_type {
        family(&mut out, name, "counter", help);
        for (ty, counts) in &stats.by_type {
            sample(&mut out, name, &[("type", ty.name())], value(counts));
        }
    }

    family(
        &mut out,
        "tracked_tasks_finished_total",
        "counter",
        "Tasks that ended, per type and final state.",
    );
    for (ty, counts) in &stats.by_type {
        for (state, value) in [
            (TaskState::Completed, counts.completed),
            (TaskState::Failed, counts.failed),
            (TaskState::Panicked, counts.panicked),
            (TaskState::Cancelled, counts.cancelled),
        ] {
            let labels = [("type", ty.name()), ("state", state.as_str())];
            sample(&mut out, "tracked_tasks_finished_total", &labels, value);
        }
    }

    family(
        &mut out,
        "tracked_tasks_live",
        "gauge",
        "Live tasks, per type and state.",
    );
    for (ty, counts) in &stats.by_type {
        for (state, value) in [
            (TaskState::Pending, counts.pending),
            (TaskState::Running, counts.running),
        ] {
            let labels = [("type", ty.name()), ("state", state.as_str())];
            sample(&mut out, "tracked_tasks_live", &labels, value);
        }
    }

    family(
        &mut out,
        "tracked_task_duration_seconds",
        "histogram",
        "Time from spawn to end of finished tasks, per type.",
    );
    for (ty, histogram) in &durations {
        write_histogram(
            &mut out,
            "tracked_task_duration_seconds",
            *ty,
            &DurationHistogram::BOUNDS,
            &histogram.cumulative(),
            histogram.sum(),
        );
    }

    write_watchdog(&mut out, tracker, &stats);

    if tracker.measures_busy_time() {
        write_per_type(
            &mut out,
            "tracked_task_poll_duration_seconds",
            "Time spent in single polls of tasks, per type.",
            &tracker.poll_durations(),
        );
    }
    if tracker.follows_wakes() {
        write_per_type(
            &mut out,
            "tracked_task_scheduled_duration_seconds",
            "Time tasks waited for a worker once woken (a wake to the poll it led to), per type.",
            &tracker.scheduling_delays(),
        );
    }

    if options.name_label {
        write_by_name(&mut out, tracker);
    }
    #[cfg(feature = "journal")]
    if let Some(journal) = &options.journal {
        write_journal(&mut out, &journal.stats());
    }
    out
}

/// A journal's health, unlabelled: one journal per options.
#[cfg(feature = "journal")]
fn write_journal(out: &mut String, stats: &crate::journal::JournalStats) {
    for metric in crate::journal::health(stats) {
        let name = metric.name.replace('.', "_");
        let (name, kind) = match metric.counter {
            true => (format!("{name}_total"), "counter"),
            false => (name, "gauge"),
        };
        family(out, &name, kind, metric.help);
        sample(out, &name, &[], metric.value);
    }
}

/// A histogram family in the poll-duration buckets, one histogram per type.
fn write_per_type(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: &BTreeMap<TaskType, PollHistogram>,
) {
    family(out, name, "histogram", help);
    for (ty, histogram) in histograms {
        let cumulative = histogram.cumulative();
        write_histogram(
            out,
            name,
            *ty,
            &PollHistogram::BOUNDS,
            &cumulative,
            histogram.sum(),
        );
    }
}

fn write_histogram(
    out: &mut String,
    name: &str,
    ty: TaskType,
    bounds: &[std::time::Duration],
    cumulative: &[u64],
    sum: std::time::Duration,
) {
    for (i, count) in cumulative.iter().enumerate() {
        let le = match bounds.get(i) {
            Some(bound) => float(bound.as_secs_f64()),
            None => "+Inf".to_owned(),
        };
        let labels = [("type", ty.name()), ("le", le.as_str())];
        sample(out, &format!("{name}_bucket"), &labels, *count);
    }
    let labels = [("type", ty.name())];
    let _ = writeln!(
        out,
        "{name}_sum{} {}",
        label_set(&labels),
        float(sum.as_secs_f64())
    );
    let count = cumulative.last().copied().unwrap_or(0);
    sample(out, &format!("{name}_count"), &labels, count);
}

/// The watchdog's warnings (every type, zeros included, so that rates work
/// from the first scrape) and the health of each type with endings.
fn write_watchdog(out: &mut String, tracker: &Tracker, stats: &crate::Stats) {
    if let Some(at) = tracker.last_watchdog_scan() {
        let name = "tracked_watchdog_last_scan_timestamp_seconds";
        family(
            out,
            name,
            "gauge",
            "When the watchdog's latest scan ended (absent before the first): no scans, no warnings.",
        );
        let since_epoch = tracker
            .system_time(at)
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(out, "{name} {}", float(since_epoch.as_secs_f64()));
    }
    let name = "tracked_watchdog_warnings_total";
    family(
        out,
        name,
        "counter",
        "Tasks the watchdog warned about, per type and threshold crossed.",
    );
    let warnings = tracker.warnings();
    for ty in stats.by_type.keys() {
        let counts = warnings.get(ty).copied().unwrap_or_default();
        for (kind, value) in counts.by_kind() {
            sample(out, name, &[("type", ty.name()), ("kind", kind)], value);
        }
    }
    let name = "tracked_type_healthy";
    family(
        out,
        name,
        "gauge",
        "1 when the type's failed and panicked endings in the watchdog's window are within its limit, else 0; absent for types with no endings in the window.",
    );
    for (ty, health) in &tracker.health().by_type {
        sample(out, name, &[("type", ty.name())], u64::from(health.healthy));
    }
}

fn write_by_name(out: &mut String, tracker: &Tracker) {
    family(
        out,
        "tracked_tasks_live_by_name",
        "gauge",
        "Live tasks, per type and task name.",
    );
    for (ty, names) in tracker.live_by_name() {
        for (name, count) in &names {
            let labels = [("type", ty.name()), ("name", &**name)];
            sample(out, "tracked_tasks_live_by_name", &labels, *count);
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", label_set(labels));
}

/// `{key="value",…}`, or nothing for no labels.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape_label(value));
    }
    out.push('}');
    out
}

/// A float as Prometheus reads it: shortest round-trip decimal.
fn float(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text escapes backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(
            label_set(&[("type", "x"), ("name", "q\"")]),
            "{type=\"x\",name=\"q\\\"\"}"
        );
    }

    #[test]
    fn bounds_print_as_plain_decimals() {
        let les: Vec<String> = DurationHistogram::BOUNDS
            .iter()
            .map(|b| float(b.as_secs_f64()))
            .collect();
        assert_eq!(les[0], "0.001");
        assert_eq!(les[6], "1");
        assert_eq!(les[11], "3600");
    }
}

//! Counters: totals and per type, consistent under concurrency.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::AddAssign;

use unicode_width::UnicodeWidthStr;

use crate::TaskType;

/// Lifecycle counters for a set of tasks.
///
/// `spawned == live() + finished()` holds exactly in every `Counts` the
/// tracker returns, however many tasks are spawning and ending meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks spawned.
    pub spawned: u64,
    /// Live tasks not yet polled.
    pub pending: u64,
    /// Live tasks polled at least once.
    pub running: u64,
    /// Tasks that returned a non-failure output.
    pub completed: u64,
    /// Tasks that returned an `Err`.
    pub failed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks aborted or dropped by their runtime.
    pub cancelled: u64,
    /// Tasks spawned as this type that a `#[tracked]` fn of another type
    /// took over in their first poll (a claim): from then on they count in
    /// the fn's type, `spawned` included, and not here. So `spawned +
    /// claimed` never decreases, which is what the exporters report as
    /// spawned. Not part of `spawned == live() + finished()`.
    pub claimed: u64,
}

impl Counts {
    /// Tasks spawned and not finished.
    pub fn live(&self) -> u64 {
        self.pending + self.running
    }

    /// Tasks that ended, in any way.
    pub fn finished(&self) -> u64 {
        self.completed + self.failed + self.panicked + self.cancelled
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.spawned += other.spawned;
        self.pending += other.pending;
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.panicked += other.panicked;
        self.cancelled += other.cancelled;
        self.claimed += other.claimed;
    }
}

/// Counters for all tasks of a tracker, and per type.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// tracker.spawn("tick", TaskType::MAINTENANCE, async {}).await.unwrap();
///
/// let stats = tracker.stats();
/// assert_eq!(stats.total.completed, 1);
/// assert_eq!(stats.by_type[&TaskType::MAINTENANCE].spawned, 1);
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sum over all types.
    pub total: Counts,
    /// Per type, for every type that ever spawned a task in this tracker.
    pub by_type: BTreeMap<TaskType, Counts>,
}

impl Stats {
    pub(crate) fn from_rows(rows: Vec<(TaskType, Counts)>) -> Stats {
        let mut stats = Stats::default();
        for (ty, counts) in rows {
            stats.total += counts;
            *stats.by_type.entry(ty).or_default() += counts;
        }
        stats
    }
}

/// A fixed-width table: one row per type and a total, one column per state.
///
/// ```text
/// type          spawned     live  pending  running  completed  failed  panicked  cancelled
/// Network            12        3        0        3          8       1         0          0
/// ```
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<Cow<'_, str>> = self.by_type.keys().map(|ty| one_line(ty.name())).collect();
        // In terminal columns: a CJK letter takes two.
        let width = names
            .iter()
            .map(|name| name.width())
            .chain([5])
            .max()
            .unwrap_or(5);
        let pad = |name: &str| " ".repeat(width - name.width());
        writeln!(
            f,
            "type{}  {:>9} {:>8} {:>8} {:>8} {:>10} {:>7} {:>9} {:>10}",
            pad("type"),
            "spawned",
            "live",
            "pending",
            "running",
            "completed",
            "failed",
            "panicked",
            "cancelled"
        )?;
        let rows = names.iter().map(|name| &**name).zip(self.by_type.values());
        for (name, c) in rows.chain([("total", &self.total)]) {
            writeln!(
                f,
                "{name}{}  {:>9} {:>8} {:>8} {:>8} {:>10} {:>7} {:>9} {:>10}",
                pad(name),
                c.spawned,
                c.live(),
                c.pending,
                c.running,
                c.completed,
                c.failed,
                c.panicked,
                c.cancelled
            )?;
        }
        Ok(())
    }
}

/// A type name as one row of the table: control characters (a newline in
/// a name read from configuration, say) escaped as in Rust source.
fn one_line(name: &str) -> Cow<'_, str> {
    if name.chars().any(char::is_control) {
        let escaped = name.chars().map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        });
        Cow::Owned(escaped.collect())
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::{Counts, Stats};
    use crate::TaskType;
    use unicode_width::UnicodeWidthStr;

    /// Every row is one line as wide as the header on a terminal, whatever
    /// the names: a newline is escaped, and padding counts columns (a CJK
    /// letter takes two), not bytes or characters.
    #[test]
    fn the_table_keeps_one_aligned_row_per_type() {
        let counts = Counts {
            spawned: 3,
            completed: 3,
            ..Counts::default()
        };
        let names = ["Network", "A\nB", "名前名前", "Zed"];
        let rows = names.map(|name| (TaskType::new(name), counts)).to_vec();
        let table = Stats::from_rows(rows).to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + names.len(), "{table}");
        let width = lines[0].width();
        assert!(lines.iter().all(|l| l.width() == width), "{table}");
        assert!(lines.iter().any(|l| l.starts_with("A\\nB ")), "{table}");
    }
}

//! The API's JSON shapes, built from the tracker's owned views.
//!
//! Times are milliseconds since the Unix epoch (`*_ms`), durations are
//! milliseconds, ids are numbers.

use std::collections::BTreeMap;
use std::time::{Instant, UNIX_EPOCH};

use serde::Serialize;

use crate::{
    CancelReport, Counts, DurationHistogram, Event, EventKind, ProgressSnapshot, Stats,
    StubbornTask, TaskSnapshot, Tracker, Warning,
};

/// Milliseconds since the Unix epoch of a tracker instant.
fn epoch_ms(tracker: &Tracker, at: Instant) -> u64 {
    tracker
        .system_time(at)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Serialize)]
pub(crate) struct TaskJson {
    id: u64,
    parent: Option<u64>,
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    owner: Option<String>,
    labels: BTreeMap<String, String>,
    site: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracked_fn: Option<&'static str>,
    state: &'static str,
    spawned_at_ms: u64,
    first_polled_at_ms: Option<u64>,
    finished_at_ms: Option<u64>,
    age_ms: u64,
    /// `age_ms` once the task has ended, as journal rows carry it.
    duration_ms: Option<u64>,
    polls: u64,
    busy_ms: Option<f64>,
    /// When a live task's latest poll ended, if polls are timed and it is
    /// not in one now; `idle_ms` is how long ago that was.
    idle_since_ms: Option<u64>,
    idle_ms: Option<u64>,
    /// When the poll running now began, if polls are timed; `in_poll_ms`
    /// is how long ago that was.
    in_poll_since_ms: Option<u64>,
    in_poll_ms: Option<u64>,
    /// Present when the tracker follows wakes.
    wakes: Option<WakesJson>,
    progress: Option<ProgressJson>,
    error: Option<String>,
    panic_location: Option<String>,
    /// The watchdog's warnings: `long_running`, `long_poll`, `idle`,
    /// `lost_waker`.
    warnings: Vec<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct WakesJson {
    wakes: u64,
    self_wakes: u64,
    wakers: usize,
    scheduled_ms: f64,
    scheduled_polls: u64,
    woken_at_ms: Option<u64>,
    lost_waker: bool,
}

#[derive(Serialize)]
pub(crate) struct ProgressJson {
    percent: u8,
    message: Option<String>,
    updated_at_ms: u64,
    estimated_completion_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Vec<ProgressMessageJson>>,
}

#[derive(Serialize)]
pub(crate) struct ProgressMessageJson {
    at_ms: u64,
    percent: u8,
    message: String,
}

impl TaskJson {
    /// A task; `with_log` adds its whole progress log.
    pub(crate) fn new(tracker: &Tracker, t: &TaskSnapshot, with_log: bool) -> Self {
        let now = Instant::now();
        TaskJson {
            id: t.id.as_u64(),
            parent: t.parent.map(|p| p.as_u64()),
            name: t.name.to_string(),
            ty: t.ty.name(),
            owner: t.owner.as_deref().map(str::to_owned),
            labels: t
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            site: t.site.to_string(),
            kind: match t.kind {
                crate::SpawnKind::Async => "async",
                crate::SpawnKind::Blocking => "blocking",
                crate::SpawnKind::Local => "local",
                crate::SpawnKind::Inline => "inline",
            },
            tracked_fn: t.fn_site.map(|s| s.name()),
            state: t.state.as_str(),
            spawned_at_ms: epoch_ms(tracker, t.spawned_at),
            first_polled_at_ms: t.first_polled_at.map(|at| epoch_ms(tracker, at)),
            finished_at_ms: t.finished_at.map(|at| epoch_ms(tracker, at)),
            age_ms: t.age(now).as_millis() as u64,
            duration_ms: t.finished_at.map(|_| t.age(now).as_millis() as u64),
            polls: t.polls,
            busy_ms: t.busy.map(ms),
            idle_since_ms: t.idle_since.map(|at| epoch_ms(tracker, at)),
            idle_ms: t.idle(now).map(|idle| idle.as_millis() as u64),
            in_poll_since_ms: t.in_poll_since.map(|at| epoch_ms(tracker, at)),
            in_poll_ms: t.in_poll(now).map(|poll| poll.as_millis() as u64),
            wakes: t.wakes.as_ref().map(|w| WakesJson {
                wakes: w.wakes,
                self_wakes: w.self_wakes,
                wakers: w.wakers,
                scheduled_ms: ms(w.scheduled),
                scheduled_polls: w.scheduled_polls,
                woken_at_ms: w.woken_at.map(|at| epoch_ms(tracker, at)),
                lost_waker: w.lost_waker,
            }),
            progress: t
                .progress
                .as_ref()
                .map(|p| ProgressJson::new(tracker, p, with_log)),
            error: t.error.clone(),
            panic_location: t.panic_location.clone(),
            warnings: t.warned.kinds().collect(),
        }
    }
}

impl ProgressJson {
    fn new(tracker: &Tracker, p: &ProgressSnapshot, with_log: bool) -> Self {
        ProgressJson {
            percent: p.percent,
            message: p.log.last().map(|m| m.message.clone()),
            updated_at_ms: epoch_ms(tracker, p.updated_at),
            estimated_completion_ms: p.estimated_completion.map(|at| epoch_ms(tracker, at)),
            log: with_log.then(|| {
                p.log
                    .iter()
                    .map(|m| ProgressMessageJson {
                        at_ms: epoch_ms(tracker, m.at),
                        percent: m.percent,
                        message: m.message.clone(),
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct CountsJson {
    spawned: u64,
    live: u64,
    pending: u64,
    running: u64,
    completed: u64,
    failed: u64,
    panicked: u64,
    cancelled: u64,
    claimed: u64,
}

impl From<&Counts> for CountsJson {
    fn from(c: &Counts) -> Self {
        CountsJson {
            spawned: c.spawned,
            live: c.live(),
            pending: c.pending,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            panicked: c.panicked,
            cancelled: c.cancelled,
            claimed: c.claimed,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct DurationJson {
    count: u64,
    sum_seconds: f64,
    /// Cumulative counts per upper bound in seconds; the last is `+Inf`.
    buckets: Vec<(Option<f64>, u64)>,
}

impl From<&DurationHistogram> for DurationJson {
    fn from(h: &DurationHistogram) -> Self {
        let bounds = DurationHistogram::BOUNDS
            .iter()
            .map(|b| Some(b.as_secs_f64()))
            .chain([None]);
        DurationJson {
            count: h.count(),
            sum_seconds: h.sum().as_secs_f64(),
            buckets: bounds.zip(h.cumulative()).collect(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct StatsJson {
    total: CountsJson,
    by_type: BTreeMap<&'static str, CountsJson>,
    durations: BTreeMap<&'static str, DurationJson>,
    watchdog: WatchdogJson,
    #[cfg(feature = "journal")]
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<JournalStatsJson>,
}

/// The watchdog in `/stats`: whether it runs, what it warned about, and
/// the failure-rate health of each type that ended tasks.
#[derive(Serialize)]
pub(crate) struct WatchdogJson {
    /// When its latest scan ended; `null` if it never scanned (no
    /// housekeeping heartbeat runs, so no warning will come).
    last_scan_at_ms: Option<u64>,
    /// Milliseconds since then.
    last_scan_age_ms: Option<u64>,
    /// Tasks warned about, per type and threshold.
    warnings: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    healthy: bool,
    /// Types over their failure-rate threshold.
    unhealthy_types: Vec<&'static str>,
}

impl WatchdogJson {
    pub(crate) fn new(tracker: &Tracker) -> Self {
        let last = tracker.last_watchdog_scan();
        let health = tracker.health();
        WatchdogJson {
            last_scan_at_ms: last.map(|at| epoch_ms(tracker, at)),
            last_scan_age_ms: last.map(|at| at.elapsed().as_millis() as u64),
            warnings: tracker
                .warnings()
                .iter()
                .map(|(ty, counts)| (ty.name(), counts.by_kind().into_iter().collect()))
                .collect(),
            healthy: health.is_healthy(),
            unhealthy_types: health
                .by_type
                .iter()
                .filter(|(_, h)| !h.healthy)
                .map(|(ty, _)| ty.name())
                .collect(),
        }
    }
}

/// The journal's writer, in `/stats` of a server given one.
#[cfg(feature = "journal")]
#[derive(Serialize)]
pub(crate) struct JournalStatsJson {
    instance: String,
    written: u64,
    dropped: u64,
    batches: u64,
    pending: usize,
    connected: bool,
    stopped: bool,
    last_error: Option<String>,
}

#[cfg(feature = "journal")]
impl From<&crate::journal::Journal> for JournalStatsJson {
    fn from(journal: &crate::journal::Journal) -> Self {
        let stats = journal.stats();
        JournalStatsJson {
            instance: journal.instance().to_owned(),
            written: stats.written,
            dropped: stats.dropped,
            batches: stats.batches,
            pending: stats.pending,
            connected: stats.connected,
            stopped: stats.stopped,
            last_error: stats.last_error.map(|e| e.to_string()),
        }
    }
}

impl StatsJson {
    pub(crate) fn new(
        stats: &Stats,
        durations: &BTreeMap<crate::TaskType, DurationHistogram>,
        watchdog: WatchdogJson,
    ) -> Self {
        StatsJson {
            total: (&stats.total).into(),
            by_type: stats
                .by_type
                .iter()
                .map(|(ty, c)| (ty.name(), c.into()))
                .collect(),
            durations: durations
                .iter()
                .map(|(ty, h)| (ty.name(), h.into()))
                .collect(),
            watchdog,
            #[cfg(feature = "journal")]
            journal: None,
        }
    }

    /// With `journal`'s writer, if there is one.
    #[cfg(feature = "journal")]
    pub(crate) fn journal(mut self, journal: Option<&crate::journal::Journal>) -> Self {
        self.journal = journal.map(JournalStatsJson::from);
        self
    }
}

#[derive(Serialize)]
pub(crate) struct CancelJson {
    stopped: usize,
    already_finished: usize,
    cancelled_elsewhere: usize,
    aborted: Vec<StubbornJson>,
    left_running: Vec<StubbornJson>,
    elapsed_ms: f64,
    clean: bool,
}

#[derive(Serialize)]
pub(crate) struct StubbornJson {
    id: u64,
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    age_ms: u64,
    site: String,
    last_progress: Option<String>,
}

impl From<&StubbornTask> for StubbornJson {
    fn from(t: &StubbornTask) -> Self {
        StubbornJson {
            id: t.id.as_u64(),
            name: t.name.to_string(),
            ty: t.ty.name(),
            age_ms: t.age.as_millis() as u64,
            site: t.site.to_string(),
            last_progress: t.last_progress.clone(),
        }
    }
}

impl From<&CancelReport> for CancelJson {
    fn from(r: &CancelReport) -> Self {
        CancelJson {
            stopped: r.stopped,
            already_finished: r.already_finished,
            cancelled_elsewhere: r.cancelled_elsewhere,
            aborted: r.aborted.iter().map(StubbornJson::from).collect(),
            left_running: r.left_running.iter().map(StubbornJson::from).collect(),
            elapsed_ms: ms(r.elapsed),
            clean: r.is_clean(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct EventJson {
    id: u64,
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    site: String,
    at_ms: u64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

impl EventJson {
    pub(crate) fn new(tracker: &Tracker, e: &Event) -> Self {
        let mut json = EventJson {
            id: e.id.as_u64(),
            name: e.name.to_string(),
            ty: e.ty.name(),
            owner: e.owner.as_deref().map(str::to_owned),
            site: e.site.to_string(),
            at_ms: epoch_ms(tracker, e.at),
            kind: "",
            parent: None,
            percent: None,
            message: None,
            state: None,
            error: None,
            warning: None,
        };
        json.kind = match &e.kind {
            EventKind::Spawned { parent, .. } => {
                json.parent = parent.map(|p| p.as_u64());
                "spawned"
            }
            EventKind::Started => "started",
            EventKind::Progress { percent, message } => {
                json.percent = Some(*percent);
                json.message.clone_from(message);
                "progress"
            }
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Finished { state, error } => {
                json.state = Some(state.as_str());
                json.error.clone_from(error);
                "finished"
            }
            EventKind::Warning(w) => {
                json.warning = Some(match w {
                    Warning::LongRunning { threshold } => {
                        format!("long_running: alive longer than {threshold:?}")
                    }
                    Warning::LongPoll { threshold } => {
                        format!("long_poll: inside one poll longer than {threshold:?}")
                    }
                    Warning::Idle { threshold } => {
                        format!("idle: not polled for longer than {threshold:?}")
                    }
                    Warning::LostWaker => {
                        "lost_waker: nothing holds its waker; it will never be polled again"
                            .to_owned()
                    }
                });
                "warning"
            }
        };
        json
    }

    /// The SSE event name.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }
}

/// A duration in milliseconds, to the microsecond (cut): `0.102`, not the
/// `0.10291299999999999` a float product gives.
fn ms(duration: std::time::Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn milliseconds_are_written_to_the_microsecond() {
        let written = serde_json::to_string(&super::ms(Duration::from_nanos(102_913))).unwrap();
        assert_eq!(written, "0.102");
        let written = serde_json::to_string(&super::ms(Duration::from_millis(171))).unwrap();
        assert_eq!(written, "171.0");
    }
}

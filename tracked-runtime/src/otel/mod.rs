//! OpenTelemetry export (feature `otel`): the tracker's metrics pushed over
//! OTLP/HTTP with protobuf bodies, from a thread of its own.
//!
//! [`install`] starts a thread named `tracked-otel` that, every
//! [`interval`](OtelConfig::interval), reads the registry (as
//! [`crate::prometheus::render`] does: counters, then duration histograms)
//! and posts one `ExportMetricsServiceRequest` to the collector. Nothing runs
//! on the poll path, and a slow or absent collector delays only that thread.
//! Failed exports are logged through `tracing` (target
//! `tracked_runtime::otel`: the first failure in a row at `warn`, the rest at
//! `debug`, the recovery at `info`) and tried again at the next interval.
//!
//! | metric | OTLP type | unit | attributes |
//! | --- | --- | --- | --- |
//! | `tracked.tasks.spawned` | monotonic cumulative sum | `{task}` | `type` |
//! | `tracked.tasks.claimed` | monotonic cumulative sum | `{task}` | `type` |
//! | `tracked.tasks.finished` | monotonic cumulative sum | `{task}` | `type`, `state` (completed, failed, panicked, cancelled) |
//! | `tracked.tasks.live` | gauge | `{task}` | `type`, `state` (pending, running) |
//! | `tracked.task.duration` | cumulative histogram | `s` | `type` |
//! | `tracked.task.poll.duration` (with busy time) | cumulative histogram | `s` | `type` |
//! | `tracked.task.scheduled.duration` (with wakes) | cumulative histogram | `s` | `type` |
//! | `tracked.watchdog.warnings` | monotonic cumulative sum | `{task}` | `type`, `kind` (long_running, long_poll, idle, lost_waker) |
//! | `tracked.type.healthy` | gauge (1 or 0) | `1` | `type` |
//! | `tracked.journal.events.written` (with a journal) | monotonic cumulative sum | `{event}` | |
//! | `tracked.journal.events.dropped` (with a journal) | monotonic cumulative sum | `{event}` | |
//! | `tracked.journal.batches` (with a journal) | monotonic cumulative sum | `{batch}` | |
//! | `tracked.journal.events.pending` (with a journal) | gauge | `{event}` | |
//! | `tracked.journal.connected` (with a journal) | gauge (1 or 0) | `1` | |
//! | `tracked.journal.stopped` (with a journal) | gauge (1 or 0) | `1` | |
//!
//! A collector's Prometheus exporter turns these names into the ones
//! [`crate::prometheus`] serves (`tracked_tasks_spawned_total`,
//! `tracked_task_duration_seconds`, …). Sums start at the tracker's creation.
//!
//! # Why not the SDK's meter pipeline
//!
//! The registry already holds aggregated histograms, and the OpenTelemetry
//! SDK only builds histograms from single measurements: feeding it would
//! mean recording every task end (a cost on the task's path) or replaying
//! every finished task at each export. So the requests are built here from
//! the `opentelemetry-proto` message types, with the resource from
//! `opentelemetry_sdk` (which reads `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`), and sent with hyper's client, already in the
//! dependency tree for the `http` feature. Only plain `http://` endpoints are
//! supported (no TLS client is included): send to a local collector.
//!
//! # Spans
//!
//! Tasks already run in `tracing` spans (see
//! [`TrackerBuilder::spans`](crate::TrackerBuilder::spans)); to export them
//! as OpenTelemetry spans, add the `tracing-opentelemetry` layer to your
//! subscriber, next to your `fmt` layer:
//!
//! ```ignore
//! // tracing-opentelemetry 0.34, opentelemetry_sdk 0.33
//! use opentelemetry::trace::TracerProvider as _;
//! use tracing_subscriber::prelude::*;
//!
//! let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
//!     .with_batch_exporter(span_exporter) // opentelemetry-otlp's, say
//!     .build();
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("checkout")))
//!     .init();
//! ```
//!
//! Each task span (`task.id`, `task.name`, `task.type`, `task.parent`) then
//! becomes an OpenTelemetry span, a child of the span current where the task
//! was spawned (`tests/otel.rs` checks it with an in-memory exporter). That
//! costs a span per task, so this crate leaves it to you.
//!
//! # Examples
//!
//! ```no_run
//! # extern crate tracked_runtime as tracked;
//! use std::time::Duration;
//! use tracked::otel::{install, OtelConfig};
//! use tracked::Tracker;
//!
//! let config = OtelConfig::new("http://127.0.0.1:4318")
//!     .interval(Duration::from_secs(15))
//!     .service_name("checkout")
//!     .instance_id("checkout-7");
//! let exporter = install(Tracker::global(), config)?;
//! // … run the service …
//! exporter.shutdown()?; // one last export
//! # Ok::<(), tracked::otel::OtelError>(())
//! ```

mod encode;
mod send;

use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::Uri;

use crate::Tracker;

/// Where and how often [`install`] exports.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use std::time::Duration;
/// use tracked::otel::OtelConfig;
///
/// let config = OtelConfig::new("http://127.0.0.1:4318")
///     .interval(Duration::from_secs(10))
///     .service_name("game-server")
///     .attribute("deployment.environment.name", "staging");
/// # drop(config);
/// ```
#[derive(Clone, Debug)]
pub struct OtelConfig {
    endpoint: String,
    interval: Duration,
    timeout: Duration,
    service_name: Option<String>,
    attributes: Vec<(String, String)>,
    #[cfg(feature = "journal")]
    journal: Option<crate::journal::Journal>,
}

impl OtelConfig {
    /// Export to `endpoint`, the URL of an OTLP/HTTP metrics receiver
    /// (`http://host:4318/v1/metrics`); a URL without a path gets the
    /// standard `/v1/metrics`. Every 60 s, with a 10 s timeout per export.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtelConfig {
            endpoint: endpoint.into(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            service_name: None,
            attributes: Vec::new(),
            #[cfg(feature = "journal")]
            journal: None,
        }
    }

    /// The configuration the standard environment variables ask for, or
    /// `None` if neither `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as it
    /// is) nor `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL that `/v1/metrics`
    /// is appended to) is set and non-empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// use tracked::otel::OtelConfig;
    ///
    /// if let Some(config) = OtelConfig::from_env() {
    ///     println!("exporting to {}", config.endpoint());
    /// }
    /// ```
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
            return Some(OtelConfig::new(url.trim()));
        }
        let base = var("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        Some(OtelConfig::new(format!(
            "{}/v1/metrics",
            base.trim().trim_end_matches('/')
        )))
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Time between exports; more than zero. Default 60 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long one export may take before it fails; more than zero.
    /// Default 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The resource's `service.name`. Without it, `OTEL_SERVICE_NAME`, then
    /// a `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then
    /// `unknown_service:<executable>`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The resource's `service.instance.id`, telling this process from the
    /// others of the same service.
    pub fn instance_id(self, id: impl Into<String>) -> Self {
        self.attribute("service.instance.id", id)
    }

    /// Any other resource attribute; it overrides one of the same key from
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Also export `journal`'s health (`tracked.journal.*`): the events it
    /// wrote, dropped and holds, its batches, whether its last write
    /// succeeded and whether its writer stopped; the sums count from the
    /// journal's start.
    #[cfg(feature = "journal")]
    pub fn journal(mut self, journal: &crate::journal::Journal) -> Self {
        self.journal = Some(journal.clone());
        self
    }

    /// The request URI, checked.
    fn uri(&self) -> Result<Uri, OtelError> {
        // A password in the URL stays out of the error, as out of logs.
        let shown = match self.endpoint.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                match authority.rsplit_once('@') {
                    Some((_, host)) => format!("{scheme}://…@{host}{path}"),
                    None => self.endpoint.clone(),
                }
            }
            None => self.endpoint.clone(),
        };
        let invalid = |why: &str| OtelError::InvalidConfig(format!("endpoint `{shown}`: {why}"));
        let uri: Uri = self
            .endpoint
            .trim()
            .parse()
            .map_err(|e| invalid(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported (no TLS client is built in); use http:// to a local collector",
                ))
            }
            _ => return Err(invalid("expected an http:// URL")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(invalid(
                "a user or password in the URL is not supported: it would not be sent (no \
                 authentication is built in) and would show in logs; export to a local collector",
            ));
        }
        // `Uri` accepts any digits as a port; the connection would not.
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        if let Some((_, port)) = authority.rsplit_once(':') {
            if !port.contains(']') && port.parse::<u16>().is_err() {
                return Err(invalid("the port is not a number from 0 to 65535"));
            }
        }
        if matches!(uri.path(), "" | "/") && uri.query().is_none() {
            return format!("http://{authority}/v1/metrics")
                .parse()
                .map_err(|e| invalid(&format!("{e}")));
        }
        Ok(uri)
    }

    fn check(&self) -> Result<Uri, OtelError> {
        if self.interval.is_zero() {
            return Err(OtelError::InvalidConfig(
                "interval must be more than zero".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(OtelError::InvalidConfig(
                "timeout must be more than zero".into(),
            ));
        }
        self.uri()
    }
}

/// Why an export or [`install`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OtelError {
    /// The configuration cannot work: a malformed or non-`http` endpoint, a
    /// zero interval or timeout.
    InvalidConfig(String),
    /// The exporter's thread could not be started.
    Thread(std::io::Error),
    /// An export failed: no connection, a timeout, or a status other than
    /// 2xx from the receiver. The next interval tries again.
    Export(String),
    /// The exporter was shut down.
    Stopped,
}

impl fmt::Display for OtelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtelError::InvalidConfig(why) => {
                write!(f, "invalid OTLP exporter configuration: {why}")
            }
            OtelError::Thread(e) => write!(f, "cannot start the OTLP exporter thread: {e}"),
            OtelError::Export(why) => write!(f, "OTLP export failed: {why}"),
            OtelError::Stopped => f.write_str("the OTLP exporter is shut down"),
        }
    }
}

impl std::error::Error for OtelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OtelError::Thread(e) => Some(e),
            _ => None,
        }
    }
}

/// Starts exporting `tracker`'s metrics as `config` says; see the
/// [module docs](self). Needs no tokio runtime: the exporter has its own
/// thread and a small runtime on it.
///
/// # Errors
///
/// [`OtelError::InvalidConfig`] for a bad endpoint, interval or timeout;
/// [`OtelError::Thread`] if the thread cannot be spawned. An unreachable
/// collector is not an error here: exports fail and are logged until it
/// answers.
pub fn install(tracker: &Tracker, config: OtelConfig) -> Result<OtelExporter, OtelError> {
    let uri = config.check()?;
    let request = encode::Request::new(tracker.clone(), &config);
    let sender = send::Sender::new(uri, config.timeout).map_err(OtelError::Thread)?;
    let (commands, inbox) = mpsc::channel();
    let interval = config.interval;
    let thread = std::thread::Builder::new()
        .name("tracked-otel".to_owned())
        .spawn(move || run(request, &sender, interval, &inbox))
        .map_err(OtelError::Thread)?;
    Ok(OtelExporter {
        commands,
        thread: Some(thread),
    })
}

/// The running exporter, from [`install`]. Dropping it stops the exporter
/// without a last export; [`shutdown`](Self::shutdown) exports first.
#[derive(Debug)]
pub struct OtelExporter {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

enum Command {
    Flush(mpsc::Sender<Result<(), OtelError>>),
    Stop(mpsc::Sender<Result<(), OtelError>>),
}

impl OtelExporter {
    /// Exports now, outside the schedule, and waits for the receiver's
    /// answer (at most the configured timeout). Blocks the calling thread.
    ///
    /// # Errors
    ///
    /// [`OtelError::Export`] if this export failed; [`OtelError::Stopped`]
    /// if the exporter's thread has ended.
    pub fn force_flush(&self) -> Result<(), OtelError> {
        self.ask(Command::Flush)
    }

    /// Exports one last time, stops the exporter and waits for its thread.
    ///
    /// Blocks the calling thread: an export under way is finished first, so
    /// a collector that does not answer holds it up to twice the
    /// [`timeout`](OtelConfig::timeout). From async code, call it through
    /// `tracked::block_in_place` or `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// As [`force_flush`](Self::force_flush): the last export's failure.
    pub fn shutdown(mut self) -> Result<(), OtelError> {
        let result = self.ask(Command::Stop);
        if let Some(thread) = self.thread.take() {
            // The thread returns right after answering; it does not panic.
            let _ = thread.join();
        }
        result
    }

    fn ask(
        &self,
        command: fn(mpsc::Sender<Result<(), OtelError>>) -> Command,
    ) -> Result<(), OtelError> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| OtelError::Stopped)?;
        answer.recv().map_err(|_| OtelError::Stopped)?
    }
}

/// The exporter thread: exports every `interval`, and when asked.
fn run(
    mut request: encode::Request,
    sender: &send::Sender,
    interval: Duration,
    inbox: &mpsc::Receiver<Command>,
) {
    let mut health = Health::default();
    let mut export = |request: &mut encode::Request| {
        let result = sender.send(request.encode());
        health.note(&result);
        result
    };
    let mut next = Instant::now() + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(wait) {
            Ok(Command::Flush(reply)) => {
                let _ = reply.send(export(&mut request));
            }
            Ok(Command::Stop(reply)) => {
                let _ = reply.send(export(&mut request));
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = export(&mut request);
                // After a long stall, start a fresh period rather than
                // exporting several times in a row.
                next = (next + interval).max(Instant::now());
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Logs the first failure in a row loudly and the recovery once, so a
/// collector that is down for an hour does not flood the log.
#[derive(Default)]
struct Health {
    failing: u64,
}

impl Health {
    fn note(&mut self, result: &Result<(), OtelError>) {
        match result {
            Ok(()) if self.failing > 0 => {
                tracing::info!(
                    target: "tracked_runtime::otel",
                    failed = self.failing,
                    "OTLP export works again"
                );
                self.failing = 0;
            }
            Ok(()) => {}
            Err(e) => {
                if self.failing == 0 {
                    tracing::warn!(target: "tracked_runtime::otel", "{e}; trying again at the next interval");
                } else {
                    tracing::debug!(target: "tracked_runtime::otel", failed = self.failing + 1, "{e}");
                }
                self.failing += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        let uri = |e: &str| OtelConfig::new(e).check().map(|u| u.to_string());
        assert_eq!(
            uri("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            uri("http://127.0.0.1:4318/").unwrap(),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            uri("http://h:1/otlp/v1/metrics").unwrap(),
            "http://h:1/otlp/v1/metrics"
        );
        for bad in [
            "",
            "127.0.0.1:4318",
            "https://h:4318",
            "ftp://h",
            "http://",
            "http://h:99999",
        ] {
            assert!(
                matches!(uri(bad), Err(OtelError::InvalidConfig(_))),
                "{bad}"
            );
        }
        // Credentials in the URL would not be sent: refused, and not shown.
        let Err(OtelError::InvalidConfig(why)) = uri("http://alice:s3cret@127.0.0.1:4318") else {
            panic!("a password in the URL is refused");
        };
        assert!(
            why.contains("not supported") && why.contains("127.0.0.1:4318"),
            "{why}"
        );
        assert!(!why.contains("s3cret") && !why.contains("alice"), "{why}");
        let Err(OtelError::InvalidConfig(why)) = uri("http://bob:p@ss@h:4318/v1/metrics") else {
            panic!("a password in the URL is refused");
        };
        assert!(why.contains("`http://…@h:4318/v1/metrics`"), "{why}");
        let zero = OtelConfig::new("http://h").interval(Duration::ZERO).check();
        assert!(matches!(zero, Err(OtelError::InvalidConfig(_))));
        let zero = OtelConfig::new("http://h").timeout(Duration::ZERO).check();
        assert!(matches!(zero, Err(OtelError::InvalidConfig(_))));
    }
}

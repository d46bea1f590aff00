//! OTLP export against a real OTLP/HTTP receiver started by the test: an
//! axum server on 127.0.0.1 that decodes each `ExportMetricsServiceRequest`
//! with `opentelemetry-proto`, answers as a collector does, and keeps what
//! it received for the assertions.

#![cfg(feature = "otel")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint,
};
use prost::Message;
use tracked::otel::{install, OtelConfig, OtelError, OtelExporter};
use tracked::{Query, TaskState, TaskType, Tracker};

type Received = Arc<Mutex<Vec<ExportMetricsServiceRequest>>>;

/// The receiver: `POST /v1/metrics` with a protobuf body, as the OTLP/HTTP
/// specification has it.
struct Receiver {
    addr: SocketAddr,
    received: Received,
    server: tracked::JoinHandle<()>,
}

impl Receiver {
    async fn start(listener: tokio::net::TcpListener) -> Receiver {
        let received = Received::default();
        let app = Router::new()
            .route("/v1/metrics", post(accept))
            .with_state(received.clone());
        let addr = listener.local_addr().unwrap();
        // On the global tracker: the trackers under test see only their tasks.
        let server = tracked::spawn("otlp-receiver", TaskType::NETWORK, async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            received,
            server,
        }
    }

    async fn bind() -> Receiver {
        Receiver::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let protobuf = [(header::CONTENT_TYPE, "application/x-protobuf")];
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) != Some(b"application/x-protobuf") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, protobuf, Vec::new());
    }
    match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            let answer = ExportMetricsServiceResponse::default().encode_to_vec();
            (StatusCode::OK, protobuf, answer)
        }
        Err(_) => (StatusCode::BAD_REQUEST, protobuf, Vec::new()),
    }
}

/// Exports now; `force_flush` blocks, so the test's worker steps aside for
/// the receiver meanwhile.
fn flush(exporter: &OtelExporter) -> Result<(), OtelError> {
    // tracked: allow(untracked-block-in-place) -- the test's own body, not a tracked task
    tokio::task::block_in_place(|| exporter.force_flush())
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("{}: not a string: {other:?}", kv.key),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn metrics(request: &ExportMetricsServiceRequest) -> BTreeMap<String, Metric> {
    assert_eq!(request.resource_metrics.len(), 1);
    let scopes = &request.resource_metrics[0].scope_metrics;
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].scope.as_ref().unwrap().name, "tracked");
    scopes[0]
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.clone()))
        .collect()
}

/// Number points as `attributes -> value`, after checking the metric's kind.
fn numbers(metric: &Metric, monotonic_sum: bool) -> BTreeMap<Vec<(String, String)>, i64> {
    let points: &[NumberDataPoint] = match (&metric.data, monotonic_sum) {
        (Some(metric::Data::Sum(sum)), true) => {
            assert!(sum.is_monotonic, "{}", metric.name);
            assert_eq!(
                sum.aggregation_temporality,
                AggregationTemporality::Cumulative as i32
            );
            &sum.data_points
        }
        (Some(metric::Data::Gauge(gauge)), false) => &gauge.data_points,
        (other, _) => panic!("{}: unexpected data {other:?}", metric.name),
    };
    points
        .iter()
        .map(|p| {
            assert!(p.time_unix_nano > 0);
            if monotonic_sum {
                assert!(0 < p.start_time_unix_nano && p.start_time_unix_nano <= p.time_unix_nano);
            }
            let value = match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                other => panic!("{}: not an integer: {other:?}", metric.name),
            };
            (attributes(&p.attributes).into_iter().collect(), value)
        })
        .collect()
}

fn histograms(metric: &Metric) -> BTreeMap<String, HistogramDataPoint> {
    let Some(metric::Data::Histogram(histogram)) = &metric.data else {
        panic!("{}: not a histogram", metric.name);
    };
    assert_eq!(metric.unit, "s");
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    histogram
        .data_points
        .iter()
        .map(|p| {
            let attributes = attributes(&p.attributes);
            assert_eq!(attributes.len(), 1, "only `type`: {attributes:?}");
            assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
            assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
            (attributes["type"].clone(), p.clone())
        })
        .collect()
}

/// Attributes as `numbers` keys them: sorted by key.
fn key(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut key: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    key.sort();
    key
}

/// Waits (bounded) until `check` holds for `tracker`'s stats.
async fn until(tracker: &Tracker, check: impl Fn(&tracked::Stats) -> bool) {
    for _ in 0..1000 {
        if check(&tracker.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never reached: {}", tracker.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_gets_counters_gauges_and_histograms_by_type_and_state() {
    let receiver = Receiver::bind().await;
    let tracker = Tracker::builder().busy_time(true).build();
    let db = TaskType::DATABASE;
    for _ in 0..3 {
        tracker.spawn("db::read", db, async {}).await.unwrap();
    }
    for _ in 0..2 {
        let failing = tracker.spawn("db::write", db, async { Err::<(), _>("locked") });
        assert!(failing.await.unwrap().is_err());
    }
    let panicking = tracker.spawn("db::oops", db, async {
        panic!("boom");
        #[allow(unreachable_code, reason = "gives the future its output type")]
        ()
    });
    assert!(panicking.await.unwrap_err().is_panic());
    // Polled once, then aborted: cancelled after exactly one poll.
    let stuck = tracker.spawn("db::stuck", db, std::future::pending::<()>());
    let waiting = tracker.spawn(
        "game::wait",
        TaskType::GAME_LOGIC,
        std::future::pending::<()>(),
    );
    until(&tracker, |s| s.total.running == 2).await;
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    until(&tracker, |s| s.by_type[&db].live() == 0).await;

    let exporter = install(
        &tracker,
        OtelConfig::new(format!("http://{}", receiver.addr))
            .interval(Duration::from_secs(3600))
            .service_name("otel-test")
            .instance_id("test-1")
            .attribute("deployment.environment.name", "ci"),
    )
    .unwrap();
    flush(&exporter).unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "one export: the flush, none on schedule");
    let resource = attributes(
        &requests[0].resource_metrics[0]
            .resource
            .as_ref()
            .unwrap()
            .attributes,
    );
    assert_eq!(resource["service.name"], "otel-test");
    assert_eq!(resource["service.instance.id"], "test-1");
    assert_eq!(resource["deployment.environment.name"], "ci");

    let first = metrics(&requests[0]);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        [
            "tracked.task.duration",
            "tracked.task.poll.duration",
            "tracked.tasks.claimed",
            "tracked.tasks.finished",
            "tracked.tasks.live",
            "tracked.tasks.spawned",
            "tracked.type.healthy",
            "tracked.watchdog.warnings",
        ]
    );
    // Health needs no watchdog scan; a type with no endings has none.
    assert_eq!(
        numbers(&first["tracked.type.healthy"], false),
        BTreeMap::from([(key(&[("type", "Database")]), 0)])
    );
    assert_eq!(
        numbers(&first["tracked.tasks.spawned"], true),
        BTreeMap::from([
            (key(&[("type", "Database")]), 7),
            (key(&[("type", "GameLogic")]), 1),
        ])
    );
    let finished = numbers(&first["tracked.tasks.finished"], true);
    let mut expected = BTreeMap::new();
    for (ty, counts) in [("Database", [3, 2, 1, 1]), ("GameLogic", [0, 0, 0, 0])] {
        for (state, value) in ["completed", "failed", "panicked", "cancelled"]
            .into_iter()
            .zip(counts)
        {
            expected.insert(key(&[("type", ty), ("state", state)]), value);
        }
    }
    assert_eq!(finished, expected);
    assert_eq!(
        numbers(&first["tracked.tasks.live"], false),
        BTreeMap::from([
            (key(&[("type", "Database"), ("state", "pending")]), 0),
            (key(&[("type", "Database"), ("state", "running")]), 0),
            (key(&[("type", "GameLogic"), ("state", "pending")]), 0),
            (key(&[("type", "GameLogic"), ("state", "running")]), 1),
        ])
    );

    // Watchdog warnings: every type and kind, zeros included (no scan ran).
    let warnings = numbers(&first["tracked.watchdog.warnings"], true);
    assert_eq!(warnings.len(), 2 * 4);
    assert!(warnings.values().all(|&n| n == 0), "{warnings:?}");

    // Task durations: the finished tasks, in the Prometheus buckets; a
    // type with none finished has an empty histogram.
    let durations = histograms(&first["tracked.task.duration"]);
    assert_eq!(
        durations.keys().collect::<Vec<_>>(),
        ["Database", "GameLogic"]
    );
    assert_eq!(durations["GameLogic"].count, 0);
    let db_durations = &durations["Database"];
    assert_eq!(db_durations.count, 7);
    assert_eq!(
        db_durations.explicit_bounds,
        [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0]
    );
    let tracked_durations = tracker.durations()[&db];
    assert_eq!(db_durations.bucket_counts, tracked_durations.buckets());
    assert_eq!(
        db_durations.sum,
        Some(tracked_durations.sum().as_secs_f64())
    );

    // Poll durations: one poll per Database task, the waiting task's one.
    let polls = histograms(&first["tracked.task.poll.duration"]);
    assert_eq!(polls["Database"].count, 7);
    assert_eq!(polls["GameLogic"].count, 1);
    assert_eq!(polls["Database"].explicit_bounds[0], 0.00001);
    assert_eq!(polls["Database"].explicit_bounds[11], 1.0);

    // Cumulative: a later export counts everything since the tracker began.
    tracker.spawn("db::read", db, async {}).await.unwrap();
    tracker.watchdog_scan();
    flush(&exporter).unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let later = metrics(&requests[1]);
    let healthy = numbers(&later["tracked.type.healthy"], false);
    let health = tracker.health();
    assert_eq!(
        healthy[&key(&[("type", "Database")])],
        i64::from(health.by_type[&db].healthy)
    );
    let spawned = numbers(&later["tracked.tasks.spawned"], true);
    assert_eq!(spawned[&key(&[("type", "Database")])], 8);
    let finished = numbers(&later["tracked.tasks.finished"], true);
    assert_eq!(
        finished[&key(&[("type", "Database"), ("state", "completed")])],
        4
    );

    // Shutting down exports once more, then the exporter is gone.
    waiting.abort();
    until(&tracker, |s| s.total.live() == 0).await;
    // tracked: allow(untracked-block-in-place) -- the test's own body, not a tracked task
    tokio::task::block_in_place(|| exporter.shutdown()).unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let last = metrics(&requests[2]);
    assert_eq!(
        numbers(&last["tracked.tasks.finished"], true)[&key(&[
            ("type", "GameLogic"),
            ("state", TaskState::Cancelled.as_str())
        ])],
        1
    );
}

/// With wakes followed, each delay from a wake to the poll it led to is
/// exported per type, in the poll-duration buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_delays_are_exported_when_wakes_are_followed() {
    let receiver = Receiver::bind().await;
    let tracker = Tracker::builder().wakes(true).build();
    let (reply, replied) = tokio::sync::oneshot::channel::<()>();
    let waiter = tracker.spawn("game::wait", TaskType::GAME_LOGIC, async move {
        replied.await.ok();
    });
    // Woken once: only after it waits with its waker in the channel.
    for _ in 0..1000 {
        let waiting = tracker
            .tasks(&Query::new())
            .first()
            .and_then(|t| t.wakes.clone());
        if waiting.is_some_and(|w| w.wakers == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reply.send(()).unwrap();
    waiter.await.unwrap();

    let exporter = install(
        &tracker,
        OtelConfig::new(format!("http://{}", receiver.addr)).interval(Duration::from_secs(3600)),
    )
    .unwrap();
    flush(&exporter).unwrap();
    let first = metrics(&receiver.requests()[0]);
    let delays = histograms(&first["tracked.task.scheduled.duration"]);
    assert_eq!(delays["GameLogic"].count, 1);
    assert_eq!(delays["GameLogic"].explicit_bounds[0], 0.00001);
    let expected = tracker.scheduling_delays()[&TaskType::GAME_LOGIC].sum();
    let sum = delays["GameLogic"].sum.unwrap();
    assert!(
        (sum - expected.as_secs_f64()).abs() < 1e-9,
        "{sum} vs {expected:?}"
    );
    // Wakes time polls too.
    assert_eq!(
        histograms(&first["tracked.task.poll.duration"])["GameLogic"].count,
        2
    );
    // tracked: allow(untracked-block-in-place) -- the test's own body, not a tracked task
    tokio::task::block_in_place(|| exporter.shutdown()).unwrap();
}

/// Events of target `tracked_runtime::otel`, kept by a subscriber installed
/// once for this test binary (the exporter logs from its own thread).
fn otel_events() -> &'static Mutex<Vec<(tracing::Level, String)>> {
    use tracing_subscriber::layer::{Context, SubscriberExt};

    struct Keep(&'static Mutex<Vec<(tracing::Level, String)>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Keep {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Text(String);
            impl tracing::field::Visit for Text {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    self.0.push_str(&format!(" {}={value:?}", field.name()));
                }
            }
            if event.metadata().target() == "tracked_runtime::otel" {
                let mut text = Text(String::new());
                event.record(&mut text);
                let level = *event.metadata().level();
                self.0.lock().unwrap().push((level, text.0));
            }
        }
    }

    static EVENTS: OnceLock<&'static Mutex<Vec<(tracing::Level, String)>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let events = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry().with(Keep(events));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        events
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_fail_while_the_receiver_is_down_and_resume_when_it_is_up() {
    let events = otel_events();
    // A port nobody listens on, until the receiver binds it below.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tracker = Tracker::new();
    tracker
        .spawn("tick", TaskType::MAINTENANCE, async {})
        .await
        .unwrap();
    let exporter = install(
        &tracker,
        OtelConfig::new(format!("http://{addr}"))
            .interval(Duration::from_millis(50))
            .timeout(Duration::from_secs(5)),
    )
    .unwrap();

    for _ in 0..2 {
        match flush(&exporter) {
            Err(OtelError::Export(why)) => assert!(why.contains(&addr.to_string()), "{why}"),
            other => panic!("expected an export error, got {other:?}"),
        }
    }
    let warnings = || {
        let port = addr.port().to_string();
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, text)| *level == tracing::Level::WARN && text.contains(&port))
            .count()
    };
    // However many scheduled exports failed too, one warning.
    assert_eq!(warnings(), 1);

    let receiver = Receiver::start(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    flush(&exporter).unwrap();
    assert!(!receiver.requests().is_empty());
    assert_eq!(warnings(), 1);
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|(l, text)| *l == tracing::Level::INFO && text.contains("works again")));
    // The schedule goes on by itself, without flushes.
    let flushed = receiver.requests().len();
    for _ in 0..1000 {
        if receiver.requests().len() > flushed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(receiver.requests().len() > flushed, "no scheduled export");
    let scheduled = metrics(receiver.requests().last().unwrap());
    assert_eq!(
        numbers(&scheduled["tracked.tasks.spawned"], true),
        BTreeMap::from([(key(&[("type", "Maintenance")]), 1)])
    );
    // No poll histogram without busy time.
    assert!(!scheduled.contains_key("tracked.task.poll.duration"));
    // tracked: allow(untracked-block-in-place) -- the test's own body, not a tracked task
    tokio::task::block_in_place(|| exporter.shutdown()).unwrap();
}

/// With a journal, its health is exported too, as its stats say: sums
/// from its start, gauges of its state.
#[cfg(feature = "journal")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_s_health_is_exported_with_a_journal() {
    let receiver = Receiver::bind().await;
    let tracker = Tracker::new();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("otel-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = tracked::journal::Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    tracker
        .spawn("db::read", TaskType::DATABASE, async {})
        .await
        .unwrap();
    journal.flush().await.unwrap();
    let exporter = install(
        &tracker,
        OtelConfig::new(format!("http://{}", receiver.addr))
            .interval(Duration::from_secs(3600))
            .journal(&journal),
    )
    .unwrap();
    let stats = journal.stats();
    flush(&exporter).unwrap();
    let exported = metrics(receiver.requests().last().unwrap());
    let value = |name: &str, sum: bool| numbers(&exported[name], sum)[&Vec::new()];
    assert!(stats.written > 0, "{stats:?}");
    assert_eq!(
        journal.stats().written,
        stats.written,
        "nothing written since"
    );
    assert_eq!(
        [
            value("tracked.journal.events.written", true),
            value("tracked.journal.events.dropped", true),
            value("tracked.journal.batches", true),
            value("tracked.journal.events.pending", false),
            value("tracked.journal.connected", false),
            value("tracked.journal.stopped", false),
        ],
        [
            stats.written as i64,
            stats.dropped as i64,
            stats.batches as i64,
            stats.pending as i64,
            1,
            0
        ]
    );
    let Some(metric::Data::Sum(written)) = &exported["tracked.journal.events.written"].data else {
        unreachable!("checked by `numbers`");
    };
    let since = journal
        .started_at()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(
        written.data_points[0].start_time_unix_nano,
        since.as_nanos() as u64
    );
    // tracked: allow(untracked-block-in-place) -- the test's own body, not a tracked task
    tokio::task::block_in_place(|| exporter.shutdown()).unwrap();
    journal.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_configuration_is_an_error() {
    let tracker = Tracker::new();
    for config in [
        OtelConfig::new("not a url"),
        OtelConfig::new("https://127.0.0.1:4318"),
        OtelConfig::new("http://127.0.0.1:4318").interval(Duration::ZERO),
    ] {
        match install(&tracker, config) {
            Err(OtelError::InvalidConfig(why)) => assert!(!why.is_empty()),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}

/// Task spans exported as OpenTelemetry spans through the
/// `tracing-opentelemetry` layer, as the `otel` module's docs show: one per
/// task, with its identity, a child of the span current at its spawn (a
/// request's, or its parent task's).
#[test]
fn task_spans_become_opentelemetry_spans_under_the_spawning_span() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::Value;
    use tracing_subscriber::layer::SubscriberExt;

    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("checkout")));
    let _default = tracing::subscriber::set_default(subscriber);
    let tracker = Tracker::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let request = tracing::info_span!("request");
    let charge = request.in_scope(|| {
        let inner = tracker.clone();
        tracker.spawn("checkout::charge", TaskType::NETWORK, async move {
            let receipt = inner.spawn("checkout::receipt", TaskType::DATABASE, async {});
            receipt.await.unwrap();
            tracked::task_id().unwrap().as_u64()
        })
    });
    let charge_id = runtime.block_on(charge).unwrap();
    drop(request);

    let spans = exporter.get_finished_spans().unwrap();
    let attribute = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| attribute(span, "task.name") == Some(Value::from(name.to_string())))
            .unwrap_or_else(|| panic!("no span of task {name}: {spans:#?}"))
    };
    let request = spans.iter().find(|span| span.name == "request").unwrap();
    let charge = named("checkout::charge");
    let receipt = named("checkout::receipt");
    assert_eq!(charge.name, "task");
    assert_eq!(charge.parent_span_id, request.span_context.span_id());
    assert_eq!(receipt.parent_span_id, charge.span_context.span_id());
    assert_eq!(
        charge.span_context.trace_id(),
        receipt.span_context.trace_id()
    );
    assert_eq!(
        attribute(charge, "task.type"),
        Some(Value::from("Network".to_string()))
    );
    assert_eq!(
        attribute(receipt, "task.parent"),
        Some(Value::from(charge_id.to_string()))
    );
}

//! Builds the OTLP request from the registry: the same counters, gauges and
//! histograms as the Prometheus exposition, as cumulative OTLP metrics.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::OtelConfig;
use crate::{DurationHistogram, PollHistogram, TaskState, TaskType, Tracker};

/// What stays the same from one export to the next.
pub(super) struct Request {
    tracker: Tracker,
    resource: Resource,
    /// When the tracker started counting, for the cumulative sums.
    start_ns: u64,
    /// A journal whose health is exported too, and when it started.
    #[cfg(feature = "journal")]
    journal: Option<(crate::journal::Journal, u64)>,
}

impl Request {
    pub(super) fn new(tracker: Tracker, config: &OtelConfig) -> Self {
        let start_ns = unix_nanos(tracker.inner.clock.epoch_wall());
        Request {
            resource: resource(config),
            tracker,
            start_ns,
            #[cfg(feature = "journal")]
            journal: config
                .journal
                .as_ref()
                .map(|journal| (journal.clone(), unix_nanos(journal.started_at()))),
        }
    }

    /// The request body, read from the registry now.
    pub(super) fn encode(&mut self) -> Vec<u8> {
        self.build(SystemTime::now()).encode_to_vec()
    }

    pub(super) fn build(&self, now: SystemTime) -> ExportMetricsServiceRequest {
        let now = unix_nanos(now);
        let tracker = &self.tracker;
        let stats = tracker.stats();
        let point = |attributes, value, start| int_point(attributes, value, start, now);

        let mut spawned = Vec::new();
        let mut claimed = Vec::new();
        let mut finished = Vec::new();
        let mut live = Vec::new();
        let mut warned = Vec::new();
        let warnings = tracker.warnings();
        for (ty, counts) in &stats.by_type {
            let warning_counts = warnings.get(ty).copied().unwrap_or_default();
            for (kind, value) in warning_counts.by_kind() {
                let attributes = vec![text("type", ty.name()), text("kind", kind)];
                warned.push(point(attributes, value, self.start_ns));
            }
            // A claimed task counts in both types: each sum only grows.
            spawned.push(point(
                vec![text("type", ty.name())],
                counts.spawned + counts.claimed,
                self.start_ns,
            ));
            claimed.push(point(
                vec![text("type", ty.name())],
                counts.claimed,
                self.start_ns,
            ));
            for (state, value) in [
                (TaskState::Completed, counts.completed),
                (TaskState::Failed, counts.failed),
                (TaskState::Panicked, counts.panicked),
                (TaskState::Cancelled, counts.cancelled),
            ] {
                let attributes = vec![text("type", ty.name()), text("state", state.as_str())];
                finished.push(point(attributes, value, self.start_ns));
            }
            for (state, value) in [
                (TaskState::Pending, counts.pending),
                (TaskState::Running, counts.running),
            ] {
                let attributes = vec![text("type", ty.name()), text("state", state.as_str())];
                live.push(point(attributes, value, 0));
            }
        }
        let monotonic = |data_points| {
            metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        };
        let mut metrics = vec![
            Metric {
                name: "tracked.tasks.spawned".into(),
                description: "Tasks spawned, per type.".into(),
                unit: "{task}".into(),
                data: Some(monotonic(spawned)),
                ..Default::default()
            },
            Metric {
                name: "tracked.tasks.claimed".into(),
                description:
                    "Tasks spawned as this type that a #[tracked] fn of another type took over."
                        .into(),
                unit: "{task}".into(),
                data: Some(monotonic(claimed)),
                ..Default::default()
            },
            Metric {
                name: "tracked.tasks.finished".into(),
                description: "Tasks that ended, per type and final state.".into(),
                unit: "{task}".into(),
                data: Some(monotonic(finished)),
                ..Default::default()
            },
            Metric {
                name: "tracked.tasks.live".into(),
                description: "Live tasks, per type and state.".into(),
                unit: "{task}".into(),
                data: Some(metric::Data::Gauge(Gauge { data_points: live })),
                ..Default::default()
            },
            Metric {
                name: "tracked.watchdog.warnings".into(),
                description: "Tasks the watchdog warned about, per type and threshold crossed."
                    .into(),
                unit: "{task}".into(),
                data: Some(monotonic(warned)),
                ..Default::default()
            },
        ];
        let healthy: Vec<_> = tracker
            .health()
            .by_type
            .iter()
            .map(|(ty, h)| point(vec![text("type", ty.name())], u64::from(h.healthy), 0))
            .collect();
        // A type has health once it has ended a task: with none ended, the
        // gauge is left out rather than sent with no point.
        if !healthy.is_empty() {
            metrics.push(Metric {
                name: "tracked.type.healthy".into(),
                description: "1 when the type's failed and panicked endings in the watchdog's window are within its limit, else 0.".into(),
                unit: "1".into(),
                data: Some(metric::Data::Gauge(Gauge { data_points: healthy })),
                ..Default::default()
            });
        }

        #[cfg(feature = "journal")]
        if let Some((journal, start)) = &self.journal {
            metrics.extend(journal_metrics(&journal.stats(), *start, now));
        }

        let durations = tracker
            .durations()
            .into_iter()
            .map(|(ty, h)| {
                let shape = Shape {
                    bounds: &DurationHistogram::BOUNDS,
                    buckets: h.buckets(),
                    sum: h.sum(),
                };
                shape.point(ty.name(), self.start_ns, now)
            })
            .collect();
        metrics.push(histogram(
            "tracked.task.duration",
            "Time from spawn to end of finished tasks, per type.",
            durations,
        ));
        let per_poll = |histograms: BTreeMap<TaskType, PollHistogram>| {
            histograms
                .into_iter()
                .map(|(ty, h)| {
                    let shape = Shape {
                        bounds: &PollHistogram::BOUNDS,
                        buckets: h.buckets(),
                        sum: h.sum(),
                    };
                    shape.point(ty.name(), self.start_ns, now)
                })
                .collect()
        };
        if tracker.measures_busy_time() {
            metrics.push(histogram(
                "tracked.task.poll.duration",
                "Time spent in single polls of tasks, per type.",
                per_poll(tracker.poll_durations()),
            ));
        }
        if tracker.follows_wakes() {
            metrics.push(histogram(
                "tracked.task.scheduled.duration",
                "Time tasks waited for a worker once woken, per type.",
                per_poll(tracker.scheduling_delays()),
            ));
        }

        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "tracked".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

/// An integer point of a sum counting since `start` (a gauge's: 0).
fn int_point(attributes: Vec<KeyValue>, value: u64, start: u64, now: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(value).unwrap_or(i64::MAX),
        )),
        ..Default::default()
    }
}

/// A journal's health (see `journal::health`); its sums count from
/// `start`, when it started.
#[cfg(feature = "journal")]
fn journal_metrics(stats: &crate::journal::JournalStats, start: u64, now: u64) -> Vec<Metric> {
    let metric = |metric: crate::journal::HealthMetric| {
        let data = match metric.counter {
            true => metric::Data::Sum(Sum {
                data_points: vec![int_point(Vec::new(), metric.value, start, now)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
            false => metric::Data::Gauge(Gauge {
                data_points: vec![int_point(Vec::new(), metric.value, 0, now)],
            }),
        };
        Metric {
            name: metric.name.into(),
            description: metric.help.into(),
            unit: metric.unit.into(),
            data: Some(data),
            ..Default::default()
        }
    };
    crate::journal::health(stats)
        .into_iter()
        .map(metric)
        .collect()
}

/// One type's histogram, in seconds.
struct Shape<'a> {
    bounds: &'a [Duration],
    buckets: [u64; 13],
    sum: Duration,
}

impl Shape<'_> {
    fn point(&self, ty: &str, start: u64, now: u64) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: vec![text("type", ty)],
            start_time_unix_nano: start,
            time_unix_nano: now,
            count: self.buckets.iter().sum(),
            sum: Some(self.sum.as_secs_f64()),
            bucket_counts: self.buckets.to_vec(),
            explicit_bounds: self.bounds.iter().map(Duration::as_secs_f64).collect(),
            ..Default::default()
        }
    }
}

fn histogram(name: &str, description: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The resource: `OTEL_RESOURCE_ATTRIBUTES`, then `service.name` from
/// `OTEL_SERVICE_NAME` over it (the specification's precedence; the SDK's
/// own builder detects them the other way round), then the configured name
/// and attributes over both.
fn resource(config: &OtelConfig) -> Resource {
    use opentelemetry_sdk::resource::{EnvResourceDetector, SdkProvidedResourceDetector};

    let mut builder = opentelemetry_sdk::Resource::builder_empty().with_detectors(&[
        Box::new(EnvResourceDetector::new()),
        Box::new(SdkProvidedResourceDetector),
    ]);
    if let Some(name) = &config.service_name {
        builder = builder.with_service_name(name.clone());
    }
    let attributes = config
        .attributes
        .iter()
        .map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone()));
    let sdk = builder.with_attributes(attributes).build();
    let mut attributes: Vec<KeyValue> = sdk
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.to_string(),
            value: Some(value.clone().into()),
            ..Default::default()
        })
        .collect();
    // The SDK keeps them in a hash map; sorted, every export is the same.
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    Resource {
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{resource, OtelConfig};

    /// Set in the child process that reads the resource from its
    /// environment: the variables are process-wide, so not set here.
    const CHILD: &str = "TRACKED_OTEL_RESOURCE_CHILD";

    /// `OTEL_SERVICE_NAME` names the service over a `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, whose other attributes are kept; the
    /// configured name is over both.
    #[test]
    fn the_service_name_variable_wins_over_the_resource_attributes() {
        if cfg!(miri) {
            return; // Runs a process.
        }
        let test =
            "otel::encode::tests::the_service_name_variable_wins_over_the_resource_attributes";
        if std::env::var_os(CHILD).is_some() {
            let attributes = |config: &OtelConfig| -> Vec<(String, String)> {
                resource(config)
                    .attributes
                    .into_iter()
                    .filter(|kv| kv.key == "service.name" || kv.key == "region")
                    .map(|kv| (kv.key, format!("{:?}", kv.value.unwrap().value.unwrap())))
                    .collect()
            };
            let text = |s: &str| format!("StringValue({s:?})");
            let from_env = attributes(&OtelConfig::new("http://127.0.0.1:4318"));
            assert_eq!(
                from_env,
                [
                    ("region".into(), text("eu")),
                    ("service.name".into(), text("envsvc"))
                ]
            );
            let configured = OtelConfig::new("http://127.0.0.1:4318").service_name("mine");
            assert_eq!(
                attributes(&configured)[1],
                ("service.name".into(), text("mine"))
            );
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("OTEL_SERVICE_NAME", "envsvc")
            .env("OTEL_RESOURCE_ATTRIBUTES", "service.name=rattr,region=eu")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(out.contains("1 passed"), "the child ran the test: {out}");
    }
}

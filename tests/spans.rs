//! Tracked tasks run inside `tracing` spans: every event a task logs (async,
//! nested, on the blocking pool, and its failure) is inside a `task` span with
//! the task's id, name, type and parent; a tracker with spans off creates none.
//!
//! The capturing subscriber is the process-wide default, because blocking
//! closures run on pool threads that a thread-local `with_default` would not
//! reach; each test marks its own events and tasks, so tests can run together.

use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracked::{TaskType, Tracker};

mod common;
use common::assert_invariant;

/// A `task` span's fields, as recorded.
#[derive(Clone, Debug, Default, PartialEq)]
struct TaskFields {
    id: Option<u64>,
    name: Option<String>,
    ty: Option<String>,
    parent: Option<u64>,
}

impl Visit for TaskFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "task.id" => self.id = Some(value),
            "task.parent" => self.parent = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "task.name" => self.name = Some(format!("{value:?}")),
            "task.type" => self.ty = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

/// One captured event: its `test` marker, message, `task.id` field if it has
/// one, and the `task` spans it is inside, innermost first.
#[derive(Clone, Debug, Default)]
struct Captured {
    test: Option<String>,
    message: String,
    field_task_id: Option<u64>,
    spans: Vec<TaskFields>,
}

impl Visit for Captured {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.field_task_id = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "test" {
            self.test = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() == "task" {
            let mut fields = TaskFields::default();
            attrs.record(&mut fields);
            let span = ctx.span(id).expect("a new span is in the registry");
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a recorded span is in the registry");
        if let Some(fields) = span.extensions_mut().get_mut::<TaskFields>() {
            values.record(fields);
        };
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut captured = Captured::default();
        event.record(&mut captured);
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(fields) = span.extensions().get::<TaskFields>() {
                    captured.spans.push(fields.clone());
                };
            }
        }
        self.0.lock().unwrap().push(captured);
    }
}

fn events() -> &'static Arc<Mutex<Vec<Captured>>> {
    static EVENTS: OnceLock<Arc<Mutex<Vec<Captured>>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let events = Arc::new(Mutex::new(Vec::new()));
        tracing_subscriber::registry()
            .with(Capture(Arc::clone(&events)))
            .init();
        events
    })
}

/// The events logged with `test = marker`.
fn marked(marker: &str) -> Vec<Captured> {
    events()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.test.as_deref() == Some(marker))
        .cloned()
        .collect()
}

/// The events without a marker whose `task.id` field is `id` (the runtime's
/// own lifecycle events).
fn about(id: u64) -> Vec<Captured> {
    events()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.test.is_none() && e.field_task_id == Some(id))
        .cloned()
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn expect(id: u64, name: &str, ty: TaskType, parent: Option<u64>) -> TaskFields {
    TaskFields {
        id: Some(id),
        name: Some(name.to_owned()),
        ty: Some(ty.to_string()),
        parent,
    }
}

/// The single event with `message`, checked to be inside `spans` (innermost
/// first).
fn assert_in(events: &[Captured], message: &str, spans: &[TaskFields]) {
    let found: Vec<_> = events.iter().filter(|e| e.message == message).collect();
    assert_eq!(found.len(), 1, "one `{message}` event in {events:#?}");
    assert_eq!(found[0].spans, spans, "spans of `{message}`");
}

#[test]
fn events_of_async_nested_and_blocking_tasks_are_inside_their_task_spans() {
    events();
    let tracker = Tracker::new();
    let rt = runtime();
    let (outer, inner, blocking, failing) = rt.block_on(async {
        let handle = tracker.spawn("outer", TaskType::NETWORK, async {
            tracing::info!(test = "nested", "outer starts");
            let inner = tracked::spawn("inner", TaskType::DATABASE, async {
                tracing::info!(test = "nested", "inner runs");
                tokio::task::yield_now().await;
                tracing::info!(test = "nested", "inner resumes");
            });
            let inner_id = inner.id();
            inner.await.unwrap();
            let blocking = tracked::spawn_blocking("blocking", TaskType::GENERAL, || {
                tracing::info!(test = "nested", "blocking runs");
            });
            let blocking_id = blocking.id();
            blocking.await.unwrap();
            let failing = tracked::spawn("failing", TaskType::NETWORK, async {
                Err::<(), _>(std::io::Error::other("boom"))
            });
            let failing_id = failing.id();
            failing.await.unwrap().unwrap_err();
            tracing::info!(test = "nested", "outer ends");
            (inner_id, blocking_id, failing_id)
        });
        let outer = handle.id();
        let (inner, blocking, failing) = handle.await.unwrap();
        (outer, inner, blocking, failing)
    });
    let [outer, inner, blocking, failing] = [outer, inner, blocking, failing].map(|id| id.as_u64());

    let outer_span = expect(outer, "outer", TaskType::NETWORK, None);
    let inner_span = expect(inner, "inner", TaskType::DATABASE, Some(outer));
    let blocking_span = expect(blocking, "blocking", TaskType::GENERAL, Some(outer));
    let failing_span = expect(failing, "failing", TaskType::NETWORK, Some(outer));

    let events = marked("nested");
    assert_eq!(events.len(), 5, "{events:#?}");
    assert_in(&events, "outer starts", std::slice::from_ref(&outer_span));
    assert_in(&events, "outer ends", std::slice::from_ref(&outer_span));
    // Spawned inside `outer`, so their spans are children of its span.
    let nested = |span: &TaskFields| vec![span.clone(), outer_span.clone()];
    assert_in(&events, "inner runs", &nested(&inner_span));
    assert_in(&events, "inner resumes", &nested(&inner_span));
    assert_in(&events, "blocking runs", &nested(&blocking_span));

    // The runtime's own events: the spawn at debug level in the spawner's
    // context, the failure at warn inside the failing task's span.
    let spawned = about(inner);
    assert_in(
        &spawned,
        "tracked task spawned",
        std::slice::from_ref(&outer_span),
    );
    let failed = about(failing);
    assert_in(
        &failed,
        "tracked task spawned",
        std::slice::from_ref(&outer_span),
    );
    assert_in(&failed, "tracked task failed: boom", &nested(&failing_span));

    assert_invariant(&tracker);
    assert_eq!(tracker.stats().total.spawned, 4);
}

/// `true`, opaquely, so the panicking task still has `()` as its output.
fn always() -> bool {
    std::hint::black_box(true)
}

#[test]
fn a_panic_is_logged_inside_the_task_span() {
    events();
    let tracker = Tracker::new();
    let rt = runtime();
    let id = rt.block_on(async {
        let handle = tracker.spawn("panicky", TaskType::CONSENSUS, async {
            tracing::info!(test = "panic", "about to panic");
            if always() {
                panic!("on purpose");
            }
        });
        let id = handle.id();
        assert!(handle.await.unwrap_err().is_panic());
        id.as_u64()
    });
    let span = expect(id, "panicky", TaskType::CONSENSUS, None);
    assert_in(
        &marked("panic"),
        "about to panic",
        std::slice::from_ref(&span),
    );
    assert_in(
        &about(id),
        "tracked task panicked: on purpose",
        std::slice::from_ref(&span),
    );
    assert_invariant(&tracker);
}

#[test]
fn a_tracker_with_spans_off_runs_tasks_outside_any_span() {
    events();
    let tracker = Tracker::builder().spans(false).build();
    let rt = runtime();
    rt.block_on(async {
        let handle = tracker.spawn("quiet", TaskType::GENERAL, async {
            tracing::info!(test = "off", "async runs");
            let nested = tracked::spawn("quiet-child", TaskType::GENERAL, async {
                tracing::info!(test = "off", "child runs");
            });
            nested.await.unwrap();
        });
        handle.await.unwrap();
        let blocking = tracker.spawn_blocking("quiet-blocking", TaskType::GENERAL, || {
            tracing::info!(test = "off", "blocking runs");
        });
        blocking.await.unwrap();
    });
    let events = marked("off");
    assert_eq!(events.len(), 3, "{events:#?}");
    for event in &events {
        assert!(event.spans.is_empty(), "{event:#?}");
    }
    assert_invariant(&tracker);
    assert_eq!(tracker.stats().total.spawned, 3);
}

/// A watchdog warning is a root event about the task its fields name, not an
/// event inside the span of the heartbeat task whose scan found it.
#[test]
fn a_watchdog_warning_is_outside_the_heartbeats_span() {
    events();
    let watchdog = tracked::Watchdog::new().idle(None, std::time::Duration::from_millis(20));
    let tracker = Tracker::builder().watchdog(watchdog).build();
    let rt = runtime();
    let id = rt.block_on(async {
        let housekeeping = tracked::Heartbeat::new(std::time::Duration::from_millis(5))
            .housekeeping(&tracker)
            .spawn(&tracker);
        let waiting = tracker.spawn("waits", TaskType::NETWORK, std::future::pending::<()>());
        while !tracker.warnings().values().any(|c| c.idle > 0) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        housekeeping.stop();
        waiting.abort();
        waiting.id().as_u64()
    });
    let warning = "tracked task has not been polled for longer than its threshold: \
                   waiting for something that may never come";
    assert_in(&about(id), warning, &[]);
}

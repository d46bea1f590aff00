//! `/openapi.json` against what the server really answers: every field of
//! every answer is described there with its JSON type, every property it
//! describes for a task is returned, every status an endpoint gives is
//! listed for it, and every documented path is served.

#![cfg(feature = "http")]

#[path = "common/polite.rs"]
mod polite;
use polite::polite;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracked::http::{serve, Config, ServerHandle};
use tracked::{TaskType, Tracker, Watchdog};

/// Checks answers against the document and remembers which task
/// properties were seen.
struct Conformance {
    doc: Value,
    problems: Vec<String>,
    seen: BTreeSet<String>,
}

impl Conformance {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// `value` at `at` against `schema`, whose name (for the coverage of
    /// its properties) is `named`.
    fn check(&mut self, at: &str, value: &Value, schema: &Value, named: Option<&str>) {
        let named = schema["$ref"]
            .as_str()
            .map(|r| r.trim_start_matches("#/components/schemas/").to_owned())
            .or(named.map(str::to_owned));
        let schema = self.resolve(schema).clone();
        if schema.is_null() {
            self.problems.push(format!("{at}: no schema"));
            return;
        }
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let allowed: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = allowed.is_empty()
            || allowed.contains(&kind)
            || (kind == "integer" && allowed.contains(&"number"));
        if !fits {
            self.problems
                .push(format!("{at}: a {kind}, documented as {allowed:?}"));
            return;
        }
        if let Some(values) = schema["enum"].as_array() {
            if !values.contains(value) {
                self.problems
                    .push(format!("{at}: {value} is not one of {values:?}"));
            }
        }
        match value {
            Value::Object(fields) => {
                let properties = schema["properties"].as_object();
                let open = &schema["additionalProperties"];
                for (key, field) in fields {
                    let here = format!("{at}.{key}");
                    match properties.and_then(|p| p.get(key)) {
                        Some(property) => {
                            if let Some(name) = &named {
                                self.seen.insert(format!("{name}.{key}"));
                            }
                            self.check(&here, field, property, None);
                        }
                        None if open.is_object() => self.check(&here, field, open, None),
                        None if open == &Value::Bool(true) => {}
                        None => self.problems.push(format!("{here}: not documented")),
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, element) in items.iter().enumerate() {
                        self.check(&format!("{at}[{i}]"), element, item, None);
                    }
                }
            }
            _ => {}
        }
    }
}

struct Client {
    server: ServerHandle,
    client: reqwest::Client,
    conformance: Conformance,
}

impl Client {
    /// Calls `path` (`template` in the document) and checks the answer.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.server.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.expect("body");
        let operation = &self.conformance.doc["paths"][template][method.as_str().to_lowercase()];
        let at = format!("{method} {path} ({status})");
        if operation.is_null() {
            self.conformance
                .problems
                .push(format!("{at}: {method} {template} not documented"));
            return (status, Value::Null);
        }
        let answer = &operation["responses"][status.as_str()];
        if answer.is_null() {
            self.conformance
                .problems
                .push(format!("{at}: status not documented: {text}"));
            return (status, Value::Null);
        }
        if !kind.starts_with("application/json") {
            return (status, Value::String(text));
        }
        let body: Value = serde_json::from_str(&text).expect("JSON");
        let schema = answer["content"]["application/json"]["schema"].clone();
        self.conformance.check(&at, &body, &schema, None);
        (status, body)
    }

    async fn get(&mut self, template: &str, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, template, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

/// An annotated fn: its task says which fn it runs (`tracked_fn`).
#[tracked::tracked(type = "General", name = "svc::annotated")]
async fn annotated() {
    polite().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_described_by_openapi_json() {
    let tracker = Tracker::builder()
        .wakes(true)
        .watchdog(Watchdog::new().long_poll(None, Duration::from_millis(1)))
        .build();
    // A live tree with progress, labels, an owner and a claimed-looking
    // mix of kinds; finished tasks in every final state.
    let parent = tracker
        .task_builder("svc::parent", TaskType::NETWORK)
        .owner("tenant")
        .label("peer", "10.0.0.1")
        .spawn(async {
            tracked::progress(40, "halfway");
            tracked::spawn("svc::child", TaskType::NETWORK, polite());
            polite().await;
        });
    let parent_id = parent.id().as_u64();
    let _annotated = tracker.spawn("svc::annotated-task", TaskType::GENERAL, annotated());
    tracker
        .spawn("svc::ok", TaskType::DATABASE, async {})
        .await
        .unwrap();
    tracker
        .spawn("svc::bad", TaskType::DATABASE, async { Err::<(), _>("no") })
        .await
        .unwrap()
        .unwrap_err();
    let blocking = tracker.spawn("svc::blocker", TaskType::MAINTENANCE, async {
        std::thread::sleep(Duration::from_millis(30));
    });
    for _ in 0..3 {
        tracker.watchdog_scan();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    blocking.await.unwrap();
    tracker.watchdog_scan();
    for _ in 0..200 {
        if tracker.stats().total.live() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let server = serve(
        tracker.clone(),
        Config::new()
            .token("root")
            .owner_token("tenant-token", "tenant"),
    )
    .await
    .unwrap();
    let doc = reqwest::get(format!("{}/openapi.json", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let mut api = Client {
        server,
        client: reqwest::Client::new(),
        conformance: Conformance {
            doc,
            problems: Vec::new(),
            seen: BTreeSet::new(),
        },
    };

    api.get("/tasks", "/tasks").await;
    api.get("/tasks", "/tasks?state=completed").await;
    api.get("/tasks", "/tasks?state=failed&limit=1").await;
    api.get("/tasks", "/tasks?warned=true").await;
    api.get("/tasks", "/tasks?type=Database&state=failed").await;
    api.get("/tasks/{id}", &format!("/tasks/{parent_id}")).await;
    api.get("/tree", "/tree").await;
    api.get("/stats", "/stats").await;
    api.get("/catalogue", "/catalogue").await;
    api.get("/whoami", "/whoami").await;
    api.get("/openapi.json", "/openapi.json").await;
    api.get("/", "/").await;
    let (status, _) = api.call(Method::GET, "/metrics", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    for (who, token) in [("root", "root"), ("tenant", "tenant-token")] {
        let (status, me) = api
            .call(Method::GET, "/whoami", "/whoami", Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{who}: {me}");
    }

    // Errors: each status an endpoint gives is listed for it.
    let errors: &[(Method, &str, &str, Option<&str>)] = &[
        (Method::GET, "/tasks", "/tasks?limit=0", None),
        (Method::GET, "/tasks", "/tasks", Some("wrong")),
        (Method::GET, "/tasks/{id}", "/tasks/0", None),
        (Method::GET, "/tasks/{id}", "/tasks/999999", None),
        (Method::GET, "/tree", "/tree?x=1", None),
        (Method::GET, "/stats", "/stats", Some("tenant-token")),
        (
            Method::GET,
            "/catalogue",
            "/catalogue",
            Some("tenant-token"),
        ),
        (Method::GET, "/metrics", "/metrics", Some("tenant-token")),
        (Method::GET, "/events", "/events?x=1", None),
        (Method::GET, "/whoami", "/whoami?x=1", None),
        (Method::POST, "/tasks/{id}/cancel", "/tasks/1/cancel", None),
        (
            Method::POST,
            "/tasks/{id}/cancel",
            "/tasks/abc/cancel",
            Some("root"),
        ),
        (
            Method::POST,
            "/tasks/{id}/cancel",
            "/tasks/999999/cancel",
            Some("root"),
        ),
        (
            Method::POST,
            "/groups/{group}/cancel",
            "/groups/x/cancel",
            None,
        ),
        (
            Method::POST,
            "/groups/{group}/cancel",
            "/groups/x/cancel?timeout_ms=-1",
            Some("root"),
        ),
        (
            Method::POST,
            "/groups/{group}/cancel",
            "/groups/x/cancel",
            Some("tenant-token"),
        ),
    ];
    for (method, template, path, token) in errors {
        let (status, body) = api.call(method.clone(), template, path, *token).await;
        assert!(status.is_client_error(), "{path}: {status} {body}");
    }
    let finished = tracker
        .finished(&tracked::Query::new().state(tracked::TaskState::Completed))
        .first()
        .map(|t| t.id.as_u64())
        .expect("a completed task");
    let path = format!("/tasks/{finished}/cancel");
    let (status, _) = api
        .call(Method::POST, "/tasks/{id}/cancel", &path, Some("root"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Cancel reports, with a task that had to be aborted.
    let stubborn = tracker
        .task_builder("svc::stubborn", TaskType::GENERAL)
        .owner("stubborn")
        .spawn(std::future::pending::<()>());
    let (status, report) = api
        .call(
            Method::POST,
            "/groups/{group}/cancel",
            "/groups/stubborn/cancel?timeout_ms=0",
            Some("root"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["aborted"][0]["name"], "svc::stubborn", "{report}");
    let _ = stubborn.await;
    let path = format!("/tasks/{parent_id}/cancel?timeout_ms=5000");
    let (status, report) = api
        .call(Method::POST, "/tasks/{id}/cancel", &path, Some("root"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");

    // Every documented path is served (not the unknown-path 404).
    let paths: Vec<String> = api.conformance.doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for template in paths {
        let path = template.replace("{id}", "1").replace("{group}", "g");
        let methods: Vec<String> = api.conformance.doc["paths"][&template]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for method in methods {
            if template == "/events" {
                continue; // a stream: it does not end
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = api
                .client
                .request(method, format!("{}{path}?timeout_ms=0", api.server.url()))
                .bearer_auth("root")
                .send()
                .await
                .unwrap();
            let text = response.text().await.unwrap();
            assert!(!text.contains("no such endpoint"), "{template}: {text}");
        }
    }

    journal_answers(&mut api).await;

    let undescribed: Vec<String> = api.conformance.doc["components"]["schemas"]["Task"]
        ["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| format!("Task.{k}"))
        .filter(|k| !api.conformance.seen.contains(k))
        .collect();
    assert!(
        undescribed.is_empty(),
        "documented task properties never returned: {undescribed:?}"
    );
    assert!(
        api.conformance.problems.is_empty(),
        "answers openapi.json does not describe:\n{}",
        api.conformance.problems.join("\n")
    );
    api.server.shutdown().await;
}

/// A task that left memory, served from the journal: its own fields
/// (`source`, `duration_ms`) are described too, as is the journal's part
/// of `/stats`.
#[cfg(feature = "journal")]
async fn journal_answers(api: &mut Client) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("openapi-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tracker = Tracker::builder().history_capacity(0).build();
    let journal = tracked::journal::Journal::sqlite(dir.join("journal.sqlite"))
        .start(&tracker)
        .await
        .unwrap();
    let task = tracker.spawn("svc::journaled", TaskType::GENERAL, async {
        tracked::progress(100, "done");
        Err::<(), _>("gone")
    });
    let id = task.id().as_u64();
    task.await.unwrap().unwrap_err();
    journal.flush().await.unwrap();
    let server = serve(tracker.clone(), Config::new().journal(journal.clone()))
        .await
        .unwrap();
    let memory = std::mem::replace(&mut api.server, server);
    let one = api.get("/tasks/{id}", &format!("/tasks/{id}")).await;
    assert_eq!(one["task"]["source"], "journal", "{one}");
    let page = api.get("/tasks", "/tasks?state=failed").await;
    assert_eq!(page["tasks"][0]["source"], "journal", "{page}");
    let stats = api.get("/stats", "/stats").await;
    assert_eq!(stats["journal"]["instance"], journal.instance(), "{stats}");
    assert_eq!(stats["journal"]["connected"], true, "{stats}");
    std::mem::replace(&mut api.server, memory).shutdown().await;
    journal.shutdown().await;
}

/// Without the journal nothing answers with its fields.
#[cfg(not(feature = "journal"))]
async fn journal_answers(api: &mut Client) {
    for field in ["Task.source", "Task.duration_ms"] {
        api.conformance.seen.insert(field.to_owned());
    }
}

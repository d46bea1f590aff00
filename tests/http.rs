//! The HTTP API, `/metrics`, Server-Sent Events and the dashboard, against
//! a real server on 127.0.0.1 and a real HTTP client.

#![cfg(feature = "http")]

#[path = "common/polite.rs"]
mod polite;
use polite::polite;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tracked::http::{serve, serve_dedicated, Config, ServerHandle};
use tracked::{TaskState, TaskType, Tracker, Watchdog};

struct Api {
    server: ServerHandle,
    client: reqwest::Client,
}

impl Api {
    async fn start(tracker: &Tracker, config: Config) -> Api {
        let server = serve(tracker.clone(), config).await.expect("binds");
        assert!(server.addr().ip().is_loopback());
        Api {
            server,
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.server.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn get_as(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token)).await
    }

    async fn post(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::POST, path, token).await
    }

    /// Checks that `GET path` is a 400 whose JSON reason mentions `mentions`.
    async fn rejects(&self, path: &str, mentions: &str) {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let reason = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(reason.contains(mentions), "{path}: {reason}");
    }

    /// The status, headers and reason of an error answer, checked to be the
    /// API's JSON error (not the framework's text or an empty body).
    /// Asserts that each request is a 400 whose JSON reason names what it
    /// says (`names`) and contains `says`.
    async fn bad_requests<const N: usize>(
        &self,
        token: &str,
        cases: [(Method, &str, &str); N],
        says: &str,
    ) {
        for (method, path, names) in cases {
            let (status, _, reason) = self.error(method, path, Some(token)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reason}");
            assert!(
                reason.contains(names) && reason.contains(says),
                "{path}: {reason}"
            );
        }
    }

    async fn error(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.server.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let (status, headers) = (response.status(), response.headers().clone());
        let text = response.text().await.expect("body");
        let kind = headers.get("content-type").map(|v| v.to_str().unwrap());
        assert_eq!(kind, Some("application/json"), "{path}: {status} {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        let reason = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        (status, headers, reason.to_owned())
    }

    async fn text(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.server.url()))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }
}

fn ids(page: &Value) -> Vec<u64> {
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect()
}

/// Waits (bounded) until `tracker` has no live task of type `ty`.
async fn drained(tracker: &Tracker, ty: TaskType) {
    for _ in 0..500 {
        if tracker
            .stats()
            .by_type
            .get(&ty)
            .is_none_or(|c| c.live() == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{ty} tasks still live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_list_pages_with_a_cursor_past_the_max_limit() {
    let tracker = Tracker::new();
    let mut handles = Vec::new();
    for i in 0..1200 {
        let ty = if i % 3 == 0 {
            TaskType::CONSENSUS
        } else {
            TaskType::DATABASE
        };
        handles.push(tracker.spawn(format!("job-{i}"), ty, std::future::pending::<()>()));
    }
    let api = Api::start(&tracker, Config::new()).await;

    let mut seen = Vec::new();
    let mut path = "/tasks?limit=500".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = api.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 500);
        assert!(page_ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/tasks?limit=500&cursor={cursor}"),
            None => break,
        }
    }
    // The 1200 jobs and the server's own tracked task.
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 1201);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 1201);

    // Filters: type, name prefix, state; default limit 100.
    let (_, page) = api.get("/tasks?type=Consensus").await;
    assert_eq!(ids(&page).len(), 100);
    assert_eq!(page["limit"], 100);
    assert!(page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"] == "Consensus"));
    let (_, page) = api.get("/tasks?name=job-119&limit=500").await;
    // job-119 and job-1190..=job-1199.
    assert_eq!(ids(&page).len(), 11);
    let (_, page) = api.get("/tasks?state=completed").await;
    assert_eq!(ids(&page).len(), 0);
    let (status, page) = api.get("/tasks?type=NoSuchType").await;
    assert_eq!((status, ids(&page).len()), (StatusCode::OK, 0));

    for handle in handles {
        handle.abort();
    }
    drained(&tracker, TaskType::DATABASE).await;
    drained(&tracker, TaskType::CONSENSUS).await;
    let (_, page) = api
        .get("/tasks?state=cancelled&type=Consensus&limit=500")
        .await;
    let finished = ids(&page);
    assert_eq!(finished.len(), 400);
    assert!(finished.windows(2).all(|w| w[0] > w[1]), "newest first");
    api.server.shutdown().await;
}

/// Ids come in blocks per thread, so a thread that spawns little keeps low
/// ids: its failure, the latest, sorts last by id. `order=finished` lists
/// the newest endings first, as a "latest failures" view needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_endings_come_first_with_order_finished() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    // Each thread fails tasks on a runtime of its own, as told: a thread
    // takes its block of ids at its first spawn.
    let quiet_thread = |tracker: Tracker| {
        let (tell, told) = std::sync::mpsc::channel::<&'static str>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            for name in told {
                let failing = async { Err::<(), _>("down") };
                let _ = runtime
                    .block_on(async { tracker.spawn(name, TaskType::GENERAL, failing).await });
            }
        });
        (tell, thread)
    };
    let (quiet, quiet_done) = quiet_thread(tracker.clone());
    quiet.send("early").unwrap();
    for _ in 0..500 {
        if tracker.stats().total.failed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for name in ["first", "second"] {
        let (busy, busy_done) = quiet_thread(tracker.clone());
        busy.send(name).unwrap();
        drop(busy);
        busy_done.join().unwrap();
    }
    // Ended last, with an id from the block its thread took first.
    quiet.send("latest").unwrap();
    drop(quiet);
    quiet_done.join().unwrap();
    let names = |page: &Value| -> Vec<String> {
        let tasks = page["tasks"].as_array().unwrap();
        tasks
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, page) = api.get("/tasks?state=failed&order=finished").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["latest", "second", "first", "early"]);
    assert!(page["next_cursor"].is_null());
    let (_, page) = api.get("/tasks?state=failed&order=finished&limit=1").await;
    assert_eq!(names(&page), ["latest"]);
    // By id, the latest ending sorts below the other threads' tasks.
    let (_, by_id) = api.get("/tasks?state=failed").await;
    assert_eq!(names(&by_id), ["second", "first", "latest", "early"]);
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_a_400_with_a_json_reason() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    for (path, mentions) in [
        ("/tasks?limit=0", "limit"),
        ("/tasks?limit=501", "limit"),
        ("/tasks?limit=ten", "limit"),
        ("/tasks?limit=-1", "limit"),
        ("/tasks?state=sleeping", "sleeping"),
        ("/tasks?cursor=abc", "cursor"),
        ("/tasks?cursor=%2B5", "cursor"),
        ("/tasks/%2B1", "+1"),
        ("/tasks/01", "01"),
        ("/tasks?warned=yes", "warned"),
        ("/tasks?idle_ms=soon", "idle_ms"),
        ("/tasks?orphaned=maybe", "orphaned"),
        ("/tasks?idle_ms=-5", "idle_ms"),
        // This tracker does not time polls: it cannot tell idleness.
        ("/tasks?idle_ms=0", "busy_time"),
        ("/tasks?lost_waker=maybe", "lost_waker"),
        // Nor does it follow wakes.
        ("/tasks?lost_waker=true", "wakes(true)"),
        ("/tasks?colour=red", "colour"),
        ("/tasks?order=newest", "order"),
        ("/tasks?order=finished", "state"),
        ("/tasks?order=finished&state=running", "state"),
        ("/tasks?order=finished&state=failed&cursor=5", "cursor"),
        ("/tasks/abc", "abc"),
        ("/tasks/0", "0"),
        ("/tasks/99999999999999999999999", "99999999999999999999999"),
        ("/stats?verbose=1", "verbose"),
        ("/tree?depth=2", "depth"),
        ("/events?since=4", "since"),
        ("/whoami?as=admin", "as"),
    ] {
        api.rejects(path, mentions).await;
    }
    for path in [
        "/tasks/1/cancel?timeout_ms=99999999",
        "/tasks/x/cancel",
        "/groups/g/cancel?timeout_ms=soon",
        "/groups/g/cancel?force=1",
    ] {
        let (status, body) = api.post(path, Some(&token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    let (status, body) = api.get("/no/such/endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_the_framework_rejects_gets_a_json_reason() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    let cases = [
        (Method::GET, "/tasks/%FF", "`id`"),
        (Method::POST, "/tasks/%FF/cancel", "`id`"),
        (Method::POST, "/groups/%FF/cancel", "`group`"),
    ];
    api.bad_requests(&token, cases, "UTF-8").await;
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_not_utf8_text_gets_a_json_reason() {
    let tracker = Tracker::new();
    tracker
        .spawn("caf\u{e9} au lait", TaskType::GENERAL, async {})
        .await
        .unwrap();
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    let cases = [
        (Method::GET, "/tasks?name=%FF", "`name`"),
        (Method::GET, "/tasks?state=completed&owner=a%C3", "`owner`"),
        (Method::GET, "/events?%FF=1", "parameter name"),
        (
            Method::POST,
            "/groups/g/cancel?timeout_ms=%FE",
            "`timeout_ms`",
        ),
    ];
    api.bad_requests(&token, cases, "UTF-8").await;
    // Escapes and `+` still decode to the text they stand for.
    let (_, page) = api.get("/tasks?state=completed&name=caf%C3%A9+au").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_a_405_with_a_json_reason_and_allow() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    for (method, path, allow) in [
        (Method::GET, "/tasks/1/cancel", "POST"),
        (Method::DELETE, "/groups/g/cancel", "POST"),
        (Method::POST, "/stats", "GET,HEAD"),
        (Method::PUT, "/tasks", "GET,HEAD"),
    ] {
        let (status, headers, reason) = api.error(method.clone(), path, Some(&token)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}: {reason}");
        assert_eq!(headers["allow"], allow, "{path}");
        assert!(reason.contains(method.as_str()), "{path}: {reason}");
    }
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_parameter_is_a_400_naming_it() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    let cases = [
        (Method::GET, "/tasks?state=running&state=failed", "`state`"),
        (Method::GET, "/tasks?limit=5&name=a&limit=5", "`limit`"),
        (
            Method::POST,
            "/groups/g/cancel?timeout_ms=1&timeout_ms=2",
            "`timeout_ms`",
        ),
        (
            Method::POST,
            "/tasks/1/cancel?timeout_ms=1&timeout_ms=1",
            "`timeout_ms`",
        ),
    ];
    api.bad_requests(&token, cases, "once").await;
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_names_are_case_sensitive_and_a_near_miss_or_none_is_a_400() {
    const GOSSIP: TaskType = TaskType::new("Gossip");
    let tracker = Tracker::new();
    let gossip = tracker.spawn("gossip", GOSSIP, std::future::pending::<()>());
    let accented = TaskType::from_name("Ünï");
    let unicode = tracker.spawn("unicode", accented, std::future::pending::<()>());
    let api = Api::start(&tracker, Config::new()).await;
    for (path, suggests) in [
        (
            "/tasks?type=network",
            "case-sensitive: did you mean `Network`",
        ),
        (
            "/tasks?type=gossip",
            "case-sensitive: did you mean `Gossip`",
        ),
        (
            "/tasks?type=%C3%BCn%C3%AF",
            "case-sensitive: did you mean `Ünï`",
        ),
        ("/tasks?type=", "leave the parameter out"),
    ] {
        let (status, _, reason) = api.error(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reason}");
        assert!(reason.contains(suggests), "{path}: {reason}");
    }
    // The exact names: the server's own task, and the user-defined type.
    let (_, page) = api.get("/tasks?type=Network").await;
    assert_eq!(page["tasks"][0]["name"], "tracked::http::server", "{page}");
    let (_, page) = api.get("/tasks?type=Gossip").await;
    assert_eq!(ids(&page), [gossip.id().as_u64()]);
    // A type no task has had yet has no tasks; states, a closed set, match
    // in any case.
    let (status, page) = api.get("/tasks?type=Gossamer").await;
    assert_eq!((status, ids(&page).len()), (StatusCode::OK, 0));
    let (status, page) = api.get("/tasks?type=Gossip&state=Running").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Code may name a type "": then `type=` means it.
    let unnamed = tracker.spawn("unnamed", TaskType::new(""), std::future::pending::<()>());
    let (_, page) = api.get("/tasks?type=").await;
    assert_eq!(ids(&page), [unnamed.id().as_u64()]);
    unnamed.abort();
    gossip.abort();
    unicode.abort();
    api.server.shutdown().await;
}

/// A tracker counts 128 types apart and the rest as `(other)`; a task of
/// a type past those is still listed by its type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_counted_as_other_is_still_listed_by_name() {
    let tracker = Tracker::new();
    let parked: Vec<_> = (0..140)
        .map(|i| {
            let ty = TaskType::from_name(&format!("many-{i}"));
            tracker.spawn(format!("typed-{i}"), ty, std::future::pending::<()>())
        })
        .collect();
    assert!(tracker
        .stats()
        .by_type
        .keys()
        .any(|ty| ty.name() == "(other)"));
    let api = Api::start(&tracker, Config::new()).await;
    let (status, page) = api.get("/tasks?type=many-135").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), [parked[135].id().as_u64()], "{page}");
    let (status, page) = api.get("/tasks?type=many-999").await;
    assert_eq!((status, ids(&page).len()), (StatusCode::OK, 0), "{page}");
    parked.iter().for_each(|task| task.abort());
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_owner_is_a_400_not_a_group() {
    let tracker = Tracker::new();
    // Code may name the empty owner; the API does not address it.
    let nameless =
        tracker
            .group("")
            .spawn("nameless", TaskType::GENERAL, std::future::pending::<()>());
    let api = Api::start(&tracker, Config::new()).await;
    let token = api.server.token().to_owned();
    for (method, path) in [
        (Method::POST, "/groups//cancel?timeout_ms=0"),
        (Method::GET, "/tasks?owner="),
    ] {
        let (status, _, reason) = api.error(method, path, Some(&token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reason}");
        assert!(reason.contains("empty owner"), "{path}: {reason}");
    }
    assert!(!nameless.is_finished());
    nameless.abort();
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_has_its_progress_log_and_children() {
    let idle_at_once = Watchdog::new().idle(Some(TaskType::DATABASE), Duration::ZERO);
    let tracker = Tracker::builder().watchdog(idle_at_once).build();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let parent = tracker.spawn("import", TaskType::DATABASE, async move {
        tracked::progress(10, "reading");
        tracked::progress(40, "parsing");
        let child = tracked::spawn("import::chunk", TaskType::DATABASE, async { 7 });
        child.await.unwrap();
        tracked::spawn("import::writer", TaskType::DATABASE, polite());
        let _ = wait.await;
    });
    let id = parent.id().as_u64();
    let api = Api::start(&tracker, Config::new()).await;
    let mut detail = Value::Null;
    for _ in 0..200 {
        detail = api.get(&format!("/tasks/{id}")).await.1;
        if detail["children"].as_array().is_some_and(|c| c.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(detail["task"]["name"], "import");
    assert_eq!(detail["task"]["state"], "running");
    let progress = &detail["task"]["progress"];
    assert_eq!(progress["percent"], 40);
    let log: Vec<&str> = progress["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(log, ["reading", "parsing"]);
    // The watchdog's findings show on the task: none before a scan; with an
    // idle threshold of zero, the first scan that finds it waiting outside
    // a poll flags it.
    assert_eq!(detail["task"]["warnings"], serde_json::json!([]));
    let mut warnings = Value::Null;
    for _ in 0..200 {
        tracker.watchdog_scan();
        warnings = api.get(&format!("/tasks/{id}")).await.1["task"]["warnings"].clone();
        if warnings != serde_json::json!([]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(warnings, serde_json::json!(["idle"]));
    let flagged = ids(&api.get("/tasks?warned=true&type=Database").await.1);
    let unflagged = ids(&api.get("/tasks?warned=false").await.1);
    assert!(flagged.contains(&id), "{flagged:?}");
    assert!(!unflagged.contains(&id), "{unflagged:?}");
    let children = detail["children"].as_array().unwrap();
    assert_eq!(children[0]["name"], "import::chunk");
    assert_eq!(children[0]["state"], "completed");
    assert_eq!(children[1]["name"], "import::writer");
    // A duration once ended (its age), as journal rows have; none while
    // running.
    assert_eq!(detail["task"]["duration_ms"], Value::Null);
    assert!(detail["task"]["age_ms"].is_u64());
    assert_eq!(children[0]["duration_ms"], children[0]["age_ms"]);
    assert!(children[0]["duration_ms"].is_u64());

    let (status, tree) = api.get("/tree").await;
    assert_eq!(status, StatusCode::OK);
    let nodes: Vec<(u64, &str)> = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["depth"].as_u64().unwrap(),
                n["task"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(nodes.contains(&(0, "import")));
    assert!(nodes.contains(&(1, "import::writer")), "{nodes:?}");
    assert_eq!(tree["truncated"], false);

    let (status, body) = api.get("/tasks/987654321").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());

    let _ = go.send(());
    parent.await.unwrap();
    let report = tracker
        .cancel_type(TaskType::DATABASE, Duration::from_secs(1))
        .await;
    assert!(report.is_clean());
    api.server.shutdown().await;
}

/// Spawns `dispatcher`, a task with one completed child and `leaked` live
/// ones, and an unrelated `bystander`; returns once all are spawned.
async fn dispatcher(tracker: &Tracker, leaked: usize) -> tracked::JoinHandle<()> {
    let (spawned, ready) = tokio::sync::oneshot::channel();
    let dispatcher = tracker.spawn("dispatcher", TaskType::DATABASE, async move {
        let done = tracked::spawn("dispatcher::done", TaskType::DATABASE, async {});
        done.await.unwrap();
        for i in 0..leaked {
            tracked::spawn(
                format!("dispatcher::conn-{i}"),
                TaskType::DATABASE,
                polite(),
            );
        }
        let _ = spawned.send(());
        polite().await;
    });
    tracker.spawn("bystander", TaskType::DATABASE, polite());
    ready.await.unwrap();
    dispatcher
}

/// Stops what `dispatcher` started, every task of which stops when asked,
/// and the server.
async fn stop_dispatcher(tracker: &Tracker, api: Api) {
    let report = tracker
        .cancel_type(TaskType::DATABASE, Duration::from_secs(5))
        .await;
    assert!(report.is_clean(), "{report}");
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_listed_by_parent() {
    let tracker = Tracker::new();
    let id = dispatcher(&tracker, 150).await.id().as_u64();
    let api = Api::start(&tracker, Config::new()).await;
    let mut live = HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = api
            .get(&format!("/tasks?parent={id}&limit=60{cursor}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for task in page["tasks"].as_array().unwrap() {
            assert_eq!(task["parent"], id, "{task}");
            live.insert(task["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(live.len(), 150);
    assert!(live.contains("dispatcher::conn-149"));
    let (_, done) = api
        .get(&format!("/tasks?parent={id}&state=completed"))
        .await;
    assert_eq!(done["tasks"][0]["name"], "dispatcher::done", "{done}");
    assert_eq!(done["tasks"].as_array().unwrap().len(), 1, "{done}");
    for path in [
        "/tasks?parent=abc",
        "/tasks?parent=0",
        "/tasks?parent=",
        "/tasks?parent=01",
        "/tasks?parent=%2B5",
        "/tasks?parent=-1",
    ] {
        api.rejects(path, "`parent`").await;
    }
    stop_dispatcher(&tracker, api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_lists_its_first_children_and_counts_them_all() {
    let tracker = Tracker::new();
    let id = dispatcher(&tracker, 150).await.id().as_u64();
    let api = Api::start(&tracker, Config::new()).await;
    for (query, listed, limit) in [("", 100, 100), ("?limit=7", 7, 7), ("?limit=500", 151, 500)] {
        let (status, detail) = api.get(&format!("/tasks/{id}{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {detail}");
        assert_eq!(
            detail["children"].as_array().unwrap().len(),
            listed,
            "{query}"
        );
        assert_eq!(detail["children_total"], 151, "{query}");
        assert_eq!(detail["limit"], limit, "{query}");
    }
    for (query, names) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("depth=1", "depth"),
    ] {
        api.rejects(&format!("/tasks/{id}?{query}"), names).await;
    }
    stop_dispatcher(&tracker, api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_catalogue_whoami_and_openapi() {
    let tracker = Tracker::new();
    tracker.spawn("ok", TaskType::UI, async {}).await.unwrap();
    tracker
        .spawn("bad", TaskType::UI, async { Err::<(), _>("no") })
        .await
        .unwrap()
        .unwrap_err();
    let api = Api::start(&tracker, Config::new().declared_types([TaskType::UI])).await;

    let (status, stats) = api.get("/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["by_type"]["UI"]["completed"], 1);
    assert_eq!(stats["by_type"]["UI"]["failed"], 1);
    assert_eq!(stats["durations"]["UI"]["count"], 2);
    // No heartbeat runs the watchdog here: /stats and /metrics say so.
    assert!(stats["watchdog"]["last_scan_at_ms"].is_null(), "{stats}");
    assert!(stats["watchdog"]["last_scan_age_ms"].is_null(), "{stats}");
    // One failure in two endings is over the default failure-rate limit.
    assert_eq!(stats["watchdog"]["healthy"], false, "{stats}");
    assert_eq!(
        stats["watchdog"]["unhealthy_types"],
        serde_json::json!(["UI"]),
        "{stats}"
    );
    let (_, metrics) = api.get("/metrics").await;
    let scanned = "tracked_watchdog_last_scan_timestamp_seconds";
    assert!(!metrics.as_str().unwrap().contains(scanned), "{metrics}");
    tracker.watchdog_scan();
    let (_, stats) = api.get("/stats").await;
    let at = stats["watchdog"]["last_scan_at_ms"].as_u64();
    assert!(
        at >= stats["watchdog"]["last_scan_age_ms"].as_u64(),
        "{stats}"
    );
    assert!(stats["watchdog"]["warnings"].is_object(), "{stats}");
    let (_, metrics) = api.get("/metrics").await;
    let gauge = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{scanned} ")))
        .unwrap_or_else(|| panic!("{scanned} in {metrics}"));
    let seconds: f64 = gauge.parse().unwrap();
    assert!(
        (seconds * 1000.0 - at.unwrap() as f64).abs() < 1000.0,
        "{seconds} against {at:?}"
    );

    let (status, catalogue) = api.get("/catalogue").await;
    assert_eq!(status, StatusCode::OK);
    assert!(catalogue["sites"].is_array());
    assert!(catalogue["findings"].is_array());
    assert!(["collected", "empty"].contains(&catalogue["status"].as_str().unwrap()));

    let (_, me) = api.get("/whoami").await;
    assert_eq!(me["authenticated"], false);
    let (_, me) = api.get_as("/whoami", api.server.token()).await;
    assert_eq!(me["can_cancel"], true);

    let (status, openapi) = api.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in [
        "/tasks",
        "/tasks/{id}",
        "/tree",
        "/stats",
        "/catalogue",
        "/tasks/{id}/cancel",
        "/groups/{group}/cancel",
        "/events",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} documented");
    }
    let errors = openapi["info"]["description"].as_str().unwrap();
    assert!(
        errors.contains("405") && errors.contains("more than once"),
        "{errors}"
    );
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancels_need_a_token_and_stop_the_task() {
    let tracker = Tracker::new();
    let polite_task = tracker.spawn("listener", TaskType::NETWORK, polite());
    let stubborn = tracker.spawn("stuck", TaskType::NETWORK, std::future::pending::<()>());
    let api = Api::start(&tracker, Config::new().token("admin")).await;
    assert_eq!(api.server.token(), "admin");
    let path = format!("/tasks/{}/cancel", polite_task.id());

    let (status, body) = api.post(&path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"));
    let (status, _) = api.post(&path, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!polite_task.is_finished());

    let (status, report) = api.post(&path, Some("admin")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["stopped"], 1);
    assert_eq!(report["clean"], true);
    polite_task.await.unwrap();

    let stuck = format!("/tasks/{}/cancel?timeout_ms=50", stubborn.id());
    let (status, report) = api.post(&stuck, Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["aborted"][0]["name"], "stuck");
    assert_eq!(report["left_running"], serde_json::json!([]), "{report}");
    assert!(stubborn.await.unwrap_err().is_cancelled());
    let (status, body) = api.post(&stuck, Some("admin")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let group = tracker.group("session-9");
    for i in 0..3 {
        group.spawn(format!("reader-{i}"), TaskType::NETWORK, polite());
    }
    tokio::task::yield_now().await;
    let (status, _) = api.post("/groups/session-9/cancel", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, report) = api.post("/groups/session-9/cancel", Some("admin")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["stopped"], 3);
    assert_eq!(group.live().total, 0);
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_scoped_tokens_never_see_or_cancel_other_owners_tasks() {
    let tracker = Tracker::new();
    let a = tracker.group("tenant-a");
    let b = tracker.group("tenant-b");
    let mine = a.spawn("a::job", TaskType::GAME_LOGIC, polite());
    let theirs = b.spawn("b::job", TaskType::GAME_LOGIC, polite());
    let config = Config::new()
        .token("admin")
        .owner_token("token-a", "tenant-a");
    let api = Api::start(&tracker, config).await;

    let (_, page) = api.get_as("/tasks", "token-a").await;
    assert_eq!(ids(&page), [mine.id().as_u64()]);
    let (_, page) = api.get_as("/tasks?owner=tenant-b", "token-a").await;
    assert!(ids(&page).is_empty());
    // Both tenants' tasks and the server's own.
    let (_, page) = api.get_as("/tasks", "admin").await;
    assert_eq!(ids(&page).len(), 3);

    // Another owner's task does not exist for this token: 404, not 403.
    let theirs_path = format!("/tasks/{}", theirs.id());
    let (status, _) = api.get_as(&theirs_path, "token-a").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post(&format!("{theirs_path}/cancel"), Some("token-a"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.post("/groups/tenant-b/cancel", Some("token-a")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!theirs.is_finished());
    let (_, tree) = api.get_as("/tree", "token-a").await;
    assert_eq!(tree["nodes"].as_array().unwrap().len(), 1);

    // Aggregates over every owner are forbidden to a scoped token.
    for path in ["/stats", "/metrics", "/catalogue"] {
        let (status, body) = api.get_as(path, "token-a").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body["error"].as_str().unwrap().contains("tenant-a"));
    }

    let (status, _) = api
        .post(&format!("/tasks/{}/cancel", mine.id()), Some("token-a"))
        .await;
    assert_eq!(status, StatusCode::OK);
    mine.await.unwrap();
    let (status, report) = api.post("/groups/tenant-a/cancel", Some("token-a")).await;
    assert_eq!(
        (status, report["stopped"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    assert!(!theirs.is_finished());
    b.cancel(Duration::from_secs(1)).await;
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_require_a_token() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new().require_token_for_reads(true)).await;
    for path in ["/tasks", "/stats", "/metrics", "/tree", "/events"] {
        let (status, _) = api.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _) = api.get_as("/tasks", api.server.token()).await;
    assert_eq!(status, StatusCode::OK);
    // The page itself and the API description stay public: they hold no data.
    assert_eq!(api.text("/").await.0, StatusCode::OK);
    assert_eq!(api.get("/openapi.json").await.0, StatusCode::OK);
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_as_server_sent_events() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let mut response = api
        .client
        .get(format!("{}/events", api.server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut received = String::new();
    let mut spawned = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.contains("\"state\":\"failed\"") {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
        if !spawned && received.contains("event: subscribed") {
            spawned = true;
            tracker
                .spawn("sse::job", TaskType::MAINTENANCE, async {
                    tracked::progress(50, "half");
                    Err::<(), _>("disk full")
                })
                .await
                .unwrap()
                .unwrap_err();
        }
    }
    for expected in [
        "event: spawned",
        "event: started",
        "event: progress",
        "\"message\":\"half\"",
        "event: finished",
        "\"name\":\"sse::job\"",
        "\"error\":\"disk full\"",
    ] {
        assert!(received.contains(expected), "{expected} in {received}");
    }
    // Shutdown ends open event streams instead of waiting for them.
    let started = std::time::Instant::now();
    api.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_event_streams_carry_only_the_owners_tasks() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new().owner_token("t", "mine")).await;
    let mut response = api
        .client
        .get(format!("{}/events", api.server.url()))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    let mut received = String::new();
    let mut spawned = false;
    while !received.contains("mine::job") || !received.contains("event: finished") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
        if !spawned && received.contains("event: subscribed") {
            spawned = true;
            tracker
                .group("other")
                .spawn("other::job", TaskType::GENERAL, async {})
                .await
                .unwrap();
            tracker
                .group("mine")
                .spawn("mine::job", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
    }
    assert!(!received.contains("other::job"), "{received}");
    api.server.shutdown().await;
}

/// One sample of the text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict reader of the Prometheus text format 0.0.4: every line is a
/// `# HELP`, a `# TYPE` (before its samples, once per family) or a sample.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .expect("sample has a value");
        let name = &line[..name_end];
        assert!(!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()));
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            let mut key = String::new();
            loop {
                let (i, c) = chars.next().expect("closed label set");
                match c {
                    '}' => {
                        rest = &inner[i + 1..];
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().expect("closed value").1 {
                                '"' => break,
                                '\\' => match chars.next().unwrap().1 {
                                    'n' => value.push('\n'),
                                    c @ ('\\' | '"') => value.push(c),
                                    c => panic!("bad escape \\{c} in {line}"),
                                },
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
        }
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "sample before its TYPE: {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_counters_gauges_and_histograms() {
    let tracker = Tracker::new();
    for _ in 0..3 {
        tracker
            .spawn("db::read", TaskType::DATABASE, async {})
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let _ = tracker
            .spawn("db::write", TaskType::DATABASE, async {
                Err::<(), _>("locked")
            })
            .await;
    }
    let _ = tracker
        .spawn("db::oops", TaskType::DATABASE, async {
            panic!("boom");
            #[allow(unreachable_code, reason = "gives the future its output type")]
            ()
        })
        .await;
    let slow = tracker.spawn("db::slow", TaskType::DATABASE, async {
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    slow.await.unwrap();
    let waiting = tracker.spawn(
        "net::\"quoted\"\\name",
        TaskType::NETWORK,
        std::future::pending::<()>(),
    );
    let api = Api::start(
        &tracker,
        Config::new().metrics(tracked::prometheus::MetricsOptions::new().name_label(true)),
    )
    .await;

    let (status, headers, text) = api.text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let samples = parse_exposition(&text);
    let db = ("type", "Database");
    assert_eq!(value(&samples, "tracked_tasks_spawned_total", &[db]), 7.0);
    for (state, expected) in [
        ("completed", 4.0),
        ("failed", 2.0),
        ("panicked", 1.0),
        ("cancelled", 0.0),
    ] {
        assert_eq!(
            value(
                &samples,
                "tracked_tasks_finished_total",
                &[db, ("state", state)]
            ),
            expected,
            "{state}"
        );
    }
    let net = ("type", "Network");
    let live_net = value(&samples, "tracked_tasks_live", &[net, ("state", "pending")])
        + value(&samples, "tracked_tasks_live", &[net, ("state", "running")]);
    // The waiting task and the server's own task.
    assert_eq!(live_net, 2.0);
    assert_eq!(
        value(&samples, "tracked_tasks_live", &[db, ("state", "running")]),
        0.0
    );

    // The histogram: cumulative buckets up to +Inf = count; the slow task
    // (20 ms) is above the 10 ms bound.
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == "tracked_task_duration_seconds_bucket" && s.labels["type"] == "Database"
        })
        .collect();
    assert_eq!(buckets.len(), 13);
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    assert_eq!(buckets.last().unwrap().labels["le"], "+Inf");
    assert_eq!(buckets.last().unwrap().value, 7.0);
    assert_eq!(
        value(&samples, "tracked_task_duration_seconds_count", &[db]),
        7.0
    );
    assert!(
        value(
            &samples,
            "tracked_task_duration_seconds_bucket",
            &[db, ("le", "0.01")]
        ) <= 6.0
    );
    assert!(value(&samples, "tracked_task_duration_seconds_sum", &[db]) >= 0.02);

    // The watchdog's series: every type's warnings, zeros included; health
    // of every type with endings, no scan needed (3 of 7 failed or
    // panicked: unhealthy).
    assert_eq!(
        value(
            &samples,
            "tracked_watchdog_warnings_total",
            &[db, ("kind", "idle")]
        ),
        0.0
    );
    assert_eq!(value(&samples, "tracked_type_healthy", &[db]), 0.0);
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == "tracked_type_healthy")
            .count(),
        1,
        "types with no endings have no health"
    );

    // Opt-in name label, with escaping that reads back to the name.
    assert_eq!(
        value(
            &samples,
            "tracked_tasks_live_by_name",
            &[net, ("name", "net::\"quoted\"\\name")]
        ),
        1.0
    );
    waiting.abort();
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_orphaned_tasks_are_listed_and_filtered() {
    let tracker = Tracker::builder().busy_time(true).build();
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    let waiter = tracker.spawn("db::wait", TaskType::DATABASE, async move {
        woken.await.ok();
    });
    // Spawned on a runtime nothing drives: never polled, so never idle.
    let undriven = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let pending = tracker.spawn_on(
        "game::later",
        TaskType::GAME_LOGIC,
        async {},
        undriven.handle(),
    );
    let api = Api::start(&tracker, Config::new()).await;
    let id = waiter.id().as_u64();
    let mut task = Value::Null;
    for _ in 0..200 {
        task = api.get(&format!("/tasks/{id}")).await.1["task"].clone();
        if task["idle_ms"].as_u64() >= Some(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(task["idle_ms"].as_u64() >= Some(20), "{task}");
    assert!(task["idle_since_ms"].as_u64() >= task["first_polled_at_ms"].as_u64());
    assert!(task["in_poll_ms"].is_null() && task["in_poll_since_ms"].is_null());
    // A task blocked inside a poll (one worker of two) says so, and its busy
    // time counts the poll so far.
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocked = tracker.spawn("db::blocked", TaskType::DATABASE, async move {
        entered_tx.send(()).unwrap();
        released.recv().unwrap();
    });
    entered.recv().unwrap();
    let blocked_id = blocked.id().as_u64();
    let mut stuck = Value::Null;
    for _ in 0..200 {
        stuck = api.get(&format!("/tasks/{blocked_id}")).await.1["task"].clone();
        if stuck["in_poll_ms"].as_u64() >= Some(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stuck["in_poll_ms"].as_u64() >= Some(20), "{stuck}");
    assert!(stuck["busy_ms"].as_f64() >= Some(19.0), "{stuck}");
    assert!(stuck["in_poll_since_ms"].as_u64() >= stuck["first_polled_at_ms"].as_u64());
    release.send(()).unwrap();
    blocked.await.unwrap();

    let live = ids(&api.get("/tasks").await.1);
    assert!(live.contains(&pending.id().as_u64()), "{live:?}");
    // (The server's own tasks are in this tracker too, and may be idle.)
    for path in ["/tasks?idle_ms=20", "/tasks?idle_ms=0"] {
        let idle = ids(&api.get(path).await.1);
        assert!(idle.contains(&id), "{path}: {idle:?}");
        assert!(!idle.contains(&pending.id().as_u64()), "{path}: {idle:?}");
    }
    assert!(ids(&api.get("/tasks?idle_ms=3600000").await.1).is_empty());
    // Finished tasks are not idle.
    assert!(ids(&api.get("/tasks?state=completed&idle_ms=0").await.1).is_empty());
    // A request that leaves a flush running when it ends: the flush
    // outlived its parent; the waiter, spawned from outside any task, did not.
    let (flush_tx, flush_id) = tokio::sync::oneshot::channel();
    tracker
        .spawn("db::request", TaskType::DATABASE, async move {
            let flush = tracked::spawn(
                "db::flush",
                TaskType::DATABASE,
                std::future::pending::<()>(),
            );
            flush_tx.send(flush.id().as_u64()).unwrap();
        })
        .await
        .unwrap();
    let flush = flush_id.await.unwrap();
    assert_eq!(
        ids(&api.get("/tasks?orphaned=true&type=Database").await.1),
        [flush]
    );
    assert_eq!(
        ids(&api.get("/tasks?orphaned=false&type=Database").await.1),
        [id]
    );
    assert!(ids(&api.get("/tasks?orphaned=true&state=completed").await.1).is_empty());

    wake.send(()).unwrap();
    waiter.await.unwrap();
    let (_, done) = api.get(&format!("/tasks/{id}")).await;
    assert_eq!(done["task"]["state"], "completed");
    assert_eq!(done["task"]["idle_ms"], Value::Null);
    let flush = tracked::TaskId::from_u64(flush).unwrap();
    tracker.cancel_task(flush, Duration::ZERO).await;
    api.server.shutdown().await;
    drop(pending);
    undriven.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_lost_its_waker_is_shown_and_filtered() {
    let tracker = Tracker::builder().wakes(true).build();
    let game = TaskType::GAME_LOGIC;
    let lost = tracker.spawn(
        "game::forgets",
        game,
        std::future::poll_fn(|_| std::task::Poll::<()>::Pending),
    );
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    let waits = tracker.spawn("game::waits", game, async move {
        woken.await.ok();
    });
    let api = Api::start(&tracker, Config::new()).await;
    let id = lost.id().as_u64();
    let mut task = Value::Null;
    for _ in 0..200 {
        task = api.get(&format!("/tasks/{id}")).await.1["task"].clone();
        if task["wakes"]["lost_waker"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(task["wakes"]["lost_waker"], true, "{task}");
    assert_eq!(task["wakes"]["wakers"], 0, "{task}");
    assert_eq!(task["wakes"]["woken_at_ms"], Value::Null, "{task}");
    let (_, waiting) = api.get(&format!("/tasks/{}", waits.id().as_u64())).await;
    assert_eq!(waiting["task"]["wakes"]["wakers"], 1, "{waiting}");
    assert_eq!(waiting["task"]["wakes"]["lost_waker"], false, "{waiting}");

    let of = |page: Value| ids(&page);
    assert_eq!(
        of(api.get("/tasks?lost_waker=true&type=GameLogic").await.1),
        [id]
    );
    assert_eq!(
        of(api.get("/tasks?lost_waker=false&type=GameLogic").await.1),
        [waits.id().as_u64()]
    );
    // The watchdog's warning (after two scans) shows in the task's warnings.
    tracker.watchdog_scan();
    tracker.watchdog_scan();
    let (_, warned) = api.get(&format!("/tasks/{id}")).await;
    assert_eq!(
        warned["task"]["warnings"],
        serde_json::json!(["lost_waker"])
    );
    wake.send(()).unwrap();
    waits.await.unwrap();
    assert!(of(api.get("/tasks?lost_waker=false&state=completed").await.1).is_empty());
    // The reply woke it: one scheduling delay for its type. The warning is
    // counted by kind.
    let (_, _, metrics) = api.text("/metrics").await;
    let samples = parse_exposition(&metrics);
    let game = ("type", "GameLogic");
    assert_eq!(
        value(
            &samples,
            "tracked_task_scheduled_duration_seconds_count",
            &[game]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "tracked_watchdog_warnings_total",
            &[game, ("kind", "lost_waker")]
        ),
        1.0
    );
    lost.abort();
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_poll_durations_when_busy_time_is_measured() {
    let tracker = Tracker::builder().busy_time(true).build();
    // Three polls each: two yields, then the end.
    for _ in 0..2 {
        tracker
            .spawn("game::tick", TaskType::GAME_LOGIC, async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            })
            .await
            .unwrap();
    }
    // One poll that holds its worker for at least 20 ms.
    tracker
        .spawn("game::stall", TaskType::GAME_LOGIC, async {
            std::thread::sleep(Duration::from_millis(20));
        })
        .await
        .unwrap();
    // A blocking closure's run is not a poll.
    tracker
        .spawn_blocking("db::dump", TaskType::DATABASE, || ())
        .await
        .unwrap();
    let api = Api::start(&tracker, Config::new()).await;

    let (_, _, text) = api.text("/metrics").await;
    assert!(
        !text.contains("tracked_task_scheduled_duration"),
        "wakes are not followed"
    );
    let samples = parse_exposition(&text);
    let game = ("type", "GameLogic");
    let name = "tracked_task_poll_duration_seconds";
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket") && s.labels["type"] == "GameLogic")
        .collect();
    assert_eq!(buckets.len(), 13);
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    assert_eq!(buckets[0].labels["le"], "0.00001");
    assert_eq!(buckets.last().unwrap().labels["le"], "+Inf");
    assert_eq!(buckets.last().unwrap().value, 7.0);
    assert_eq!(value(&samples, &format!("{name}_count"), &[game]), 7.0);
    assert!(value(&samples, &format!("{name}_bucket"), &[game, ("le", "0.01")]) <= 6.0);
    assert!(value(&samples, &format!("{name}_sum"), &[game]) >= 0.02);
    // Only type and `le`: no per-task series.
    assert!(samples
        .iter()
        .filter(|s| s.name.starts_with(name))
        .all(|s| s.labels.keys().all(|k| k == "type" || k == "le")));
    assert!(!samples
        .iter()
        .any(|s| s.name.starts_with(name) && s.labels["type"] == "Database"));
    api.server.shutdown().await;

    // Without busy time the family is absent.
    let plain = Tracker::new();
    let api = Api::start(&plain, Config::new()).await;
    let (_, _, text) = api.text("/metrics").await;
    assert!(!text.contains(name));
    api.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_one_self_contained_page() {
    let tracker = Tracker::new();
    let api = Api::start(&tracker, Config::new()).await;
    let (status, headers, html) = api.text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(html.contains("<script>") && html.contains("<style>"));
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "cdn",
    ] {
        assert!(!html.to_lowercase().contains(external), "{external}");
    }
    for endpoint in ["/events", "/tasks", "/tree", "/stats", "/cancel"] {
        assert!(html.contains(endpoint), "the page uses {endpoint}");
    }
    assert!(api.server.dashboard_url().contains(api.server.token()));
    let _ = TaskState::Pending;
    api.server.shutdown().await;
}

/// Both workers of the service's runtime blocked in `std::thread::sleep`:
/// a server on that runtime accepts no connection, a dedicated one still
/// answers, and its shutdown ends its thread.
#[test]
fn a_dedicated_server_answers_while_every_worker_is_blocked() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    let service = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    /// Lets the blocked tasks go when dropped, so that a failing assertion
    /// fails the test rather than hang it in the runtime's drop.
    struct Release(Arc<AtomicBool>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }

    let tracker = Tracker::new();
    let (blocked, release) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let released = Release(release.clone());
    for i in 0..2 {
        let (blocked, release) = (blocked.clone(), release.clone());
        let stuck = tracker.task_builder(format!("stuck-{i}"), TaskType::DATABASE);
        stuck.spawn_on(
            async move {
                blocked.fetch_add(1, SeqCst);
                while !release.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            },
            service.handle(),
        );
    }
    for _ in 0..3000 {
        if blocked.load(SeqCst) == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(blocked.load(SeqCst), 2, "both workers blocked");
    let server = serve_dedicated(tracker.clone(), Config::new()).expect("binds");
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async {
        let request = reqwest::get(format!("{}/tasks?state=running", server.url()));
        let response = tokio::time::timeout(Duration::from_secs(30), request)
            .await
            .expect("an answer while every worker is blocked")
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let names: HashSet<&str> = page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains("stuck-0") && names.contains("stuck-1"),
            "{page}"
        );
    });
    drop(released);
    let addr = server.addr();
    client.block_on(server.shutdown());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    #[cfg(target_os = "linux")]
    {
        let threads = std::fs::read_dir("/proc/self/task").unwrap();
        let names: Vec<String> = threads
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .collect();
        assert!(
            !names.iter().any(|n| n.trim() == "tracked-http"),
            "{names:?}"
        );
    }
}

//! The HTTP server against real outside programs: `promtool` checks the
//! exposition, a Prometheus server scrapes `/metrics` and answers a PromQL
//! query, and headless Chromium (through chromedriver) loads the dashboard,
//! sees a task, cancels it and saves a screenshot to
//! `target/dashboard.png`.
//!
//! `scripts/install-external.sh` installs the programs. A missing program
//! fails the test, unless `TRACKED_SKIP_EXTERNAL=1`, which skips it with a
//! message.

#![cfg(feature = "http")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tracked::http::{serve, Config};
use tracked::{TaskState, TaskType, Tracker};

/// The program's path, or `None` when it is missing and skipping is allowed.
fn program(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var("TRACKED_SKIP_EXTERNAL").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: `{name}` is not installed and TRACKED_SKIP_EXTERNAL=1");
            None
        }
        None => panic!("`{name}` is not installed: run scripts/install-external.sh (or set TRACKED_SKIP_EXTERNAL=1 to skip)"),
    }
}

/// Kills the child process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server's configuration: with the `journal` feature, a journal of
/// `tracker`'s tasks in the scratch directory `name`, so that its metrics
/// and its line on the dashboard are checked too.
#[cfg(feature = "journal")]
async fn config(tracker: &Tracker, name: &str) -> Config {
    let path = scratch(name).join("journal.sqlite");
    let journal = tracked::journal::Journal::sqlite(path);
    Config::new().journal(journal.start(tracker).await.unwrap())
}

#[cfg(not(feature = "journal"))]
async fn config(_: &Tracker, _: &str) -> Config {
    Config::new()
}

async fn workload(tracker: &Tracker) {
    for _ in 0..3 {
        tracker
            .spawn("db::read", TaskType::DATABASE, async {})
            .await
            .unwrap();
    }
    let _ = tracker
        .spawn("db::write", TaskType::DATABASE, async {
            Err::<(), _>("locked")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_metrics_and_answers_promql() {
    let (Some(prometheus), Some(promtool)) = (program("prometheus"), program("promtool")) else {
        return;
    };
    let tracker = Tracker::new();
    let config = config(&tracker, "prometheus-journal").await;
    workload(&tracker).await;
    let server = serve(tracker.clone(), config).await.unwrap();
    let client = reqwest::Client::new();
    let text = client
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // promtool's linter reads the exposition as Prometheus does.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    #[cfg(feature = "journal")]
    assert!(text.contains("\ntracked_journal_connected "), "{text}");
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = scratch("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tracked\n    static_configs:\n      - targets: ['{}']\n",
            server.addr()
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Running(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let query = r#"tracked_tasks_finished_total{job="tracked",type="Database",state="completed"}"#;
    let mut last = Value::Null;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await
        else {
            continue;
        };
        last = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        if let Some(sample) = last["data"]["result"].get(0) {
            assert_eq!(sample["value"][1], "3", "{last}");
            let histogram = r#"tracked_task_duration_seconds_count{type="Database"}"#;
            let response = client
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[("query", histogram)])
                .send()
                .await
                .unwrap();
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(body["data"]["result"][0]["value"][1], "4", "{body}");
            server.shutdown().await;
            return;
        }
    }
    panic!("Prometheus never returned the series: {last}");
}

/// Decodes standard base64, as WebDriver sends screenshots.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | u32::from(value(*c)) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

struct WebDriver {
    client: reqwest::Client,
    base: String,
    session: String,
}

impl WebDriver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(
            method,
            format!("{}/session/{}{path}", self.base, self.session),
        );
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["value"].take()
    }

    async fn script(&self, source: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": source, "args": [] })),
        )
        .await
    }

    /// Sets the dashboard's filter `id` to `value`, as a user picking it does.
    async fn filter(&self, id: &str, value: &str) {
        self.script(&format!(
            "const s = document.getElementById('{id}'); s.value = '{value}'; s.dispatchEvent(new Event('change')); return true;"
        ))
        .await;
    }

    /// Sets filter `id` to `value` and waits until the task table lists
    /// exactly `ids`; returns the ids it lists last.
    async fn rows_with(&self, id: &str, value: &str, ids: Value) -> Value {
        self.filter(id, value).await;
        self.until(
            "return [...document.querySelectorAll('#tasks tbody tr')].map((r) => Number(r.dataset.id));",
            |listed| *listed == ids,
        )
        .await
    }

    /// Runs `source` until `done` holds for its value (the page refreshes
    /// on its own), for up to 10 s; returns the last value.
    async fn until(&self, source: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut value = Value::Null;
        for _ in 0..100 {
            value = self.script(source).await;
            if done(&value) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        value
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_the_dashboard_and_cancels_a_task() {
    let (Some(chromium), Some(chromedriver)) = (program("chromium"), program("chromedriver"))
    else {
        return;
    };
    // An idle threshold of zero: the victim is flagged by the first scan
    // that finds it waiting.
    let idle = tracked::Watchdog::new().idle(Some(TaskType::GAME_LOGIC), Duration::ZERO);
    let tracker = Tracker::builder().watchdog(idle).wakes(true).build();
    workload(&tracker).await;
    // A future that keeps no waker: it has lost it.
    let forgets = tracker.spawn(
        "dashboard::forgets",
        TaskType::GENERAL,
        std::future::poll_fn(|_| std::task::Poll::<()>::Pending),
    );
    let forgets_id = forgets.id().as_u64();
    let target = tracker.spawn("dashboard::victim", TaskType::GAME_LOGIC, async {
        tracked::progress(30, "waiting to be cancelled");
        tracked::current()
            .unwrap()
            .cancellation_token()
            .cancelled()
            .await;
    });
    let target_id = target.id().as_u64();
    // A task that logs messages and reports no percentage.
    let chatty = tracker.spawn("dashboard::chatty", TaskType::GENERAL, async {
        tracked::current().unwrap().message("sent chunk 3");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let chatty_id = chatty.id().as_u64();
    // A request that ends leaving a task behind: it outlived its parent.
    let (leftover_tx, leftover) = tokio::sync::oneshot::channel();
    tracker
        .spawn("dashboard::request", TaskType::NETWORK, async move {
            let left = tracked::spawn("dashboard::leftover", TaskType::NETWORK, async {
                tracked::current()
                    .unwrap()
                    .cancellation_token()
                    .cancelled()
                    .await;
            });
            leftover_tx.send(left.id().as_u64()).unwrap();
        })
        .await
        .unwrap();
    let leftover_id = leftover.await.unwrap();
    for _ in 0..500 {
        tracker.watchdog_scan();
        if tracker.task(target.id()).unwrap().task.warned.idle() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let config = config(&tracker, "dashboard-journal").await;
    let server = serve(tracker.clone(), config).await.unwrap();

    let port = free_port();
    let _driver = Running(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let profile = scratch("chromium");
    let capabilities = json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", format!("--user-data-dir={}", profile.display())],
    }}}});
    let mut session = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(response) = client
            .post(format!("{base}/session"))
            .header("content-type", "application/json")
            .body(capabilities.to_string())
            .send()
            .await
        {
            session = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            break;
        }
    }
    let session_id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
        .to_owned();
    let driver = WebDriver {
        client,
        base,
        session: session_id,
    };
    driver
        .call(
            reqwest::Method::POST,
            "/url",
            Some(json!({ "url": server.dashboard_url() })),
        )
        .await;

    // The task appears, with its progress, and the SSE stream is live.
    let button = format!("#tasks tr[data-id='{target_id}'] button.cancel");
    let seen = driver
        .until(
            &format!(
                "return {{ row: !!document.querySelector(\"{button}\"), live: document.getElementById('sse-status').textContent, counts: document.querySelector('#counts tbody').textContent, warned: document.querySelector(\"#tasks tr[data-id='{target_id}'] .warned\")?.textContent, victim: document.querySelector(\"#tasks tr[data-id='{target_id}']\")?.textContent, chatty: document.querySelector(\"#tasks tr[data-id='{chatty_id}']\")?.textContent }};"
            ),
            |seen| seen["row"] == true && seen["live"] == "live" && seen["chatty"].is_string(),
        )
        .await;
    let victim = seen["victim"].as_str().unwrap_or_default();
    assert!(victim.contains("30% waiting to be cancelled"), "{seen}");
    let chatty_row = seen["chatty"].as_str().unwrap_or_default();
    assert!(chatty_row.contains("sent chunk 3"), "{seen}");
    assert!(
        !chatty_row.contains("0%"),
        "no percentage was reported: {seen}"
    );
    assert_eq!(seen["row"], true, "task row with a cancel button: {seen}");
    assert_eq!(seen["live"], "live", "{seen}");
    assert!(
        seen["counts"].as_str().unwrap().contains("GameLogic"),
        "{seen}"
    );
    assert_eq!(seen["warned"], "idle", "the watchdog's badge: {seen}");
    #[cfg(feature = "journal")]
    {
        let journal = driver
            .script("return document.getElementById('journal').textContent;")
            .await;
        let journal = journal.as_str().unwrap();
        assert!(journal.starts_with("journal connected: "), "{journal}");
        assert!(journal.contains(" 0 dropped"), "{journal}");
    }
    let lost = driver
        .script(&format!(
            "return document.querySelector(\"#tasks tr[data-id='{forgets_id}'] .warned\")?.textContent;"
        ))
        .await;
    assert_eq!(lost, "lost waker", "the lost waker's badge");
    // The tracker follows wakes: the "lost their waker" filter is offered,
    // and keeps that task only.
    let offered = driver
        .script("return !document.getElementById('f-lost').hidden;")
        .await;
    assert_eq!(offered, true, "the lost-waker filter is offered");
    let lost_rows = driver
        .rows_with("f-lost", "true", json!([forgets_id]))
        .await;
    assert_eq!(lost_rows, json!([forgets_id]));
    driver.filter("f-lost", "").await;

    // The "flagged" filter keeps the flagged rows only.
    driver.filter("f-warned", "true").await;
    let rows = driver
        .until(
            "const rows = [...document.querySelectorAll('#tasks tbody tr')]; return { all: rows.length, flagged: rows.filter((r) => r.querySelector('.warned')).length };",
            |rows| rows["all"].as_u64() > Some(0) && rows["all"] == rows["flagged"],
        )
        .await;
    assert!(rows["all"].as_u64() > Some(0), "{rows}");
    assert_eq!(rows["all"], rows["flagged"], "{rows}");

    // Polls are timed: the victim's idle time shows, and the idle filter,
    // offered now, at 10 minutes leaves no row.
    let idle = driver
        .script(&format!(
            "return {{ cell: document.querySelector(\"#tasks tr[data-id='{target_id}'] td:nth-child(7)\").textContent, offered: !document.getElementById('f-idle').hidden }};"
        ))
        .await;
    assert!(idle["cell"].as_str().unwrap().ends_with(" s"), "{idle}");
    assert_eq!(idle["offered"], true, "{idle}");
    let row_count = "return document.querySelectorAll('#tasks tbody tr').length;";
    driver.filter("f-idle", "600000").await;
    let left = driver.until(row_count, |left| *left == 0).await;
    assert_eq!(left, 0, "no task has been idle for 10 minutes");
    driver.filter("f-idle", "").await;

    // "Outlived their parent" keeps the leftover only.
    driver.filter("f-warned", "").await;
    let orphans = driver
        .rows_with("f-orphaned", "true", json!([leftover_id]))
        .await;
    assert_eq!(orphans, json!([leftover_id]));
    driver.filter("f-orphaned", "").await;
    driver
        .until(
            &format!("return !!document.querySelector(\"{button}\");"),
            |shown| *shown == true,
        )
        .await;

    let screenshot = driver.call(reqwest::Method::GET, "/screenshot", None).await;
    let png = base64(screenshot.as_str().unwrap());
    assert_eq!(&png[1..4], b"PNG");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("dashboard screenshot: {}", path.display());

    driver
        .script(&format!(
            "document.querySelector(\"{button}\").click(); return true;"
        ))
        .await;
    tokio::time::timeout(Duration::from_secs(10), target)
        .await
        .expect("the dashboard's cancel stopped the task")
        .unwrap();
    let done = tracker
        .task(tracked::TaskId::from_u64(target_id).unwrap())
        .unwrap();
    // The task stopped when asked: its future returned, so it completed.
    assert_eq!(done.task.state, TaskState::Completed);
    forgets.abort();
    chatty.abort();
    driver.call(reqwest::Method::DELETE, "", None).await;
    server.shutdown().await;
}

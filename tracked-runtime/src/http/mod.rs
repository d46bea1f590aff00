//! The HTTP server: a JSON API over the tracker, `/metrics`, Server-Sent
//! Events and a dashboard page, on axum (feature `http`).
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /` | the dashboard: one self-contained page |
//! | `GET /tasks?type=&state=&owner=&name=&parent=&warned=&idle_ms=&orphaned=&lost_waker=&order=&limit=&cursor=` | a page of tasks by id, or with `order=finished` and a finished `state` the newest endings first |
//! | `GET /tasks/{id}?limit=` | one task with its progress log, its first children (100 unless `limit` says) and `children_total`; the rest are listed by `/tasks?parent={id}`, live ones, and with a finished `state` those that ended |
//! | `GET /tree` | live tasks in depth-first order with their depth |
//! | `GET /stats` | counters per type and duration histograms; with a journal, its writer's counters |
//! | `GET /catalogue` | the `#[tracked]` sites, their use and lint findings |
//! | `POST /tasks/{id}/cancel?timeout_ms=` | cancels a task |
//! | `POST /groups/{g}/cancel?timeout_ms=` | cancels a group (an owner) |
//! | `GET /events` | lifecycle events as Server-Sent Events |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /whoami` | what the presented token may do |
//! | `GET /openapi.json` | the OpenAPI description of all this |
//!
//! `type` is matched exactly: task types are case-sensitive strings
//! (`Network`, or a program's own `Gossip`), so a name that differs from a
//! known type only in case is a 400 naming that type, a type no task has
//! had yet gives an empty page, and `type=` with no value is a 400 (unless a
//! task has the empty type). `state`, a closed set, matches in any case.
//! An owner (`/groups/{g}/cancel`, `owner=`) is never empty: code may use
//! the empty owner, but the API does not address it as a group (a 400).
//!
//! Requests are served on the caller's runtime by axum's own connection
//! tasks; every answer is computed from the registry when asked, so nothing
//! here runs on the poll path of tracked tasks. [`serve_dedicated`] serves
//! them from a thread and runtime of its own instead, so that the API still
//! answers when every worker of the service's runtime is blocked: the
//! incident it is most needed in.
//!
//! # Authentication
//!
//! Bearer tokens (`Authorization: Bearer <token>`). Mutations always need
//! one; reads need one only with [`Config::require_token_for_reads`]. A
//! token may be scoped to an owner: it then sees and cancels only that
//! owner's tasks, and is answered 404 for every other task (see the
//! `auth` module docs for why 404 rather than 403).
//!
//! # Errors
//!
//! Every error is JSON, `{"error": "<reason>"}`: a parameter that is
//! unknown, repeated or malformed, or a path segment that is not text, is a
//! 400 naming it, an unknown path a 404, and a method an endpoint does not
//! take a 405 with an `Allow` header. The one exception is a request
//! whose head is too large for the HTTP parser (a query string of about
//! 100 KB): hyper answers it (414 or 431, with no body) before any handler
//! of ours sees it.

mod auth;
mod error;
#[cfg(feature = "journal")]
mod journal;
mod json;
mod params;
mod routes;
mod sse;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use auth::Scope;

use crate::prometheus::MetricsOptions;
use crate::{JoinHandle, TaskType, Tracker};

/// How long [`ServerHandle::shutdown`] waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How a server is bound and who may call it.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::http::Config;
///
/// let config = Config::new()
///     .bind(([127, 0, 0, 1], 9898).into())
///     .token("admin-secret")
///     .owner_token("tenant-7-secret", "tenant-7")
///     .require_token_for_reads(true);
/// # drop(config);
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    addr: SocketAddr,
    tokens: Vec<(String, Scope)>,
    reads_need_token: bool,
    metrics: MetricsOptions,
    declared: Option<Vec<TaskType>>,
    #[cfg(feature = "journal")]
    journal: Option<crate::journal::Journal>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: (Ipv4Addr::LOCALHOST, 0).into(),
            tokens: Vec::new(),
            reads_need_token: false,
            metrics: MetricsOptions::new(),
            declared: None,
            #[cfg(feature = "journal")]
            journal: None,
        }
    }
}

impl Config {
    /// Loopback on a free port, reads open, and an unscoped token generated
    /// at start unless [`Config::token`] gives one.
    pub fn new() -> Self {
        Config::default()
    }

    /// Where to listen. Default `127.0.0.1:0` (a free port). Binding beyond
    /// loopback exposes task names and errors: require tokens for reads then.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Accepts `token` for everything, reads and cancels.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push((token.into(), Scope::All));
        self
    }

    /// Accepts `token` for the tasks owned by `owner` only.
    pub fn owner_token(mut self, token: impl Into<String>, owner: impl Into<Arc<str>>) -> Self {
        self.tokens.push((token.into(), Scope::Owner(owner.into())));
        self
    }

    /// Whether reads (every `GET` but `/`, `/openapi.json`) need a token too.
    /// Default `false`: the server listens on loopback only.
    pub fn require_token_for_reads(mut self, required: bool) -> Self {
        self.reads_need_token = required;
        self
    }

    /// What `/metrics` writes; see [`MetricsOptions`].
    pub fn metrics(mut self, options: MetricsOptions) -> Self {
        self.metrics = options;
        self
    }

    /// Serves tasks that left the in-memory history from `journal`:
    /// `GET /tasks/{id}` and finished-state `GET /tasks` pages fall back to
    /// it, with the same owner scoping; `/metrics` writes its health (see
    /// [`MetricsOptions::journal`]).
    #[cfg(feature = "journal")]
    pub fn journal(mut self, journal: crate::journal::Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// What `/metrics` writes: the options given, with the journal's
    /// series for the journal given.
    #[cfg(feature = "journal")]
    fn metrics_options(&self) -> MetricsOptions {
        self.metrics.clone().or_journal(self.journal.as_ref())
    }

    #[cfg(not(feature = "journal"))]
    fn metrics_options(&self) -> MetricsOptions {
        self.metrics.clone()
    }

    /// The task types the program declares, for `/catalogue`'s lint.
    pub fn declared_types(mut self, types: impl IntoIterator<Item = TaskType>) -> Self {
        self.declared = Some(types.into_iter().collect());
        self
    }
}

/// Shared by every request.
pub(crate) struct AppState {
    pub(crate) tracker: Tracker,
    pub(crate) tokens: auth::Tokens,
    pub(crate) metrics: MetricsOptions,
    pub(crate) declared: Option<Vec<TaskType>>,
    /// Cancelled when the server stops, so that event streams end.
    pub(crate) stop: CancellationToken,
    #[cfg(feature = "journal")]
    pub(crate) journal: Option<crate::journal::Journal>,
}

/// The API's routes over `tracker`, to serve yourself or nest in your own
/// axum app. The tokens are `config`'s; none is generated here.
pub fn router(tracker: Tracker, config: &Config) -> Router {
    router_with(
        tracker,
        config,
        config.tokens.clone(),
        CancellationToken::new(),
    )
}

fn router_with(
    tracker: Tracker,
    config: &Config,
    tokens: Vec<(String, Scope)>,
    stop: CancellationToken,
) -> Router {
    let state = Arc::new(AppState {
        tracker,
        tokens: auth::Tokens {
            tokens,
            reads_need_token: config.reads_need_token,
        },
        metrics: config.metrics_options(),
        declared: config.declared.clone(),
        stop,
        #[cfg(feature = "journal")]
        journal: config.journal.clone(),
    });
    Router::new()
        .route("/", get(routes::dashboard))
        .route("/tasks", get(routes::list_tasks))
        .route("/tasks/{id}", get(routes::get_task))
        .route("/tasks/{id}/cancel", post(routes::cancel_task))
        .route("/groups/{group}/cancel", post(routes::cancel_group))
        .route("/tree", get(routes::tree))
        .route("/stats", get(routes::stats))
        .route("/catalogue", get(routes::catalogue))
        .route("/events", get(sse::events))
        .route("/metrics", get(routes::metrics))
        .route("/whoami", get(routes::whoami))
        .route("/openapi.json", get(routes::openapi))
        // After every route: it applies to those registered before it.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .with_state(state)
}

/// A running server; see [`serve`] and [`serve_dedicated`].
///
/// Dropping it leaves the server running until its task is cancelled (a
/// `Network` cancel or shutdown tier); [`ServerHandle::shutdown`] stops it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    token: String,
    stop: CancellationToken,
    task: JoinHandle<io::Result<()>>,
    /// Closed once a dedicated server's thread has dropped its runtime.
    thread: Option<oneshot::Receiver<()>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://<addr>`, where the dashboard is.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An unscoped token: the first one configured, or the one generated.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The dashboard URL with the token in its fragment, which the page
    /// reads and browsers never send to the server.
    pub fn dashboard_url(&self) -> String {
        format!("http://{}/#token={}", self.addr, self.token)
    }

    /// Stops accepting connections, ends event streams, waits up to two
    /// seconds for open requests, then drops what is left. A dedicated
    /// server's thread has ended when it returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
        if let Some(thread) = self.thread {
            // Its runtime ends once the work it handed to its blocking pool
            // (a listing, milliseconds) is done.
            let _ = thread.await;
        }
    }
}

/// Serves the API, `/metrics` and the dashboard for `tracker`, on a tracked
/// task (`tracked::http::server`, type `Network`) of the current runtime.
///
/// Prints nothing: the address and an unscoped token are on the handle. If
/// `config` gives no unscoped token, one is generated.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tracked::http::{serve, Config};
/// use tracked::Tracker;
///
/// let server = serve(Tracker::global().clone(), Config::new()).await?;
/// println!("dashboard: {}", server.dashboard_url());
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve(tracker: Tracker, config: Config) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.addr).await?;
    start(tracker, &config, listener, ())
}

/// Serves as [`serve`] does, from a thread of its own (`tracked-http`) in a
/// single-threaded runtime, so that tasks blocking the application's worker
/// threads cannot stop it answering. That is where an operator's API
/// belongs: on a runtime whose workers are all stuck in blocking calls, a
/// server spawned there accepts no connection, exactly when the tasks that
/// block are what one needs to see.
///
/// Returns once it listens. The thread ends when the server does
/// ([`ServerHandle::shutdown`], or its task cancelled); requests' reads of
/// the tracker run on that runtime's blocking pool.
///
/// # Errors
///
/// When the thread or its runtime cannot be created, or the address cannot
/// be bound.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tracked::http::{serve_dedicated, Config};
/// use tracked::Tracker;
///
/// let server = serve_dedicated(Tracker::global().clone(), Config::new())?;
/// println!("dashboard: {}", server.dashboard_url());
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub fn serve_dedicated(tracker: Tracker, config: Config) -> io::Result<ServerHandle> {
    let (started, handle) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("tracked-http".into())
        .spawn(move || run_dedicated(tracker, config, started))?;
    handle.recv().unwrap_or_else(|_| {
        Err(io::Error::other(
            "the server's thread ended before it listened",
        ))
    })
}

/// A dedicated server's thread: builds its runtime, starts the server and
/// sends its handle (or why there is none), then runs it until its task
/// ends. The runtime is built here, not by the caller, which may be async
/// code, where a runtime cannot be dropped.
fn run_dedicated(
    tracker: Tracker,
    config: Config,
    started: mpsc::SyncSender<io::Result<ServerHandle>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let (gone, thread) = oneshot::channel::<()>();
    // Dropped when the server's task ends in any way, which wakes the
    // thread below.
    let (ended, wait) = oneshot::channel::<()>();
    let server = runtime.block_on(async {
        let listener = TcpListener::bind(config.addr).await?;
        start(tracker, &config, listener, ended)
    });
    let listens = server.is_ok();
    let server = server.map(|server| ServerHandle {
        thread: Some(thread),
        ..server
    });
    if started.send(server).is_ok() && listens {
        let _ = runtime.block_on(wait);
    }
    drop(runtime);
    drop(gone);
}

/// Serves on `listener` from a tracked task of the current runtime, which
/// holds `held` until it ends.
fn start(
    tracker: Tracker,
    config: &Config,
    listener: TcpListener,
    held: impl Send + 'static,
) -> io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let mut tokens = config.tokens.clone();
    let token = match tokens.iter().find(|(_, scope)| *scope == Scope::All) {
        Some((token, _)) => token.clone(),
        None => {
            let token = auth::generate_token();
            tokens.push((token.clone(), Scope::All));
            token
        }
    };
    let stop = CancellationToken::new();
    let app = router_with(tracker.clone(), config, tokens, stop.clone());
    let shutdown = stop.clone();
    let server = tracker.task_builder("tracked::http::server", TaskType::NETWORK);
    let task = server.service().spawn(async move {
        let _held = held;
        // Stops gracefully on `ServerHandle::shutdown`, or when its own task
        // is cancelled (a `Network` cancel or shutdown tier); either way open
        // event streams end too.
        let cancelled = crate::current()
            .map(|task| task.cancellation_token())
            .unwrap_or_default();
        let signal = async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = cancelled.cancelled() => shutdown.cancel(),
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
    });
    Ok(ServerHandle {
        addr,
        token,
        stop,
        task,
        thread: None,
    })
}

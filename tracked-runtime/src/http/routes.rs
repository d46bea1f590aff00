//! The JSON endpoints: tasks, one task, the tree, stats, the catalogue,
//! cancels, and who the caller is.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::auth::{Caller, Scope};
use super::error::{ApiError, ApiResult};
use super::json::{CancelJson, StatsJson, TaskJson, WatchdogJson};
use super::params::{self, pairs, segment, ListParams, Pairs, Segment};
use super::AppState;
use crate::record::Record;
use crate::{Query, TaskSnapshot};

/// Nodes `GET /tree` returns at most.
const MAX_TREE_NODES: usize = 5000;

pub(crate) async fn list_tasks(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Json<Value>> {
    let caller = state.tokens.caller(&headers)?;
    let p = ListParams::parse(&state.tracker, &pairs(query)?)?;
    let mut q = Query::new();
    match p.ty {
        Some(Some(ty)) => q = q.ty(ty),
        // A type this tracker never saw has no tasks.
        Some(None) => return Ok(page(Vec::new(), None, p.limit)),
        None => {}
    }
    if let Some(st) = p.state {
        q = q.state(st);
    }
    if let Some(name) = &p.name {
        q = q.name_prefix(name.as_str());
    }
    if let Some(parent) = p.parent {
        q = q.parent(parent);
    }
    if let Some(warned) = p.warned {
        q = q.warned(warned);
    }
    if let Some(idle) = p.idle {
        q = q.idle_for(idle);
    }
    if let Some(orphaned) = p.orphaned {
        q = q.orphaned(orphaned);
    }
    if let Some(lost) = p.lost_waker {
        q = q.lost_waker(lost);
    }
    match (caller.owner(), &p.owner) {
        (Some(mine), Some(asked)) if **mine != **asked => {
            return Ok(page(Vec::new(), None, p.limit));
        }
        (Some(mine), _) => q = q.owner(&**mine),
        (None, Some(asked)) => q = q.owner(asked.as_str()),
        (None, None) => {}
    }
    if p.by_end {
        // The newest endings in memory, on one page: the order a reader of
        // "latest failures" wants, which ids do not follow.
        let limit = p.limit;
        let json = off_worker(move || {
            let tracker = &state.tracker;
            let tasks = tracker.finished(&q.limit(limit));
            let json = tasks.iter().map(|t| TaskJson::new(tracker, t, false));
            json.map(|t| serde_json::to_value(t).unwrap_or(Value::Null))
                .collect()
        })
        .await?;
        return Ok(page(json, None, limit));
    }
    // Pages are ordered by id, so a cursor (the last id seen) stays valid
    // while tasks come and go: a walk over every page sees each task that
    // was live (or in history) for the whole walk exactly once. Only the
    // page and one more (to tell whether there is a next page) are turned
    // into JSON, not every match: the same holds after merging with the
    // journal, whose rows come in the same order.
    let finished = p.state.is_some_and(|s| s.is_finished());
    let (cursor, take) = (p.cursor, p.limit.saturating_add(1));
    let shared = Arc::clone(&state);
    let mut rows: Vec<(u64, Value)> = off_worker(move || {
        let tracker = &shared.tracker;
        let tasks = if finished {
            tracker.finished_page(&q, cursor, take)
        } else {
            tracker.live_page(&q, cursor, take)
        };
        tasks
            .iter()
            .map(|t| {
                let json = serde_json::to_value(TaskJson::new(tracker, t, false));
                (t.id.as_u64(), json.unwrap_or(Value::Null))
            })
            .collect()
    })
    .await?;
    #[allow(unused_mut)]
    let mut journal_more = false;
    #[cfg(feature = "journal")]
    if let Some(journal) = (state.journal.as_ref()).filter(|_| finished && p.journal_can_answer()) {
        // Tasks that left history: merge by id, the in-memory copy first.
        let (older, more) = super::journal::finished(journal, &caller, &p).await?;
        journal_more = more;
        let known: std::collections::HashSet<u64> = rows.iter().map(|r| r.0).collect();
        rows.extend(older.into_iter().filter(|(id, _)| !known.contains(id)));
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    }
    let more = rows.len() > p.limit || journal_more;
    rows.truncate(p.limit);
    let next = more.then(|| rows.last().map(|r| r.0.to_string())).flatten();
    let json = rows.into_iter().map(|r| r.1).collect();
    Ok(page(json, next, p.limit))
}

/// Runs `work`, a walk over the tracker's tasks and the JSON of what it
/// found, on tokio's blocking pool rather than on the runtime worker that
/// took the request: with many tasks it takes milliseconds (a tree of
/// 100,000 about half a second), which would hold up every task scheduled
/// on that worker. The registry's own locks are held for microseconds.
async fn off_worker<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> ApiResult<R> {
    // Untracked: the API's own work stays out of the listings it answers.
    // tracked: allow(untracked-spawn) -- not one of the service's tasks.
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed while reading the tracker: {e}"),
        )
    })
}

fn page(tasks: Vec<Value>, next_cursor: Option<String>, limit: usize) -> Json<Value> {
    Json(json!({ "tasks": tasks, "next_cursor": next_cursor, "limit": limit }))
}

pub(crate) async fn get_task(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Segment,
    query: Pairs,
) -> ApiResult<Json<Value>> {
    let caller = state.tokens.caller(&headers)?;
    let raw = segment(path)?;
    let limit = params::children_limit(&pairs(query)?)?;
    let id = params::task_id(&raw)?;
    let shared = Arc::clone(&state);
    let seen = caller.clone();
    let found = off_worker(move || {
        let tracker = &shared.tracker;
        let detail = tracker.task(id).filter(|d| seen.may_see(&d.task))?;
        let children: Vec<&TaskSnapshot> =
            detail.children.iter().filter(|c| seen.may_see(c)).collect();
        let task = TaskJson::new(tracker, &detail.task, true);
        let listed = children.iter().take(limit);
        let listed = listed.map(|c| TaskJson::new(tracker, c, false));
        Some(with_children(task, listed, children.len(), limit))
    })
    .await?;
    if let Some(json) = found {
        return Ok(Json(json));
    }
    #[cfg(feature = "journal")]
    if let Some(journal) = &state.journal {
        let found = super::journal::task(journal, &caller, id.as_u64(), limit).await?;
        if let Some(json) = found {
            return Ok(Json(json));
        }
    }
    Err(no_task(&raw))
}

/// One task's answer: the task, the children listed (the first `limit` the
/// caller may see), and how many it has in all, so that a client knows to
/// page through the rest with `/tasks?parent=`.
pub(crate) fn with_children<T: Serialize>(
    task: impl Serialize,
    listed: impl Iterator<Item = T>,
    total: usize,
    limit: usize,
) -> Value {
    let children: Vec<T> = listed.collect();
    json!({
        "task": task,
        "children": children,
        "children_total": total,
        "limit": limit,
    })
}

fn no_task(raw: &str) -> ApiError {
    ApiError::not_found(format!(
        "no task {raw}: it never existed, left history, or belongs to another owner"
    ))
}

pub(crate) async fn tree(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Json<Value>> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    off_worker(move || {
        // For a scoped caller, other owners' tasks are skipped and their
        // visible descendants move up.
        let visible = |r: &Record| caller.may_see_owned_by(r.owner().map(|o| &**o));
        let (nodes, truncated) = state.tracker.tree_walk(MAX_TREE_NODES, visible);
        let nodes: Vec<Value> = nodes
            .iter()
            .map(|(depth, task)| {
                let task = TaskJson::new(&state.tracker, task, false);
                json!({ "depth": depth, "task": task })
            })
            .collect();
        Json(json!({ "nodes": nodes, "truncated": truncated }))
    })
    .await
}

pub(crate) async fn stats(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Json<StatsJson>> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    caller.require_unscoped()?;
    off_worker(move || {
        let stats = state.tracker.stats();
        let durations = state.tracker.durations();
        let watchdog = WatchdogJson::new(&state.tracker);
        let json = StatsJson::new(&stats, &durations, watchdog);
        #[cfg(feature = "journal")]
        let json = json.journal(state.journal.as_ref());
        Json(json)
    })
    .await
}

pub(crate) async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Response> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    caller.require_unscoped()?;
    let text =
        off_worker(move || crate::prometheus::render(&state.tracker, &state.metrics)).await?;
    Ok((
        [(header::CONTENT_TYPE, crate::prometheus::CONTENT_TYPE)],
        text,
    )
        .into_response())
}

pub(crate) async fn catalogue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Json<Value>> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    caller.require_unscoped()?;
    off_worker(move || catalogue_json(&state)).await
}

/// The catalogue's sites with their use by this tracker's tasks, and the
/// lint's findings.
fn catalogue_json(state: &AppState) -> Json<Value> {
    let catalogue = crate::catalogue();
    let status = match catalogue.status() {
        crate::CatalogueStatus::Collected(_) => "collected",
        crate::CatalogueStatus::Empty => "empty",
        crate::CatalogueStatus::NotCollected => "not_collected",
    };
    let sites: Vec<Value> = catalogue
        .usage(&state.tracker)
        .iter()
        .map(|u| {
            json!({
                "name": u.site.name(),
                "type": u.site.ty().name(),
                "kind": u.site.kind().as_str(),
                "module_path": u.site.module_path(),
                "location": u.site.location().to_string(),
                "tier": u.site.tier(),
                "has_run": u.site.has_run(),
                "live": u.live,
                "finished": u.finished,
            })
        })
        .collect();
    let findings: Vec<Value> = catalogue
        .lint(state.declared.as_deref())
        .iter()
        .map(|f| json!({ "rule": f.rule(), "message": f.to_string() }))
        .collect();
    Json(json!({
        "status": status,
        "sites": sites,
        "findings": findings,
    }))
}

pub(crate) async fn cancel_task(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Segment,
    query: Pairs,
) -> ApiResult<Json<CancelJson>> {
    let caller = state.tokens.caller(&headers)?;
    caller.require_token()?;
    let raw = segment(path)?;
    let timeout = params::cancel_timeout(&pairs(query)?)?;
    let id = params::task_id(&raw)?;
    let ended = |state| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("task {raw} already ended ({state})"),
        )
    };
    let Some(detail) = state.tracker.task(id).filter(|d| caller.may_see(&d.task)) else {
        // Left memory: the journal may say how it ended, as `GET` does.
        #[cfg(feature = "journal")]
        if let Some(journal) = &state.journal {
            let found = super::journal::find(journal, &caller, id.as_u64()).await?;
            if let Some(detail) = found.filter(|d| d.task.state.is_finished()) {
                return Err(ended(detail.task.state));
            }
        }
        return Err(no_task(&raw));
    };
    if detail.task.state.is_finished() {
        return Err(ended(detail.task.state));
    }
    let report = state.tracker.cancel_task(id, timeout).await;
    Ok(Json((&report).into()))
}

pub(crate) async fn cancel_group(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Segment,
    query: Pairs,
) -> ApiResult<Json<CancelJson>> {
    let caller = state.tokens.caller(&headers)?;
    caller.require_token()?;
    let group = params::owner(segment(path)?)?;
    let timeout = params::cancel_timeout(&pairs(query)?)?;
    if caller.owner().is_some_and(|mine| **mine != *group) {
        return Err(ApiError::not_found(format!(
            "no group `{group}` for this token"
        )));
    }
    let report = state.tracker.group(group).cancel(timeout).await;
    Ok(Json((&report).into()))
}

pub(crate) async fn whoami(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Json<Value>> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    Ok(Json(match caller {
        Caller::Anonymous => json!({ "authenticated": false, "owner": null, "can_cancel": false }),
        Caller::Token(Scope::All) => {
            json!({ "authenticated": true, "owner": null, "can_cancel": true })
        }
        Caller::Token(Scope::Owner(owner)) => {
            json!({ "authenticated": true, "owner": &*owner, "can_cancel": true })
        }
    }))
}

pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub(crate) async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything the page needs is in it; the policy makes sure of it.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
            ),
        ],
        include_str!("dashboard.html"),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// An endpoint asked with a method it does not take. Axum adds the `Allow`
/// header to this answer, as to its own 405.
pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("this endpoint does not take {method}; the Allow header says which methods it does, and /openapi.json describes it"),
    )
}

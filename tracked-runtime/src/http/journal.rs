//! `GET /tasks` and `GET /tasks/{id}` reach into the journal for tasks that
//! left the in-memory history, with the same owner isolation.
//!
//! Only this process run's tasks are served (task ids are per run); the
//! journal answers for other instances through [`Journal::tasks`].

use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::params::ListParams;
use super::routes::with_children;
use crate::journal::{
    Journal, JournalProgress, JournalQuery, JournalTask, JournalTaskDetail, MAX_LIMIT,
};

/// A journaled task in the shape of the live ones, marked `"source": "journal"`.
pub(crate) fn task_json(t: &JournalTask, log: Option<&[JournalProgress]>) -> Value {
    let ms = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let labels: serde_json::Map<String, Value> = t
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let progress = t.progress.map(|percent| {
        let last = log.and_then(|l| l.last());
        json!({
            "percent": percent,
            "message": last.and_then(|p| p.message.clone()),
            "updated_at_ms": last.map(|p| ms(p.at)),
            "log": log.map(|l| l.iter().map(|p| json!({
                "at_ms": ms(p.at),
                "percent": p.percent,
                "message": p.message,
            })).collect::<Vec<_>>()),
        })
    });
    json!({
        "id": t.id,
        "parent": t.parent,
        "name": t.name,
        "type": t.ty,
        "owner": t.owner,
        "labels": labels,
        "site": t.site,
        "kind": t.kind,
        "state": t.state.as_str(),
        "spawned_at_ms": ms(t.spawned_at),
        "first_polled_at_ms": t.started_at.map(ms),
        "finished_at_ms": t.finished_at.map(ms),
        "age_ms": age_ms(t),
        "duration_ms": t.duration.map(|d| d.as_millis() as u64),
        "progress": progress,
        "error": t.error,
        "source": "journal",
    })
}

/// How long a journaled task has lived: its duration once it ended, else
/// its time since spawn by the wall clock.
fn age_ms(t: &JournalTask) -> u64 {
    let age = t.duration.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(t.spawned_at)
            .unwrap_or_default()
    });
    age.as_millis() as u64
}

/// Whether `caller` may see `t`: a journaled owner holding NUL or over
/// 1 KiB was written changed, so a scoped caller's owner is compared as
/// the journal writes it.
fn visible(caller: &Caller, t: &JournalTask) -> bool {
    caller
        .owner()
        .is_none_or(|owner| t.owner.as_deref() == Some(&*crate::journal::as_written(owner)))
}

fn unavailable(e: crate::journal::JournalError) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        format!("the task left memory and the journal cannot be read: {e}"),
    )
}

/// One task from the journal in JSON, or `None` if it is not there or not
/// the caller's to see (the same 404 as for live tasks).
pub(crate) async fn task(
    journal: &Journal,
    caller: &Caller,
    id: u64,
    limit: usize,
) -> Result<Option<Value>, ApiError> {
    let Some(detail) = find(journal, caller, id).await? else {
        return Ok(None);
    };
    let children: Vec<&JournalTask> = detail
        .children
        .iter()
        .filter(|c| visible(caller, c))
        .collect();
    // The journal reads at most `MAX_LIMIT` children: past that, count them.
    let total = if detail.children.len() < MAX_LIMIT {
        children.len()
    } else {
        children_total(journal, caller, id).await?
    };
    let task = task_json(&detail.task, Some(&detail.progress));
    let listed = children.iter().take(limit).map(|c| task_json(c, None));
    Ok(Some(with_children(task, listed, total, limit)))
}

/// How many children of `id` the journal holds that `caller` may see.
async fn children_total(journal: &Journal, caller: &Caller, id: u64) -> Result<usize, ApiError> {
    let mut q = JournalQuery::new().instance(journal.instance()).parent(id);
    if let Some(owner) = caller.owner() {
        q = q.owner(&**owner);
    }
    let total = journal.count(&q).await.map_err(unavailable)?;
    Ok(usize::try_from(total).unwrap_or(usize::MAX))
}

/// One task of this run from the journal, if it is there and the caller's
/// to see.
///
/// A task can leave the in-memory history before the writer has written
/// its end (history full of newer tasks, or past its time-to-live, within
/// one flush interval): when the journal holds events not written yet, it
/// is flushed and asked again, so such a task is found rather than a 404.
pub(crate) async fn find(
    journal: &Journal,
    caller: &Caller,
    id: u64,
) -> Result<Option<JournalTaskDetail>, ApiError> {
    let mut found = journal
        .task(journal.instance(), id)
        .await
        .map_err(unavailable)?;
    if found.is_none() && journal.stats().pending > 0 {
        journal.flush().await.map_err(unavailable)?;
        found = journal
            .task(journal.instance(), id)
            .await
            .map_err(unavailable)?;
    }
    Ok(found.filter(|detail| visible(caller, &detail.task)))
}

/// Finished tasks below the cursor from the journal, highest id first, and
/// whether more follow; filtered as `p` and the caller's scope say.
pub(crate) async fn finished(
    journal: &Journal,
    caller: &Caller,
    p: &ListParams,
) -> Result<(Vec<(u64, Value)>, bool), ApiError> {
    let mut q = JournalQuery::new()
        .before_id(journal.instance(), p.cursor)
        .finished()
        .limit(p.limit);
    if let Some(Some(ty)) = p.ty {
        q = q.ty(ty.name());
    }
    if let Some(state) = p.state {
        q = q.state(state);
    }
    if let Some(name) = &p.name {
        q = q.name_prefix(name.clone());
    }
    if let Some(parent) = p.parent {
        q = q.parent(parent.as_u64());
    }
    match (caller.owner(), &p.owner) {
        (Some(mine), _) => q = q.owner(&**mine),
        (None, Some(asked)) => q = q.owner(asked.clone()),
        (None, None) => {}
    }
    let page = journal.tasks(&q).await.map_err(unavailable)?;
    let rows = page
        .tasks
        .iter()
        .map(|t| (t.id, task_json(t, None)))
        .collect();
    Ok((rows, page.next.is_some()))
}

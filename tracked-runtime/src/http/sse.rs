//! `GET /events`: the tracker's event stream as Server-Sent Events.
//!
//! Each event is `event: <kind>` (spawned, started, progress,
//! cancel_requested, finished, warning) with the task as JSON in `data`. A
//! client that falls behind gets `event: missed` with how many it lost. A
//! scoped caller only gets events of its owner's tasks: the owner of each
//! new id is looked up once with [`Tracker::task`] and remembered until the task
//! ends, so this costs a registry scan per task, on the server's thread.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;

use super::auth::Caller;
use super::error::ApiResult;
use super::json::EventJson;
use super::routes::{pairs, Pairs};
use super::{params, AppState};
use crate::{EventKind, EventStream, Received, TaskId, Tracker};

struct Subscription {
    events: EventStream,
    tracker: Tracker,
    caller: Caller,
    /// For a scoped caller: whether each task seen so far is visible.
    visible: HashMap<TaskId, bool>,
    stop: tokio_util::sync::CancellationToken,
}

pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Pairs,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let caller = state.tokens.caller(&headers)?;
    params::none(&pairs(query)?)?;
    // Subscribed before the response starts, so a client that has the
    // headers misses nothing that happens afterwards.
    let subscription = Subscription {
        events: state.tracker.subscribe(),
        tracker: state.tracker.clone(),
        caller,
        visible: HashMap::new(),
        stop: state.stop.clone(),
    };
    let hello = SseEvent::default().event("subscribed").data("{}");
    let stream =
        futures_util::stream::unfold((Some(hello), subscription), |(hello, mut sub)| async move {
            if let Some(hello) = hello {
                return Some((Ok(hello), (None, sub)));
            }
            let next = sub.next().await?;
            Some((Ok(next), (None, sub)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl Subscription {
    /// The next event this caller may see; `None` when the server stops or
    /// the tracker is gone, which ends the response.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            let received = tokio::select! {
                received = self.events.recv() => received?,
                () = self.stop.cancelled() => return None,
            };
            match received {
                Received::Missed(missed) => {
                    return Some(
                        SseEvent::default()
                            .event("missed")
                            .data(format!("{{\"missed\":{missed}}}")),
                    )
                }
                Received::Event(event) => {
                    if !self.may_see(event.id, &event.kind) {
                        continue;
                    }
                    let json = EventJson::new(&self.tracker, &event);
                    let data = serde_json::to_string(&json).unwrap_or_default();
                    return Some(SseEvent::default().event(json.kind()).data(data));
                }
            }
        }
    }

    fn may_see(&mut self, id: TaskId, kind: &EventKind) -> bool {
        if self.caller.owner().is_none() {
            return true;
        }
        let visible = match self.visible.get(&id) {
            Some(&known) => known,
            None => {
                let known = self.lookup(id);
                self.visible.insert(id, known);
                known
            }
        };
        if matches!(kind, EventKind::Finished { .. }) {
            self.visible.remove(&id);
        }
        visible
    }

    fn lookup(&self, id: TaskId) -> bool {
        self.tracker
            .task(id)
            .is_some_and(|detail| self.caller.may_see(&detail.task))
    }
}

//! `GET /events`: the tracker's event stream as Server-Sent Events.
//!
//! Each event is `event: <kind>` (spawned, started, progress,
//! cancel_requested, finished, warning) with the task as JSON in `data`. A
//! client that falls behind gets `event: missed` with how many it lost. A
//! scoped caller only gets events of its owner's tasks, told by the owner
//! each event carries: no lookup, so a task that ended (and left history)
//! before its events are streamed is still shown to its owner. Its `missed`
//! says `null`, once per gap: how many events it lost counts every owner's,
//! which would tell it how busy the others are, and not which were its own.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;

use super::auth::Caller;
use super::error::ApiResult;
use super::json::EventJson;
use super::params::{self, pairs, Pairs};
use super::AppState;
use crate::{EventStream, Received, Tracker};

struct Subscription {
    events: EventStream,
    tracker: Tracker,
    caller: Caller,
    stop: tokio_util::sync::CancellationToken,
    /// A scoped caller was told of the gap it is in (see the module docs).
    gap_told: bool,
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
        stop: state.stop.clone(),
        gap_told: false,
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
                    let data = if self.caller.owner().is_none() {
                        format!("{{\"missed\":{missed}}}")
                    } else if !std::mem::replace(&mut self.gap_told, true) {
                        "{\"missed\":null}".to_owned()
                    } else {
                        continue;
                    };
                    return Some(SseEvent::default().event("missed").data(data));
                }
                Received::Event(event) => {
                    if !self.caller.may_see_owned_by(event.owner.as_deref()) {
                        continue;
                    }
                    self.gap_told = false;
                    let json = EventJson::new(&self.tracker, &event);
                    let data = serde_json::to_string(&json).unwrap_or_default();
                    return Some(SseEvent::default().event(json.kind()).data(data));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Caller, Subscription};
    use crate::http::auth::Scope;
    use crate::{TaskType, Tracker};

    /// A subscription of a caller scoped to the owner `mine`.
    fn mine(tracker: &Tracker) -> Subscription {
        Subscription {
            events: tracker.subscribe(),
            tracker: tracker.clone(),
            caller: Caller::Token(Scope::Owner("mine".into())),
            stop: tokio_util::sync::CancellationToken::new(),
            gap_told: false,
        }
    }

    /// What `subscription` streams up to a `finished` event, one entry per
    /// event.
    async fn until_finished(subscription: &mut Subscription) -> Vec<String> {
        let mut streamed: Vec<String> = Vec::new();
        while !streamed.iter().any(|e| e.contains("event: finished")) {
            let event = tokio::time::timeout(Duration::from_secs(10), subscription.next())
                .await
                .expect("the owner's events are streamed")
                .expect("the stream goes on");
            streamed.push(format!("{event:?}"));
        }
        streamed
    }

    /// A scoped subscriber sees its owner's task even when the task ended,
    /// and left a history that keeps nothing, before its events were read.
    #[tokio::test]
    async fn a_scoped_stream_shows_a_task_already_gone_from_history() {
        let tracker = Tracker::builder().history_capacity(0).build();
        let mut subscription = mine(&tracker);
        let theirs = tracker.group("theirs");
        theirs
            .spawn("theirs::job", TaskType::GENERAL, async {})
            .await
            .unwrap();
        let mine = tracker
            .group("mine")
            .spawn("mine::job", TaskType::GENERAL, async {});
        let id = mine.id();
        mine.await.unwrap();
        assert!(tracker.task(id).is_none(), "history keeps nothing");
        let streamed = until_finished(&mut subscription).await.join("\n");
        assert!(streamed.contains("mine::job"), "{streamed}");
        assert!(!streamed.contains("theirs::job"), "{streamed}");
    }

    /// A scoped subscriber that falls behind is told so once per gap,
    /// without the count, which is of every owner's events.
    #[tokio::test]
    async fn a_scoped_stream_is_told_of_a_gap_without_the_count() {
        let tracker = Tracker::new();
        let mut subscription = mine(&tracker);
        // Far more events than the stream holds, none of them the caller's.
        for _ in 0..10_000 {
            tracker
                .spawn("theirs::job", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        tracker
            .group("mine")
            .spawn("mine::job", TaskType::GENERAL, async {})
            .await
            .unwrap();
        let streamed = until_finished(&mut subscription).await;
        let missed: Vec<_> = streamed.iter().filter(|e| e.contains("missed")).collect();
        assert_eq!(missed.len(), 1, "{streamed:#?}");
        assert!(missed[0].contains(r#"{\"missed\":null}"#), "{missed:?}");
        let owned = r#"\"owner\":\"mine\""#;
        assert!(streamed.iter().any(|e| e.contains(owned)), "{streamed:#?}");
    }
}

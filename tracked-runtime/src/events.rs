//! The lifecycle event stream: spawn, start, progress, finish, cancel, warnings.
//!
//! Events go through a bounded broadcast channel. A tracker with no
//! subscriber pays one relaxed load per would-be event; with subscribers, a
//! slow one never slows tasks down: it loses the oldest events and is told
//! how many on its next receive.
//!
//! A task's `Finished` event is its last: a progress report, a cancel
//! request or a watchdog warning racing the end is sent before it or not
//! at all (each checks the task's state while holding the record's
//! progress, which the end holds while it sets the state and sends
//! `Finished`), so a subscriber can forget a task at its end.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use tokio::sync::broadcast;

use crate::record::{Label, Site, SpawnKind, TaskName, TaskState};
use crate::{TaskId, TaskType};

/// Events buffered per subscriber before the oldest are dropped.
const CAPACITY: usize = 4096;

/// What happened to a task.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// It was spawned.
    Spawned {
        /// The task that spawned it.
        parent: Option<TaskId>,
        /// How it was spawned.
        kind: SpawnKind,
        /// The labels attached at spawn.
        labels: Box<[Label]>,
    },
    /// It was polled for the first time.
    Started,
    /// It reported progress.
    Progress {
        /// The percentage, 0 to 100.
        percent: u8,
        /// The message, if any.
        message: Option<String>,
    },
    /// Cancellation was requested (by a group, type or shutdown cancel).
    CancelRequested,
    /// It ended.
    Finished {
        /// How: completed, failed, panicked or cancelled.
        state: TaskState,
        /// The error or panic text.
        error: Option<String>,
    },
    /// The watchdog warned about it.
    Warning(Warning),
}

/// What the watchdog noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Alive longer than its type's threshold.
    LongRunning {
        /// The threshold crossed.
        threshold: std::time::Duration,
    },
    /// Inside one poll longer than its type's threshold: blocking a worker.
    LongPoll {
        /// The threshold crossed.
        threshold: std::time::Duration,
    },
    /// Not polled for longer than its type's threshold: waiting for
    /// something that may never come, or never started.
    Idle {
        /// The threshold crossed.
        threshold: std::time::Duration,
    },
    /// Lost its waker: live, not woken, and nothing holds a way to wake it,
    /// so it will never be polled again (trackers that follow wakes). Given
    /// when two scans in a row see it so, with no poll between.
    LostWaker,
}

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it happened.
    pub at: Instant,
    /// The task.
    pub id: TaskId,
    /// The task's name, when the event happened: a task a `#[tracked]` fn
    /// claims at its first poll takes the fn's name and type, so its spawn
    /// event (and a first poll's `Started`) may carry the spawn's. Follow a
    /// task by [`id`](Event::id).
    pub name: TaskName,
    /// The task's type, when the event happened (see [`name`](Event::name)).
    pub ty: TaskType,
    /// Where the task was spawned.
    pub site: Site,
    /// The task's owner, if it has one.
    pub owner: Option<Arc<str>>,
    /// What happened.
    pub kind: EventKind,
}

/// A subscription to a tracker's events.
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<Event>,
    subscribers: Arc<AtomicUsize>,
}

/// What [`EventStream::recv`] returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// The next event.
    Event(Event),
    /// This subscriber fell behind and this many events were dropped for it;
    /// the stream goes on with the oldest event still buffered.
    Missed(u64),
}

impl EventStream {
    /// The next event, or `None` once the tracker is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.receiver.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Received::Missed(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.receiver.try_recv() {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Received::Missed(missed)),
            Err(_) => None,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bounded queue of every event for one consumer that must not lose
/// events to a ring buffer's overwriting (the journal's writer): when it is
/// full, in events or in bytes, new events are counted as dropped instead.
/// Its bytes count the events the consumer received and holds still, so
/// that one bound covers both.
#[cfg_attr(not(feature = "journal"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct EventQueue {
    receiver: tokio::sync::mpsc::Receiver<Queued>,
    sink: Arc<Sink>,
    sinks: Arc<RwLock<Vec<Arc<Sink>>>>,
    subscribers: Arc<AtomicUsize>,
}

/// An event in an [`EventQueue`], with the [`weight`] it holds of the
/// queue's bytes: weighed once, when queued, and given back as it was
/// weighed. Only the queue carries it; the broadcast event stays as it is.
#[cfg_attr(not(feature = "journal"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) event: Event,
    pub(crate) weight: usize,
}

#[derive(Debug)]
struct Sink {
    sender: tokio::sync::mpsc::Sender<Queued>,
    dropped: AtomicU64,
    /// The [`weight`] of the events queued and of those the consumer holds
    /// still (it [releases](EventQueue::release) them when done).
    bytes: AtomicUsize,
    max_bytes: usize,
}

impl Sink {
    /// Queues `event`, or counts it dropped if the queue is full in events
    /// or in bytes.
    fn offer(&self, event: Event) {
        let weight = weight(&event);
        // Relaxed: the count is its own only synchronisation; added before
        // the check, so that senders racing for the last bytes cannot all
        // take them.
        let held = self.bytes.fetch_add(weight, Ordering::Relaxed) + weight;
        if held > self.max_bytes || self.sender.try_send(Queued { event, weight }).is_err() {
            self.bytes.fetch_sub(weight, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Roughly the memory `event` holds: its own size and its texts' lengths.
#[cfg_attr(not(feature = "journal"), allow(dead_code))]
pub(crate) fn weight(event: &Event) -> usize {
    let texts = match &event.kind {
        EventKind::Spawned { labels, .. } => labels.iter().map(|(k, v)| k.len() + v.len()).sum(),
        EventKind::Progress { message, .. } => message.as_ref().map_or(0, String::len),
        EventKind::Finished { error, .. } => error.as_ref().map_or(0, String::len),
        EventKind::Started | EventKind::CancelRequested | EventKind::Warning(_) => 0,
    };
    std::mem::size_of::<Event>()
        + event.name.len()
        + event.owner.as_ref().map_or(0, |o| o.len())
        + texts
}

/// How many events an [`EventQueue`] holds, read from anywhere.
#[cfg_attr(not(feature = "journal"), allow(dead_code))]
#[derive(Clone, Debug)]
pub(crate) struct QueueGauge(Arc<Sink>);

#[cfg_attr(not(feature = "journal"), allow(dead_code))]
impl QueueGauge {
    pub(crate) fn len(&self) -> usize {
        let sender = &self.0.sender;
        sender.max_capacity() - sender.capacity()
    }
}

#[cfg_attr(not(feature = "journal"), allow(dead_code))]
impl EventQueue {
    /// The next event, or `None` once the tracker is gone.
    pub(crate) async fn recv(&mut self) -> Option<Queued> {
        self.receiver.recv().await
    }

    /// The next event if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Queued> {
        self.receiver.try_recv().ok()
    }

    /// Events queued, not received yet.
    pub(crate) fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Whether no event is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.receiver.is_empty()
    }

    /// A reading of [`len`](Self::len) for other tasks than the receiver's.
    pub(crate) fn gauge(&self) -> QueueGauge {
        QueueGauge(self.sink.clone())
    }

    /// Events dropped because the queue was full, since the last call.
    pub(crate) fn take_dropped(&self) -> u64 {
        self.sink.dropped.swap(0, Ordering::Relaxed)
    }

    /// Gives back the [`weight`] of events received and now done with
    /// (the sum of their [`Queued::weight`]): until then they count
    /// against the queue's bytes.
    pub(crate) fn release(&self, bytes: usize) {
        self.sink.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The bytes the queue's bound counts now: events queued, and those
    /// received and not released.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.sink.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        let mut sinks = self.sinks.write().unwrap_or_else(|e| e.into_inner());
        sinks.retain(|s| !Arc::ptr_eq(s, &self.sink));
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sending side, owned by a tracker.
#[derive(Debug)]
pub(crate) struct Events {
    /// Made by the first [`subscribe`](Events::subscribe): its ring of
    /// [`CAPACITY`] slots is most of a tracker's memory (about 650 KB), which
    /// a tracker nobody subscribes to (one per test) need not hold.
    sender: OnceLock<broadcast::Sender<Event>>,
    subscribers: Arc<AtomicUsize>,
    /// Bounded queues; rarely more than one.
    sinks: Arc<RwLock<Vec<Arc<Sink>>>>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Events {
            sender: OnceLock::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
            sinks: Arc::default(),
        }
    }

    /// Whether the broadcast ring has been made.
    #[cfg(test)]
    pub(crate) fn has_ring(&self) -> bool {
        self.sender.get().is_some()
    }

    /// Whether anyone listens; checked before building an event.
    #[inline]
    pub(crate) fn wanted(&self) -> bool {
        // Relaxed: a subscriber that arrives concurrently may miss the event
        // being built, which is the same as subscribing a moment later.
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn send(&self, event: Event) {
        let streams = self
            .sender
            .get()
            .is_some_and(|sender| sender.receiver_count() > 0);
        {
            let sinks = self.sinks.read().unwrap_or_else(|e| e.into_inner());
            let Some((last, others)) = sinks.split_last() else {
                drop(sinks);
                if streams {
                    self.broadcast(event);
                }
                return;
            };
            for sink in others {
                sink.offer(event.clone());
            }
            if !streams {
                // The only copy left to make: move the event instead.
                return last.offer(event);
            }
            last.offer(event.clone());
        }
        self.broadcast(event);
    }

    fn broadcast(&self, event: Event) {
        if let Some(sender) = self.sender.get() {
            // An error only means every subscriber left meanwhile.
            let _ = sender.send(event);
        }
    }

    /// A queue of every event from now on, holding at most `capacity`
    /// events, and events of at most `max_bytes` (see [`weight`]) queued or
    /// not yet [released](EventQueue::release).
    #[cfg_attr(not(feature = "journal"), allow(dead_code))]
    pub(crate) fn queue(&self, capacity: usize, max_bytes: usize) -> EventQueue {
        let (sender, receiver) = tokio::sync::mpsc::channel(capacity.max(1));
        let sink = Arc::new(Sink {
            sender,
            dropped: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            max_bytes,
        });
        self.sinks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(sink.clone());
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventQueue {
            receiver,
            sink,
            sinks: self.sinks.clone(),
            subscribers: self.subscribers.clone(),
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventStream {
            receiver: self
                .sender
                .get_or_init(|| broadcast::Sender::new(CAPACITY))
                .subscribe(),
            subscribers: self.subscribers.clone(),
        }
    }
}

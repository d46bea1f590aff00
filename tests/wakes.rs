//! Wakes (`TrackerBuilder::wakes`): counts, self-wakes, scheduling delay,
//! lost wakers and the watchdog's warning about them, and a churn of
//! cross-thread wake-ups that must all arrive.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;
use tracked::{Query, TaskSnapshot, TaskState, TaskType, Tracker, Warning};

fn task(tracker: &Tracker, name: &str) -> TaskSnapshot {
    tracker
        .tasks(&Query::new().name_prefix(name))
        .into_iter()
        .chain(tracker.finished(&Query::new().name_prefix(name)))
        .next()
        .unwrap_or_else(|| panic!("no task {name}"))
}

/// A hand-written future that forgets to keep its waker: the bug a lost
/// waker comes from.
fn keeps_no_waker() -> impl Future<Output = ()> {
    poll_fn(|_| Poll::Pending)
}

fn wakes(tracker: &Tracker, name: &str) -> tracked::Wakes {
    task(tracker, name)
        .wakes
        .map(|wakes| *wakes)
        .expect("the tracker follows wakes")
}

#[tokio::test]
async fn each_wake_is_counted_and_the_poll_it_leads_to_takes_it() {
    let tracker = Tracker::builder().wakes(true).build();
    let notify = Arc::new(Notify::new());
    let waiting = Arc::clone(&notify);
    let handle = tracker.spawn("waiter", TaskType::GENERAL, async move {
        for _ in 0..3 {
            waiting.notified().await;
        }
    });
    for round in 1..=3 {
        // Current-thread runtime: the yield lets the task run until it
        // waits, with its waker in the `Notify`.
        tokio::task::yield_now().await;
        let before = wakes(&tracker, "waiter");
        assert_eq!((before.wakers, before.woken_at), (1, None));
        assert!(!before.lost_waker);
        notify.notify_one();
        let woken = wakes(&tracker, "waiter");
        assert_eq!(woken.wakes, round);
        assert!(woken.woken_at.is_some(), "woken, not polled yet");
        assert_eq!(woken.wakers, 0, "the Notify woke (and dropped) its clone");
        assert!(!woken.lost_waker, "a woken task is not lost");
        assert_eq!(woken.scheduled_polls, round - 1);
    }
    handle.await.unwrap();
    let done = wakes(&tracker, "waiter");
    assert_eq!(
        (done.wakes, done.self_wakes, done.scheduled_polls),
        (3, 0, 3)
    );
    assert_eq!(done.woken_at, None);
    assert!(!done.lost_waker);
    let delays = tracker.scheduling_delays();
    assert_eq!(
        delays[&TaskType::GENERAL].count(),
        3,
        "one per poll after a wake"
    );
    assert_eq!(delays[&TaskType::GENERAL].sum(), done.scheduled);
}

/// Returns `Pending` four times, each time after waking its task from
/// inside the poll, as a busy loop or an exhausted cooperative budget does.
fn spin_four_times() -> impl std::future::Future<Output = ()> {
    let mut left = 4;
    poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[tokio::test]
async fn a_task_that_wakes_itself_inside_its_poll_counts_self_wakes() {
    let tracker = Tracker::builder().wakes(true).build();
    tracker
        .spawn("spinner", TaskType::GENERAL, spin_four_times())
        .await
        .unwrap();
    let done = wakes(&tracker, "spinner");
    assert_eq!(
        (done.wakes, done.self_wakes, done.scheduled_polls),
        (4, 4, 4)
    );
    assert_eq!(task(&tracker, "spinner").polls, 5);
}

/// Spins four times, as `spin_four_times` does, as a `#[tracked]` fn.
#[tracked::tracked(type = "General")]
async fn spin() {
    spin_four_times().await;
}

/// A `#[tracked]` fn's poll is inside its task's: a wake from it wakes
/// the task from inside the task's poll too, and counts as a self-wake of
/// both, so a task busy-looping in the fns it awaits shows as one.
#[tokio::test]
async fn a_self_wake_inside_an_awaited_fn_is_its_tasks_too() {
    let tracker = Tracker::builder().wakes(true).build();
    tracker
        .spawn("outer", TaskType::GENERAL, spin())
        .await
        .unwrap();
    let (outer, inner) = (wakes(&tracker, "outer"), wakes(&tracker, "wakes::spin"));
    assert_eq!((inner.wakes, inner.self_wakes), (4, 4));
    assert_eq!((outer.wakes, outer.self_wakes), (4, 4));
}

#[tokio::test]
async fn only_a_task_nothing_can_wake_has_lost_its_waker() {
    let tracker = Tracker::builder().wakes(true).build();
    let lost = tracker.spawn("forgets", TaskType::GENERAL, keeps_no_waker());
    let notify = Arc::new(Notify::new());
    let waiting = Arc::clone(&notify);
    let waits = tracker.spawn("waits", TaskType::GENERAL, async move {
        waiting.notified().await
    });
    let (_keep, sleeping) = tokio::sync::oneshot::channel::<()>();
    let sleeps = tracker.spawn("sleeps", TaskType::GENERAL, async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(sleeping);
    });
    assert!(
        tracker.tasks(&Query::new().lost_waker(true)).is_empty(),
        "not polled yet: not lost"
    );
    tokio::task::yield_now().await;

    let found = tracker.tasks(&Query::new().lost_waker(true));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "forgets");
    let kept: Vec<_> = tracker
        .tasks(&Query::new().lost_waker(false))
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(kept, ["waits", "sleeps"]);
    assert!(wakes(&tracker, "waits").wakers >= 1);

    // The watchdog warns once it has seen it so at two scans in a row,
    // once only, and counts it.
    let mut events = tracker.subscribe();
    tracker.watchdog_scan();
    assert!(tracker.warnings().is_empty(), "one sighting is not enough");
    tracker.watchdog_scan();
    tracker.watchdog_scan();
    let warned = tracker.tasks(&Query::new().warned(true));
    assert_eq!(warned.len(), 1);
    assert!(warned[0].warned.lost_waker());
    assert_eq!(tracker.warnings()[&TaskType::GENERAL].lost_waker, 1);
    let Some(tracked::Received::Event(event)) = events.try_recv() else {
        panic!("a warning event");
    };
    assert_eq!(event.name, "forgets");
    assert_eq!(event.kind, tracked::EventKind::Warning(Warning::LostWaker));
    assert!(events.try_recv().is_none(), "warned once");

    // Aborting it ends it: no longer a lost waker, but cancelled.
    lost.abort();
    assert!(lost.await.unwrap_err().is_cancelled());
    let ended = task(&tracker, "forgets");
    assert_eq!(ended.state, TaskState::Cancelled);
    assert!(!ended.wakes.unwrap().lost_waker);
    // A question about live tasks: finished ones never match.
    assert!(tracker.finished(&Query::new().lost_waker(false)).is_empty());
    notify.notify_one();
    waits.await.unwrap();
    sleeps.abort();
}

/// Waits holding a clone of its waker; when dropped, lets go of the waker
/// first, then runs a watchdog scan: the task is then seen for an instant
/// with no waker, before its end is recorded.
struct ScansWhileDropped {
    waker: Option<Waker>,
    // Dropped after `waker`: fields drop in declaration order.
    _scan: ScanOnDrop,
}

struct ScanOnDrop(Tracker);

impl Drop for ScanOnDrop {
    fn drop(&mut self) {
        self.0.watchdog_scan();
    }
}

impl Future for ScansWhileDropped {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[tokio::test]
async fn a_task_caught_while_it_is_dropped_is_not_warned_about() {
    let tracker = Tracker::builder().wakes(true).build();
    let dropped = tracker.spawn(
        "dropped",
        TaskType::GENERAL,
        ScansWhileDropped {
            waker: None,
            _scan: ScanOnDrop(tracker.clone()),
        },
    );
    tokio::task::yield_now().await;
    assert_eq!(wakes(&tracker, "dropped").wakers, 1);
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    tracker.watchdog_scan();
    assert!(tracker.warnings().is_empty(), "{:?}", tracker.warnings());
    assert!(!task(&tracker, "dropped").warned.any());
}

/// An error whose text says how many tasks looked lost when it was taken:
/// after the task's last poll, before its end is recorded.
struct LostCount(Tracker);

impl std::fmt::Display for LostCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lost = self.0.tasks(&Query::new().lost_waker(true));
        write!(f, "{} lost", lost.len())
    }
}

#[tokio::test]
async fn a_task_between_its_last_poll_and_its_end_has_not_lost_its_waker() {
    let tracker = Tracker::builder().wakes(true).build();
    let notify = Arc::new(Notify::new());
    let waiting = Arc::clone(&notify);
    let probe = LostCount(tracker.clone());
    let ending = tracker.spawn("ending", TaskType::GENERAL, async move {
        waiting.notified().await;
        Err::<(), _>(probe)
    });
    tokio::task::yield_now().await;
    notify.notify_one();
    assert!(ending.await.unwrap().is_err());
    assert_eq!(task(&tracker, "ending").error.as_deref(), Some("0 lost"));
}

#[tokio::test]
async fn a_blocking_task_has_no_wakes_to_follow() {
    let tracker = Tracker::builder().wakes(true).build();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let blocking = tracker.spawn_blocking("blocking", TaskType::GENERAL, move || {
        released.recv().ok();
    });
    let running = task(&tracker, "blocking");
    assert_eq!(running.wakes, None);
    assert!(tracker.tasks(&Query::new().lost_waker(false)).is_empty());
    release.send(()).unwrap();
    blocking.await.unwrap();
    assert!(task(&tracker, "blocking").busy.is_some(), "still timed");
}

#[tokio::test]
async fn without_wakes_followed_no_task_matches_either_way() {
    let tracker = Tracker::builder().busy_time(true).build();
    let _lost = tracker.spawn("forgets", TaskType::GENERAL, keeps_no_waker());
    tokio::task::yield_now().await;
    assert!(!tracker.follows_wakes());
    assert_eq!(task(&tracker, "forgets").wakes, None);
    assert!(tracker.tasks(&Query::new().lost_waker(true)).is_empty());
    assert!(tracker.tasks(&Query::new().lost_waker(false)).is_empty());
    tracker.watchdog_scan();
    assert!(tracker.warnings().is_empty());
    assert!(tracker.scheduling_delays().is_empty());
}

/// Tasks in a ring pass a token around through channels on a multi-thread
/// runtime, so most wakes cross threads while the woken task may be in a
/// poll: every wake must still reach tokio, or the ring stops. Meanwhile
/// one thread scans with the watchdog and another queries for lost wakers:
/// every task always has a waker in a channel or a wake pending, so neither
/// may ever report one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakes_across_threads_all_arrive_and_none_is_taken_for_lost() {
    const TASKS: usize = 64;
    const LAPS: usize = 3000;
    let tracker = Tracker::builder().wakes(true).build();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..TASKS)
        .map(|_| tokio::sync::mpsc::channel::<usize>(1))
        .unzip();
    let mut handles = Vec::new();
    for (i, mut inbox) in receivers.into_iter().enumerate() {
        let next = senders[(i + 1) % TASKS].clone();
        handles.push(
            tracker.spawn(format!("ring-{i}"), TaskType::GENERAL, async move {
                let mut passed = 0;
                while let Some(hops) = inbox.recv().await {
                    passed += 1;
                    if hops >= TASKS * LAPS || next.send(hops + 1).await.is_err() {
                        break;
                    }
                }
                passed
            }),
        );
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = |check: fn(&Tracker) -> usize| {
        let (tracker, stop) = (tracker.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut looks, mut found) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                found += check(&tracker);
                looks += 1;
                std::thread::yield_now();
            }
            (looks, found)
        })
    };
    let scanner = watch(|tracker| {
        tracker.watchdog_scan();
        // Lost wakers only: a worker descheduled inside a poll for 100 ms
        // on a loaded machine is a long poll by the default threshold.
        let counts = tracker.warnings();
        counts.values().map(|c| c.lost_waker as usize).sum()
    });
    let querier = watch(|tracker| {
        let query = Query::new().name_prefix("ring-").lost_waker(true);
        tracker.tasks(&query).len()
    });
    senders[0].send(1).await.unwrap();
    drop(senders);
    // A hang guard, not a timing assertion: a lost wake stops the ring.
    let passed = tokio::time::timeout(Duration::from_secs(120), async {
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        total
    })
    .await
    .expect("a wake was lost: the ring stopped");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (scans, warned) = scanner.join().unwrap();
    let (queries, lost) = querier.join().unwrap();
    assert_eq!(passed, TASKS * LAPS);
    assert!(scans > 0 && queries > 0);
    assert_eq!(warned, 0, "the watchdog saw lost wakers in {scans} scans");
    assert_eq!(lost, 0, "queries found lost wakers, over {queries} queries");
    let stats = tracker.stats();
    assert_eq!(stats.total.spawned, TASKS as u64);
    assert_eq!(stats.total.completed, TASKS as u64);
    let woken: u64 = tracker
        .finished(&Query::new().name_prefix("ring-"))
        .iter()
        .map(|t| t.wakes.as_ref().unwrap().wakes)
        .sum();
    assert!(woken >= (TASKS * LAPS) as u64 / 2, "{woken} wakes counted");
}

//! Wakes of tracked tasks, when the tracker follows them
//! ([`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes)).
//!
//! The wrapper polls a task with a waker of its own, which forwards each
//! wake to tokio's after counting it and noting when it came, so the next
//! poll knows how long the task then waited for a worker (its scheduling
//! delay). Clones of that waker are counted too: a live task outside a
//! poll, not woken since its last one, with no clone of its waker left
//! anywhere, can never be polled again. It has lost its waker (the
//! tokio-console lint of that name): a leak for certain, where idle time
//! only makes one likely.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

use crate::clock::{Clock, Epoch};
// std's atomics, or loom's for the model at the end of this file.
use crate::handoff::sync::{AtomicU64, AtomicUsize, Ordering};

/// A task's wakes, as a snapshot reports them; see
/// [`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes). Blocking tasks
/// have none: they are never polled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wakes {
    /// Times the task was woken.
    pub wakes: u64,
    /// Of those, from inside the task's own poll (the polls of the
    /// `#[tracked]` fns it awaits included): a future that wakes its task
    /// before returning `Pending`, as a busy loop or tokio's exhausted
    /// cooperative budget does. (`tokio::task::yield_now` hands its wake to
    /// the scheduler, which wakes the task after the poll: not counted.)
    pub self_wakes: u64,
    /// Clones of the task's waker alive now: the things that can wake it.
    pub wakers: usize,
    /// Time from wakes to the polls they led to, in total: time the task
    /// was ready but waited for a worker thread.
    pub scheduled: Duration,
    /// Polls that followed a wake, over which `scheduled` is summed.
    pub scheduled_polls: u64,
    /// When the task was woken, if it has not been polled since.
    pub woken_at: Option<Instant>,
    /// The task is live, outside a poll, not woken, and no clone of its
    /// waker is left: nothing can ever poll it again. Always `false` for a
    /// finished task and for one not polled yet.
    pub lost_waker: bool,
}

/// One task's wake state, shared by its record and every clone of its waker.
#[derive(Debug)]
pub(crate) struct WakeState {
    /// tokio's waker for the task: registered at each poll, woken by ours,
    /// dropped when the task ends (it keeps tokio's task allocation alive).
    inner: AtomicWaker,
    epoch: Epoch,
    wakes: AtomicU64,
    self_wakes: AtomicU64,
    /// Clones of our waker alive; the one lent to each poll is not one.
    wakers: AtomicUsize,
    /// When the task was woken, if not polled since; 0 if not.
    woken_at: AtomicU64,
    scheduled_ns: AtomicU64,
    scheduled_polls: AtomicU64,
}

impl WakeState {
    pub(crate) fn new(epoch: Epoch) -> Self {
        WakeState {
            inner: AtomicWaker::new(),
            epoch,
            wakes: AtomicU64::new(0),
            self_wakes: AtomicU64::new(0),
            wakers: AtomicUsize::new(0),
            woken_at: AtomicU64::new(0),
            scheduled_ns: AtomicU64::new(0),
            scheduled_polls: AtomicU64::new(0),
        }
    }

    /// A waker for one poll, lent without a reference count: it must not be
    /// used once `this` may be gone (clones of it hold their own count).
    pub(crate) fn lend(this: &Arc<WakeState>) -> ManuallyDrop<Waker> {
        let data = Arc::as_ptr(this).cast::<()>();
        // SAFETY: `data` points at a live `WakeState` for as long as the
        // caller keeps `this` alive, and the vtable's functions keep their
        // contract for it: `clone` takes a count of its own, `wake` and
        // `drop` give back one that `clone` took. The lent waker itself is
        // never dropped (`ManuallyDrop`), so it gives back none.
        ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) })
    }

    /// At the start of a poll, at `now` on the tracker's clock: registers
    /// tokio's waker for ours to wake, and counts the scheduling delay since
    /// the wake that led here, which it returns.
    #[inline]
    pub(crate) fn poll_starts(&self, tokio_waker: &Waker, now: u64) -> Option<u64> {
        self.inner.register(tokio_waker);
        // AcqRel: pairs with `lost`'s load, which must see the poll's start
        // (`in_poll`, the poll count, stored before this) once it sees the
        // wake taken.
        let woken = self.woken_at.swap(0, Ordering::AcqRel);
        (woken != 0).then(|| {
            let delay = now.saturating_sub(woken);
            // Only the polling thread writes these: a load and a store.
            bump(&self.scheduled_ns, delay);
            bump(&self.scheduled_polls, 1);
            delay
        })
    }

    /// The task has ended: lets tokio's task go, whoever still holds ours.
    pub(crate) fn ended(&self) {
        drop(self.inner.take());
    }

    fn wake_by_ref(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        let own = FORWARDING_SELF_WAKE.get()
            || crate::instrument::with_current(|current| {
                current.is_some_and(|c| {
                    c.record
                        .wake_state()
                        .is_some_and(|s| std::ptr::eq(&**s, self))
                })
            });
        if own {
            // From inside the task's poll: the polling thread again.
            bump(&self.self_wakes, 1);
        }
        if self.woken_at.load(Ordering::Relaxed) == 0 {
            // Release: `lost` must see the wake before the waker's drop.
            let _ = self.woken_at.compare_exchange(
                0,
                self.epoch.now(),
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        if own {
            // A `#[tracked]` fn forwards to the waker it was polled with:
            // its task's (or the fn's awaiting it), whose poll this one is
            // inside, so the wake is from inside that poll too.
            let _restore = Forwarding(FORWARDING_SELF_WAKE.replace(true));
            self.inner.wake();
        } else {
            self.inner.wake();
        }
    }

    /// Whether the task was woken and not polled since: it is ready to run
    /// and waits for a worker. Relaxed: a report, stale as soon as read.
    pub(crate) fn woken(&self) -> bool {
        self.woken_at.load(Ordering::Relaxed) != 0
    }

    /// Whether the waker is lost, given what the record says of the task:
    /// `idle_polled` is "live, polled, outside a poll", read by the caller
    /// before this, and `same_poll` confirms after it that no poll began.
    pub(crate) fn lost(&self, idle_polled: bool, same_poll: impl FnOnce() -> bool) -> bool {
        self.read(idle_polled, same_poll).2
    }

    /// Wakers alive, when woken (0: not since the last poll), and `lost`.
    fn read(&self, idle_polled: bool, same_poll: impl FnOnce() -> bool) -> (usize, u64, bool) {
        // Acquire: a waker dropped after its wake (`wake` by value) makes
        // the wake visible below; a wake taken by a poll makes that poll's
        // start visible to `same_poll`.
        let wakers = self.wakers.load(Ordering::Acquire);
        let woken_at = self.woken_at.load(Ordering::Acquire);
        let lost = idle_polled && wakers == 0 && woken_at == 0 && same_poll();
        (wakers, woken_at, lost)
    }

    /// The counts, with `lost` as above.
    pub(crate) fn report(
        &self,
        clock: &Clock,
        idle_polled: bool,
        same_poll: impl FnOnce() -> bool,
    ) -> Wakes {
        let (wakers, woken_at, lost_waker) = self.read(idle_polled, same_poll);
        Wakes {
            wakes: self.wakes.load(Ordering::Relaxed),
            self_wakes: self.self_wakes.load(Ordering::Relaxed),
            wakers,
            scheduled: Duration::from_nanos(self.scheduled_ns.load(Ordering::Relaxed)),
            scheduled_polls: self.scheduled_polls.load(Ordering::Relaxed),
            woken_at: (woken_at != 0).then(|| clock.instant(woken_at)),
            lost_waker,
        }
    }
}

thread_local! {
    /// Set while a self-wake is forwarded to the waker a `#[tracked]` fn
    /// was polled with, so that the task (or fn) awaiting it, in whose poll
    /// the wake came, counts it as a self-wake too.
    static FORWARDING_SELF_WAKE: Cell<bool> = const { Cell::new(false) };
}

/// Puts back the flag a forwarded self-wake found, even if the waker it
/// forwards to panics.
struct Forwarding(bool);

impl Drop for Forwarding {
    fn drop(&mut self) {
        FORWARDING_SELF_WAKE.set(self.0);
    }
}

/// Adds to a counter only one thread writes at a time (the task's poller),
/// without a locked read-modify-write; Relaxed, as readers only report it.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// # Safety
///
/// For all four: `data` is a `WakeState` pointer from [`WakeState::lend`]
/// or from `clone`, whose `Arc` is alive.
unsafe fn clone(data: *const ()) -> RawWaker {
    let state = data.cast::<WakeState>();
    // SAFETY: the `Arc` is alive (see above); the new waker owns the count
    // taken here and gives it back in `wake` or `drop_waker`.
    unsafe { Arc::increment_strong_count(state) };
    // SAFETY: alive, as above.
    unsafe { &*state }.wakers.fetch_add(1, Ordering::Relaxed);
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: a waker woken by value is one `clone` made; this takes back
    // the count it owns.
    let state = unsafe { Arc::from_raw(data.cast::<WakeState>()) };
    state.wake_by_ref();
    state.wakers.fetch_sub(1, Ordering::Release);
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: alive, as above; only shared access.
    unsafe { &*data.cast::<WakeState>() }.wake_by_ref();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: as in `wake`: the count this waker owns, given back once.
    let state = unsafe { Arc::from_raw(data.cast::<WakeState>()) };
    state.wakers.fetch_sub(1, Ordering::Release);
}

/// Clones, wakes and drops through the vtable, counted; meant for Miri too
/// (`cargo +nightly miri test -p tracked-runtime --lib wake`), which checks
/// each count taken is given back exactly once.
#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(AtomicU64);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn state() -> (Arc<WakeState>, Arc<Flag>, Clock) {
        let clock = Clock::new();
        let state = Arc::new(WakeState::new(clock.epoch()));
        let flag = Arc::new(Flag(AtomicU64::new(0)));
        state.poll_starts(&Waker::from(Arc::clone(&flag)), clock.now());
        (state, flag, clock)
    }

    #[test]
    fn clones_are_counted_and_each_count_is_given_back() {
        let (state, flag, clock) = state();
        let lent = WakeState::lend(&state);
        let a = (*lent).clone();
        let b = a.clone();
        assert_eq!(Arc::strong_count(&state), 3);
        assert_eq!(state.report(&clock, true, || true).wakers, 2);
        assert!(a.will_wake(&lent), "clones wake the same task");
        drop(a);
        b.wake();
        assert_eq!(Arc::strong_count(&state), 1);
        let report = state.report(&clock, true, || true);
        assert_eq!((report.wakers, report.wakes), (0, 1));
        assert_eq!(
            flag.0.load(Ordering::Relaxed),
            1,
            "forwarded to tokio's waker"
        );
        assert!(report.woken_at.is_some());
        assert!(!report.lost_waker, "woken, not polled yet");
    }

    #[test]
    fn a_poll_takes_the_wake_and_counts_its_delay() {
        let (state, flag, clock) = state();
        WakeState::lend(&state).wake_by_ref();
        WakeState::lend(&state).wake_by_ref();
        // The second wake finds tokio's waker taken by the first: the task
        // is already scheduled.
        assert_eq!(flag.0.load(Ordering::Relaxed), 1);
        state.poll_starts(&Waker::from(Arc::clone(&flag)), clock.now());
        let report = state.report(&clock, true, || true);
        assert_eq!((report.wakes, report.scheduled_polls), (2, 1));
        assert_eq!(report.woken_at, None);
        assert!(report.lost_waker, "polled, no waker left, not woken");
        assert!(!state.report(&clock, false, || true).lost_waker);
        assert!(!state.report(&clock, true, || false).lost_waker);
    }

    #[test]
    fn an_ended_task_lets_tokios_waker_go() {
        let (state, flag, _) = state();
        assert_eq!(Arc::strong_count(&flag), 2);
        let kept = (*WakeState::lend(&state)).clone();
        state.ended();
        assert_eq!(Arc::strong_count(&flag), 1);
        kept.wake();
        assert_eq!(flag.0.load(Ordering::Relaxed), 0, "nothing left to wake");
        assert_eq!(Arc::strong_count(&state), 1);
    }
}

/// A loom model of the lost-waker check, on the production `WakeState`,
/// with the record's side (poll count, in-poll flag) stored and read in the
/// orders `instrument.rs` and `Record::idle_polled` use:
///
/// ```sh
/// RUSTFLAGS="--cfg loom" cargo test -p tracked-runtime --release --lib loom
/// ```
///
/// `AtomicWaker`'s insides are std's atomics, which loom runs but does not
/// explore: the model is about the counts and flags the check reads.
#[cfg(all(test, loom))]
mod loom {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use ::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use ::loom::thread;

    use super::WakeState;
    use crate::clock::Clock;

    /// The record's side of a task.
    struct Task {
        polls: AtomicU64,
        in_poll: AtomicBool,
    }

    impl Task {
        /// A poll as `poll_as` makes it: `Current::enter`, `poll_starts`,
        /// the future keeping a clone of its waker (in a channel, say) and
        /// returning `Pending`, then `Current::end`.
        fn poll(&self, state: &Arc<WakeState>, tokio: &Waker, clock: &Clock) -> Waker {
            let polls = self.polls.load(Ordering::Relaxed);
            self.in_poll.store(true, Ordering::Relaxed);
            self.polls.store(polls + 1, Ordering::Release);
            state.poll_starts(tokio, clock.now());
            let kept = (*WakeState::lend(state)).clone();
            self.in_poll.store(false, Ordering::Release);
            kept
        }

        /// `Record::lost_waker`, for a live task.
        fn lost(&self, state: &WakeState) -> bool {
            let polls = self.polls.load(Ordering::Acquire);
            let idle_polled = polls > 0 && !self.in_poll.load(Ordering::Acquire);
            state.lost(idle_polled, || {
                !self.in_poll.load(Ordering::Acquire) && self.polls.load(Ordering::Relaxed) == polls
            })
        }
    }

    /// tokio's waker for the task, which the model does not need to act.
    struct Tokio;

    impl Wake for Tokio {
        fn wake(self: Arc<Self>) {}
    }

    /// A task waits with its waker in a channel; a sender wakes it (by
    /// value, so that clone is gone) and the task is polled again, keeping a
    /// new clone. At no moment can nothing wake it, so a check running
    /// beside them must never say it lost its waker; once the new clone is
    /// dropped too, it must.
    #[test]
    fn loom_a_woken_task_is_never_taken_for_lost() {
        ::loom::model(|| {
            let clock = Arc::new(Clock::new());
            let state = Arc::new(WakeState::new(clock.epoch()));
            let task = Arc::new(Task {
                polls: AtomicU64::new(0),
                in_poll: AtomicBool::new(false),
            });
            let tokio = Waker::from(Arc::new(Tokio));
            let in_channel = task.poll(&state, &tokio, &clock);

            let woken = {
                let (state, task) = (Arc::clone(&state), Arc::clone(&task));
                thread::spawn(move || {
                    in_channel.wake();
                    task.poll(&state, &tokio, &clock)
                })
            };
            // The check runs on a thread of its own: loom explores the
            // interleavings of spawned threads more fully than of the main one.
            let check = {
                let (state, task) = (Arc::clone(&state), Arc::clone(&task));
                thread::spawn(move || task.lost(&state))
            };
            assert!(!check.join().unwrap(), "lost while being woken and polled");
            let in_channel = woken.join().unwrap();
            assert!(!task.lost(&state), "its new waker is in the channel");
            drop(in_channel);
            assert!(task.lost(&state), "nothing can wake it now");
        });
    }
}

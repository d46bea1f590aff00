//! Loom models of the hand-offs: every interleaving of the two sides, and
//! every value a load may read under the C++ memory model that loom allows,
//! run against the production code above on loom's primitives.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p tracked-runtime --release --lib loom
//! ```
//!
//! The models are small enough to explore exhaustively (no preemption bound,
//! about 5 s in all in release). Every side runs on a spawned thread, the
//! main one only joins them: with one side on the main thread loom explored
//! far fewer interleavings (15 against 90 for the first model below), and
//! missed a bug in the model of `wake.rs`.
//!
//! The records here hold a `usize` for tokio's abort handle, which needs a
//! runtime, and the real `CancellationToken`: its insides are std's, which
//! loom neither sees nor needs to (it only ever adds orderings the models
//! leave out, so it cannot hide a lost cancel).

use ::loom::sync::{Arc, Mutex};
use ::loom::thread;

use super::{AbortTask, Control, Delivery, Flags, Handoff};

/// The abort handle the spawner stores; any value will do.
const HANDLE: usize = 7;

/// A handle whose aborts the models below do not look at.
impl AbortTask for usize {
    fn abort(&self) {}
}

/// A handle that counts the aborts it carries out.
#[derive(Clone)]
struct Counted(Arc<::loom::sync::atomic::AtomicUsize>);

impl AbortTask for Counted {
    fn abort(&self) {
        self.0.fetch_add(1, ::loom::sync::atomic::Ordering::Relaxed);
    }
}

/// A record as far as the hand-offs see it.
struct Record<H = usize> {
    flags: Flags,
    control: Control<H>,
}

impl<H> Default for Record<H> {
    fn default() -> Self {
        Record {
            flags: Flags::default(),
            control: Control::default(),
        }
    }
}

impl<H: AbortTask> Record<H> {
    fn handoff(&self) -> Handoff<'_, H> {
        Handoff::new(&self.flags, &self.control)
    }
}

/// The task's entry in its shard's live list: the old record until a claim
/// replaces it, under the lock the claim holds.
struct Live<H = usize> {
    old: Arc<Record<H>>,
    now: Mutex<Arc<Record<H>>>,
}

impl<H: AbortTask> Live<H> {
    fn new() -> Arc<Self> {
        let old = Arc::new(Record::default());
        let now = Mutex::new(Arc::clone(&old));
        Arc::new(Live { old, now })
    }

    /// A `#[tracked]` fn claiming the task: under the shard lock, replaces
    /// the record by a fresh one that takes over its control state.
    fn claim(&self) -> Arc<Record<H>> {
        let mut now = self.now.lock().unwrap();
        let mut fresh = Record::default();
        self.old
            .handoff()
            .supersede(&mut fresh.flags, &mut fresh.control);
        *now = Arc::new(fresh);
        Arc::clone(&now)
    }

    /// The record that stands for the task, looked up under the shard lock
    /// as `Registry::set_abort` and `Registry::request_cancel` do to hand on.
    fn now(&self) -> Arc<Record<H>> {
        Arc::clone(&self.now.lock().unwrap())
    }
}

/// A cancel request racing the task's first call for its token: the token
/// the task obtains ends up cancelled.
#[test]
fn cancel_request_meets_token_creation() {
    ::loom::model(|| {
        let record = Arc::new(Record::<usize>::default());
        let canceller = {
            let record = Arc::clone(&record);
            thread::spawn(move || record.handoff().request_cancel())
        };
        let task = {
            let record = Arc::clone(&record);
            thread::spawn(move || record.handoff().token())
        };
        let token = task.join().unwrap();
        assert_eq!(canceller.join().unwrap(), Delivery::Kept);
        assert!(token.is_cancelled(), "a cancel request was lost");
    });
}

/// The spawner storing the abort handle while the task's first poll claims
/// it: the handle ends up in the fresh record, copied by the claim or handed
/// on by the spawner.
#[test]
fn set_abort_meets_claim() {
    ::loom::model(|| {
        let live = Live::<usize>::new();
        let spawner = {
            let live = Arc::clone(&live);
            thread::spawn(move || {
                if let Some(handle) = live.old.handoff().set_abort(HANDLE) {
                    let now = live.now();
                    assert_eq!(now.handoff().set_abort(handle), None);
                }
            })
        };
        let claim = {
            let live = Arc::clone(&live);
            thread::spawn(move || live.claim())
        };
        let fresh = claim.join().unwrap();
        spawner.join().unwrap();
        let handle = *fresh.control.abort_slot();
        assert_eq!(handle, Some(HANDLE), "the abort handle was lost");
    });
}

/// A cancel request made on the record a claim is replacing, while the
/// claimed task then asks for its token: the token is cancelled, whether the
/// claim copied the request or the canceller handed it on.
#[test]
fn cancel_request_meets_claim() {
    ::loom::model(|| {
        let live = Live::<usize>::new();
        let canceller = {
            let live = Arc::clone(&live);
            thread::spawn(move || {
                if live.old.handoff().request_cancel() == Delivery::HandOn {
                    assert_eq!(live.now().handoff().request_cancel(), Delivery::Kept);
                }
            })
        };
        let task = {
            let live = Arc::clone(&live);
            thread::spawn(move || live.claim().handoff().token())
        };
        let token = task.join().unwrap();
        canceller.join().unwrap();
        assert!(token.is_cancelled(), "a cancel request was lost");
        assert!(live.now().handoff().cancel_requested());
    });
}

/// A spawn during a shutdown tier: the spawner stores the abort handle and
/// then asks the task to stop, both on the record a claim is replacing,
/// while the task takes its token right after the claim. Neither is lost.
#[test]
fn spawn_in_a_shutdown_tier_meets_claim() {
    ::loom::model(|| {
        let live = Live::<usize>::new();
        let spawner = {
            let live = Arc::clone(&live);
            thread::spawn(move || {
                let old = live.old.handoff();
                if let Some(handle) = old.set_abort(HANDLE) {
                    let _ = live.now().handoff().set_abort(handle);
                }
                if old.request_cancel() == Delivery::HandOn {
                    let _ = live.now().handoff().request_cancel();
                }
            })
        };
        let task = {
            let live = Arc::clone(&live);
            thread::spawn(move || {
                let fresh = live.claim();
                let token = fresh.handoff().token();
                (fresh, token)
            })
        };
        let (fresh, token) = task.join().unwrap();
        spawner.join().unwrap();
        assert_eq!(*fresh.control.abort_slot(), Some(HANDLE));
        assert!(token.is_cancelled(), "a cancel request was lost");
    });
}

/// A canceller aborting a task at its deadline while the spawner is still
/// storing the task's abort handle: the task is aborted, by the canceller
/// through the stored handle or by the spawner when it stores it.
#[test]
fn abort_meets_set_abort() {
    ::loom::model(|| {
        let flags = Arc::new(Flags::default());
        let control = Arc::new(Control::<Counted>::default());
        let aborts = Arc::new(::loom::sync::atomic::AtomicUsize::new(0));
        let spawner = {
            let (flags, control) = (Arc::clone(&flags), Arc::clone(&control));
            let handle = Counted(Arc::clone(&aborts));
            thread::spawn(move || {
                assert!(Handoff::new(&flags, &control).set_abort(handle).is_none());
            })
        };
        let canceller = thread::spawn(move || Handoff::new(&flags, &control).abort());
        canceller.join().unwrap();
        spawner.join().unwrap();
        let aborted = aborts.load(::loom::sync::atomic::Ordering::Relaxed);
        assert_eq!(aborted, 1, "the abort was lost, or sent twice");
    });
}

/// A canceller aborting a task, at its deadline, on the record a claim is
/// replacing, while the spawner is still storing the handle on it: the
/// request travels with the claim or waits on the old record for the
/// handle, and the task is aborted either way (tokio's abort is idempotent,
/// so twice is fine). The fresh record ends up holding the handle.
#[test]
fn abort_before_the_handle_meets_claim() {
    ::loom::model(|| {
        let live = Live::<Counted>::new();
        let aborts = Arc::new(::loom::sync::atomic::AtomicUsize::new(0));
        let spawner = {
            let live = Arc::clone(&live);
            let handle = Counted(Arc::clone(&aborts));
            thread::spawn(move || {
                if let Some(handle) = live.old.handoff().set_abort(handle) {
                    let _ = live.now().handoff().set_abort(handle);
                }
            })
        };
        let canceller = {
            let live = Arc::clone(&live);
            thread::spawn(move || live.old.handoff().abort())
        };
        let claim = {
            let live = Arc::clone(&live);
            thread::spawn(move || live.claim())
        };
        let fresh = claim.join().unwrap();
        spawner.join().unwrap();
        canceller.join().unwrap();
        let aborted = aborts.load(::loom::sync::atomic::Ordering::Relaxed);
        assert!(aborted >= 1, "the abort was lost");
        assert!(fresh.control.abort_slot().is_some(), "the handle was lost");
    });
}

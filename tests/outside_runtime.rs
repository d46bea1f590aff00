//! A spawn where tokio cannot take the task (outside a runtime, or a
//! local spawn outside a `LocalSet`) panics as tokio's own does, naming the
//! line of the caller's spawn, not a line of `tracked`; the task counts as
//! spawned and cancelled.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use tracked::{tracked, JoinSet, TaskType, Tracker};

const SPAWNER_LINE: u32 = line!() + 3;
#[tracked]
async fn spawner() {
    tokio::spawn(async {});
}

/// Runs `spawn`, which must panic; returns where the panic says it was.
fn panic_site(spawn: impl FnOnce()) -> (String, u32) {
    let seen = Arc::new(Mutex::new(None));
    let hook = {
        let seen = Arc::clone(&seen);
        move |info: &std::panic::PanicHookInfo<'_>| {
            let location = info.location().unwrap();
            *seen.lock().unwrap() = Some((location.file().to_owned(), location.line()));
        }
    };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(hook));
    let result = catch_unwind(AssertUnwindSafe(spawn));
    std::panic::set_hook(previous);
    assert!(result.is_err(), "the spawn panics");
    let seen = seen.lock().unwrap().take();
    seen.unwrap()
}

#[test]
fn a_spawn_tokio_refuses_panics_at_the_callers_line() {
    let tracker = Tracker::new();
    let here = |line| (file!().to_owned(), line);
    #[rustfmt::skip]
    let cases: [(u32, Box<dyn FnOnce() + '_>); 5] = [
        (line!(), Box::new(|| drop(tracker.spawn("a", TaskType::GENERAL, async {})))),
        (line!(), Box::new(|| drop(tracked::spawn("b", TaskType::GENERAL, async {})))),
        (line!(), Box::new(|| drop(tracker.spawn_blocking("c", TaskType::GENERAL, || ())))),
        (line!(), Box::new(|| drop(tracker.spawn_local("d", TaskType::GENERAL, async {})))),
        (line!(), Box::new(|| drop(JoinSet::new().spawn("e", TaskType::GENERAL, async {})))),
    ];
    for (line, spawn) in cases {
        assert_eq!(panic_site(spawn), here(line));
    }
    // Registered before tokio refused them: spawned, and ended cancelled,
    // so the counts still add up and nothing stays live.
    let total = tracker.stats().total;
    assert_eq!((total.spawned, total.cancelled, total.live()), (3, 3, 0));
    // A spawn `#[tracked]` rewrote, in its fn's body.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let site = panic_site(|| {
        let _ = std::pin::pin!(spawner()).poll(&mut cx);
    });
    assert_eq!(site, here(SPAWNER_LINE));
}

/// `tracked::block_in_place` where tokio refuses it (a current-thread
/// runtime) panics at the caller's line too, as tokio's own does.
#[test]
fn block_in_place_tokio_refuses_panics_at_the_callers_line() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let line = line!() + 2;
    let site = panic_site(|| {
        runtime.block_on(async { tracked::block_in_place(|| ()) });
    });
    assert_eq!(site, (file!().to_owned(), line));
}

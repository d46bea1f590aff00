//! A panic, an `Err` or a failure text that travels through `#[tracked]`
//! fns awaited inside a task: every record it leaves ends as it should, it
//! is logged once (a panic with its location), and `OnPanic` acts only on
//! a panic that leaves the task, as tokio's own panic handling does.

#[path = "common/logs.rs"]
mod logs;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tracked::{tracked, OnPanic, Query, TaskState, TaskType, Tracker};

#[tracked(type = "Consensus", name = "unwinding::inner")]
async fn inner() -> u32 {
    tokio::task::yield_now().await;
    panic!("quorum")
}

#[tracked(type = "Consensus", name = "unwinding::outer")]
async fn outer() -> u32 {
    inner().await + 1
}

/// What `futures::FutureExt::catch_unwind` does: the panic of a poll as an
/// `Err` output.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

#[test]
fn a_panic_through_awaited_fns_ends_each_with_its_location_and_is_logged_once() {
    let logged = logs::logged(|tracker| async move {
        let round = tracker.spawn("unwinding::round", TaskType::NETWORK, outer());
        let id = round.id();
        assert!(round.await.unwrap_err().is_panic());

        let panicked = tracker.finished(&Query::new().state(TaskState::Panicked));
        let mut names: Vec<_> = panicked.iter().map(|t| t.name.to_string()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["unwinding::inner", "unwinding::outer", "unwinding::round"]
        );
        let task = panicked.iter().find(|t| t.id == id).unwrap();
        let location = task.panic_location.as_deref().expect("the task's location");
        assert!(location.starts_with(file!()), "{location}");
        for record in &panicked {
            assert_eq!(record.panic_location.as_deref(), Some(location));
            assert_eq!(record.error.as_deref(), Some("quorum"), "{}", record.name);
        }
    });
    let lines: Vec<_> = logged
        .lines()
        .filter(|l| l.contains("tracked task panicked"))
        .collect();
    assert_eq!(lines.len(), 1, "{logged}");
    assert!(lines[0].contains("unwinding::inner"), "{}", lines[0]);
    assert!(lines[0].contains(file!()), "{}", lines[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_the_task_catches_acts_on_nothing() {
    let tracker = Tracker::builder().on_panic(None, OnPanic::Shutdown).build();
    let round = tracker.spawn("unwinding::recovering", TaskType::NETWORK, async {
        match CatchUnwind(Box::pin(outer())).await {
            Ok(_) => 0,
            Err(_) => 7,
        }
    });
    assert_eq!(round.await.unwrap(), 7);

    // The fns panicked and are recorded so; the task did not, and nothing
    // left it: no shutdown asked.
    let panicked = tracker.finished(&Query::new().state(TaskState::Panicked));
    assert_eq!(panicked.len(), 2);
    let completed = tracker.finished(&Query::new().state(TaskState::Completed));
    assert_eq!(completed.len(), 1);
    assert!(!tracker.shutdown_token().is_cancelled());
    assert_eq!(tracker.shutdown_cause(), None);

    // Uncaught, the same panic leaves the task and acts once.
    let round = tracker.spawn("unwinding::round", TaskType::NETWORK, outer());
    assert!(round.await.unwrap_err().is_panic());
    assert!(tracker.shutdown_token().is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_leaving_the_task_acts_as_the_strictest_type_it_unwound_out_of() {
    // The task's own type continues; the fns' type asks for a shutdown.
    let tracker = Tracker::builder()
        .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
        .build();
    let round = tracker.spawn("unwinding::round", TaskType::NETWORK, outer());
    assert!(round.await.unwrap_err().is_panic());
    tokio::time::timeout(
        Duration::from_secs(10),
        tracker.shutdown_token().cancelled(),
    )
    .await
    .expect("a Consensus fn's panic left the task");
    let cause = tracker.shutdown_cause().unwrap();
    assert!(cause.contains("unwinding::inner"), "{cause}");
    assert!(cause.contains("quorum"), "{cause}");
}

/// An error whose text cannot be made.
#[derive(Debug)]
struct Unprintable;

impl fmt::Display for Unprintable {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("no text for you")
    }
}

#[tracked(type = "Database", name = "unwinding::query")]
async fn query() -> Result<(), Unprintable> {
    Err(Unprintable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_whose_text_panics_still_ends_its_task() {
    let tracker = Tracker::new();
    let task = tracker.spawn("unwinding::async", TaskType::DATABASE, async {
        Err::<(), _>(Unprintable)
    });
    assert!(matches!(task.await, Ok(Err(Unprintable))));
    let blocking = tracker.spawn_blocking("unwinding::blocking", TaskType::DATABASE, || {
        Err::<(), _>(Unprintable)
    });
    assert!(matches!(blocking.await, Ok(Err(Unprintable))));
    let unit = tracker.spawn("unwinding::caller", TaskType::DATABASE, async {
        query().await.is_err()
    });
    assert!(unit.await.unwrap());

    let stats = tracker.stats();
    assert_eq!(stats.total.live(), 0, "{stats}");
    let failed = tracker.finished(&Query::new().state(TaskState::Failed));
    let mut names: Vec<_> = failed.iter().map(|t| t.name.to_string()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "unwinding::async",
            "unwinding::blocking",
            "unwinding::query"
        ]
    );
    for task in &failed {
        let error = task.error.as_deref().unwrap();
        assert!(error.contains("no text for you"), "{error}");
    }
}

/// A task catches a panic out of its fns, does more work, and resumes the
/// panic polls later: still logged once, with its location, and acted on.
#[test]
fn a_panic_resumed_polls_later_is_still_the_same_panic() {
    let logged = logs::logged(|_| async {
        let tracker = Tracker::builder()
            .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
            .build();
        let round = tracker.spawn("unwinding::cleanup", TaskType::NETWORK, async {
            let caught = CatchUnwind(Box::pin(outer())).await;
            tokio::task::yield_now().await; // cleanup, in a later poll
            if let Err(payload) = caught {
                std::panic::resume_unwind(payload);
            }
        });
        let id = round.id();
        assert!(round.await.unwrap_err().is_panic());
        let task = tracker.task(id).unwrap().task;
        let location = task.panic_location.expect("the panic's location");
        assert!(location.starts_with(file!()), "{location}");
        assert!(tracker.shutdown_token().is_cancelled());
    });
    let lines = logged.matches("tracked task panicked").count();
    assert_eq!(lines, 1, "{logged}");
}

/// What a caught panic handed on is not taken by another panic resumed in
/// the same poll, nor is the location of an error text that panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_panic_resumed_in_the_same_poll_is_not_the_caught_one() {
    let tracker = Tracker::builder()
        .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
        .build();
    let round = tracker.spawn("unwinding::other", TaskType::NETWORK, async {
        // A child's panic, as its handle gives it.
        let child = tracked::spawn("unwinding::child", TaskType::NETWORK, async {
            std::panic::resume_unwind(Box::new("child"))
        });
        let payload = child.await.unwrap_err().into_panic();
        // Consensus fns panic, and are caught and let go.
        let _ = CatchUnwind(Box::pin(outer())).await;
        let _ = query().await; // and an error text panics
        std::panic::resume_unwind(payload)
    });
    let id = round.id();
    assert!(round.await.unwrap_err().is_panic());
    let task = tracker.task(id).unwrap().task;
    assert_eq!(task.error.as_deref(), Some("child"));
    assert_eq!(task.panic_location, None, "the child's panic was resumed");
    assert!(
        !tracker.shutdown_token().is_cancelled(),
        "{:?}",
        tracker.shutdown_cause()
    );
}

#[tracked(type = "Database", name = "unwinding::read")]
async fn read(page: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    Err(format!("page {page} is corrupt"))
}

#[tracked(type = "Database", name = "unwinding::load")]
async fn load() -> Result<u32, String> {
    let page = read(7).await?;
    Ok(page)
}

/// An `Err` passed up with `?` through fns ends every record it passes
/// through `Failed`, and is logged once; a failure the caller handles and
/// a different one it then returns are two.
#[test]
fn an_error_passed_up_through_fns_is_logged_once() {
    let logged = logs::logged(|tracker| async move {
        let task = tracker.spawn("unwinding::serve", TaskType::DATABASE, load());
        assert!(task.await.unwrap().is_err());
        let failed = tracker.finished(&Query::new().state(TaskState::Failed));
        assert_eq!(failed.len(), 3);
        assert!(failed
            .iter()
            .all(|t| t.error.as_deref() == Some("page 7 is corrupt")));

        let task = tracker.spawn("unwinding::retry", TaskType::DATABASE, async {
            if read(8).await.is_err() {
                return Err::<(), _>("gave up".to_owned());
            }
            Ok(())
        });
        assert!(task.await.unwrap().is_err());
    });
    let lines: Vec<_> = logged
        .lines()
        .filter(|l| l.contains("tracked task failed"))
        .collect();
    assert_eq!(lines.len(), 3, "{logged}");
    assert!(
        lines[0].contains("unwinding::read") && lines[0].contains("page 7"),
        "{logged}"
    );
    assert!(lines[1].contains("page 8"), "{logged}");
    assert!(
        lines[2].contains("unwinding::retry") && lines[2].contains("gave up"),
        "{logged}"
    );
}

//! How `#[tracked]` ends a unit from its output: an `Err` is always
//! `Failed`, with the best text its error type offers; anything else is
//! `Completed`. The same holds for the spawns it rewrites.

use std::fmt::{self, Debug, Display};

use tracked::{tracked, Query, TaskSnapshot, TaskState, Tracker, ERR_WITHOUT_TEXT};

#[path = "common/root.rs"]
mod root;
use root::run_in_tracker;

/// The one finished task named `name`.
fn ended(tracker: &Tracker, name: &str) -> TaskSnapshot {
    let mut found: Vec<TaskSnapshot> = tracker
        .finished(&Query::new())
        .into_iter()
        .filter(|t| t.name == name)
        .collect();
    assert_eq!(found.len(), 1, "one task named {name}");
    found.remove(0)
}

fn assert_failed(task: &TaskSnapshot, text: &str) {
    assert_eq!(task.state, TaskState::Failed, "{}", task.name);
    assert_eq!(task.error.as_deref(), Some(text), "{}", task.name);
}

#[derive(Debug)]
enum DbError {
    Timeout,
}

struct Opaque;

struct Shown;

impl Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shown")
    }
}

impl Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not this")
    }
}

#[tracked(name = "display")]
async fn display_err() -> Result<(), Shown> {
    Err(Shown)
}

#[tracked(name = "debug-only")]
async fn debug_only_err() -> Result<(), DbError> {
    Err(DbError::Timeout)
}

#[tracked(name = "opaque")]
async fn opaque_err() -> Result<u32, Opaque> {
    Err(Opaque)
}

#[tracked(name = "generic")]
async fn generic_err<E>(e: E) -> Result<(), E> {
    Err(e)
}

#[tracked(name = "generic-debug")]
async fn generic_debug_err<E: Debug>(e: E) -> Result<(), E> {
    Err(e)
}

#[tracked(name = "generic-display")]
async fn generic_display_err<E: Display>(e: E) -> Result<(), E> {
    Err(e)
}

#[tracked(name = "ok")]
async fn ok_with_opaque_err() -> Result<u32, Opaque> {
    Ok(1)
}

#[tokio::test]
async fn an_err_is_failed_with_display_else_debug_else_a_fixed_text() {
    let (tracker, _) = run_in_tracker(async {
        assert!(display_err().await.is_err());
        assert!(debug_only_err().await.is_err());
        assert!(opaque_err().await.is_err());
        assert!(generic_err("refused".to_owned()).await.is_err());
        assert!(generic_debug_err(DbError::Timeout).await.is_err());
        assert!(generic_display_err(Shown).await.is_err());
        assert!(ok_with_opaque_err().await.is_ok());
    })
    .await;

    assert_failed(&ended(&tracker, "display"), "shown");
    assert_failed(&ended(&tracker, "debug-only"), "Timeout");
    assert_failed(&ended(&tracker, "opaque"), ERR_WITHOUT_TEXT);
    // `E` has no bound, so the expansion cannot see that a `String` shows.
    assert_failed(&ended(&tracker, "generic"), ERR_WITHOUT_TEXT);
    assert_failed(&ended(&tracker, "generic-debug"), "Timeout");
    assert_failed(&ended(&tracker, "generic-display"), "shown");
    let ok = ended(&tracker, "ok");
    assert_eq!((ok.state, ok.error), (TaskState::Completed, None));
    assert_eq!(tracker.stats().total.failed, 6);
}

fn lookup() -> Result<(), DbError> {
    Err(DbError::Timeout)
}

#[tracked(name = "spawner")]
async fn spawner() {
    let debug_only = tokio::spawn(async { Err::<(), DbError>(DbError::Timeout) });
    let opaque = tokio::spawn(async { Err::<(), Opaque>(Opaque) });
    let blocking = tokio::task::spawn_blocking(lookup);
    assert!(debug_only.await.unwrap().is_err());
    assert!(opaque.await.unwrap().is_err());
    assert!(blocking.await.unwrap().is_err());
}

#[tokio::test]
async fn a_rewritten_spawn_ending_in_err_is_failed() {
    let (tracker, _) = run_in_tracker(spawner()).await;

    assert_failed(&ended(&tracker, "spawner::async_block"), "Timeout");
    assert_failed(&ended(&tracker, "spawner::async_block#2"), ERR_WITHOUT_TEXT);
    assert_failed(&ended(&tracker, "spawner::lookup"), "Timeout");
    let spawner = ended(&tracker, "spawner");
    assert_eq!(spawner.state, TaskState::Completed);
}

#[tracked(name = "acceptor")]
async fn acceptor() {
    // Rewritten, as every `tokio::spawn` in an annotated fn; its output is `!`.
    let endless = tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    tokio::task::yield_now().await;
    endless.abort();
    assert!(endless.await.unwrap_err().is_cancelled());
}

/// An output that borrows an argument: any reference is never a failure.
#[tracked]
async fn first_word(text: &str) -> &str {
    text.split(' ').next().unwrap_or(text)
}

#[tokio::test]
async fn a_rewritten_spawn_that_never_returns_and_a_borrowed_output_are_accepted() {
    let (tracker, _) = run_in_tracker(async {
        acceptor().await;
        let text = String::from("hello world");
        assert_eq!(first_word(&text).await, "hello");
    })
    .await;

    let endless = ended(&tracker, "acceptor::async_block");
    assert_eq!(endless.state, TaskState::Cancelled);
    let word = ended(&tracker, "macro_outcomes::first_word");
    assert_eq!((word.state, word.error), (TaskState::Completed, None));
}

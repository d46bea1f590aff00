//! An annotated fn's body follows the rules of the user crate's edition
//! (this crate's is 2021), not the macro crate's 2024.

use std::cell::RefCell;

use tracked::tracked;

thread_local! {
    static DROPPED: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

struct Noisy(&'static str);

impl Noisy {
    fn value(&self) -> u32 {
        1
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        DROPPED.with(|dropped| dropped.borrow_mut().push(self.0));
    }
}

fn dropped() -> Vec<&'static str> {
    DROPPED.with(|dropped| std::mem::take(&mut *dropped.borrow_mut()))
}

async fn plain(_argument: Noisy) -> u32 {
    let _local = Noisy("local");
    Noisy("temporary").value()
}

#[tracked]
async fn annotated(_argument: Noisy) -> u32 {
    let _local = Noisy("local");
    Noisy("temporary").value()
}

/// Stays an `async fn` (`#[must_use]`), a shape of its own.
#[tracked]
#[must_use]
async fn kept(_argument: Noisy) -> u32 {
    let _local = Noisy("local");
    Noisy("temporary").value()
}

/// Before edition 2024, a temporary of a body's tail expression is dropped
/// after the body's locals (and before the arguments); it was dropped
/// before them in an annotated fn, whose body took the macro's edition.
#[tokio::test]
async fn a_tail_temporary_is_dropped_as_in_the_plain_fn() {
    let expected = ["local", "temporary", "argument"];
    assert_eq!(plain(Noisy("argument")).await, 1);
    assert_eq!(dropped(), expected, "the plain fn");
    assert_eq!(annotated(Noisy("argument")).await, 1);
    assert_eq!(dropped(), expected, "the annotated fn");
    assert_eq!(kept(Noisy("argument")).await, 1);
    assert_eq!(dropped(), expected, "the annotated fn that stays async");
}

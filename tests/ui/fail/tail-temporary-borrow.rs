// This crate is edition 2021: a temporary of the body's tail expression
// outlives the body's locals, so borrowing one there is rejected, as it is
// in the plain `async fn`.
use std::cell::RefCell;

#[tracked::tracked]
async fn count() -> usize {
    let jobs = RefCell::new(vec![1, 2]);
    jobs.borrow().len()
}

fn main() {}

//! A crate that documents its public items.
#![deny(missing_docs)]

// An undocumented public annotated fn is reported at the fn, as an `async
// fn` is, with or without a return type.
#[tracked::tracked]
pub async fn undocumented(job: u32) -> u32 {
    job
}

#[tracked::tracked]
pub async fn undocumented_unit() {}

fn main() {}

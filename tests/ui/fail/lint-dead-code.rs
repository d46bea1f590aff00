#![deny(dead_code)]

// An annotated fn nothing calls is reported unused, as an `async fn` is.
#[tracked::tracked]
async fn never_called(job: u32) -> u32 {
    job
}

fn main() {}

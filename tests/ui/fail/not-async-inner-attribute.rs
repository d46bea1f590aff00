// A body starting with an inner attribute is read as any other: the
// attribute is not silently dropped from a fn it cannot track.
#[tracked::tracked]
fn sync_work() -> u32 {
    #![allow(clippy::let_and_return)]
    let value = 1;
    value
}

fn main() {
    let _ = sync_work();
}

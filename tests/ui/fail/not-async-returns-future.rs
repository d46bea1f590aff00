use std::future::Future;

// A fn returning a future written by hand is told to be an `async fn`,
// not to use `spawn_blocking`.
#[tracked::tracked]
fn fetch(id: u32) -> impl Future<Output = u32> {
    async move { id }
}

#[tracked::tracked]
fn fetch_later(id: u32) -> impl Future<Output = u32> + Send {
    let id = id + 1;
    async move { id }
}

fn main() {
    let _ = fetch(1);
    let _ = fetch_later(1);
}

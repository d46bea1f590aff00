use std::future::Future;
use std::pin::Pin;

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

// A boxed future that is not the `Box::pin(async move { … })` form.
#[tracked::tracked]
fn fetch_boxed(id: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(fetch_later(id))
}

fn main() {
    let _ = fetch(1);
    let _ = fetch_later(1);
    let _ = fetch_boxed(1);
}

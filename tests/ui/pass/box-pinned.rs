use std::future::Future;
use std::pin::Pin;

// A hand-written boxed future, the form `#[async_trait]` produces: a spawn
// before the `Box::pin` is rewritten like the ones inside it, and finds its
// site (the sites are items of the fn's block).
#[tracked::tracked(type = "Network")]
fn boxed(n: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let early = tokio::spawn(async move { n });
    Box::pin(async move {
        let inside = tokio::spawn(async move { n * 2 });
        early.await.unwrap() + inside.await.unwrap()
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(async { boxed(1).await }), 3);
}

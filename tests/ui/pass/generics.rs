use std::fmt::Debug;

use tracked::tracked;

#[tracked(type = "Database")]
async fn first<'a, T>(items: &'a [T]) -> Option<&'a T>
where
    T: Debug + Sync,
{
    items.first()
}

#[tracked]
async fn spawn_generic<T>(value: T) -> T
where
    T: Send + 'static,
{
    tokio::spawn(async move { value }).await.unwrap()
}

#[tracked]
async fn elided(name: &str) -> &str {
    name
}

fn main() {
    let _ = first(&[1, 2]);
    let _ = spawn_generic(3u8);
    let _ = elided("x");
}

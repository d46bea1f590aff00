#[tracing::instrument]
#[tracked::tracked(type = "Network")]
async fn instrumented_outer(peer: u32) -> Result<u32, String> {
    Ok(peer)
}

#[tracked::tracked(type = "Network")]
#[tracing::instrument(skip(payload))]
async fn instrumented_inner(peer: u32, payload: Vec<u8>) -> usize {
    tokio::spawn(async move { payload.len() + peer as usize }).await.unwrap()
}

async fn tenant() -> String {
    String::new()
}

// The fn stays `async` for the attribute below it, so `owner` is evaluated
// inside it and may await.
#[tracked::tracked(owner = tenant().await)]
#[tracing::instrument]
async fn owner_awaited(peer: u32) -> u32 {
    peer
}

fn main() {
    let _ = owner_awaited(1);
    let _ = instrumented_outer(1);
    let _ = instrumented_inner(1, Vec::new());
}

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

fn main() {
    let _ = instrumented_outer(1);
    let _ = instrumented_inner(1, Vec::new());
}

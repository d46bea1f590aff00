#[tracked::tracked(type = "General")]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let handle = tokio::spawn(async { 1 });
    assert_eq!(handle.await.map_err(|e| e.to_string())?, 1);
    Ok(())
}

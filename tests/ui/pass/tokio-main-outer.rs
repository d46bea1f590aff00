#[tokio::main(flavor = "current_thread")]
#[tracked::tracked(type = "General")]
async fn main() {
    let handle = tokio::spawn(async { 1 });
    assert_eq!(handle.await.unwrap(), 1);
}

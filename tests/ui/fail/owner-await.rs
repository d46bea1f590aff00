async fn tenant() -> String {
    String::new()
}

// `owner` is evaluated when the fn is called, before its body runs: it
// cannot await.
#[tracked::tracked(owner = tenant().await)]
async fn handle() {}

fn main() {
    let _ = handle();
}

async fn tenant() -> String {
    String::new()
}

// `owner` is evaluated when the fn is called, before its body runs: it
// cannot await.
#[tracked::tracked(owner = tenant().await)]
async fn handle() {}

// Also inside a macro's arguments.
#[tracked::tracked(owner = format!("tenant-{}", tenant().await))]
async fn formatted() {}

fn main() {
    let _ = handle();
    let _ = formatted();
}

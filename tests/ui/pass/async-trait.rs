use async_trait::async_trait;
use tracked::tracked;

#[async_trait]
trait Handler {
    async fn handle(&self, request: u32) -> Result<u32, String>;
}

struct Doubler;

#[async_trait]
impl Handler for Doubler {
    #[tracked(type = "Network")]
    async fn handle(&self, request: u32) -> Result<u32, String> {
        let child = tokio::spawn(async move { request * 2 });
        child.await.map_err(|e| e.to_string())
    }
}

fn main() {
    let _ = Doubler.handle(1);
}

use std::sync::Arc;

use tracked::tracked;

struct Peer {
    id: String,
    seen: u32,
}

impl Peer {
    #[tracked(type = "Network", owner = self.id.clone())]
    async fn by_ref(&self) -> &str {
        &self.id
    }

    #[tracked(type = "Network")]
    async fn by_mut(&mut self) {
        self.seen += 1;
    }

    #[tracked(type = "Network")]
    async fn by_value(self) -> String {
        self.id
    }

    #[tracked(type = "Network")]
    async fn by_arc(self: Arc<Self>) -> u32 {
        let me = Arc::clone(&self);
        tokio::spawn(async move { me.seen }).await.unwrap()
    }
}

fn main() {
    let _ = Peer { id: String::new(), seen: 0 }.by_value();
}

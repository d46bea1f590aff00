struct Round;

#[tracked::tracked]
impl Round {
    async fn run(&self) {}
}

fn main() {}

async fn vote() {}

#[tracked::tracked]
async fn run_round() {
    tokio::spawn(vote(), vote());
}

fn main() {}

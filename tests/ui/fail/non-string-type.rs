#[tracked::tracked(type = Consensus)]
async fn run_round() {}

fn main() {}

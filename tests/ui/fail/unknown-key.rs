#[tracked::tracked(kind = "Consensus")]
async fn run_round() {}

fn main() {}

#[tracked::tracked(type = "Consensus", type = "Network")]
async fn run_round() {}

fn main() {}

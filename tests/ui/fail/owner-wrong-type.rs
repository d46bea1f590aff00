#[tracked::tracked(owner = 42)]
async fn run_round() {}

fn main() {}

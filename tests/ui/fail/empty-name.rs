#[tracked::tracked(name = "")]
async fn run_round() {}

fn main() {}

#[tracked::tracked(type = "  ")]
async fn run_round() {}

fn main() {}

#[tracked::tracked(type = "", name = "", tier = -1)]
async fn run_round() {}

fn main() {}

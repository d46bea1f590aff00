#[tracked::tracked(tier = 300)]
async fn flush() {}

fn main() {}

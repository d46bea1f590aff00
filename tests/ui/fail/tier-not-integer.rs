#[tracked::tracked(tier = "last")]
async fn flush() {}

fn main() {}

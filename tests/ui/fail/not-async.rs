#[tracked::tracked]
fn sync_work() {}

fn main() {}

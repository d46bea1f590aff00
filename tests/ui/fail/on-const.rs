#[tracked::tracked]
const LIMIT: u32 = 3;

fn main() {}

#[tracked::tracked]
const fn constant() {}

fn main() {}

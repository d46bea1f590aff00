#[tracked::tracked]
extern "C" fn callback() {}

fn main() {}

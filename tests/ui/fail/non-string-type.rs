// An unquoted word: the quoted one is suggested.
#[tracked::tracked(type = Network)]
async fn run_round() {}

// Anything else: an example.
#[tracked::tracked(type = 7)]
async fn numbered() {}

fn main() {}

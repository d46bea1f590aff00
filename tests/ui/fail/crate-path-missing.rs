// The path `crate = …` gives is the one the expansion uses; one that names
// nothing, or is not a path, is an error at it.
#[tracked::tracked(crate = crate::missing)]
async fn accept() {}

#[tracked::tracked(crate = "not a path")]
async fn handle() {}

fn main() {}

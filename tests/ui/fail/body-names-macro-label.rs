// The block `#[tracked]` wraps the body in has a label the body cannot
// name: breaking out to it is an undeclared label, as in the `async fn`,
// not an early return.
#[tracked::tracked]
async fn early(n: u32) -> u32 {
    if n > 1 {
        break '__tracked_body 0;
    }
    n
}

fn main() {}

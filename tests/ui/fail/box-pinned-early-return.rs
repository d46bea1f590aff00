use std::future::Future;
use std::pin::Pin;

// A boxed-future fn is tracked through its final `Box::pin(async move { … })`:
// an early `return` would leave that call unrecorded, so it is refused.
#[tracked::tracked(type = "Network")]
fn checked(x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> {
    if x == 0 {
        return Box::pin(async { Err("zero".to_owned()) });
    }
    Box::pin(async move { Ok(x) })
}

// A `return` inside the async block, or a closure before it, is fine.
#[tracked::tracked]
fn inside(x: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let double = |n: u32| {
        return n * 2;
    };
    Box::pin(async move {
        if x == 0 {
            return 0;
        }
        double(x)
    })
}

fn main() {
    let _ = checked(1);
    let _ = inside(1);
}

use std::borrow::Cow;
use std::future::Future;

use tracked::tracked;

struct Pair {
    left: u32,
    right: u32,
}

/// Documented, with attributes rustc reads itself: still a plain fn after
/// expansion.
#[tracked(type = "Consensus")]
#[must_use]
#[inline]
#[allow(clippy::needless_lifetimes)]
async fn patterns<'a>(
    (a, b): (u32, u32),
    Pair { left, .. }: Pair,
    _: String,
    ref text: &'a str,
    mut count: usize,
    #[cfg(any())] never: u8,
) -> usize {
    count += 1;
    (a + b + left) as usize + text.len() + count
}

#[tracked]
async fn hidden_lifetimes(text: Cow<str>, args: std::fmt::Arguments<'_>, other: &[u8]) -> String {
    format!("{text}{args}{}", other.len())
}

trait Handler {
    fn handle(&self, input: &str) -> impl Future<Output = usize> + Send;

    #[tracked]
    async fn defaulted(&self) -> bool {
        true
    }
}

struct Upper<T>(T);

impl<T: Sync> Handler for Upper<T> {
    #[tracked(type = "Network")]
    async fn handle(&self, input: &str) -> usize {
        input.to_uppercase().len()
    }
}

fn main() {
    let _ = patterns((1, 2), Pair { left: 3, right: 4 }, String::new(), "x", 0);
    let _ = hidden_lifetimes(Cow::Borrowed("a"), format_args!("b"), &[]);
    let upper = Upper(());
    let _ = upper.handle("x");
    let _ = upper.defaulted();
    let _ = Pair { left: 0, right: 0 }.right;
}

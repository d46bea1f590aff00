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

/// Arguments a `#[cfg]` leaves out, written or applied by a `#[cfg_attr]`,
/// in a fn that is no longer `async` after expansion (`patterns` stays one,
/// being `#[must_use]`, and rustc strips its arguments itself).
#[tracked]
async fn left_out(
    kept: u32,
    #[cfg(any())] never: u8,
    #[cfg(any())] (never_a, never_b): (u8, u8),
    #[cfg_attr(all(), cfg(any()))] never_by_cfg_attr: u8,
    #[cfg_attr(all(), cfg(any()))] (never_c, never_d): (u8, u8),
    #[cfg_attr(all(), cfg(any()))] _never_held: u8,
) -> u32 {
    kept
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
    let _ = left_out(1);
    let _ = hidden_lifetimes(Cow::Borrowed("a"), format_args!("b"), &[]);
    let upper = Upper(());
    let _ = upper.handle("x");
    let _ = upper.defaulted();
    let _ = Pair { left: 0, right: 0 }.right;
}

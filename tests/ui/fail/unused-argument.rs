#![deny(unused_variables)]

// An argument the body never uses is reported at the argument, as rustc
// reports an `async fn`'s; one used only in a format string, in `owner`, or
// named with a leading `_` is not, nor one whose own lint attribute allows
// or expects it, as for an `async fn`.
#[tracked::tracked(owner = tenant.clone())]
async fn handle(
    id: u64,
    tenant: String,
    _permit: u8,
    count: u32,
    label: &str,
    #[allow(unused_variables)] allowed: u8,
    #[expect(unused_variables)] expected: u8,
    #[cfg_attr(all(), allow(unused_variables))] allowed_by_cfg_attr: u8,
) -> String {
    format!("{label}: {count}")
}

fn main() {
    let _ = handle(1, String::new(), 0, 2, "x", 0, 0, 0);
}

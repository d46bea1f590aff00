#![deny(unused_must_use)]

// `#[must_use]` on an annotated `async fn` still covers the output it gives
// when awaited, written below or above the attribute.
#[tracked::tracked]
#[must_use]
async fn computed(n: u32) -> u32 {
    n + 1
}

#[must_use = "the count is the point"]
#[tracked::tracked(type = "Network")]
async fn counted(n: u32) -> u32 {
    n + 1
}

async fn caller() {
    computed(1).await;
    counted(1).await;
    let _ = computed(1).await + counted(1).await;
}

fn main() {
    drop(caller());
}

use tracked::tracked;

#[tracked]
async fn evens(limit: impl Into<u32>) -> impl Iterator<Item = u32> {
    let limit = limit.into();
    (0..limit).filter(|n| n % 2 == 0)
}

#[tracked]
async fn boxed(items: Vec<u32>) -> Result<impl Iterator<Item = u32>, String> {
    Ok(items.into_iter())
}

fn main() {
    let _ = evens(4u8);
    let _ = boxed(vec![1]);
}

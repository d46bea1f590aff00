//! Lints reach an annotated fn as they reach the `async fn`. Checked by
//! clippy (`cargo clippy --all-targets -- -D warnings`): an `#[expect]`
//! that no lint meets is reported. rustc's own lints (`dead_code`,
//! `missing_docs`) are checked by the UI tests.

use tracked::tracked;

/// The first job; clippy's doc lints look at the fn as at an `async fn`.
#[tracked]
#[expect(
    clippy::missing_panics_doc,
    reason = "checks that the lint is reported"
)]
pub async fn first(jobs: Option<u32>) -> u32 {
    jobs.unwrap()
}

#[tokio::test]
async fn the_annotated_fn_runs() {
    assert_eq!(first(Some(3)).await, 3);
}

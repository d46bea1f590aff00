//! A task body that runs until its task is asked to stop, then returns.

/// Waits for the current tracked task's cancellation token.
///
/// # Panics
///
/// Outside a tracked task.
pub(crate) async fn polite() {
    tracked::current()
        .expect("inside a tracked task")
        .cancellation_token()
        .cancelled()
        .await;
}

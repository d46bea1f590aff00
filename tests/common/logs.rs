//! What a test logs through `tracing`, kept as text. Included by the tests
//! that read their warnings (`#[path = "common/logs.rs"] mod logs;`).

use std::sync::{Arc, Mutex};

use tracked::Tracker;

/// A writer for `tracing_subscriber::fmt` that keeps what is logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `test` on a current-thread runtime and returns what it logged at
/// WARN and above (the tracker's tasks run on this thread, where the
/// subscriber is set).
pub(crate) fn logged<F: std::future::Future<Output = ()>>(
    test: impl FnOnce(Tracker) -> F,
) -> String {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test(Tracker::new()));
    let text = logs.0.lock().unwrap().clone();
    String::from_utf8_lossy(&text).into_owned()
}

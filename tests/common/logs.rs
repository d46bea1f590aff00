//! What a test logs through `tracing`, kept as text. Included by the tests
//! that read their warnings (`#[path = "common/logs.rs"] mod logs;`).

use std::sync::{Arc, Mutex, OnceLock};

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
    second_dispatch();
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

/// Keeps a second `Dispatch` alive for the whole test binary. While exactly
/// one exists, tracing-core 0.1.36 takes a line's interest from the thread
/// that reaches it first (tokio-rs/tracing#3611): another test's thread,
/// with no subscriber, would cache "never" and silence this test's warnings
/// for good. With two, it asks every registered dispatch.
pub(crate) fn second_dispatch() {
    static SECOND: OnceLock<tracing::Dispatch> = OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

fn warn_here() {
    tracing::warn!("seen by the test's subscriber");
}

/// A warning is captured even when a thread without a subscriber (another
/// test's) is the first to reach its line.
#[test]
fn a_line_another_thread_reached_first_is_still_logged() {
    let logs = logged(|_| async {
        std::thread::spawn(warn_here).join().unwrap();
        warn_here();
    });
    assert!(logs.contains("seen by the test's subscriber"), "{logs:?}");
}

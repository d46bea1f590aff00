//! `dbg!` of a spawn that `#[tracked]` rewrites prints the spawn as written,
//! not the code it became.
#![allow(clippy::dbg_macro, reason = "what `dbg!` prints is under test")]

use std::process::Command;

use tracked::tracked;

/// Set in the child process that runs the `dbg!`s.
const CHILD: &str = "TRACKED_MACRO_DBG_CHILD";

#[tracked]
async fn debugged() -> (u32, u32) {
    let line = line!();
    let one = dbg!(tokio::spawn(async { 1 }));
    let (two, three) = dbg!(tokio::spawn(async { 2 }), 3);
    dbg!(tokio::spawn(async { 4 }));
    // No spawn: std's `dbg!`.
    dbg!(std::convert::identity(5));
    eprintln!("line {line}");
    (one.await.unwrap() + three, two.await.unwrap())
}

#[tokio::test]
async fn dbg_prints_a_rewritten_spawn_as_written() {
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(debugged().await, (4, 2));
        return;
    }
    let test = "dbg_prints_a_rewritten_spawn_as_written";
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line: u32 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("line "))
        .and_then(|l| l.parse().ok())
        .expect("the child printed its line");
    let file = file!();
    let printed: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    let expected = [
        format!(
            "[{file}:{}:15] tokio::spawn(async {{ 1 }}) = JoinHandle",
            line + 1
        ),
        format!(
            "[{file}:{}:24] tokio::spawn(async {{ 2 }}) = JoinHandle",
            line + 2
        ),
        format!("[{file}:{}:24] 3 = 3", line + 2),
        format!(
            "[{file}:{}:5] tokio::spawn(async {{ 4 }}) = JoinHandle",
            line + 3
        ),
        format!("[{file}:{}:5] std::convert::identity(5) = 5", line + 5),
    ];
    assert_eq!(printed.len(), expected.len(), "{stderr}");
    // Tokens that went through a proc macro print with spaces
    // (`tokio :: spawn`), with or without `#[tracked]`'s rewriting.
    let unspaced = |text: &str| text.replace(' ', "");
    for (printed, expected) in printed.iter().zip(&expected) {
        let (printed, expected) = (unspaced(printed), unspaced(expected));
        assert!(printed.starts_with(&expected), "{printed} / {expected}");
    }
}

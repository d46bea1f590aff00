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

/// A `dbg!` of the crate's own, which tags its value rather than printing.
macro_rules! tagged {
    ($value:expr) => {
        ($value, "tagged")
    };
}
pub(crate) use tagged;

/// `dbg!`s that are not std's: the body's own `macro_rules!`, and one
/// imported under that name. Each is called as written, its spawn still
/// rewritten.
#[tracked]
async fn own_dbg() -> (u32, &'static str, u32, &'static str) {
    let imported = {
        use crate::tagged as dbg;
        dbg!(tokio::spawn(async { 1 }))
    };
    macro_rules! dbg {
        ($value:expr) => {
            ($value, "own")
        };
    }
    let (own, which) = dbg!(tokio::spawn(async { 2 }));
    (
        imported.0.await.unwrap(),
        imported.1,
        own.await.unwrap(),
        which,
    )
}

#[tokio::test]
async fn a_dbg_of_the_body_s_own_is_not_taken_for_std_s() {
    assert_eq!(own_dbg().await, (1, "tagged", 2, "own"));
    let sites = tracked::catalogue().in_module(module_path!());
    let spawns = sites.iter().filter(|s| s.name().contains("own_dbg::"));
    assert_eq!(spawns.count(), 2, "the spawns in them are rewritten");
}

/// A `dbg!` of a spawn under `#[cfg]`, gone under `test`.
#[tracked]
async fn dbg_under_cfg() -> usize {
    let handles: Vec<tokio::task::JoinHandle<u32>> = vec![
        #[cfg(not(test))]
        dbg!(tokio::spawn(async { 1 })),
    ];
    handles.len()
}

#[tokio::test]
async fn a_cfg_on_a_rewritten_dbg_stays_on_it() {
    assert_eq!(dbg_under_cfg().await, 0);
}

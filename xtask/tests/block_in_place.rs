//! tokio's `block_in_place`, a finding of its own rule
//! (`untracked-block-in-place`): through imports no word of the file shows,
//! by markers that name its rule, by `audit-allow`, and the text note.

mod support;

use support::{temp_tree, xtask};
use xtask::{audit, check_source, Options};

/// Each diagnostic of `code` as `line rule`.
fn found(code: &str) -> Vec<String> {
    check_source("blocking.rs", code)
        .iter()
        .map(|d| format!("{} {}", d.line, d.rule.id()))
        .collect()
}

/// A file whose text names neither `spawn` nor `block_in_place` (it calls
/// tokio's through a renamed re-export) is still scanned in full.
#[test]
fn a_renamed_re_export_is_found_in_a_file_that_never_names_it() {
    let root = temp_tree(
        "bip-renamed",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
            ),
            ("src/lib.rs", "pub mod rt;\npub mod work;\n"),
            (
                "src/rt.rs",
                "pub use tokio::task::block_in_place as hold;\n",
            ),
            (
                "src/work.rs",
                "use crate::rt::hold;\n\npub fn f() -> u8 {\n    hold(|| 1)\n}\n",
            ),
        ],
    );
    let report = audit(&Options {
        path: Some(root.to_path_buf()),
        ..Options::default()
    })
    .expect("audit runs");
    let found: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| format!("{} {} {:?}", d.location(), d.rule.id(), d.api))
        .collect();
    assert_eq!(
        found,
        ["src/work.rs:4:5 untracked-block-in-place Some(\"tokio::task::block_in_place\")"]
    );
    assert_eq!(report.spawns(), 0, "not an untracked spawn");
}

/// A marker suppresses the findings of the rules it names, and only those:
/// one naming both covers a spawn and a `block_in_place` on its line.
#[test]
fn a_marker_suppresses_the_rules_it_names() {
    let code = "\
use tokio::task::{block_in_place, spawn};
fn f() {
    // tracked: allow(untracked-spawn, untracked-block-in-place) -- both
    block_in_place(|| spawn(async {}));
    // tracked: allow(untracked-block-in-place) -- not the spawn
    block_in_place(|| spawn(async {}));
    // tracked: allow(untracked-spawn) -- not the block
    block_in_place(|| spawn(async {}));
    // tracked: allow(untracked-block-in-place) -- the statement below
    let _n = std::convert::identity(
        block_in_place(|| 1),
    );
}
";
    assert_eq!(
        found(code),
        ["6 untracked-spawn", "8 untracked-block-in-place"]
    );
}

/// `audit-allow` names files whose calls of tokio's task APIs are allowed:
/// `block_in_place` too. The text output says how to allow one.
#[test]
fn audit_allow_covers_block_in_place_and_the_note_names_its_rule() {
    let root = temp_tree(
        "bip-allow",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[package.metadata.tracked]\naudit-allow = [\"src/rt.rs\"]\n",
            ),
            ("src/lib.rs", "pub mod rt;\npub fn g() {\n    tokio::task::block_in_place(|| ());\n}\n"),
            (
                "src/rt.rs",
                "pub fn hold<R>(f: impl FnOnce() -> R) -> R {\n    tokio::task::block_in_place(f)\n}\n",
            ),
        ],
    );
    let (code, out, err) = xtask(&["audit", "--path", root.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("--> src/lib.rs:3:5"), "{out}");
    assert!(!out.contains("src/rt.rs"), "{out}");
    assert!(
        out.contains("0 untracked spawns, 1 other problem, 1 suppressed"),
        "{out}"
    );
    assert!(
        out.contains("note: to allow tokio's block_in_place, add `// tracked: allow(untracked-block-in-place) -- <reason>`"),
        "{out}"
    );
    assert!(!out.contains("note: to allow a spawn"), "{out}");
}

/// Through a glob import of `tokio::task` (block-local too), unless a local
/// fn of that name shadows it.
#[test]
fn a_glob_import_reaches_it_and_a_local_fn_shadows_it() {
    let code = "\
use tokio::task::*;
fn f() {
    block_in_place(|| ());
}
mod own {
    use tokio::task::*;
    fn block_in_place(f: impl FnOnce()) { f() }
    fn g() {
        block_in_place(|| ());
    }
}
fn h() {
    use tokio::task::*;
    block_in_place(|| ());
}
";
    assert_eq!(
        found(code),
        ["3 untracked-block-in-place", "14 untracked-block-in-place"]
    );
}

//! What `cargo xtask` prints when it stops: the usage text answers a
//! mistake in the command line, and only that.

mod support;

use support::xtask;

#[test]
fn a_command_line_mistake_gets_the_usage() {
    for args in [
        &["audit", "--bogus"][..],
        &["audit", "--format", "xml"],
        &["audit", "--path"],
        &["audit", "--path", ".", "--path", "src"],
        &[
            "audit",
            "--manifest-path",
            "a/Cargo.toml",
            "--manifest-path",
            "Cargo.toml",
        ],
        &["audit", "--path", ".", "--manifest-path", "Cargo.toml"],
        &["audit", "--format", "json", "--format", "sarif"],
        &["audit", "--type", "Network", "--type", "UI"],
        &["bench", "audit", "--lines", "many"],
        &["frobnicate"],
    ] {
        let (code, _, err) = xtask(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains("usage: cargo xtask"), "{args:?}: {err}");
    }
}

#[test]
fn a_failure_while_running_gets_its_message_alone() {
    let missing = std::env::temp_dir().join("xtask-cli-no-such-dir");
    let missing = missing.to_str().expect("a UTF-8 temp dir");
    for args in [
        &["audit", "--path", missing][..],
        &["audit", "--manifest-path", &format!("{missing}/Cargo.toml")],
    ] {
        let (code, _, err) = xtask(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(missing), "{args:?}: the path is named: {err}");
        assert!(!err.contains("usage:"), "{args:?}: {err}");
    }
}

/// An option that names one thing, given twice, is refused rather than
/// letting the last one win: `--path a --path b` would audit `b` alone and
/// pass on findings in `a`.
#[test]
fn a_repeated_option_is_refused_and_named() {
    let (code, out, err) = xtask(&["audit", "--path", "a", "--path", "b"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "nothing audited: {out}");
    assert!(
        err.starts_with("error: `--path` given more than once"),
        "{err}"
    );
}

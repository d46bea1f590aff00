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

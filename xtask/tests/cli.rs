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

/// `cargo tracked …` (the `cargo-tracked` binary, as Cargo runs it: with
/// `tracked` first) audits any project the way `cargo xtask audit` does,
/// and has the audit only: its usage names it, not this workspace's
/// benchmarks.
#[test]
fn cargo_tracked_is_the_audit_for_any_project() {
    let project = support::temp_tree(
        "cargo-tracked",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "src/lib.rs",
                "pub fn start() {\n    tokio::spawn(async {});\n}\n",
            ),
        ],
    );
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-tracked"))
            .args(args)
            .current_dir(&*project)
            .output()
            .expect("cargo-tracked runs");
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("output is UTF-8");
        (
            output.status.code(),
            text(output.stdout),
            text(output.stderr),
        )
    };
    let (code, out, err) = run(&["tracked", "audit"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("error[untracked-spawn]"), "{out}");
    assert!(out.contains("src/lib.rs:2:5"), "{out}");
    // Run by hand, without Cargo's `tracked` in front.
    let (code, json, _) = run(&["audit", "--format", "json"]);
    assert_eq!(code, Some(1));
    assert!(json.contains("\"untracked-spawn\""), "{json}");
    let (code, _, err) = run(&["tracked", "bench"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown command `bench`"), "{err}");
    assert!(err.contains("usage: cargo tracked audit"), "{err}");
    let (code, help, _) = run(&["tracked", "--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("--path") && !help.contains("xtask"), "{help}");
}

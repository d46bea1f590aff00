//! `cargo xtask audit` without `--path`: the workspace around the current
//! directory, also when `cargo metadata` fails on it. Runs the binary, as
//! the current directory is the process's.

mod support;

use std::path::Path;
use support::temp_tree;

/// Runs `xtask audit` in `dir`: the exit code, stdout and stderr.
fn audit_in(dir: &Path) -> (i32, String, String) {
    audit_with(dir, &[])
}

/// Runs `xtask audit` with `args` in `dir`: the exit code, stdout and
/// stderr.
fn audit_with(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("audit")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("xtask runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("output is UTF-8");
    let code = output.status.code().expect("an exit code");
    (code, text(output.stdout), text(output.stderr))
}

/// A workspace with a member that is gone: Cargo reads none of it. The
/// default run audits it as `--path` does (the root and its members by the
/// default layout, with the root's settings), found from a member's
/// directory as Cargo finds a workspace's root; the failure is a warning,
/// and the exit code is the findings'.
#[test]
fn the_default_run_falls_back_when_cargo_cannot_read_the_workspace() {
    let member = "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    let root = temp_tree(
        "default-run-broken",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/a\", \"gone\"]\n\n[workspace.metadata.tracked]\naudit-exclude = [\"crates/a/src/gen.rs\"]\n",
            ),
            ("crates/a/Cargo.toml", member),
            ("crates/a/src/lib.rs", "mod gen;\npub fn f() {}\n"),
            (
                "crates/a/src/gen.rs",
                "pub fn g() { tokio::spawn(async {}); }\n",
            ),
        ],
    );
    for dir in [root.to_path_buf(), root.join("crates/a/src")] {
        let (code, out, err) = audit_in(&dir);
        assert_eq!(code, 0, "{}: {out}{err}", dir.display());
        assert!(
            err.contains("warning: Cargo.toml: `cargo metadata` failed"),
            "{err}"
        );
        assert!(!err.lines().any(|l| l.starts_with("error")), "{err}");
        assert!(out.contains("audit: 1 file, 0 untracked spawns"), "{out}");
    }
    std::fs::write(
        root.join("crates/a/src/lib.rs"),
        "mod gen;\npub fn f() { tokio::spawn(async {}); }\n",
    )
    .expect("write");
    let (code, out, err) = audit_in(&root.join("crates/a"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--> crates/a/src/lib.rs:2:14"), "{out}");
    assert!(out.contains("\"a::f\""), "the member's crate name: {out}");
}

/// On a workspace Cargo cannot read, `--path .` and `--manifest-path
/// Cargo.toml` audit what the run without them does, and say the same: a
/// warning, and the exit code of the findings.
#[test]
fn a_path_to_the_workspace_cargo_cannot_read_is_the_default_run() {
    let root = temp_tree(
        "default-run-same",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/a\", \"gone\"]\n",
            ),
            (
                "crates/a/Cargo.toml",
                "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("crates/a/src/lib.rs", "pub fn f() {}\n"),
        ],
    );
    for (spawns, code) in [("", 0), ("tokio::spawn(async {});", 1)] {
        let lib = format!("pub fn f() {{ {spawns} }}\n");
        std::fs::write(root.join("crates/a/src/lib.rs"), lib).expect("write");
        let default = audit_in(&root);
        assert_eq!(default.0, code, "{}{}", default.1, default.2);
        for args in [["--path", "."], ["--manifest-path", "Cargo.toml"]] {
            assert_eq!(audit_with(&root, &args), default, "{args:?}");
        }
    }
}

/// A member whose `package.workspace` names its root, past a workspace of
/// its own in between: as in Cargo, that root's settings hold for it, and
/// not those of the nearer `[workspace]` the search upwards would find.
#[test]
fn the_default_run_follows_package_workspace_to_the_root() {
    let root = temp_tree(
        "default-run-pointer",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"nested/a\", \"gone\"]\n\n[workspace.metadata.tracked]\naudit-exclude = [\"nested/a/src/gen.rs\"]\n",
            ),
            (
                "nested/Cargo.toml",
                "[package]\nname = \"nested\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
            ),
            ("nested/src/lib.rs", "pub fn n() {}\n"),
            (
                "nested/a/Cargo.toml",
                "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\nworkspace = \"../..\"\n",
            ),
            ("nested/a/src/lib.rs", "mod gen;\npub fn f() {}\n"),
            (
                "nested/a/src/gen.rs",
                "pub fn g() { tokio::spawn(async {}); }\n",
            ),
        ],
    );
    let (code, out, err) = audit_in(&root.join("nested/a/src"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: Cargo.toml: `cargo metadata` failed"),
        "{err}"
    );
    assert!(out.contains("audit: 2 files, 0 untracked spawns"), "{out}");
    std::fs::write(
        root.join("nested/a/src/lib.rs"),
        "mod gen;\npub fn f() { tokio::spawn(async {}); }\n",
    )
    .expect("write");
    let (code, out, err) = audit_in(&root.join("nested/a"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("--> nested/a/src/lib.rs:2:14"), "{out}");
    assert!(out.contains("\"a::f\""), "the member's crate name: {out}");
}

/// A package the workspace above excludes is a workspace of its own, as in
/// Cargo: the run inside it audits it alone.
#[test]
fn the_default_run_in_an_excluded_package_audits_it_alone() {
    let root = temp_tree(
        "default-run-excluded",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/x\"]\nexclude = [\"solo\"]\n",
            ),
            (
                "crates/x/Cargo.toml",
                "[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "crates/x/src/lib.rs",
                "pub fn g() { tokio::spawn(async {}); }\n",
            ),
            (
                "solo/Cargo.toml",
                "[package]\nname = \"solo\"\nversion.workspace = true\nedition = \"2021\"\n",
            ),
            ("solo/src/lib.rs", "pub fn f() {}\n"),
        ],
    );
    let (code, out, err) = audit_in(&root.join("solo"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: Cargo.toml: `cargo metadata` failed"),
        "{err}"
    );
    assert!(out.contains("audit: 1 file, 0 untracked spawns"), "{out}");
}

/// Outside any package there is no workspace to fall back to.
#[test]
fn the_default_run_outside_any_package_is_an_error() {
    let root = temp_tree("default-run-none", &[("a.rs", "fn f() {}\n")]);
    if root.ancestors().any(|d| d.join("Cargo.toml").is_file()) {
        // A Cargo.toml above the temporary directory: nothing to show here.
        return;
    }
    let (code, _, err) = audit_in(&root);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error: `cargo metadata` failed"), "{err}");
}

//! What `--path` audits: packages below a directory without a `Cargo.toml`,
//! a file or directory inside a package (in the package's context), one
//! member's `Cargo.toml`, and a package `cargo metadata` cannot read.

mod support;

use support::{temp_tree, xtask};

/// Runs `audit --format json` on `path`: the exit code, each finding as
/// `file:line rule`, and stderr.
fn audit(path: &std::path::Path) -> (u8, Vec<String>, String) {
    let (code, out, err) = xtask(&[
        "audit",
        "--format",
        "json",
        "--path",
        path.to_str().unwrap(),
    ]);
    let found = out
        .lines()
        .map(|line| {
            let d: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            format!(
                "{}:{} {}",
                d["file"].as_str().unwrap(),
                d["line"],
                d["rule"].as_str().unwrap()
            )
        })
        .collect();
    (code, found, err)
}

const SPAWNS: &str = "pub fn f() { tokio::spawn(async {}); }\n";

fn manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
    )
}

#[test]
fn a_directory_without_a_manifest_audits_each_package_below_it() {
    let (one, two) = (manifest("one"), manifest("two"));
    let root = temp_tree(
        "discovery-packages",
        &[
            ("one/Cargo.toml", &one),
            ("one/src/lib.rs", SPAWNS),
            ("vendored/two/Cargo.toml", &two),
            ("vendored/two/src/lib.rs", SPAWNS),
            ("loose/run.rs", SPAWNS),
        ],
    );
    let (code, found, err) = audit(&root);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found,
        [
            "loose/run.rs:1 untracked-spawn",
            "one/src/lib.rs:1 untracked-spawn",
            "vendored/two/src/lib.rs:1 untracked-spawn",
        ]
    );
    assert!(err.contains("audit: 3 files"), "{err}");
}

#[test]
fn an_audit_that_read_no_file_is_not_clean() {
    let root = temp_tree("discovery-nothing", &[("README.md", "no code here\n")]);
    let (code, found, err) = audit(&root);
    assert_eq!(code, 2, "{err}");
    assert_eq!(found, [format!("{}:null io-error", root.display())]);
    let error = format!("error: cannot read {}: nothing audited", root.display());
    assert!(err.contains(&error), "{err}");
}

/// A pre-commit hook audits the files it is given, each with its package's
/// imports, re-exports and `audit-allow`.
#[test]
fn a_path_inside_a_package_is_audited_in_the_package() {
    let manifest = format!(
        "{}\n[package.metadata.tracked]\naudit-allow = [\"src/rtwrap.rs\"]\n",
        manifest("hook")
    )
    .replace("\n\n[workspace]\n", "\n[workspace]\n");
    let root = temp_tree(
        "discovery-inside",
        &[
            ("Cargo.toml", &manifest),
            ("src/lib.rs", "pub mod a;\npub mod rtwrap;\n"),
            (
                "src/rtwrap.rs",
                "pub use tokio::spawn as go;\npub fn wrap() { tokio::spawn(async {}); }\n",
            ),
            (
                "src/a.rs",
                "pub fn f() {\n    crate::rtwrap::go(async {});\n}\n",
            ),
        ],
    );
    let (code, found, err) = audit(&root.join("src/a.rs"));
    assert_eq!(
        (code, found),
        (1, vec!["src/a.rs:2 untracked-spawn".to_owned()]),
        "{err}"
    );
    assert!(err.contains("audit: 1 file,"), "{err}");
    let (_, out, _) = xtask(&["audit", "--path", root.join("src/a.rs").to_str().unwrap()]);
    assert!(
        out.contains("\"hook::a::f\""),
        "the crate's task name: {out}"
    );
    let (code, found, err) = audit(&root.join("src/rtwrap.rs"));
    assert_eq!((code, found), (0, Vec::new()), "allowed: {err}");
    let (code, found, err) = audit(&root.join("src"));
    assert_eq!(
        (code, found),
        (1, vec!["src/a.rs:2 untracked-spawn".to_owned()]),
        "{err}"
    );
}

/// A workspace that renames tokio: a member's `src/` reaches it by the new
/// name; one member's `Cargo.toml` is that member alone.
#[test]
fn a_member_keeps_its_workspace_and_its_manifest_is_that_member() {
    let member = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nrt = {{ workspace = true }}\n"
        )
    };
    let (a, b) = (member("a"), member("b"));
    let renamed = "pub fn f() { rt::spawn(async {}); }\n";
    let root = temp_tree(
        "discovery-members",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/a\", \"crates/b\"]\nresolver = \"2\"\n\n[workspace.dependencies]\nrt = { package = \"tokio\", version = \"1\" }\n",
            ),
            ("crates/a/Cargo.toml", &a),
            ("crates/a/src/lib.rs", renamed),
            ("crates/b/Cargo.toml", &b),
            ("crates/b/src/lib.rs", renamed),
        ],
    );
    let (code, found, err) = audit(&root.join("crates/a/src"));
    assert_eq!(
        (code, found),
        (1, vec!["crates/a/src/lib.rs:1 untracked-spawn".to_owned()]),
        "{err}"
    );
    for path in ["crates/b", "crates/b/Cargo.toml"] {
        let (code, found, err) = audit(&root.join(path));
        assert_eq!(
            (code, found),
            (1, vec!["crates/b/src/lib.rs:1 untracked-spawn".to_owned()]),
            "{path}: {err}"
        );
    }
}

/// A package copied out of its workspace: Cargo cannot read its manifest,
/// so its files are grouped by the default layout, and the failure is a
/// warning, as in the run without `--path`: the exit code is the findings'.
#[test]
fn a_package_cargo_cannot_read_is_still_audited() {
    let root = temp_tree(
        "discovery-orphan",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"orphan\"\nversion.workspace = true\nedition = \"2021\"\n",
            ),
            ("src/lib.rs", SPAWNS),
        ],
    );
    for path in [
        root.to_path_buf(),
        root.join("Cargo.toml"),
        root.join("src/lib.rs"),
    ] {
        let (code, found, err) = audit(&path);
        assert_eq!(code, 1, "{err}");
        assert_eq!(
            found,
            ["src/lib.rs:1 untracked-spawn"],
            "{}",
            path.display()
        );
        assert!(
            err.contains("warning: Cargo.toml: `cargo metadata` failed"),
            "{err}"
        );
        assert!(!err.lines().any(|l| l.starts_with("error")), "{err}");
    }
    let manifest = root.join("Cargo.toml");
    let (code, out, err) = xtask(&["audit", "--manifest-path", manifest.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("warning: Cargo.toml: `cargo metadata` failed"),
        "{err}"
    );
    std::fs::write(root.join("src/lib.rs"), "pub fn f() {}\n").expect("write");
    for path in [root.to_path_buf(), root.join("src/lib.rs")] {
        let (code, found, err) = audit(&path);
        assert_eq!((code, found), (0, Vec::new()), "{}: {err}", path.display());
    }
}

/// The summary of a path inside a package counts the suppressions in that
/// path, as it counts its files and findings: not the package's.
#[test]
fn a_path_inside_a_package_counts_its_own_suppressions() {
    let manifest = format!(
        "{}\n[package.metadata.tracked]\naudit-allow = [\"src/rt\"]\n",
        manifest("counts")
    )
    .replace("\n\n[workspace]\n", "\n[workspace]\n");
    let marked = |n: usize| {
        "    tokio::spawn(async {}); // tracked: allow(untracked-spawn) -- a reason\n".repeat(n)
    };
    let (one, two) = (marked(1), marked(2));
    let root = temp_tree(
        "discovery-suppressed",
        &[
            ("Cargo.toml", &manifest),
            ("src/lib.rs", "pub mod a;\npub mod b;\npub mod rt;\n"),
            ("src/a.rs", &format!("pub fn f() {{\n{one}}}\n")),
            ("src/b.rs", &format!("pub fn f() {{\n{two}}}\n")),
            (
                "src/rt/mod.rs",
                "pub fn f() {\n    tokio::spawn(async {});\n    tokio::spawn(async {});\n    tokio::spawn(async {});\n}\n",
            ),
        ],
    );
    for (path, files, suppressed) in [
        ("src/a.rs", 1, 1),
        ("src/b.rs", 1, 2),
        ("src/rt", 1, 3),
        ("src/rt/mod.rs", 1, 3),
        ("src/lib.rs", 1, 0),
        ("src", 4, 6),
        ("", 4, 6),
    ] {
        let (code, found, err) = audit(&root.join(path));
        assert_eq!((code, found), (0, Vec::new()), "{path}: {err}");
        let summary = format!(
            "audit: {files} file{}, 0 untracked spawns, 0 other problems, {suppressed} suppressed",
            if files == 1 { "" } else { "s" }
        );
        assert!(err.contains(&summary), "{path}: {err}");
    }
}

/// When Cargo cannot read the manifest, its settings are still read from it
/// as TOML: `audit-exclude` and `audit-allow` hold in the fallback.
#[test]
fn a_package_cargo_cannot_read_keeps_its_settings() {
    let root = temp_tree(
        "discovery-orphan-settings",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"orphan-settings\"\nversion.workspace = true\nedition = \"2021\"\n\n[package.metadata.tracked]\naudit-exclude = [\"src/generated\"]\naudit-allow = [\n    \"src/rt.rs\",\n    \"src/gone.rs\",\n]\n",
            ),
            ("src/lib.rs", "pub mod a;\npub mod generated;\npub mod rt;\n"),
            ("src/a.rs", SPAWNS),
            ("src/generated/mod.rs", SPAWNS),
            ("src/rt.rs", SPAWNS),
        ],
    );
    let (code, found, err) = audit(&root);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found,
        [
            "Cargo.toml:10 unused-suppression",
            "src/a.rs:1 untracked-spawn"
        ],
        "{err}"
    );
    assert!(err.contains("`cargo metadata` failed"), "{err}");
    assert!(!err.contains("settings not read"), "{err}");
    assert!(
        err.contains("audit: 3 files, 1 untracked spawn, 1 other problem, 1 suppressed"),
        "{err}"
    );
    let (_, found, err) = audit(&root.join("src/rt.rs"));
    assert_eq!(found, Vec::<String>::new(), "{err}");
}

/// A workspace with a member that is gone: Cargo reads none of it, so the
/// root and its members are walked by the default layout, in one workspace
/// whose settings (paths relative to its root) cover the members. A package
/// below that is a workspace of its own is audited on its own.
#[test]
fn a_workspace_cargo_cannot_read_keeps_its_settings_for_its_members() {
    let member = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    };
    let (a, b) = (member("a"), member("b"));
    let root = temp_tree(
        "discovery-broken-workspace",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\", \"gone\"]\n\n[workspace.metadata.tracked]\naudit-exclude = [\"crates/a/src/gen.rs\"]\naudit-allow = [\"crates/b\"]\n",
            ),
            ("crates/a/Cargo.toml", &a),
            ("crates/a/src/lib.rs", &format!("mod gen;\n{SPAWNS}")),
            ("crates/a/src/gen.rs", SPAWNS),
            ("crates/b/Cargo.toml", &b),
            ("crates/b/src/lib.rs", SPAWNS),
            ("other/Cargo.toml", &manifest("other")),
            ("other/src/lib.rs", SPAWNS),
        ],
    );
    let (code, found, err) = audit(&root);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found,
        [
            "crates/a/src/lib.rs:2 untracked-spawn",
            "other/src/lib.rs:1 untracked-spawn"
        ],
        "{err}"
    );
    assert!(err.contains("`cargo metadata` failed"), "{err}");
    assert!(err.contains("1 suppressed"), "{err}");
    let (_, out, _) = xtask(&["audit", "--path", root.to_str().unwrap()]);
    assert!(out.contains("\"a::f\""), "the member's crate name: {out}");
    // A member, or a path inside one, is audited in its workspace, as the
    // run without `--path` finds it: with the root's settings, paths shown
    // from the root.
    for path in [
        "crates/b",
        "crates/b/Cargo.toml",
        "crates/b/src",
        "crates/b/src/lib.rs",
    ] {
        let (code, found, err) = audit(&root.join(path));
        assert_eq!((code, found), (0, Vec::new()), "{path}: {err}");
        assert!(err.contains("1 file, 0 untracked spawns"), "{path}: {err}");
        assert!(err.contains("1 suppressed"), "{path}: {err}");
        assert!(
            err.contains("warning: Cargo.toml: `cargo metadata` failed"),
            "{path}: {err}"
        );
    }
    let (code, found, err) = audit(&root.join("crates/a/src/gen.rs"));
    assert_eq!((code, found), (0, Vec::new()), "{err}");
    assert!(
        err.contains("note: crates/a/src/gen.rs: not audited: excluded by configuration"),
        "{err}"
    );
    let (code, found, err) = audit(&root.join("crates/a/src"));
    assert_eq!(
        (code, found),
        (1, vec!["crates/a/src/lib.rs:2 untracked-spawn".to_owned()]),
        "{err}"
    );
}

/// A per-file pre-commit hook passes every file it is given: one the
/// configuration excludes (by `audit-exclude` or `--exclude`) is not audited,
/// as asked, and a note says so; one it allows is audited and passes. A path
/// inside the package with no Rust file at all is still an audit of nothing.
#[test]
fn a_path_the_configuration_excludes_passes_with_a_note() {
    let manifest = format!(
        "{}\n[package.metadata.tracked]\naudit-exclude = [\"src/generated\", \"src/gen_*.rs\"]\naudit-allow = [\"src/rt.rs\"]\n",
        manifest("hooked")
    )
    .replace("\n\n[workspace]\n", "\n[workspace]\n");
    let root = temp_tree(
        "discovery-excluded",
        &[
            ("Cargo.toml", &manifest),
            (
                "src/lib.rs",
                "pub mod generated;\npub mod gen_a;\npub mod rt;\npub mod plain;\n",
            ),
            ("src/generated/mod.rs", SPAWNS),
            ("src/gen_a.rs", SPAWNS),
            ("src/rt.rs", SPAWNS),
            ("src/plain.rs", "pub fn f() {}\n"),
            ("docs/README.md", "no code here\n"),
        ],
    );
    std::fs::create_dir_all(root.join("src/empty")).expect("create dir");
    for (path, pattern) in [
        (
            "src/generated/mod.rs",
            "`audit-exclude` entry `src/generated`",
        ),
        ("src/generated", "`audit-exclude` entry `src/generated`"),
        ("src/gen_a.rs", "`audit-exclude` entry `src/gen_*.rs`"),
    ] {
        let (code, found, err) = audit(&root.join(path));
        assert_eq!((code, found), (0, Vec::new()), "{path}: {err}");
        let note = format!("note: {path}: not audited: excluded by configuration ({pattern})");
        assert!(err.contains(&note), "{path}: {err}");
        assert!(!err.contains("nothing audited"), "{path}: {err}");
    }
    let plain = root.join("src/plain.rs");
    let (code, out, err) = xtask(&[
        "audit",
        "--path",
        plain.to_str().unwrap(),
        "--exclude",
        "src/plain.rs",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "note: src/plain.rs: not audited: excluded by configuration (`--exclude src/plain.rs`)"
        ),
        "{err}"
    );
    let (code, found, err) = audit(&root.join("src/rt.rs"));
    assert_eq!((code, found), (0, Vec::new()), "allowed: {err}");
    assert!(
        err.contains("audit: 1 file, 0 untracked spawns, 0 other problems, 1 suppressed"),
        "{err}"
    );
    assert!(!err.contains("note:"), "{err}");
    for path in ["src/empty", "docs"] {
        let asked = root.join(path);
        let (code, found, err) = audit(&asked);
        let io_error = format!("{}:null io-error", asked.display());
        assert_eq!((code, found), (2, vec![io_error]), "{path}: {err}");
        let error = format!("error: cannot read {}: nothing audited", asked.display());
        assert!(
            err.contains(&error),
            "the path given, not the package's: {err}"
        );
        assert!(!err.contains("note:"), "{path}: {err}");
    }
    // As given: relative to the current directory.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["audit", "--path", "src/empty"])
        .current_dir(&root)
        .output()
        .expect("xtask runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: cannot read src/empty: nothing audited"),
        "{err}"
    );
}

/// `--path` to one member of a workspace whose `audit-allow` names another
/// member's files: that entry is not called unused, as those files were not
/// audited (a per-member hook failed on it). The whole workspace's audit
/// still reports an entry that matches nothing. Both when Cargo reads the
/// workspace and when it cannot (a member is gone) and the audit falls back.
#[test]
fn a_member_audit_does_not_call_other_members_allow_entries_unused() {
    let member = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    };
    for (case, members) in [
        ("read", "\"a\", \"b\""),
        ("broken", "\"a\", \"b\", \"gone\""),
    ] {
        let manifest = format!(
            "[workspace]\nmembers = [{members}]\n\n[workspace.metadata.tracked]\naudit-allow = [\n    \"b/src/lib.rs\",\n    \"b/src/gone.rs\",\n]\n"
        );
        let root = temp_tree(
            &format!("discovery-member-allow-{case}"),
            &[
                ("Cargo.toml", &manifest),
                ("a/Cargo.toml", &member("a")),
                ("a/src/lib.rs", "pub fn quiet() {}\n"),
                ("b/Cargo.toml", &member("b")),
                ("b/src/lib.rs", SPAWNS),
            ],
        );
        let (code, found, err) = audit(&root);
        assert_eq!(
            (code, found),
            (1, vec!["Cargo.toml:7 unused-suppression".to_owned()]),
            "{case}: {err}"
        );
        for path in ["a", "a/Cargo.toml", "a/src"] {
            let (code, found, err) = audit(&root.join(path));
            assert_eq!((code, found), (0, Vec::new()), "{case}, {path}: {err}");
        }
        let (code, found, err) = audit(&root.join("b"));
        assert_eq!((code, found), (0, Vec::new()), "{case}: {err}");
        assert!(err.contains("1 suppressed"), "{case}: {err}");
    }
}

/// `--path` to a folder of a workspace's members (`crates/`, no
/// `Cargo.toml` of its own): each member is audited once, in its workspace;
/// a package below that is not a member is audited on its own.
#[test]
fn a_folder_of_members_audits_each_member_once() {
    let member = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    };
    let root = temp_tree(
        "discovery-members-folder",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/a\", \"crates/b\"]\nexclude = [\"crates/own\"]\n",
            ),
            ("crates/a/Cargo.toml", &member("a")),
            ("crates/a/src/lib.rs", SPAWNS),
            ("crates/b/Cargo.toml", &member("b")),
            ("crates/b/src/lib.rs", SPAWNS),
            ("crates/own/Cargo.toml", &manifest("own")),
            ("crates/own/src/lib.rs", SPAWNS),
        ],
    );
    let (code, found, err) = audit(&root.join("crates"));
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        found,
        [
            "crates/a/src/lib.rs:1 untracked-spawn",
            "crates/b/src/lib.rs:1 untracked-spawn",
            "crates/own/src/lib.rs:1 untracked-spawn",
        ],
        "{err}"
    );
    assert!(err.contains("3 files, 3 untracked spawns"), "{err}");
}

/// An unused `audit-allow` entry is shown at its line, not where the same
/// text stands first (a member's path in `members`).
#[test]
fn an_unused_allow_entry_is_shown_at_its_line() {
    let member = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
    };
    let root = temp_tree(
        "discovery-allow-line",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"a\", \"old\"]\n\n[workspace.metadata.tracked]\naudit-allow = [\"old\"]\n",
            ),
            ("a/Cargo.toml", &member("a")),
            ("a/src/lib.rs", "pub fn quiet() {}\n"),
            ("old/Cargo.toml", &member("old")),
            ("old/src/lib.rs", "pub fn quiet() {}\n"),
        ],
    );
    let (code, found, err) = audit(&root);
    assert_eq!(
        (code, found),
        (1, vec!["Cargo.toml:5 unused-suppression".to_owned()]),
        "{err}"
    );
}

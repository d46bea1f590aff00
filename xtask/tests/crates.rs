//! Names that cross the workspace's crates: a spawning fn or a runtime type
//! one member re-exports, used by another member that depends on it.

mod support;

use support::temp_tree;
use xtask::{audit, Diagnostic, Options, Rule};

/// Each untracked spawn as `file:line`.
fn spawns(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UntrackedSpawn)
        .map(|d| format!("{}:{}", d.file, d.line))
        .collect()
}

fn manifest(name: &str, deps: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}")
}

/// `common-rt` re-exports tokio's spawning fns and runtime types; `mid`
/// re-exports one of them again under another name. `mid` reaches `common-rt`
/// by its crate name (`-` read as `_`), `app` by the `rename` its
/// `Cargo.toml` gives it.
/// `plain` defines look-alikes of the same names that spawn nothing, and
/// `other` depends on a `common-rt` from the registry, which the audit
/// cannot see.
#[test]
fn a_spawn_another_member_re_exports_is_found() {
    let common = manifest("common-rt", "tokio = \"1\"\n");
    let mid = manifest("mid", "common-rt = { path = \"../common\" }\n");
    let plain = manifest("plain", "");
    let other = manifest("other", "common-rt = \"1\"\n");
    let app = manifest(
        "app",
        "rt = { package = \"common-rt\", path = \"../common\" }\nmid = { path = \"../mid\" }\nplain = { path = \"../plain\" }\n",
    );
    let root = temp_tree(
        "crates-re-exports",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"common\", \"mid\", \"plain\", \"app\", \"other\"]\nresolver = \"2\"\n",
            ),
            ("common/Cargo.toml", &common),
            (
                "common/src/lib.rs",
                "pub use tokio::spawn;\npub use tokio::task::spawn_blocking as run_blocking;\npub use tokio::runtime::Handle;\npub mod runtime {\n    pub use tokio::runtime::*;\n}\n",
            ),
            ("mid/Cargo.toml", &mid),
            (
                "mid/src/lib.rs",
                "pub use common_rt::run_blocking as go;\npub fn f() {\n    common_rt::spawn(async {});\n}\n",
            ),
            ("plain/Cargo.toml", &plain),
            (
                "plain/src/lib.rs",
                "pub fn spawn(_: u8) {}\npub struct Handle;\nimpl Handle {\n    pub fn spawn(&self, _: u8) {}\n}\n",
            ),
            ("app/Cargo.toml", &app),
            (
                "app/src/lib.rs",
                "mod quiet;\n\
                 use rt::runtime::Runtime;\n\
                 pub fn direct() {\n    rt::spawn(async {});\n    rt::run_blocking(|| {});\n}\n\
                 pub fn typed(h: rt::Handle, r: &Runtime) {\n    h.spawn(async {});\n    r.spawn(async {});\n}\n\
                 pub fn current() {\n    rt::Handle::current().spawn(async {});\n}\n\
                 pub fn look_alikes(h: plain::Handle) {\n    plain::spawn(1);\n    h.spawn(2);\n}\n",
            ),
            ("app/src/quiet.rs", "pub fn f() {\n    mid::go(|| {});\n}\n"),
            ("other/Cargo.toml", &other),
            (
                "other/src/lib.rs",
                "pub fn f() {\n    common_rt::spawn(async {});\n}\n",
            ),
        ],
    );
    let report = audit(&Options {
        manifest_path: Some(root.join("Cargo.toml")),
        ..Options::default()
    })
    .expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "app/src/lib.rs:4",
            "app/src/lib.rs:5",
            "app/src/lib.rs:8",
            "app/src/lib.rs:9",
            "app/src/lib.rs:12",
            "app/src/quiet.rs:2",
            "mid/src/lib.rs:3",
        ],
        "{}",
        report.summary()
    );
}

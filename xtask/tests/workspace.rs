//! Tidy-style: this workspace follows its own rule. Every raw tokio spawn
//! carries `// tracked: allow(untracked-spawn) -- <reason>`.

use std::path::Path;

#[test]
fn this_workspace_has_no_untracked_spawns() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let options = xtask::Options {
        manifest_path: Some(manifest),
        ..xtask::Options::default()
    };
    let report = xtask::audit(&options).expect("audit runs");
    let rendered: String = report.diagnostics.iter().map(|d| d.render()).collect();
    assert!(report.exit_code() == 0, "{rendered}{}", report.summary());
}

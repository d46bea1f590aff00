//! The audit on the fixture crates, asserted finding by finding.

mod support;

use support::fixture;
use xtask::{audit, Options};

fn findings(options: &Options) -> Vec<String> {
    let report = audit(options).expect("audit runs");
    report
        .diagnostics
        .iter()
        .map(|d| match &d.api {
            Some(api) => format!("{} {} {api}", d.location(), d.rule.id()),
            None => format!("{} {}", d.location(), d.rule.id()),
        })
        .collect()
}

fn on(name: &str) -> Options {
    Options {
        path: Some(fixture(name)),
        ..Options::default()
    }
}

/// Every `P` line of the fixture, and nothing from an `N` line.
const EXPECTED: &str = "\
Cargo.toml:17:34 unused-suppression
src/blocking.rs:14:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:18:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:19:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:20:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:21:13 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:23:16 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:28:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:34:5 unused-suppression
src/blocking.rs:35:5 untracked-block-in-place tokio::task::block_in_place
src/blocking.rs:41:5 untracked-spawn tokio::task::spawn_blocking
src/broken.rs:1:14 parse-error
src/imports.rs:7:5 untracked-spawn tokio::spawn
src/imports.rs:8:5 untracked-spawn tokio::task::spawn
src/imports.rs:9:5 untracked-spawn tokio::task::spawn_blocking
src/imports.rs:10:5 untracked-spawn tokio::task::spawn_local
src/imports.rs:11:5 untracked-spawn tokio::spawn
src/imports.rs:15:5 untracked-spawn tokio::spawn
src/imports.rs:16:5 untracked-spawn tokio::task::spawn
src/imports.rs:17:5 untracked-spawn tokio::task::spawn_blocking
src/imports.rs:18:5 untracked-spawn tokio::task::spawn_blocking
src/imports.rs:19:5 untracked-spawn tokio::task::spawn_local
src/imports.rs:20:5 untracked-spawn tokio::task::spawn
src/imports.rs:25:5 untracked-spawn tokio::task::spawn
src/imports.rs:28:9 untracked-spawn tokio::spawn
src/imports.rs:36:9 untracked-spawn tokio::task::spawn
src/imports.rs:38:13 untracked-spawn tokio::task::JoinSet::spawn
src/imports.rs:46:9 untracked-spawn tokio::spawn
src/imports.rs:51:52 untracked-spawn tokio::spawn
src/macros.rs:3:13 untracked-spawn tokio::spawn
src/macros.rs:6:30 untracked-spawn tokio::spawn
src/macros.rs:7:19 untracked-spawn tokio::spawn
src/macros.rs:8:13 untracked-spawn tokio::spawn
src/macros.rs:9:22 untracked-spawn tokio::task::spawn_blocking
src/macros.rs:16:12 untracked-spawn tokio::spawn
src/macros.rs:22:5 untracked-spawn tokio::spawn
src/macros.rs:27:5 untracked-spawn tokio::spawn
src/methods.rs:13:18 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:14:21 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:15:17 untracked-spawn tokio::runtime::Runtime::spawn_blocking
src/methods.rs:16:26 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:24:23 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:34:9 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:35:9 untracked-spawn tokio::task::JoinSet::spawn_blocking
src/methods.rs:36:9 untracked-spawn tokio::task::JoinSet::spawn_local
src/methods.rs:37:9 untracked-spawn tokio::task::JoinSet::spawn_on
src/methods.rs:39:11 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:41:10 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:42:12 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:43:11 untracked-spawn tokio::task::LocalSet::spawn_local
src/methods.rs:44:23 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:46:8 untracked-spawn tokio::runtime::Runtime::spawn
src/methods.rs:48:11 untracked-spawn tokio::runtime::Runtime::spawn_blocking
src/methods.rs:49:43 untracked-spawn tokio::task::Builder::spawn
src/methods.rs:50:32 untracked-spawn tokio::task::join_set::Builder::spawn
src/methods.rs:51:5 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:53:11 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:65:8 untracked-spawn tokio::runtime::Runtime::spawn
src/methods.rs:66:12 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:68:12 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:70:11 untracked-spawn tokio::runtime::Runtime::spawn
src/methods.rs:72:10 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:74:9 untracked-spawn tokio::task::JoinSet::spawn
src/methods.rs:86:12 untracked-spawn tokio::runtime::Handle::spawn
src/methods.rs:91:8 untracked-spawn tokio::runtime::Runtime::spawn_blocking
src/methods.rs:93:9 untracked-spawn tokio::task::JoinSet::spawn
src/reexport.rs:4:5 untracked-spawn tokio::task::spawn
src/reexport.rs:5:5 untracked-spawn tokio::task::spawn
src/reexport.rs:9:19 untracked-spawn tokio::runtime::Handle::spawn
src/reexport.rs:19:9 untracked-spawn tokio::task::spawn
src/suppressed.rs:5:5 suppression-without-reason
src/suppressed.rs:7:5 unused-suppression
src/suppressed.rs:9:5 malformed-suppression
src/suppressed.rs:10:5 untracked-spawn tokio::spawn
src/suppressed.rs:16:5 unused-suppression
src/suppressed.rs:18:5 untracked-spawn tokio::spawn
src/tracked_fns.rs:12:5 untracked-spawn tokio::spawn
src/tracked_fns.rs:14:9 untracked-spawn tokio::task::JoinSet::spawn
src/tracked_fns.rs:16:22 untracked-spawn tokio::spawn
src/tracked_fns.rs:18:9 untracked-spawn tokio::spawn
src/tracked_fns.rs:21:5 untracked-spawn tokio::task::spawn
src/tracked_fns.rs:29:18 undeclared-task-type
src/tracked_fns.rs:32:18 malformed-tracked-attribute
src/tracked_fns.rs:35:11 malformed-tracked-attribute
src/tracked_fns.rs:38:29 malformed-tracked-attribute
src/tracked_fns.rs:41:18 malformed-tracked-attribute
src/tracked_fns.rs:41:28 malformed-tracked-attribute
src/tracked_fns.rs:44:18 duplicate-task-name
src/tracked_fns.rs:50:19 malformed-tracked-attribute
src/tracked_fns.rs:63:18 duplicate-task-name
src/util.rs:10:20 untracked-spawn tokio_util::task::TaskTracker::spawn
src/util.rs:16:13 untracked-spawn tokio_util::task::TaskTracker::spawn
src/util.rs:17:13 untracked-spawn tokio_util::task::TaskTracker::spawn_blocking
src/util.rs:18:13 untracked-spawn tokio_util::task::TaskTracker::spawn_on
src/util.rs:20:11 untracked-spawn tokio_util::task::TaskTracker::spawn_local
src/util.rs:22:9 untracked-spawn tokio_util::task::JoinMap::spawn
src/util.rs:24:11 untracked-spawn tokio_util::task::JoinMap::spawn_blocking
src/util.rs:26:10 untracked-spawn tokio_util::task::LocalPoolHandle::spawn_pinned
src/util.rs:27:10 untracked-spawn tokio_util::task::LocalPoolHandle::spawn_pinned_by_idx
src/util.rs:29:11 untracked-spawn tokio_util::task::JoinQueue::spawn";

#[test]
fn finds_every_positive_form_and_nothing_else() {
    let expected: Vec<&str> = EXPECTED.lines().collect();
    assert_eq!(findings(&on("audit")), expected);
}

#[test]
fn every_p_line_of_the_fixture_is_found() {
    // Cross-check the list above against the `// P` marks in the sources.
    assert_marks("audit");
}

/// Each line of the fixture's `src/` marked `// P` has a spawn (or a tokio
/// `block_in_place`) found, and none marked `// N` has one.
fn assert_marks(name: &str) {
    let found = findings(&on(name));
    for entry in std::fs::read_dir(fixture(name).join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("src/{}", path.file_name().unwrap().to_string_lossy());
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name}:{}:", i + 1);
            let hit = found.iter().any(|f| {
                f.starts_with(&at)
                    && (f.contains("untracked-spawn") || f.contains("untracked-block-in-place"))
            });
            if line.contains("// P") {
                assert!(hit, "{at} is marked P but not found");
            }
            if line.contains("// N") {
                assert!(!hit, "{at} is marked N but found");
            }
        }
    }
}

/// The findings of the `patterns` fixture in `file`.
fn patterns_in(file: &str) -> Vec<String> {
    let mut found = findings(&on("patterns"));
    found.retain(|f| f.starts_with(&format!("src/{file}:")));
    found
}

#[test]
fn every_p_line_of_the_patterns_fixture_is_found() {
    assert_marks("patterns");
}

/// A variable bound by a pattern (`if let`, `let … else`, `match`, `for`,
/// `while let`, tuple-struct and struct patterns) takes its type from the
/// value matched: `Ok`/`Some` of a `Result`/`Option`, the items of a `Vec`,
/// array or iterator, the fields of the crate's structs.
#[test]
fn a_pattern_binding_takes_the_type_of_what_it_matches() {
    assert_eq!(
        patterns_in("flow.rs"),
        [
            "src/flow.rs:21:16 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:30:7 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:36:15 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:42:15 untracked-spawn tokio::runtime::Handle::spawn_blocking",
            "src/flow.rs:44:43 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:52:15 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:55:15 untracked-spawn tokio::runtime::Handle::spawn_blocking",
            "src/flow.rs:58:15 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:61:15 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:68:11 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:71:11 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:74:11 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:78:11 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:81:15 untracked-spawn tokio::runtime::Handle::spawn",
            "src/flow.rs:90:9 untracked-spawn tokio::task::JoinSet::spawn",
            "src/flow.rs:92:8 untracked-spawn tokio::runtime::Runtime::spawn",
            "src/flow.rs:94:13 untracked-spawn tokio::runtime::Runtime::spawn_blocking",
            "src/flow.rs:97:15 untracked-spawn tokio::task::JoinSet::spawn",
        ]
    );
}

/// A variable bound by a pattern shadows an outer one of that name in its
/// scope (the loop body, the arm, the then-branch, what follows a `let`),
/// and only there; an unknown type shadows too.
#[test]
fn a_pattern_binding_shadows_the_outer_variable_in_its_scope() {
    assert_eq!(
        patterns_in("shadow.rs"),
        [
            "src/shadow.rs:20:8 untracked-spawn tokio::runtime::Runtime::spawn",
            "src/shadow.rs:32:8 untracked-spawn tokio::runtime::Runtime::spawn",
            "src/shadow.rs:40:12 untracked-spawn tokio::runtime::Runtime::spawn",
            "src/shadow.rs:46:8 untracked-spawn tokio::runtime::Runtime::spawn",
            "src/shadow.rs:62:8 untracked-spawn tokio::runtime::Runtime::spawn",
        ]
    );
}

/// `LocalRuntime` (stable since tokio 1.51) spawns through `spawn_local`,
/// `spawn_blocking` and its handle.
#[test]
fn local_runtime_spawns_are_found() {
    assert_eq!(
        patterns_in("local_runtime.rs"),
        [
            "src/local_runtime.rs:11:8 untracked-spawn tokio::runtime::LocalRuntime::spawn_local",
            "src/local_runtime.rs:12:8 untracked-spawn tokio::runtime::LocalRuntime::spawn_blocking",
            "src/local_runtime.rs:13:17 untracked-spawn tokio::runtime::Handle::spawn",
            "src/local_runtime.rs:14:5 untracked-spawn tokio::runtime::LocalRuntime::spawn_local",
            "src/local_runtime.rs:20:11 untracked-spawn tokio::runtime::LocalRuntime::spawn_local",
            "src/local_runtime.rs:21:14 untracked-spawn tokio::runtime::LocalRuntime::spawn_blocking",
        ]
    );
}

/// Each test, example and bench is a crate root: a name one of them defines
/// or imports does not leak into another. A module under `tests/common/` is
/// in every test crate, and audited once. A crate's name, which starts its
/// default task names, is its target's name with `-` read as `_`.
#[test]
fn each_test_example_and_bench_is_a_crate_of_its_own() {
    assert_eq!(
        findings(&on("targets")),
        [
            "benches/glob.rs:6:5 untracked-spawn tokio::spawn",
            "benches/glob.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "benches/my-bench/main.rs:5:18 duplicate-task-name",
            "examples/glob.rs:6:5 untracked-spawn tokio::spawn",
            "examples/glob.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "tests/common/mod.rs:5:5 untracked-spawn tokio::spawn",
            "tests/dir/main.rs:6:5 untracked-spawn tokio::spawn",
            "tests/glob.rs:6:5 untracked-spawn tokio::spawn",
            "tests/glob.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "tests/my-test.rs:6:18 duplicate-task-name",
            "tests/uses_common.rs:6:5 untracked-spawn tokio::spawn",
        ]
    );
    assert_eq!(audit(&on("targets")).expect("audit runs").files, 13);
}

/// The library, `src/main.rs` and each binary are crates of their own: a
/// name one of them defines or imports does not leak into another, and a
/// binary's default task names start with its own name. Binaries, tests,
/// examples and benches reach the library by the package's name, `-` read as
/// `_`; a duplicate of a library task name is reported in the crate that
/// repeats it.
#[test]
fn the_library_and_each_binary_are_crates_of_their_own() {
    assert_eq!(
        findings(&on("bins")),
        [
            "benches/uses_lib.rs:2:5 untracked-spawn tokio::spawn",
            "examples/uses_lib.rs:2:5 untracked-spawn tokio::spawn",
            "src/bin/dir/main.rs:5:5 untracked-spawn tokio::spawn",
            "src/bin/dir/main.rs:6:5 untracked-spawn tokio::task::spawn_blocking",
            "src/bin/glob.rs:6:5 untracked-spawn tokio::spawn",
            "src/bin/glob.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "src/main.rs:10:5 untracked-spawn tokio::spawn",
            "src/main.rs:11:5 untracked-spawn tokio::spawn",
            "src/main.rs:15:10 duplicate-task-name",
            "tests/uses_lib.rs:6:5 untracked-spawn tokio::spawn",
            "tests/uses_lib.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "tests/uses_lib.rs:8:5 untracked-spawn tokio::task::spawn_blocking",
        ]
    );
    assert_eq!(audit(&on("bins")).expect("audit runs").files, 11);
}

/// The targets are the manifest's: each target's crate root is its `path`,
/// the files of its directory are its modules, and its crate name is its
/// `name` (`-` read as `_`); the others reach the library by its `[lib] name`.
/// A file no target claims is still audited.
#[test]
fn targets_come_from_the_manifest() {
    assert_eq!(
        findings(&on("manifest")),
        [
            "checks/smoke.rs:7:5 untracked-spawn tokio::spawn",
            "checks/smoke.rs:8:5 untracked-spawn tokio::spawn",
            "core/engine.rs:7:5 untracked-spawn tokio::task::spawn_blocking",
            "scripts/orphan.rs:3:5 untracked-spawn tokio::spawn",
            "tools/cli/start.rs:6:5 untracked-spawn tokio::spawn",
            "tools/cli/start.rs:7:5 untracked-spawn tokio::spawn",
            "tools/cli/start.rs:8:5 untracked-spawn tokio::task::spawn_blocking",
            "tools/cli/start.rs:14:18 duplicate-task-name",
        ]
    );
    assert_eq!(audit(&on("manifest")).expect("audit runs").files, 7);
}

/// `#[path = "..."] mod name;` mounts its file at `name`, found as rustc
/// finds it: from the declaring file's directory, and inside an inline
/// module of a non-mod-rs file `foo.rs`, from `foo/`. The decoys at the
/// wrong places define look-alikes.
#[test]
fn a_path_attribute_mounts_its_file_where_it_declares_it() {
    assert_eq!(
        findings(&on("paths")),
        [
            "benches/run.rs:8:5 untracked-spawn tokio::spawn",
            "benches/run.rs:9:5 untracked-spawn tokio::spawn",
            "benches/run.rs:10:5 untracked-spawn tokio::task::spawn_blocking",
            "src/lib.rs:8:5 untracked-spawn tokio::spawn",
            "src/lib.rs:9:5 untracked-spawn tokio::spawn",
            "src/lib.rs:10:5 untracked-spawn tokio::task::spawn_blocking",
            "src/lib.rs:11:5 untracked-spawn tokio::task::spawn_blocking",
        ]
    );
}

#[test]
fn follows_a_dependency_renamed_in_the_manifest() {
    assert_eq!(
        findings(&on("renamed")),
        [
            "src/lib.rs:2:5 untracked-spawn tokio::spawn",
            "src/lib.rs:3:5 untracked-spawn tokio::task::spawn_blocking",
            "src/lib.rs:5:9 untracked-spawn tokio::task::JoinSet::spawn",
            "src/lib.rs:6:34 untracked-spawn tokio_util::task::TaskTracker::spawn",
        ]
    );
}

#[test]
fn doctests_are_scanned_only_when_asked() {
    let doc = "src/lib.rs:4:5 untracked-spawn tokio::spawn".to_owned();
    assert!(!findings(&on("audit")).contains(&doc));
    let options = Options {
        doctests: Some(true),
        ..on("audit")
    };
    assert!(findings(&options).contains(&doc));
}

#[test]
fn excludes_skip_paths() {
    let options = Options {
        exclude: vec!["src/m*.rs".to_owned(), "src/imports.rs".to_owned()],
        ..on("audit")
    };
    let found = findings(&options);
    assert!(found
        .iter()
        .all(|f| !f.starts_with("src/m") && !f.starts_with("src/imports")));
    assert!(found.iter().any(|f| f.starts_with("src/reexport.rs")));
}

#[test]
fn exit_codes_are_zero_one_two() {
    assert_eq!(
        support::xtask(&["audit", "--path", fixture("audit").to_str().unwrap()]).0,
        1
    );
    let clean = fixture("audit/src/negatives.rs");
    assert_eq!(
        support::xtask(&["audit", "--path", clean.to_str().unwrap()]).0,
        0
    );
    assert_eq!(support::xtask(&["audit", "--path", "/no/such/dir"]).0, 2);
    assert_eq!(support::xtask(&["audit", "--format", "yaml"]).0, 2);
    assert_eq!(support::xtask(&["audit", "--bogus"]).0, 2);
}

//! Which files the audit reads, and the crate and module each is read in:
//! through symbolic links, from a build script's `mod` items, and in a
//! directory without a `Cargo.toml`.

mod support;

use support::temp_tree;
use xtask::{audit, Diagnostic, Options, Rule};

/// Each untracked spawn as `file:line:col` and the task name its help gives.
fn spawns(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UntrackedSpawn)
        .map(|d| {
            let help = d.help.as_deref().unwrap_or("");
            let name = help.split('"').nth(1).unwrap_or("");
            format!("{} {name}", d.location())
        })
        .collect()
}

fn on(path: &std::path::Path) -> Options {
    Options {
        path: Some(path.to_path_buf()),
        ..Options::default()
    }
}

const MANIFEST: &str = "\
[package]
name = \"links\"
version = \"0.0.0\"
edition = \"2021\"

[dependencies]
tokio = \"1\"

[workspace]
";

/// rustc reads a module file or a target root through a symbolic link, so
/// the audit does too, at the link's path and in the crate that mounts it.
/// A link back to a directory the walk is in (the package directory, or one
/// above it) is not followed: its files are read at their own paths, once.
#[cfg(unix)]
#[test]
fn symbolic_links_are_followed_as_rustc_follows_them() {
    use std::os::unix::fs::symlink;
    let root = temp_tree(
        "symlinks",
        &[
            (
                "outside/net.rs",
                "pub fn f() {\n    crate::go(async {});\n}\n",
            ),
            (
                "outside/dir/mod.rs",
                "fn g() {\n    super::go(async {});\n}\n",
            ),
            (
                "outside/tool.rs",
                "fn main() {\n    tokio::spawn(async {});\n}\n",
            ),
            ("pkg/Cargo.toml", MANIFEST),
            (
                "pkg/src/lib.rs",
                "pub use tokio::spawn as go;\nmod net;\nmod linked;\n",
            ),
        ],
    );
    let pkg = root.join("pkg");
    std::fs::create_dir_all(pkg.join("src/bin")).expect("create src/bin");
    let links = [
        ("../../outside/net.rs", "src/net.rs"),
        ("../../outside/dir", "src/linked"),
        ("../../../outside/tool.rs", "src/bin/tool.rs"),
        ("..", "src/up"),
        ("../..", "src/top"),
        ("../../pkg/src", "src/linked/back"),
    ];
    for (target, link) in links {
        symlink(target, pkg.join(link)).expect("create symlink");
    }
    let report = audit(&on(&pkg)).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "src/bin/tool.rs:2:5 tool::main",
            "src/linked/mod.rs:2:5 links::linked::g",
            "src/net.rs:2:5 links::net::f",
        ]
    );
    assert_eq!(report.files, 4);
    assert!(report.io_errors.is_empty(), "{:?}", report.io_errors);
}

/// A build script's `mod` items mount files in its crate, as any target's
/// do: `super::` and `crate::` in them reach the build script's names, and
/// their task names start with its crate name.
#[test]
fn a_build_script_mounts_its_modules_in_its_own_crate() {
    let report = audit(&on(&support::fixture("build"))).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "build.rs:7:5 build_script_build::main",
            "gen.rs:4:5 build_script_build::gen::run",
            "gen/inner.rs:2:5 build_script_build::gen::inner::run",
            "src/lib.rs:4:5 build_fixture::start",
        ]
    );
    assert_eq!(report.files, 4);
}

/// A `mod` item of a build script whose file is a target's root (its own,
/// or a library's at the package's top) mounts nothing: that file is
/// audited once, as that target.
#[test]
fn a_build_script_never_mounts_a_target_root() {
    let manifest = MANIFEST.replace(
        "[dependencies]",
        "[lib]\npath = \"lib.rs\"\n\n[dependencies]",
    );
    let root = temp_tree(
        "build-roots",
        &[
            ("Cargo.toml", &manifest),
            (
                "lib.rs",
                "pub fn start() {\n    tokio::spawn(async {});\n}\n",
            ),
            (
                "build.rs",
                "mod lib;\nmod build;\nfn main() {\n    tokio::spawn(async {});\n}\n",
            ),
        ],
    );
    let report = audit(&on(&root)).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "build.rs:4:5 build_script_build::main",
            "lib.rs:2:5 links::start",
        ]
    );
    assert_eq!(report.files, 2);
}

/// `target/`, `vendor/` and `node_modules/` are skipped at a package's root
/// (Cargo's build directory, `cargo vendor`'s output, and `cargo package`'s
/// copies in `target/package/`), and `node_modules/` next to a
/// `package.json`; elsewhere a directory of that name is read, as the module
/// directory `mod target;` mounts.
#[test]
fn build_and_vendor_directories_are_skipped_only_at_a_package_root() {
    let spawn = "pub fn f() {\n    tokio::spawn(async {});\n}\n";
    let root = temp_tree(
        "skipped-dirs",
        &[
            ("pkg/Cargo.toml", MANIFEST),
            (
                "pkg/src/lib.rs",
                "mod target;\nmod vendor;\nmod node_modules;\n",
            ),
            ("pkg/src/target.rs", "mod linux;\n"),
            ("pkg/src/target/linux.rs", spawn),
            ("pkg/src/vendor/mod.rs", spawn),
            ("pkg/src/node_modules.rs", spawn),
            ("pkg/target/debug/build/out.rs", spawn),
            ("pkg/target/package/links-0.0.0/Cargo.toml", MANIFEST),
            ("pkg/target/package/links-0.0.0/src/lib.rs", spawn),
            ("pkg/vendor/dep/src/lib.rs", spawn),
            ("pkg/node_modules/napi/lib.rs", spawn),
            ("pkg/web/package.json", "{}\n"),
            ("pkg/web/node_modules/napi/lib.rs", spawn),
            ("target/debug/out.rs", spawn),
            (
                "tools/vendor/two/Cargo.toml",
                &MANIFEST.replace("links", "two"),
            ),
            ("tools/vendor/two/src/lib.rs", spawn),
        ],
    );
    let report = audit(&on(&root)).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "pkg/src/node_modules.rs:2:5 links::node_modules::f",
            "pkg/src/target/linux.rs:2:5 links::target::linux::f",
            "pkg/src/vendor/mod.rs:2:5 links::vendor::f",
            "tools/vendor/two/src/lib.rs:2:5 two::f",
        ]
    );
}

/// In a directory without a `Cargo.toml`, a module file named `lib.rs` or
/// `main.rs` below a crate root's directory is a module of that name, as the
/// `mod` items that mount it say: `super::go` in it reaches its parent
/// module's `go`. Only `tests/dir/main.rs` itself is a crate root.
#[test]
fn a_module_named_lib_or_main_keeps_its_name_outside_cargo() {
    let go = "pub use tokio::spawn as go;\n";
    let calls_go = "fn f() {\n    super::go(async {});\n}\n";
    let root = temp_tree(
        "layout",
        &[
            ("app/src/lib.rs", "mod foo;\n"),
            ("app/src/foo.rs", &format!("{go}mod lib;\nmod main;\n")),
            ("app/src/foo/lib.rs", calls_go),
            ("app/src/foo/main.rs", calls_go),
            ("app/tests/it.rs", "mod common;\n"),
            ("app/tests/common/mod.rs", &format!("{go}mod lib;\n")),
            ("app/tests/common/lib.rs", calls_go),
            (
                "app/tests/dir/main.rs",
                &format!("{go}mod helper;\nmod lib;\n"),
            ),
            ("app/tests/dir/helper.rs", calls_go),
            ("app/tests/dir/lib.rs", calls_go),
        ],
    );
    let report = audit(&on(&root.join("app"))).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        [
            "src/foo/lib.rs:2:5 app::foo::lib::f",
            "src/foo/main.rs:2:5 app::foo::main::f",
            "tests/common/lib.rs:2:5 it::common::lib::f",
            "tests/dir/helper.rs:2:5 dir::helper::f",
            "tests/dir/lib.rs:2:5 dir::lib::f",
        ]
    );
}

/// A directory below `base` whose real path is longer than Linux takes
/// (4,096 bytes), made through links in `hops` so that no call sees the whole
/// path; returns a short link to it.
#[cfg(target_os = "linux")]
fn too_long_dir(base: &std::path::Path, hops: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::symlink;
    let name = "d".repeat(250);
    let mut real = base.as_os_str().len();
    let mut short = base.to_path_buf();
    std::fs::create_dir_all(hops).expect("create hops");
    for level in 0.. {
        if real > 4096 {
            break;
        }
        short.push(&name);
        std::fs::create_dir_all(&short).expect("create level");
        real += name.len() + 1;
        if level % 8 == 7 {
            let hop = hops.join(level.to_string());
            symlink(&short, &hop).expect("create hop");
            short = hop;
        }
    }
    let end = hops.join("end");
    symlink(&short, &end).expect("create link");
    end
}

/// A directory the walk cannot list, or a link to one it cannot resolve, is
/// reported with the OS's reason, and the rest of the package is audited.
/// Root reads a directory whatever its permissions, so the test makes one
/// whose path is longer than Linux takes: `deep/…` cannot be listed, and
/// `far`, a link to it, cannot be resolved (`File name too long`).
#[cfg(target_os = "linux")]
#[test]
fn a_directory_that_cannot_be_read_is_reported_and_the_rest_audited() {
    use std::os::unix::fs::symlink;
    let spawn = "fn main() {\n    tokio::spawn(async {});\n}\n";
    let root = temp_tree("unreadable", &[("pkg/a.rs", spawn), ("pkg/z.rs", spawn)]);
    let pkg = root.join("pkg");
    let end = too_long_dir(&pkg.join("deep"), &root.join("hops"));
    std::fs::write(end.join("lost.rs"), spawn).expect("write lost.rs");
    symlink(&end, pkg.join("far")).expect("create far");
    let report = audit(&on(&pkg)).expect("audit runs");
    assert_eq!(
        spawns(&report.diagnostics),
        ["a.rs:2:5 a::main", "z.rs:2:5 z::main"]
    );
    // Each as its path's first component and the OS's reason.
    let problems: Vec<_> = report
        .io_errors
        .iter()
        .filter_map(|e| e.split_once(": "))
        .map(|(path, why)| (path.split('/').next().unwrap_or(path), why))
        .collect();
    let too_long = "File name too long (os error 36)";
    assert_eq!(problems, [("far", too_long), ("deep", too_long)]);
    assert_eq!(report.exit_code(), 2);
}

/// A `.rs` link that leads nowhere (dangling, or a loop of links) is
/// reported with where it leads and why, like a file that cannot be read;
/// the other files are audited as usual. Hidden names stay silent: Emacs
/// leaves its lock files (`.#lib.rs`) as dangling links. So does a broken
/// link with another name, which could have led anywhere (a build output, a
/// `compile_commands.json`), and one that is excluded.
#[cfg(target_os = "linux")]
#[test]
fn a_source_link_that_leads_nowhere_is_reported() {
    use std::os::unix::fs::symlink;
    let spawn = "fn main() {\n    tokio::spawn(async {});\n}\n";
    let root = temp_tree("broken-links", &[("pkg/src/lib.rs", spawn)]);
    let pkg = root.join("pkg");
    let links = [
        ("missing.rs", "src/gone.rs"),
        ("loop.rs", "src/loop.rs"),
        ("root@host.4242:1700000000", "src/.#lib.rs"),
        ("missing", "src/generated"),
        ("missing.rs", "src/skipped.rs"),
    ];
    for (target, link) in links {
        symlink(target, pkg.join(link)).expect("create symlink");
    }
    let options = Options {
        exclude: vec!["src/skipped.rs".to_owned()],
        ..on(&pkg)
    };
    let report = audit(&options).expect("audit runs");
    assert_eq!(spawns(&report.diagnostics), ["src/lib.rs:2:5 pkg::main"]);
    assert_eq!(
        report.io_errors,
        [
            "src/gone.rs: link to missing.rs: No such file or directory (os error 2)",
            "src/loop.rs: link to loop.rs: Too many levels of symbolic links (os error 40)",
        ]
    );
    assert_eq!(report.exit_code(), 2);
}

//! `--fix` rewrites direct spawns, leaves every other byte alone, is
//! idempotent, and lists what it could not fix.

mod support;

use support::{copy_fixture, fixture, temp_tree, xtask};

#[test]
fn rewrites_direct_spawns_only() {
    let dir = copy_fixture("fix", "fix");
    let (code, out, err) = xtask(&["audit", "--path", dir.to_str().unwrap(), "--fix"]);
    let fixed = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let expected = std::fs::read_to_string(fixture("fix/expected.rs")).unwrap();
    assert_eq!(fixed, expected);
    assert_eq!(code, 1, "method spawns remain");
    assert!(
        err.contains("rewrote 7 of 11 untracked spawns in 1 file(s)"),
        "{err}"
    );
    assert!(err.contains("could not fix 4 untracked spawn(s)"), "{err}");
    for left in [
        "src/lib.rs:32:9",
        "src/lib.rs:33:5",
        "src/lib.rs:34:54",
        "src/lib.rs:39:9",
    ] {
        assert!(
            out.contains(left),
            "{left} is listed as not fixed (positions after the fix):\n{out}"
        );
    }

    let (_, _, err) = xtask(&["audit", "--path", dir.to_str().unwrap(), "--fix"]);
    assert!(err.contains("rewrote 0 of 4"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
        expected,
        "idempotent"
    );
}

#[test]
fn type_flag_overrides_the_configured_type() {
    let dir = copy_fixture("fix", "fix-type");
    xtask(&[
        "audit",
        "--path",
        dir.to_str().unwrap(),
        "--fix",
        "--type",
        "Network",
    ]);
    let fixed = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(fixed.contains(
        r#"::tracked::spawn("fix_fixture::net::serve", ::tracked::TaskType::NETWORK, serve());"#
    ));
    assert!(!fixed.contains("Indexer"));
}

/// A file reached by two paths (`src/b.rs`, a link to `src/a.rs`) is
/// audited at each, as the module each path is, but rewritten once, as the
/// first path reads it: rewriting it again, at positions the first rewrite
/// has moved (its line break), would turn `fooo(1)` into a spawn.
#[cfg(unix)]
#[test]
fn a_file_reached_by_two_paths_is_rewritten_once() {
    let source = "fn f() {
    tokio::spawn(
        async {},
    );
    let _ = fooo(1);
    tokio::spawn(b());
}
";
    let root = temp_tree(
        "fix-links",
        &[
            ("app/src/lib.rs", "mod a;\nmod b;\n"),
            ("app/src/a.rs", source),
        ],
    );
    let app = root.join("app");
    std::os::unix::fs::symlink("a.rs", app.join("src/b.rs")).expect("create symlink");
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    let fixed = std::fs::read_to_string(app.join("src/a.rs")).unwrap();
    let expected = r#"fn f() {
    ::tracked::spawn(
        "app::a::f", ::tracked::TaskType::GENERAL,
        async {},
    );
    let _ = fooo(1);
    ::tracked::spawn("app::a::b", ::tracked::TaskType::GENERAL, b());
}
"#;
    assert_eq!(fixed, expected);
    assert!(
        err.contains("rewrote 2 of 4 untracked spawns in 1 file(s)"),
        "{err}"
    );
    assert_eq!(code, 0);
}

/// The fix names the crate from the root, `::tracked::`: a module named
/// `tracked` in scope would take `tracked::spawn` for its own (E0425).
#[test]
fn the_fix_names_tracked_from_the_root() {
    let root = temp_tree(
        "fix-root",
        &[(
            "app/src/lib.rs",
            "mod tracked {}\nfn f() {\n    tokio::spawn(g());\n}\n",
        )],
    );
    let app = root.join("app");
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 0, "{err}");
    let fixed = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    assert!(
        fixed.contains(r#"    ::tracked::spawn("app::g", ::tracked::TaskType::GENERAL, g());"#),
        "{fixed}"
    );
}

/// Tracked's `JoinHandle` is not tokio's: in a crate that names tokio's
/// type (or whose library does), a spawn whose handle is kept may end up
/// where only tokio's fits (a field, a return type, a typed `let`, a fn of
/// the library), and is listed as not fixed; one whose handle is dropped or
/// awaited at once is rewritten. A crate that never names the type is fixed
/// in full.
#[test]
fn a_handle_that_may_be_stored_as_tokios_type_is_not_fixed() {
    let lib = "\
pub struct Holder { pub h: Option<tokio::task::JoinHandle<()>> }
pub fn a(holder: &mut Holder) { holder.h = Some(tokio::spawn(async {})); }
pub fn b() -> tokio::task::JoinHandle<u8> { tokio::spawn(async { 1 }) }
pub fn c() { let hs: Vec<tokio::task::JoinHandle<u8>> = vec![tokio::spawn(async { 1 })]; drop(hs); }
pub fn keep(_: tokio::task::JoinHandle<()>) {}
pub async fn d() {
    tokio::spawn(async {});
    let _ = tokio::spawn(async {});
    tokio::spawn(async { 1 }).await.unwrap();
}
";
    let main = "fn main() {\n    let h = tokio::spawn(async {});\n    app::keep(h);\n}\n";
    let other = "pub fn f() {\n    let h = tokio::spawn(async {});\n    drop(h);\n}\n";
    let root = temp_tree(
        "fix-handles",
        &[
            ("app/src/lib.rs", lib),
            ("app/src/main.rs", main),
            ("other/src/lib.rs", other),
        ],
    );
    let app = root.join("app");
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("rewrote 3 of 7 untracked spawns in 1 file(s)"),
        "{err}"
    );
    for at in [
        "src/lib.rs:2:49",
        "src/lib.rs:3:45",
        "src/lib.rs:4:62",
        "src/main.rs:2:13",
    ] {
        let line = format!("fix: not fixed: {at}: its JoinHandle is kept");
        assert!(err.contains(&line), "{line}:\n{err}");
    }
    let fixed = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    let d = fixed.split("pub async fn d()").nth(1).unwrap();
    assert_eq!(
        d.matches("::tracked::spawn(\"app::d\"").count(),
        3,
        "{fixed}"
    );
    assert_eq!(fixed.matches("tokio::spawn(").count(), 3, "{fixed}");

    let other = root.join("other");
    let (code, _, err) = xtask(&["audit", "--path", other.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("rewrote 1 of 1"), "{err}");
}

/// A file that starts with a byte-order mark is rewritten at the right
/// place on its first line, and keeps the mark.
#[test]
fn a_byte_order_mark_stays_and_moves_nothing() {
    let root = temp_tree(
        "fix-bom",
        &[(
            "app/src/lib.rs",
            "\u{feff}fn f() { tokio::spawn(g()); }\nfn h() {\n    tokio::spawn(g());\n}\n",
        )],
    );
    let app = root.join("app");
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 0, "{err}");
    let fixed = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    let expected =
        "\u{feff}fn f() { ::tracked::spawn(\"app::g\", ::tracked::TaskType::GENERAL, g()); }\n\
        fn h() {\n    ::tracked::spawn(\"app::g\", ::tracked::TaskType::GENERAL, g());\n}\n";
    assert_eq!(fixed, expected);
}

/// A file that cannot be rewritten (here, gone since the audit) is reported
/// and the others are fixed all the same; the run ends with exit code 2.
#[test]
fn a_file_that_cannot_be_rewritten_is_reported_and_the_rest_fixed() {
    let root = temp_tree(
        "fix-gone",
        &[
            ("app/src/lib.rs", "mod a;\nmod b;\n"),
            ("app/src/a.rs", "fn f() {\n    tokio::spawn(g());\n}\n"),
            ("app/src/b.rs", "fn f() {\n    tokio::spawn(g());\n}\n"),
        ],
    );
    let app = root.join("app");
    let options = xtask::Options {
        path: Some(app.clone()),
        ..xtask::Options::default()
    };
    let report = xtask::audit(&options).expect("the audit runs");
    std::fs::remove_file(app.join("src/a.rs")).expect("remove a.rs");
    let outcome = xtask::fix(&report);
    assert_eq!(outcome.files, ["src/b.rs"]);
    assert_eq!(outcome.fixed, 1);
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    assert!(
        outcome.failed[0].starts_with("src/a.rs: "),
        "{:?}",
        outcome.failed
    );
    let fixed = std::fs::read_to_string(app.join("src/b.rs")).unwrap();
    assert!(fixed.contains(r#"::tracked::spawn("app::b::g""#), "{fixed}");
}

/// A rewrite replaces the file's text and nothing else about it: a module
/// reached through a symbolic link is rewritten where the link points, the
/// link staying a link, and the file keeps its permissions.
#[cfg(unix)]
#[test]
fn a_rewrite_keeps_links_and_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let root = temp_tree(
        "fix-keeps",
        &[
            ("app/src/lib.rs", "mod net;\n"),
            ("shared/net.rs", "fn f() {\n    tokio::spawn(g());\n}\n"),
        ],
    );
    let app = root.join("app");
    let real = root.join("shared/net.rs");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("../../shared/net.rs", app.join("src/net.rs")).unwrap();
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 0, "{err}");
    let link = std::fs::symlink_metadata(app.join("src/net.rs")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is kept");
    let fixed = std::fs::read_to_string(&real).unwrap();
    assert!(
        fixed.contains(r#"::tracked::spawn("app::net::g""#),
        "{fixed}"
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(root.join("shared")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left");
}

/// A direct call of tokio's `block_in_place` becomes tracked's (the same
/// signature: only the callee changes, whatever follows the parenthesis),
/// even where the crate names tokio's `JoinHandle`; one passed as a value
/// or with generic arguments is listed as not fixed.
#[test]
fn block_in_place_becomes_tracked_s() {
    let lib = "\
use tokio::task::{block_in_place, JoinHandle};
pub fn keep(_: JoinHandle<()>) {}
pub fn f() -> u8 {
    let n = block_in_place(|| 1);
    tokio::task::block_in_place(
        || n,
    )
}
pub fn g() {
    let h = tokio::task::block_in_place::<fn() -> u8, u8>;
    drop(h);
    tokio::task::block_in_place::<_, ()>(|| ());
}
";
    let root = temp_tree("fix-block-in-place", &[("app/src/lib.rs", lib)]);
    let app = root.join("app");
    let (code, out, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("untracked spawns"), "{err}");
    assert!(
        err.contains("rewrote 2 of 4 calls of tokio's block_in_place into tracked::block_in_place in 1 file(s)"),
        "{err}"
    );
    assert!(
        err.contains("could not fix 2 call(s) of tokio's block_in_place"),
        "{err}"
    );
    let expected = lib
        .replace(
            "let n = block_in_place(",
            "let n = ::tracked::block_in_place(",
        )
        .replace(
            "    tokio::task::block_in_place(\n",
            "    ::tracked::block_in_place(\n",
        );
    let fixed = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    assert_eq!(fixed, expected);
    for left in ["src/lib.rs:10:13", "src/lib.rs:12:5"] {
        assert!(out.contains(left), "{left} is not fixed:\n{out}");
    }

    let (_, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert!(err.contains("rewrote 0 of 2 calls"), "{err}");
    let again = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    assert_eq!(again, expected, "idempotent");
}

/// A spawn the attribute does not rewrite (imported at module level) in a
/// `#[tracked(type = …)]` fn is fixed, and suggested, with that fn's type;
/// one in a plain fn, or in a fn nested in the annotated one, with the
/// default.
#[test]
fn a_spawn_in_an_annotated_fn_takes_its_type() {
    let root = temp_tree(
        "fix-fn-type",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "src/lib.rs",
                "use tokio::spawn;

#[tracked::tracked(type = \"Database\")]
async fn flush() {
    spawn(async {});
    fn nested() {
        spawn(async {});
    }
}

#[tracked::tracked(type = \"Gossip\")]
async fn gossip() {
    spawn(async {});
}

fn plain() {
    spawn(async {});
}
",
            ),
        ],
    );
    let path = root.to_str().unwrap();
    let (_, out, _) = xtask(&["audit", "--path", path]);
    assert!(
        out.contains("use `tracked::spawn(\"svc::flush\", tracked::TaskType::DATABASE, future)`"),
        "{out}"
    );
    xtask(&["audit", "--path", path, "--fix"]);
    let fixed = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    for expected in [
        r#"::tracked::spawn("svc::flush", ::tracked::TaskType::DATABASE, async {});"#,
        r#"::tracked::spawn("svc::nested", ::tracked::TaskType::GENERAL, async {});"#,
        r#"::tracked::spawn("svc::gossip", ::tracked::TaskType::new("Gossip"), async {});"#,
        r#"::tracked::spawn("svc::plain", ::tracked::TaskType::GENERAL, async {});"#,
    ] {
        assert!(fixed.contains(expected), "{expected} in\n{fixed}");
    }
}

/// A fixed spawn is named for the fn it runs, as `#[tracked]` on that fn
/// would name it; a block or a closure for the fn spawning it.
#[test]
fn a_fixed_spawn_is_named_for_the_fn_it_runs() {
    let lib = "\
struct S;
impl S { async fn run(&self) {} }
async fn serve(_: u8) {}
pub async fn accept(s: S) {
    tokio::spawn(serve(1));
    tokio::spawn(Box::pin(serve(2)));
    tokio::spawn(s.run());
    tokio::spawn(async {});
    tokio::task::spawn_blocking(|| ());
}
";
    let root = temp_tree("fix-names", &[("app/src/lib.rs", lib)]);
    let app = root.join("app");
    let (code, _, err) = xtask(&["audit", "--path", app.to_str().unwrap(), "--fix"]);
    assert_eq!(code, 0, "{err}");
    let fixed = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
    let names: Vec<_> = fixed
        .lines()
        .filter_map(|line| {
            Some(
                line.split("spawn(\"")
                    .nth(1)
                    .or(line.split("spawn_blocking(\"").nth(1))?
                    .split('"')
                    .next()?
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "app::serve",
            "app::serve",
            "app::run",
            "app::accept",
            "app::accept"
        ],
        "{fixed}"
    );
}

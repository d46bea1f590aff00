//! What a suppression marker covers: the spawns of its line and of the
//! statement that starts below it (at its first attribute, if it has any),
//! but not a spawn inside the arguments of a spawn it covers; and the help
//! of an unused `audit-allow` entry.

mod support;

use xtask::check_source;

/// Each diagnostic of `code` as `line rule`.
fn found(code: &str) -> Vec<String> {
    check_source("suppress.rs", code)
        .iter()
        .map(|d| format!("{} {}", d.line, d.rule.id()))
        .collect()
}

#[test]
fn a_marker_above_a_spawn_leaves_the_spawns_in_its_arguments_reported() {
    let code = "\
use tokio::task::JoinSet;
fn f(set: &mut JoinSet<()>) {
    // tracked: allow(untracked-spawn) -- the driver
    tokio::spawn(async {
        tokio::spawn(async {});
        let _h = std::mem::drop(
            tokio::task::spawn_blocking(|| ()),
        );
    });
    // tracked: allow(untracked-spawn) -- the outer one only
    let _h = std::mem::drop(tokio::spawn(async {
        let _ = tokio::spawn(async {});
    }));
    // tracked: allow(untracked-spawn) -- a method form is a spawn too
    set.spawn(async {
        tokio::spawn(async {});
    });
}
";
    assert_eq!(
        found(code),
        [
            "5 untracked-spawn",
            "7 untracked-spawn",
            "12 untracked-spawn",
            "16 untracked-spawn",
        ]
    );
}

/// The nested spawn keeps its own marker; the outer one's stays used.
#[test]
fn a_spawn_inside_another_is_suppressed_by_a_marker_of_its_own() {
    let code = "\
fn f() {
    // tracked: allow(untracked-spawn) -- the driver
    tokio::spawn(async {
        // tracked: allow(untracked-spawn) -- the baseline
        tokio::spawn(async {});
        let _h = tokio::spawn(async {}); // tracked: allow(untracked-spawn) -- the baseline
    });
    // tracked: allow(untracked-spawn) -- one line: both calls are on it
    tokio::spawn(async { tokio::spawn(async {}).await });
}
";
    assert_eq!(found(code), Vec::<String>::new());
}

/// A wrapper that is not a spawn still lends its statement to the spawns in
/// its arguments, as documented.
#[test]
fn a_marker_above_a_wrapper_covers_the_spawns_in_its_arguments() {
    let code = "\
fn f() {
    // tracked: allow(untracked-spawn) -- the wrapper's spawn
    let _h = std::mem::drop(
        tokio::spawn(async {}),
    );
    // tracked: allow(untracked-spawn) -- and in a closure inside it
    let _j = std::mem::drop(Some(|| {
        tokio::spawn(async {});
    }));
}
";
    assert_eq!(found(code), Vec::<String>::new());
}

#[test]
fn a_marker_above_a_statements_attributes_covers_it() {
    let code = "\
fn f() {
    // tracked: allow(untracked-spawn) -- above the attribute
    #[allow(clippy::let_underscore_future)]
    let _h = tokio::spawn(async {});
    // tracked: allow(untracked-spawn) -- above two attributes
    #[allow(unused_variables)]
    #[allow(clippy::let_underscore_future)]
    let h = std::mem::drop(
        tokio::spawn(async {}),
    );
    // tracked: allow(untracked-spawn) -- above an expression statement's attribute
    #[allow(unused_must_use)]
    tokio::spawn(async {});
    #[allow(clippy::let_underscore_future)]
    // tracked: allow(untracked-spawn) -- between the attribute and the statement
    let _k = std::mem::drop(
        tokio::spawn(async {}),
    );
}
";
    assert_eq!(found(code), Vec::<String>::new());
}

/// The attribute's line is the statement's only while it holds the spawn:
/// a marker above an attribute of an earlier statement covers nothing below
/// it.
#[test]
fn a_marker_above_another_statements_attribute_covers_nothing_else() {
    let code = "\
fn f() {
    // tracked: allow(untracked-spawn) -- covers the next statement only
    #[allow(unused_variables)]
    let x = 1;
    tokio::spawn(async {});
}
";
    assert_eq!(found(code), ["2 unused-suppression", "5 untracked-spawn"]);
}

/// An unused `audit-allow` entry's help names the table it is in: a lone
/// package's `[package.metadata.tracked]`, or the workspace's.
#[test]
fn an_unused_allow_entry_names_its_own_table() {
    for (table, extra) in [
        ("package", ""),
        ("workspace", "[workspace.metadata.other]\nkey = 1\n"),
    ] {
        let manifest = format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n{extra}\n\
             [{table}.metadata.tracked]\naudit-allow = [\"src/gone.rs\"]\n"
        );
        let root = support::temp_tree(
            &format!("suppress-allow-{table}"),
            &[("Cargo.toml", &manifest), ("src/lib.rs", "pub fn f() {}\n")],
        );
        let options = xtask::Options {
            path: Some(root.to_path_buf()),
            ..xtask::Options::default()
        };
        let report = xtask::audit(&options).expect("audit runs");
        let helps: Vec<&str> = report
            .diagnostics
            .iter()
            .filter_map(|d| d.help.as_deref())
            .collect();
        let help = format!("remove it from `[{table}.metadata.tracked] audit-allow`");
        assert_eq!(helps, [help.as_str()], "{manifest}");
    }
}

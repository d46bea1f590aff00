//! Name resolution through imports that form cycles, fans and long chains:
//! the audit finds what the imports reach, stops at cycles, and neither
//! hangs nor overflows the stack.

use xtask::{check_source, Diagnostic, Rule};

fn spawns(diagnostics: &[Diagnostic]) -> Vec<(usize, &str)> {
    diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UntrackedSpawn)
        .map(|d| (d.line, d.api.as_deref().unwrap_or("")))
        .collect()
}

#[test]
fn globs_that_import_each_other_find_names_across_the_cycle() {
    let code = "\
mod a {
    pub use super::b::*;
    pub use tokio::spawn as go;
}
mod b {
    pub use super::a::*;
    pub fn local() {}
}
fn f() {
    b::go(async {});
    a::local();
    b::missing();
}
";
    let diagnostics = check_source("cycle.rs", code);
    assert_eq!(spawns(&diagnostics), [(10, "tokio::spawn")]);
}

#[test]
fn a_glob_of_itself_finds_nothing_more() {
    let code = "\
mod a {
    pub use self::*;
    pub use super::a::*;
}
use a::*;
fn f() {
    spawn(async {});
    tokio::spawn(async {});
}
";
    let diagnostics = check_source("self_glob.rs", code);
    assert_eq!(spawns(&diagnostics), [(8, "tokio::spawn")]);
}

/// Every module globs every other: a search that explored each path through
/// the fan separately would not finish.
#[test]
fn a_dense_fan_of_glob_imports_is_searched_once_per_name() {
    let n = 60;
    let mut code = String::new();
    for i in 0..n {
        code.push_str(&format!("mod m{i} {{\n"));
        for j in 0..n {
            if j != i {
                code.push_str(&format!("    pub use super::m{j}::*;\n"));
            }
        }
        if i == n - 1 {
            code.push_str("    pub use tokio::task::spawn_blocking as run;\n");
        }
        code.push_str("}\n");
    }
    code.push_str("fn f() {\n    m0::run(|| ());\n    m0::nothing(|| ());\n}\n");
    let call_line = n * (n + 1) + 3;
    let diagnostics = check_source("fan.rs", &code);
    assert_eq!(
        spawns(&diagnostics),
        [(call_line, "tokio::task::spawn_blocking")]
    );
}

/// Re-exports chained further than any real crate: followed to the end.
#[test]
fn long_reexport_chains_are_followed_to_the_end() {
    for n in [40, 20_000] {
        let mut code = String::from("fn f() {\n    m0::go(async {});\n}\n");
        for i in 0..n {
            code.push_str(&format!("mod m{i} {{ pub use super::m{}::go; }}\n", i + 1));
        }
        code.push_str(&format!("mod m{n} {{ pub use tokio::spawn as go; }}\n"));
        let diagnostics = check_source("chain.rs", &code);
        assert_eq!(spawns(&diagnostics), [(2, "tokio::spawn")], "chain of {n}");
    }
}

#[test]
fn reexports_that_form_a_cycle_resolve_to_nothing() {
    let code = "\
mod a { pub use super::b::go; }
mod b { pub use super::a::go; }
fn f() {
    a::go(async {});
    tokio::spawn(async {});
}
";
    let diagnostics = check_source("reexport_cycle.rs", code);
    assert_eq!(spawns(&diagnostics), [(5, "tokio::spawn")]);
}

#[test]
fn block_imports_that_lead_back_to_themselves_resolve_to_nothing() {
    let code = "\
mod task { pub use tokio::task::*; }
fn f() {
    use go as run;
    use run as go;
    go(async {});
    use task::*;
    spawn(async {});
}
fn g() {
    use x::*;
    use y::*;
    use tokio::task::spawn_local;
    spawn_local(async {});
    other(async {});
}
";
    let diagnostics = check_source("block_cycle.rs", code);
    assert_eq!(
        spawns(&diagnostics),
        [(7, "tokio::task::spawn"), (13, "tokio::task::spawn_local")]
    );
}

/// Type aliases that stand for each other (which rustc rejects) name no
/// type, and neither hang nor overflow; a long chain of them is followed.
#[test]
fn type_aliases_in_a_cycle_name_nothing_and_a_chain_is_followed() {
    let mut code = String::from(
        "\
type A = B;
type B = Vec<A>;
type Grow<T> = Grow<(T, T)>;
type Chain0 = tokio::runtime::Handle;
",
    );
    for i in 1..=20 {
        code.push_str(&format!("type Chain{i} = Chain{};\n", i - 1));
    }
    code.push_str(
        "\
fn f(a: A, grow: Grow<tokio::runtime::Handle>, chain: Chain20) {
    a.spawn(async {});
    grow.spawn(async {});
    chain.spawn(async {});
}
",
    );
    let diagnostics = check_source("alias_cycle.rs", &code);
    assert_eq!(
        spawns(&diagnostics),
        [(28, "tokio::runtime::Handle::spawn")]
    );
}

/// Aliases that each use the one before twice would take twice the work
/// (and square the type's size) at each step: a type stops after a bounded
/// number of expansions, and a large argument is unknown.
#[test]
fn aliases_that_double_at_each_step_end_quickly() {
    let mut code = String::from("type A0<T> = (T, T);\n");
    for i in 1..=40 {
        code.push_str(&format!("type A{i}<T> = A{}<A{}<T>>;\n", i - 1, i - 1));
    }
    code.push_str("type Small = A1<tokio::runtime::Handle>;\n");
    code.push_str("fn f(big: A40<tokio::runtime::Handle>, small: Small) {\n");
    code.push_str("    big.0.spawn(async {});\n    small.0.1.spawn(async {});\n}\n");
    let diagnostics = check_source("alias_doubling.rs", &code);
    assert_eq!(
        spawns(&diagnostics),
        [(45, "tokio::runtime::Handle::spawn")]
    );
}

//! Patterns the `patterns` fixture does not show: let chains, alternatives,
//! slices, `@` bindings, patterns in parameters and `vec!`.

use xtask::{check_source, Rule};

/// The lines of the untracked spawns found in `code`.
fn spawn_lines(code: &str) -> Vec<usize> {
    check_source("patterns.rs", code)
        .iter()
        .filter(|d| d.rule == Rule::UntrackedSpawn)
        .map(|d| d.line)
        .collect()
}

#[test]
fn a_let_chain_binds_in_the_rest_of_the_condition_and_the_then_branch() {
    let code = "\
use tokio::runtime::{Handle, Runtime};
fn f(opt: Option<Handle>, other: Option<u8>) {
    let rt = Runtime::new().unwrap();
    if let Some(h) = opt && let Some(rt) = other && h.spawn(async {}).is_finished() {
        rt.spawn(1);
    } else {
        rt.spawn(async {});
    }
}
";
    assert_eq!(spawn_lines(code), [4, 7]);
}

#[test]
fn alternatives_bind_their_names_with_the_type_one_of_them_shows() {
    let code = "\
use tokio::runtime::Handle;
fn f(r: Result<Handle, Handle>, pair: (Handle, u8)) {
    match r {
        Ok(h) | Err(h) => h.spawn(async {}),
    };
    let ((h, _) | (h, _)) = pair;
    h.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [4, 7]);
}

#[test]
fn slices_at_bindings_and_parameters_take_the_matched_type() {
    let code = "\
use tokio::task::JoinSet;
struct Sets(JoinSet<()>, u8);
struct Named { set: JoinSet<()> }
fn f(sets: Vec<JoinSet<()>>, Sets(mut first, n): Sets, Named { set: mut named }: Named) {
    if let [one, rest @ ..] = &sets[..] {
        one.spawn(async {});
        rest[0].spawn(async {});
    }
    first.spawn(async {});
    named.spawn(async {});
    n.spawn(());
    let all @ Sets(..) = Sets(JoinSet::new(), 0);
    all.0.spawn(async {});
    let closure = |Named { set }: Named| set.spawn(async {});
    let mut listed = vec![JoinSet::new(), JoinSet::new()];
    listed[0].spawn(async {});
    for mut s in listed.drain(..) {
        s.spawn(async {});
    }
    drop(closure);
}
";
    assert_eq!(spawn_lines(code), [6, 7, 9, 10, 13, 14, 16, 18]);
}

#[test]
fn a_binding_in_a_match_arm_or_loop_ends_with_it() {
    let code = "\
use tokio::runtime::Runtime;
struct Exec;
fn f(execs: Vec<Exec>) {
    let rt = Runtime::new().unwrap();
    match 1 {
        _ if let Some(rt) = execs.first() => rt.spawn(1),
        rt => rt.spawn(1),
    };
    for rt in execs {
        rt.spawn(1);
    }
    rt.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [12]);
}

#[test]
fn the_value_of_a_match_if_let_or_block_sees_the_names_bound_inside_it() {
    let code = "\
use tokio::runtime::{Handle, Runtime};
struct Exec;
fn f(rt: Runtime) {
    let h = match Handle::try_current() {
        Ok(h) => h,
        Err(_) => return,
    };
    h.spawn(async {});
    let a = match Exec { rt => rt };
    a.spawn(1);
    let b = if let Some(rt) = Some(Exec) { rt } else { Exec };
    b.spawn(1);
    let c = { let rt = Exec; rt };
    c.spawn(1);
    let d = { let h2 = Handle::current(); h2 };
    d.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [8, 16]);
}

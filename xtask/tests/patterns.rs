//! Patterns the `patterns` fixture does not show: let chains, alternatives,
//! slices, `@` bindings, patterns in parameters and `vec!`; a `JoinSet`
//! built from an iterator or extended; raw identifiers; statics, consts
//! and type aliases; locks, cells and smart pointers; what `block_on` gives;
//! fns a local macro writes out.

mod support;

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

/// tokio's `JoinSet` (and tokio-util's `JoinQueue`) implements
/// `FromIterator`, and `JoinSet` `Extend`: both spawn each future. Found
/// where the target type is known: a turbofish, a `let` annotation, a
/// receiver known to be a `JoinSet`; also in a file that never says
/// `spawn`.
#[test]
fn a_join_set_built_from_an_iterator_or_extended_spawns() {
    let code = "\
use tokio::task::JoinSet;
use tokio_util::task::JoinQueue;
struct S { set: JoinSet<u8> }
async fn f(s: &mut S, v: Vec<u8>) {
    let a: JoinSet<u8> = v.iter().map(|&i| async move { i }).collect();
    let b = v.iter().map(|&i| async move { i }).collect::<JoinSet<_>>();
    let c = JoinSet::from_iter([async { 1u8 }]);
    s.set.extend([async { 2u8 }]);
    let q: JoinQueue<u8> = v.iter().map(|&i| async move { i }).collect();
    let n: Vec<u8> = v.iter().copied().collect();
    let mut w = Vec::new();
    w.extend([1u8]);
    let m = v.iter().collect::<Vec<_>>();
}
";
    let root = support::temp_tree("patterns-iter", &[("src/lib.rs", code)]);
    let found = found_apis(&root);
    assert_eq!(
        found,
        [
            "src/lib.rs:5:62 tokio::task::JoinSet::from_iter",
            "src/lib.rs:6:49 tokio::task::JoinSet::from_iter",
            "src/lib.rs:7:13 tokio::task::JoinSet::from_iter",
            "src/lib.rs:8:11 tokio::task::JoinSet::extend",
            "src/lib.rs:9:64 tokio_util::task::JoinQueue::from_iter",
        ]
    );
}

/// A raw identifier names what the plain one does: `tokio::r#spawn` is
/// `tokio::spawn`, in paths, imports, bindings and method calls.
#[test]
fn raw_identifiers_name_what_the_plain_ones_do() {
    let code = "\
use tokio::r#task::{r#JoinSet, spawn_blocking as r#go};
mod r#async { pub use tokio::r#spawn; }
fn f(r#loop: JoinSet<()>, set: r#JoinSet<()>) {
    tokio::r#spawn(async {});
    r#go(|| ());
    crate::r#async::spawn(async {});
    r#loop.spawn(async {});
    set.r#spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [4, 5, 6, 7, 8]);
}

/// `static` and `const` items have the type they are declared with, through
/// `LazyLock`, once_cell's `Lazy`, `lazy_static!` and, by `get`,
/// `get_or_init` or `wait`, a `OnceLock` or `OnceCell`; a static in another
/// module is found by its path or import. A local binding shadows one.
#[test]
fn statics_and_consts_have_their_declared_type() {
    let code = "\
use std::sync::{LazyLock, OnceLock};
use tokio::runtime::{Handle, Runtime};
static RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
static LAZY: once_cell::sync::Lazy<Runtime> = once_cell::sync::Lazy::new(|| Runtime::new().unwrap());
static ONCE: OnceLock<Handle> = OnceLock::new();
static CELL: once_cell::sync::OnceCell<Runtime> = once_cell::sync::OnceCell::new();
static ASYNC: tokio::sync::OnceCell<Runtime> = tokio::sync::OnceCell::const_new();
lazy_static::lazy_static! {
    /// The runtime.
    pub static ref LEGACY: Runtime = Runtime::new().unwrap();
}
mod rt {
    pub const HANDLE: std::sync::LazyLock<tokio::runtime::Handle> =
        std::sync::LazyLock::new(tokio::runtime::Handle::current);
}
use rt::HANDLE as H;
async fn f() {
    RT.spawn(async {});
    LAZY.spawn_blocking(|| ());
    ONCE.get().unwrap().spawn(async {});
    ONCE.get().expect(\"set\").spawn(async {});
    ONCE.get_or_init(Handle::current).spawn(async {});
    ONCE.wait().spawn(async {});
    if let Some(h) = ONCE.get() {
        h.spawn(async {});
    }
    CELL.get_or_init(|| Runtime::new().unwrap()).spawn(async {});
    ASYNC.get_or_init(|| async { Runtime::new().unwrap() }).await.spawn(async {});
    LEGACY.spawn(async {});
    crate::rt::HANDLE.spawn(async {});
    H.spawn(async {});
    static LOCAL: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
    LOCAL.spawn(async {});
    let h = RT.handle().clone();
    h.spawn(async {});
    RT.handle().spawn_blocking(|| ());
    let RT = Exec;
    RT.spawn(1);
}
struct Exec;
";
    assert_eq!(
        spawn_lines(code),
        [18, 19, 20, 21, 22, 23, 25, 27, 28, 29, 30, 31, 33, 35, 36]
    );
}

/// A static of the crate's own type, whatever its methods are called, is
/// no tokio type; nor is a static whose type the audit cannot see.
#[test]
fn statics_of_other_types_are_not_flagged() {
    let code = "\
use std::sync::{LazyLock, Mutex, OnceLock};
struct Pool;
impl Pool { fn spawn(&self, _: u8) {} }
static POOL: Pool = Pool;
static LAZY_POOL: LazyLock<Pool> = LazyLock::new(|| Pool);
static ONCE: OnceLock<Pool> = OnceLock::new();
static THREADS: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());
static OTHER: LazyLock<rayon::ThreadPool> = LazyLock::new(|| todo!());
fn f() {
    POOL.spawn(1);
    LAZY_POOL.spawn(1);
    ONCE.get().unwrap().spawn(1);
    THREADS.lock().unwrap().push(std::thread::spawn(|| ()));
    OTHER.spawn(|| ());
}
";
    assert_eq!(spawn_lines(code), Vec::<usize>::new());
}

/// Type aliases stand for the type they name, generic ones with their
/// arguments, defined in the same module or another.
#[test]
fn type_aliases_stand_for_their_type() {
    let code = "\
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
type Set = JoinSet<()>;
mod types {
    pub type Rt = std::sync::Arc<tokio::runtime::Runtime>;
    pub type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;
    pub type Pair<A, B> = (A, B);
}
use types::Shared;
struct S { set: Set, rt: types::Rt, shared: Shared<JoinSet<()>>, pair: types::Pair<u8, Set> }
impl S {
    fn go(&mut self) {
        self.set.spawn(async {});
        self.rt.spawn(async {});
        self.shared.lock().unwrap().spawn(async {});
        self.pair.1.spawn(async {});
        let mut local = Set::new();
        local.spawn(async {});
        type Inner = Set;
        let mut inner: Inner = JoinSet::new();
        inner.spawn(async {});
        self.pair.0.spawn(1);
    }
}
";
    assert_eq!(spawn_lines(code), [13, 14, 15, 16, 18, 21]);
}

/// An alias of a type the audit does not follow, or of the crate's own
/// type, is not a tokio type.
#[test]
fn aliases_of_other_types_are_not_flagged() {
    let code = "\
struct JoinSet<T>(T);
impl<T> JoinSet<T> { fn spawn(&mut self, _: u8) {} }
type Set = JoinSet<()>;
type Threads = Vec<std::thread::JoinHandle<()>>;
type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;
fn f(mut set: Set, threads: Threads, shared: Shared<Set>, other: Shared<Vec<u8>>) {
    set.spawn(1);
    shared.lock().unwrap().spawn(1);
    other.lock().unwrap().push(1);
    drop(threads);
}
";
    assert_eq!(spawn_lines(code), Vec::<usize>::new());
}

/// `Arc`, `Rc` and `Box` deref to what they hold; a `Mutex` or `RwLock`
/// (std's, tokio's, parking_lot's) or `RefCell` gives it through its guard,
/// however it is reached (`unwrap`, `expect`, `?`, `.await`, directly, or
/// `if let Ok(..)`); an `Option` field through `as_mut` or `if let Some`.
#[test]
fn locks_cells_and_smart_pointers_give_what_they_hold() {
    let code = "\
use std::{cell::RefCell, rc::Rc, sync::{Arc, Mutex, RwLock}};
use tokio::{runtime::Handle, task::JoinSet};
struct S {
    std: Mutex<JoinSet<()>>,
    rw: Arc<RwLock<JoinSet<()>>>,
    tokio: tokio::sync::Mutex<JoinSet<()>>,
    pl: parking_lot::Mutex<JoinSet<()>>,
    cell: Rc<RefCell<JoinSet<()>>>,
    boxed: Box<Handle>,
    opt: Option<JoinSet<()>>,
    locked_opt: Mutex<Option<JoinSet<()>>>,
}
impl S {
    async fn go(&mut self) -> std::io::Result<()> {
        self.std.lock().unwrap().spawn(async {});
        self.std.lock().expect(\"poisoned\").spawn(async {});
        self.rw.write().unwrap().spawn(async {});
        self.tokio.lock().await.spawn(async {});
        self.pl.lock().spawn(async {});
        self.cell.borrow_mut().spawn(async {});
        self.boxed.spawn(async {});
        self.opt.as_mut().unwrap().spawn(async {});
        if let Some(set) = &mut self.opt {
            set.spawn(async {});
        }
        self.locked_opt.lock().unwrap().as_mut().unwrap().spawn(async {});
        if let Ok(mut guard) = self.std.try_lock() {
            guard.spawn(async {});
        }
        let rw = self.rw.clone();
        let mut guard = rw.write().unwrap();
        guard.spawn(async {});
        self.tokio.try_lock().ok().unwrap().spawn(async {});
        let local = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        local.lock().await.spawn(async {});
        let cell = RefCell::new(JoinSet::new());
        cell.borrow_mut().spawn(async {});
        if let Some(mut set) = self.locked_opt.lock().unwrap().take() {
            set.spawn(async {});
        }
        self.guard().spawn(async {});
        self.tokio_guard().await.spawn(async {});
        Ok(())
    }
    fn guard(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.std.lock().unwrap()
    }
    async fn tokio_guard(&self) -> tokio::sync::MutexGuard<'_, JoinSet<()>> {
        self.tokio.lock().await
    }
}
";
    assert_eq!(
        spawn_lines(code),
        [15, 16, 17, 18, 19, 20, 21, 22, 24, 26, 28, 32, 33, 35, 37, 39, 41, 42]
    );
}

/// A lock of something else is not a tokio type, nor is the crate's own
/// `Mutex` (whatever `lock` returns there) or a lock of the crate's own
/// `JoinSet`.
#[test]
fn locks_of_other_types_are_not_flagged() {
    let code = "\
use std::sync::Mutex as StdMutex;
struct Mutex<T>(T);
impl<T> Mutex<T> { fn lock(&self) -> Pool { Pool } }
struct Pool;
impl Pool { fn spawn(&self, _: u8) {} }
struct JoinSet;
impl JoinSet { fn spawn(&mut self, _: u8) {} }
fn f(
    mine: Mutex<tokio::task::JoinSet<()>>,
    list: StdMutex<Vec<u8>>,
    pool: StdMutex<Pool>,
    set: StdMutex<JoinSet>,
) {
    mine.lock().spawn(1);
    Mutex::new(tokio::task::JoinSet::<()>::new()).lock().spawn(1);
    list.lock().unwrap().push(1);
    pool.lock().unwrap().spawn(1);
    set.lock().unwrap().spawn(1);
    std::thread::spawn(|| ());
}
";
    assert_eq!(spawn_lines(code), Vec::<usize>::new());
}

/// A static or alias defined in a file that never says `spawn` (read at
/// item level only) types the spawns of the files that use it.
#[test]
fn statics_and_aliases_of_other_files_type_their_uses() {
    let rt = "\
use std::sync::LazyLock;
use tokio::runtime::Runtime;
pub static RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
lazy_static::lazy_static! { pub static ref OLD: Runtime = Runtime::new().unwrap(); }
pub type Tasks = std::sync::Mutex<tokio::task::JoinSet<()>>;
";
    let lib = "\
mod rt;
use rt::OLD;
pub struct S { tasks: rt::Tasks }
pub fn f(s: &S) {
    crate::rt::RT.spawn(async {});
    OLD.spawn(async {});
    s.tasks.lock().unwrap().spawn(async {});
}
";
    let root = support::temp_tree(
        "patterns-statics",
        &[("src/rt.rs", rt), ("src/lib.rs", lib)],
    );
    let found = found_apis(&root);
    assert_eq!(
        found,
        [
            "src/lib.rs:5:19 tokio::runtime::Runtime::spawn",
            "src/lib.rs:6:9 tokio::runtime::Runtime::spawn",
            "src/lib.rs:7:29 tokio::task::JoinSet::spawn",
        ]
    );
}

/// Awaiting an async fn gives what it returns.
#[test]
fn awaiting_an_async_fn_gives_what_it_returns() {
    let code = "\
use tokio::{runtime::Handle, task::JoinSet};
struct S;
impl S {
    async fn handle(&self) -> Handle { Handle::current() }
}
async fn set() -> JoinSet<()> { JoinSet::new() }
async fn f(s: S) {
    s.handle().await.spawn(async {});
    let mut tasks = set().await;
    tasks.spawn(async {});
    let n = async { 1u8 }.await;
    n.spawn(1);
}
";
    assert_eq!(spawn_lines(code), [8, 10]);
}

/// Each finding of an audit of `root`: its location and the API it calls.
fn found_apis(root: &std::path::Path) -> Vec<String> {
    let options = xtask::Options {
        path: Some(root.to_path_buf()),
        ..xtask::Options::default()
    };
    let report = xtask::audit(&options).expect("audit runs");
    report
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", d.location(), d.api.as_deref().unwrap_or("")))
        .collect()
}

/// A `thread_local!` static is reached through `with` (or `with_borrow`,
/// `with_borrow_mut` of a `RefCell`): its closure's parameter has the
/// static's type. A thread-local of another type, and `with` on anything
/// else, are not taken for one.
#[test]
fn a_thread_local_runtime_is_typed_in_its_with_closure() {
    let code = "\
use std::cell::RefCell;
use tokio::runtime::{Handle, Runtime};
thread_local! {
    static RT: Runtime = Runtime::new().unwrap();
    pub static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static POOL: Pool = Pool
}
mod inner {
    std::thread_local!(pub static RT: tokio::runtime::Runtime = tokio::runtime::Runtime::new().unwrap());
}
struct Pool;
impl Pool {
    fn spawn(&self, _: u8) {}
    fn with(&self, f: impl FnOnce(&Pool)) { f(self) }
}
fn f() {
    RT.with(|rt| rt.spawn(async {}));
    RT.with(|rt| {
        rt.handle().spawn(async {});
    });
    HANDLE.with_borrow(|h| h.as_ref().unwrap().spawn(async {}));
    HANDLE.with(|h| h.borrow().as_ref().unwrap().spawn(async {}));
    inner::RT.with(|rt| rt.spawn_blocking(|| ()));
    POOL.with(|p| p.spawn(1));
    Pool.with(|p| p.spawn(2));
}
fn local() {
    thread_local!(static LOCAL: Runtime = Runtime::new().unwrap());
    LOCAL.with(|rt| rt.spawn(async {}));
}
";
    assert_eq!(spawn_lines(code), [17, 19, 21, 22, 23, 29]);
}

/// An associated const (of an inherent or a trait impl) has its declared
/// type, by `Self::` or by its type's path, as an associated fn has its
/// return type; one of the crate's own type is no tokio type.
#[test]
fn associated_consts_and_fns_have_their_declared_types() {
    let code = "\
use std::sync::LazyLock;
use tokio::runtime::{Handle, Runtime};
pub struct Svc;
impl Svc {
    const RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
    const LIMIT: usize = 4;
    fn handle() -> Handle { Handle::current() }
    pub fn go(&self) {
        Self::handle().spawn(async {});
        Self::RT.spawn(async {});
        Svc::RT.spawn(async {});
        let _ = Self::LIMIT;
    }
}
pub trait HasRt { const RT: LazyLock<Runtime>; }
pub struct W;
impl HasRt for W {
    const RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
}
pub struct Pool;
impl Pool {
    pub const P: Pool = Pool;
    pub fn spawn(&self, _: u8) {}
}
pub fn f() {
    W::RT.spawn(async {});
    Pool::P.spawn(1);
    crate::Svc::RT.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [9, 10, 11, 26, 28]);
}

/// `for` over a locked sequence, through the iterator adaptors that keep
/// its items (`filter`, `flatten` of `Option`s, …) or a slice of it.
#[test]
fn a_for_over_a_guard_or_an_adaptor_types_its_items() {
    let code = "\
use std::sync::Mutex;
use tokio::task::JoinSet;
fn f(sets: &Mutex<Vec<JoinSet<()>>>, opts: &Mutex<[Option<JoinSet<()>>; 2]>, n: &[Option<Pool>]) {
    for set in sets.lock().unwrap().iter_mut() {
        set.spawn(async {});
    }
    for set in sets.lock().unwrap().iter_mut().filter(|s| s.is_empty()) {
        set.spawn(async {});
    }
    for set in sets.lock().unwrap().as_mut_slice() {
        set.spawn(async {});
    }
    for set in opts.lock().unwrap().iter_mut().flatten() {
        set.spawn(async {});
    }
    for set in opts.lock().unwrap().iter_mut().step_by(2).flatten() {
        set.spawn(async {});
    }
    for pool in n.iter().flatten() {
        pool.spawn(1);
    }
}
struct Pool;
impl Pool {
    fn spawn(&self, _: u8) {}
}
";
    assert_eq!(spawn_lines(code), [5, 8, 11, 14, 17]);
}

/// A braced struct and a static may share a name (the one is a type, the
/// other a value): the static is found as a value in either order, by its
/// name or path, and the struct stays a type.
#[test]
fn a_static_and_a_struct_of_one_name_are_both_known() {
    let code = "\
use std::sync::LazyLock;
use tokio::runtime::Runtime;
static RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
struct RT {}
mod inner {
    pub struct Pool {}
    pub static Pool: std::sync::LazyLock<tokio::runtime::Runtime> =
        std::sync::LazyLock::new(|| tokio::runtime::Runtime::new().unwrap());
}
mod plain {
    pub mod H {}
    pub static H: super::Exec = super::Exec;
}
struct Exec;
impl Exec {
    fn spawn(&self, _: u8) {}
}
fn f(_: RT) {
    RT.spawn(async {});
    inner::Pool.spawn(async {});
    crate::inner::Pool.spawn_blocking(|| ());
    plain::H.spawn(1);
    let _ = RT {};
}
";
    assert_eq!(spawn_lines(code), [19, 20, 21]);
}

#[test]
fn a_select_branch_pattern_binds_in_its_handler_only() {
    let code = "\
use tokio::spawn;
use tokio::task::JoinSet;
async fn f(mut rx: tokio::sync::mpsc::Receiver<fn(u8)>, mut sets: tokio::sync::mpsc::Receiver<u8>) {
    let set = JoinSet::new();
    tokio::select! {
        biased;
        Some(spawn) = rx.recv(), if spawn(async {}).is_finished() => spawn(1),
        Some(set) = sets.recv() => { set.spawn(2); spawn(async {}); }
        else => { spawn(async {}); set.spawn(async {}); }
    }
    tokio::select! {
        Some(spawn) = rx.recv() => { spawn(1); tokio::spawn(async {}); },
    }
    spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [7, 8, 9, 9, 12, 14]);
}

#[test]
fn a_matches_pattern_binds_in_its_guard_only() {
    let code = "\
use tokio::spawn;
use tokio::runtime::Handle;
fn f(x: Option<fn(u8) -> bool>, h: Option<Handle>) -> bool {
    matches!(x, Some(spawn) if spawn(1)
        && tokio::spawn(async {}).is_finished())
        && matches!(h, Some(rt) if rt.spawn(async {}).is_finished(),)
        && matches!(spawn(async {}), _ if true)
}
";
    assert_eq!(spawn_lines(code), [5, 6, 7]);
}

#[test]
fn if_let_while_let_and_match_patterns_bind_in_their_branch() {
    let code = "\
use tokio::spawn;
fn f(x: Option<fn(u8)>) {
    if let Some(spawn) = x { spawn(1); } else { spawn(async {}); }
    while let Some(spawn) = x { spawn(1); }
    match x { Some(spawn) if { spawn(1); true } => spawn(2), _ => { spawn(async {}); } }
    spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [3, 5, 6]);
}

/// What a thread-local's `with` (or `with_borrow`, `with_borrow_mut`)
/// returns is what its closure returns, the parameter typed as in the
/// closure: a handle read out of a thread-local runtime spawns. A closure
/// whose value is of another type (a number, an outer variable) gives none.
#[test]
fn a_thread_local_s_with_returns_its_closure_s_value() {
    let code = "\
use std::cell::RefCell;
use tokio::runtime::{Handle, Runtime};
thread_local! {
    static RT: Runtime = Runtime::new().unwrap();
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
}
fn f() {
    let h = RT.with(|rt| rt.handle().clone());
    h.spawn(async {});
    let h = RT.with(|rt: &Runtime| {
        let handle = rt.handle();
        handle.clone()
    });
    h.spawn(async {});
    let h = HANDLE.with_borrow(|h| h.clone().unwrap());
    h.spawn(async {});
    RT.with(|rt| rt.handle().clone()).spawn(async {});
    let n = RT.with(|_| 1);
    n.spawn(async {});
    let rt = 2;
    let other = RT.with(|_| rt);
    other.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [9, 14, 16, 17]);
}

/// A map's values (`HashMap`, `BTreeMap`): through `values`, `values_mut`,
/// `get_mut`, indexing, `entry(..).or_insert_with(..)`, its (key, value)
/// pairs in a `for`, also behind a lock. Its keys are not values.
#[test]
fn a_map_of_join_sets_gives_join_sets() {
    let code = "\
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::task::JoinSet;
struct Pools { sets: Mutex<HashMap<u8, JoinSet<()>>> }
fn f(mut map: HashMap<String, JoinSet<()>>, tree: &mut BTreeMap<u8, JoinSet<()>>, pools: &Pools) {
    for set in map.values_mut() {
        set.spawn(async {});
    }
    map.get_mut(\"a\").unwrap().spawn(async {});
    if let Some(set) = tree.get_mut(&1) {
        set.spawn(async {});
    }
    map[\"b\"].spawn(async {});
    tree.entry(2).or_insert_with(JoinSet::new).spawn(async {});
    for (key, set) in &mut map {
        set.spawn(async {});
        key.spawn(async {});
    }
    for set in pools.sets.lock().unwrap().values_mut() {
        set.spawn(async {});
    }
    let keys: HashMap<JoinSet<()>, u8> = HashMap::new();
    for k in keys.values() {
        k.spawn(async {});
    }
}
";
    assert_eq!(spawn_lines(code), [7, 9, 11, 13, 14, 16, 20]);
}

/// A `select!` branch's pattern matches what its future gives when
/// awaited: `Some(h)` of a receiver's `recv()` is what the receiver
/// receives (tokio's `mpsc`, `oneshot` awaited itself, `broadcast`'s
/// `Result`). Receivers elsewhere: `while let`, std's `iter()`, `watch`'s
/// `borrow()`. A receiver of another type gives none.
#[test]
fn a_select_binding_has_its_future_s_output_type() {
    let code = "\
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
async fn f(
    mut rx: mpsc::Receiver<Handle>,
    mut un: mpsc::UnboundedReceiver<Handle>,
    once: oneshot::Receiver<Handle>,
    mut all: broadcast::Receiver<Handle>,
    now: watch::Receiver<Handle>,
    std_rx: std::sync::mpsc::Receiver<Handle>,
    mut nums: mpsc::Receiver<u8>,
) {
    tokio::select! {
        Some(h) = rx.recv() => h.spawn(async {}),
        Some(h) = un.recv() => { h.spawn(async {}); }
        Ok(h) = once => h.spawn(async {}),
        Ok(h) = all.recv() => h.spawn(async {}),
        Some(n) = nums.recv() => n.spawn(async {}),
    };
    while let Some(h) = rx.recv().await {
        h.spawn(async {});
    }
    for h in std_rx.iter() {
        h.spawn(async {});
    }
    now.borrow().spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [13, 14, 15, 16, 20, 23, 25]);
}

/// `futures::select!`'s `default =>` and `complete =>` arms take no
/// pattern: the other branches still bind theirs, typed by their future
/// (through `fuse()`), and shadow outer names in their handlers. So in
/// `select_biased!`, of the same syntax.
#[test]
fn futures_select_default_and_complete_arms_keep_the_branches_parsed() {
    let code = "\
use futures::FutureExt;
use tokio::runtime::Handle;
use tokio::sync::mpsc::Receiver;
async fn f(mut rx: Receiver<Handle>, mut nums: Receiver<u8>, h: Handle, n: u8) {
    loop {
        futures::select! {
            x = rx.recv().fuse() => x.unwrap().spawn(async {}),
            h = nums.recv().fuse() => h.spawn(async {}),
            default => tokio::spawn(async {}),
            complete => break,
        };
    }
    futures::select! {
        n = rx.recv().fuse() => { n.unwrap().spawn(async {}); }
        complete => h.spawn(async {}),
        default => n.spawn(async {}),
    }
    futures::select_biased! {
        n = rx.recv().fuse() => { n.unwrap().spawn(async {}); }
        h = nums.recv().fuse() => h.spawn(async {}),
        default => n.spawn(async {}),
    }
}
";
    assert_eq!(spawn_lines(code), [7, 9, 14, 15, 19]);
}

/// A trait's associated const has the type the trait declares: as
/// `<W as Trait>::RT` (whatever `W` is), as `Self::RT` in the trait's own
/// default fns, and as `W::RT` or `<W>::RT` when `W` takes the trait's
/// default. Another trait's const of the same name, or an impl's own const
/// of another type, is not taken for it.
#[test]
fn trait_consts_and_their_defaults_have_the_trait_s_type() {
    let code = "\
use std::sync::LazyLock;
use tokio::runtime::Runtime;
pub trait Svc {
    const RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
    const N: u8 = 1;
    fn go(&self) {
        Self::RT.spawn(async {});
        Self::N.spawn(1);
    }
}
mod other {
    pub trait Svc {
        const RT: u8 = 0;
    }
}
pub struct W;
impl Svc for W {}
pub struct V;
impl other::Svc for V {}
fn f<T: Svc>() {
    <W as Svc>::RT.spawn(async {});
    <T as Svc>::RT.spawn(async {});
    W::RT.spawn(async {});
    <W>::RT.spawn(async {});
    <W as other::Svc>::RT.spawn(1);
    V::RT.spawn(1);
    <W as Svc>::N.spawn(1);
}
";
    assert_eq!(spawn_lines(code), [7, 21, 22, 23, 24]);
}

/// A channel made by its constructor types its receiver by the
/// constructor's turbofish, or a `watch`'s by its first value: tokio's
/// four, std's and the common crates'. Without either, or from a module
/// that is not a channel's, the values stay unknown (not flagged).
#[test]
fn channels_made_by_their_constructors_type_what_they_receive() {
    let code = "\
use tokio::runtime::Handle;
use tokio::sync::mpsc;
async fn f(h: Handle) {
    let (_tx, mut rx) = mpsc::channel::<Handle>(8);
    while let Some(h) = rx.recv().await { h.spawn(async {}); }
    let (_tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Handle>();
    if let Some(h) = rx.recv().await { h.spawn(async {}); }
    let (_tx, rx) = tokio::sync::oneshot::channel::<Handle>();
    rx.await.unwrap().spawn(async {});
    let (_tx, rx) = tokio::sync::watch::channel(h.clone());
    rx.borrow().spawn(async {});
    let (_tx, rx) = std::sync::mpsc::sync_channel::<Handle>(1);
    rx.recv().unwrap().spawn(async {});
    let (_tx, rx) = crossbeam_channel::unbounded::<Handle>();
    for h in rx.iter() { h.spawn(async {}); }
    let (_tx, mut rx) = mpsc::channel(8);
    rx.recv().await.unwrap().spawn(async {});
    let (_tx, rx) = pool::channel::<Handle>();
    rx.recv().unwrap().spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [5, 7, 9, 11, 13, 15]);
}

/// A channel constructor imported by name, or from a module imported
/// under another name, is one too; a fn of the same name defined in the
/// block is not.
#[test]
fn channel_constructors_imported_by_name_type_what_they_receive() {
    let code = "\
use tokio::runtime::Handle;
use tokio::sync::mpsc::channel;
use std::sync::mpsc as std_mpsc;
use crossbeam_channel::unbounded as make;
async fn f() {
    let (_tx, mut rx) = channel::<Handle>(8);
    rx.recv().await.unwrap().spawn(async {});
    let (_tx, rx) = std_mpsc::channel::<Handle>();
    rx.recv().unwrap().spawn(async {});
    let (_tx, rx) = make::<Handle>();
    rx.recv().unwrap().spawn(async {});
    {
        fn channel<T>(_: usize) -> (u8, Pool<T>) { todo!() }
        let (_tx, mut rx) = channel::<Handle>(8);
        rx.recv().await.unwrap().spawn(async {});
    }
}
";
    assert_eq!(spawn_lines(code), [7, 9, 11]);
}

/// An iterator adaptor's closure takes an item, an `Option`'s or
/// `Result`'s `map` (and the like) the value: its first parameter has that
/// type, a tuple pattern's parts too. Not `fold`'s first (the
/// accumulator), nor `map_or_else`'s (a `Result`'s error).
#[test]
fn closure_parameters_of_adaptors_take_the_item_s_type() {
    let code = "\
use std::collections::HashMap;
use tokio::runtime::Handle;
use tokio::task::JoinSet;
fn f(mut sets: HashMap<u8, JoinSet<()>>, handles: Vec<Handle>, h: Option<Handle>, n: Vec<u8>) {
    sets.values_mut().for_each(|set| { set.spawn(async {}); });
    sets.iter_mut().for_each(|(_, set)| { set.spawn(async {}); });
    handles.iter().map(|h| h.spawn(async {})).count();
    h.map(|h| h.spawn(async {}));
    h.as_ref().map_or(None, |h| Some(h.spawn(async {})));
    n.iter().for_each(|h| h.spawn(async {}));
    handles.iter().fold(0, |h, _| h.spawn(1));
    Ok::<Handle, u8>(Handle::current()).map_or_else(|h| h.spawn(async {}), |_| ());
}
";
    assert_eq!(spawn_lines(code), [5, 6, 7, 8, 9]);
}

/// `T::RT` for a type parameter bounded by a trait (in the fn's or the
/// impl's generics, or a `where` clause) is that trait's const; a
/// parameter without that bound gives nothing.
#[test]
fn a_type_parameter_s_const_is_its_bounding_trait_s() {
    let code = "\
use std::sync::LazyLock;
use tokio::runtime::Runtime;
pub trait Svc {
    const RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().unwrap());
    const N: u8 = 1;
}
fn go<S: Svc>() {
    S::RT.spawn(async {});
    S::N.spawn(1);
}
fn go_where<S>() where S: Clone + Svc {
    S::RT.spawn(async {});
}
struct W<S>(S);
impl<S: Svc> W<S> {
    fn go(&self) {
        S::RT.spawn(async {});
    }
}
fn unbound<S: Clone>() {
    S::RT.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [8, 12, 17]);
}

#[test]
fn block_on_gives_what_its_future_does() {
    let code = "\
use tokio::runtime::{Handle, Runtime};
use tokio::task::LocalSet;
fn f(rt: Runtime, local: LocalSet) {
    let h = rt.block_on(async { Handle::current() });
    h.spawn(async {});
    let h = local.block_on(&rt, async move {
        let h = Handle::current();
        h
    });
    h.spawn(async {});
    futures::executor::block_on(async { Handle::current() }).spawn(async {});
    let n = rt.block_on(async { 1 });
    n.spawn(async {});
}
";
    assert_eq!(spawn_lines(code), [5, 10, 11]);
}

#[test]
fn fns_a_local_macro_writes_out_are_in_scope_in_its_invocations() {
    let code = "\
use std::sync::Arc;
use tokio::runtime::Runtime;
macro_rules! rt_test {
    ($($t:tt)*) => {
        mod current_thread {
            $($t)*
            fn rt() -> Arc<Runtime> { unimplemented!() }
        }
    };
}
rt_test! {
    #[test]
    fn spawns() {
        let rt = rt();
        rt.spawn(async {});
    }
}
other! {
    fn elsewhere() {
        let rt = rt();
        rt.spawn(async {});
    }
}
";
    assert_eq!(spawn_lines(code), [15]);
}

//! The audit's memory grows with the source it reads, not with the number
//! of crates that link the library: every test, example and bench reaches
//! the library by name, and all of them resolve into one index of it.
//!
//! A counting allocator measures the peak of live heap bytes during an audit;
//! this file holds a single test, so nothing else allocates meanwhile.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::temp_tree;
use xtask::{audit, Options, Rule};

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// only read.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System` has.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        new
    }
}

// Relaxed is enough: the counters are read once the audit's threads have
// been joined, which orders their updates before the read.
fn grow(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The library: `MODULES` modules of `ITEMS` structs and fns each, none
/// mentioning `spawn`, and `handle()` returning a tokio `Handle`.
const MODULES: usize = 8;
const ITEMS: usize = 300;

/// A package whose library is large and each of whose `tests` test files
/// spawns on the library's `Handle` once.
fn package(tests: usize) -> support::TempTree {
    let mut files = vec![(
        "Cargo.toml".to_owned(),
        "[package]\nname = \"big-lib\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ntokio = \"1\"\n\n[workspace]\n"
            .to_owned(),
    )];
    let mut lib = String::from("pub fn handle() -> tokio::runtime::Handle {\n    todo!()\n}\n");
    for m in 0..MODULES {
        let _ = writeln!(lib, "pub mod m{m};");
        let mut module = String::from("use std::collections::HashMap;\n");
        for i in 0..ITEMS {
            let _ = writeln!(
                module,
                "pub struct S{i} {{ pub a: u32, pub b: HashMap<String, S{i}> }}\n\
                 impl S{i} {{ pub fn get(&self) -> Option<&S{i}> {{ None }} }}\n\
                 pub fn f{i}(x: u32) -> S{i} {{ todo!() }}"
            );
        }
        files.push((format!("src/m{m}.rs"), module));
    }
    files.push(("src/lib.rs".to_owned(), lib));
    for t in 0..tests {
        files.push((
            format!("tests/t{t}.rs"),
            "#[test]\nfn t() {\n    big_lib::handle().spawn(async {});\n}\n".to_owned(),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    temp_tree(&format!("memory-{tests}"), &files)
}

/// The peak of live heap bytes while auditing `root`, and the untracked
/// spawns found.
fn peak_of_audit(root: &std::path::Path) -> (usize, usize) {
    let options = Options {
        path: Some(root.to_path_buf()),
        ..Options::default()
    };
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let before = LIVE.load(Ordering::Relaxed);
    let report = audit(&options).expect("audit runs");
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let spawns = report
        .diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UntrackedSpawn)
        .count();
    (peak, spawns)
}

/// Eighty test crates linking the library cost about what their own small
/// files do; before, each held a copy of the library's index (the peak grew
/// by the library's index eighty times over, about ten times the audit of
/// the library alone).
#[test]
fn test_crates_share_the_library_index() {
    let alone = package(0);
    let linked = package(80);
    let (base, spawns) = peak_of_audit(&alone);
    assert_eq!(spawns, 0);
    let (peak, spawns) = peak_of_audit(&linked);
    assert_eq!(
        spawns, 80,
        "each test's spawn on the library's Handle is found"
    );
    assert!(
        peak < 2 * base,
        "80 test crates raised the peak from {base} to {peak} bytes"
    );
}

//! The audit pipeline: discover files, summarise each into the crate index,
//! scan each against it, apply suppressions, lint the catalogue.

use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, Region, Rule, Severity, SourceFile};
use crate::doctest;
use crate::index::{
    crate_root, lib_root, CrateIndex, FileId, Fragment, ModDecl, ModPath, LIBRARY_FILE,
};
use crate::lint::{self, Site};
use crate::parse::{self, ParseError, STACK_SIZE};
use crate::resolve::Resolver;
use crate::scan::{Context, Fix, Scanner};
use crate::suppress::{self, Marker};
use crate::tokio_api;
use crate::workspace::{self, Entry, Unit};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use syn::visit::Visit;

/// What to audit and how; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A directory, a `Cargo.toml` or a single `.rs` file (`--path`).
    pub path: Option<PathBuf>,
    /// The manifest of the workspace to audit (`--manifest-path`).
    pub manifest_path: Option<PathBuf>,
    /// More paths to skip, as in `audit-exclude`.
    pub exclude: Vec<String>,
    /// Overrides `audit-doctests`.
    pub doctests: Option<bool>,
    /// Overrides `fix-type`: the task type name `--fix` writes.
    pub fix_type: Option<String>,
}

/// A usage or I/O error: the audit could not run (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The outcome of an audit.
#[derive(Debug)]
pub struct Report {
    /// The directory paths in diagnostics are relative to.
    pub root: PathBuf,
    /// How many `.rs` files were read.
    pub files: usize,
    /// Findings, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// How many untracked spawns (and tokio `block_in_place` calls)
    /// markers or the allow-list suppressed.
    pub suppressed: usize,
    /// Files and directories that could not be read, each as `path: why`.
    pub io_errors: Vec<String>,
    /// What the audit could do only in part, without failing it (`cargo
    /// metadata` failed on the workspace around the current directory).
    pub warnings: Vec<String>,
    /// What the audit chose not to read, as asked (a `--path` that the
    /// configuration excludes).
    pub notes: Vec<String>,
    /// Rewrites `--fix` may apply, by index into `diagnostics`.
    pub(crate) fixes: Vec<(usize, PathBuf, Fix)>,
    /// Where the suppressions counted in `suppressed` are: each file, as
    /// diagnostics name it, with how many.
    pub(crate) suppressed_in: Vec<(String, usize)>,
    /// Whether what `--path` named is excluded by the configuration: then
    /// no file read is as asked, not a failure.
    pub(crate) excluded: bool,
}

impl Report {
    /// 0 when clean, 1 with errors, 2 when files or directories could not be
    /// read.
    pub fn exit_code(&self) -> u8 {
        if !self.io_errors.is_empty() {
            2
        } else if self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
        {
            1
        } else {
            0
        }
    }

    /// How many untracked spawns were found (not counting suppressed ones).
    pub fn spawns(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.rule == Rule::UntrackedSpawn)
            .count()
    }

    /// The one-line summary: `audit: 12 files, 2 untracked spawns, ...`.
    pub fn summary(&self) -> String {
        let spawns = self.spawns();
        let others = self.diagnostics.len() - spawns;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "audit: {}, {}, {}, {} suppressed",
            plural(self.files, "file", "files"),
            plural(spawns, "untracked spawn", "untracked spawns"),
            plural(others, "other problem", "other problems"),
            self.suppressed
        )
    }
}

/// Audits a workspace, package, directory or file.
pub fn audit(options: &Options) -> Result<Report, Error> {
    let mut plan = workspace::discover(
        options.path.as_deref(),
        options.manifest_path.as_deref(),
        &options.exclude,
    )
    .map_err(Error)?;
    let mut parts = Vec::new();
    for ws in std::mem::take(&mut plan.parts) {
        let root = ws.root.clone();
        let report = audit_workspace(ws, options)?;
        parts.push((root, report));
    }
    let mut report = workspace::combine(plan, parts);
    finish(&mut report);
    Ok(report)
}

/// Audits one workspace of a [`workspace::Plan`]: reports what lies in its
/// scope.
fn audit_workspace(mut ws: workspace::Workspace, options: &Options) -> Result<Report, Error> {
    if let Some(doctests) = options.doctests {
        ws.config.doctests = doctests;
    }
    if let Some(ty) = &options.fix_type {
        ws.config.fix_type = Some(ty.clone());
    }
    let manifest = ws.manifest.as_ref().map(|m| {
        (
            workspace::relative(&ws.root, m),
            std::fs::read_to_string(m).unwrap_or_default(),
        )
    });
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let source = |entry: &Entry| read(entry);
    let mut report = run(&ws.units, &ws.config, threads, false, &source)?;
    report.root = ws.root.clone();
    report
        .io_errors
        .splice(0..0, std::mem::take(&mut ws.problems));
    report.warnings = std::mem::take(&mut ws.warnings);
    if let Some((path, text)) = &manifest {
        // In a partial audit, an entry can only be called unused if it
        // names a file that was audited.
        let audited: Option<Vec<&str>> = ws.partial.then(|| {
            let files = ws.units.iter().flat_map(|unit| &unit.files);
            files.map(|entry| entry.rel.as_str()).collect()
        });
        allow_list(&mut report, &ws.config, path, text, audited.as_deref());
    }
    workspace::narrow(&mut report, &ws, &options.exclude);
    Ok(report)
}

/// Audits one source text as a lone crate root, with default settings; the
/// text need not be valid Rust. Runs on a thread with a large stack.
pub fn check_source(path: &str, text: &str) -> Vec<Diagnostic> {
    let (path, text) = (path.to_owned(), unbom(text.to_owned()));
    let job = move || {
        let units = [Unit {
            roots: tokio_api::default_roots(),
            files: vec![Entry {
                abs: PathBuf::from(&path),
                rel: path.clone(),
                crate_name: "main".to_owned(),
                module: Vec::new(),
                index_only: false,
            }],
            lib: None,
            deps: Vec::new(),
        }];
        let source = |_: &Entry| Read::Text(text.clone());
        let mut report = match run(&units, &Config::default(), 1, true, &source) {
            Ok(report) => report,
            Err(_) => return Vec::new(),
        };
        finish(&mut report);
        report.diagnostics
    };
    let handle = std::thread::Builder::new()
        .stack_size(STACK_SIZE)
        .spawn(job);
    match handle.map(std::thread::JoinHandle::join) {
        Ok(Ok(diagnostics)) => diagnostics,
        // A panic in the engine is a bug; let the caller's test see it.
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Vec::new(),
    }
}

/// A file's text, or why there is none.
enum Read {
    Text(String),
    NotUtf8,
    Failed(String),
}

fn read(entry: &Entry) -> Read {
    match std::fs::read(&entry.abs) {
        Ok(bytes) => String::from_utf8(bytes).map_or(Read::NotUtf8, |text| Read::Text(unbom(text))),
        Err(err) => Read::Failed(format!("{}: {err}", entry.rel)),
    }
}

/// `text` without a byte-order mark, which rustc ignores and editors do not
/// show: columns on the first line do not count it.
fn unbom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Whether a file is scanned whatever the index says: it mentions `spawn`,
/// `tracked`, `block_in_place`, or a type that spawns when built from an
/// iterator or extended (`JoinSet`, `JoinQueue`).
fn mentions(text: &str) -> bool {
    ["spawn", "tracked", "JoinSet", "JoinQueue", "block_in_place"]
        .iter()
        .any(|word| text.contains(word))
}

/// A file read and summarised.
struct Loaded {
    text: Result<String, String>,
    fragment: Option<Fragment>,
    /// Why the file does not parse even at item level.
    parse_error: Option<ParseError>,
    /// Why the full parse failed where the item-level one succeeded.
    full_error: Option<ParseError>,
    /// Whether the thread that parsed the file holds its full tree.
    held: bool,
}

/// A full syntax tree, kept on the thread that parsed it (syn's trees cannot
/// move between threads) until the crate index is complete.
struct Held {
    slot: usize,
    file: syn::File,
    markers: Vec<Marker>,
    in_literal: Vec<bool>,
}

impl Loaded {
    /// Nothing yet: what an `index_only` file gets until [`prepare`] copies
    /// the fragment of the crate that audits it.
    fn empty() -> Loaded {
        Loaded {
            text: Ok(String::new()),
            fragment: None,
            parse_error: None,
            full_error: None,
            held: false,
        }
    }

    /// Summarises a file into its index fragment. A file that will be
    /// scanned (`eager`, or it [`mentions`] `spawn`, `tracked`, …) is parsed in
    /// full once: the fragment comes from that tree, which goes to `held`.
    /// Any other file is parsed at item level only (fn bodies emptied).
    fn load(
        read: Read,
        slot: usize,
        id: FileId,
        module: &ModPath,
        eager: bool,
        held: &mut Vec<Held>,
    ) -> Loaded {
        let mut loaded = Loaded::empty();
        let text = match read {
            Read::Text(text) => text,
            Read::NotUtf8 => {
                loaded.parse_error = Some(ParseError {
                    line: 1,
                    column: 1,
                    message: "file is not valid UTF-8".to_owned(),
                });
                return loaded;
            }
            Read::Failed(err) => {
                loaded.text = Err(err);
                return loaded;
            }
        };
        if eager || mentions(&text) {
            let markers = suppress::candidates(&text);
            let positions: Vec<_> = markers.iter().map(|m| m.at).collect();
            match parse::parse_file(&text, &positions, false) {
                Ok((file, in_literal)) => {
                    loaded.fragment = Some(Fragment::of_file(&file, id, module));
                    loaded.held = true;
                    held.push(Held {
                        slot,
                        file,
                        markers,
                        in_literal,
                    });
                }
                Err(full) => match parse::parse_items(&text) {
                    Ok(file) => {
                        loaded.fragment = Some(Fragment::of_file(&file, id, module));
                        loaded.full_error = Some(full);
                    }
                    Err(err) => loaded.parse_error = Some(err),
                },
            }
        } else {
            match parse::parse_items(&text) {
                Ok(file) => loaded.fragment = Some(Fragment::of_file(&file, id, module)),
                Err(err) => loaded.parse_error = Some(err),
            }
        }
        loaded.text = Ok(text);
        loaded
    }
}

/// A file's text within its crate.
struct Text {
    /// Index into the unit's files: the file's id in the crate's index.
    entry: FileId,
    text: String,
    /// Whether it parses at item level.
    parsed: bool,
    held: bool,
    wanted: bool,
    full_error: Option<ParseError>,
}

/// One crate: its index, the files' texts, and the diagnostics found while
/// reading them.
struct UnitState {
    index: CrateIndex,
    report: Report,
    texts: Vec<Text>,
}

/// Every crate read and indexed; shared by the threads that scan.
struct Prepared {
    units: Vec<UnitState>,
    /// For each file of the flat list that parses: its unit and its position
    /// among that unit's texts.
    place: Vec<Option<(usize, usize)>>,
    /// Files to scan whose trees no thread holds: (unit, position).
    late: Vec<(usize, usize)>,
    fix_type: String,
}

/// Shared by the worker threads.
struct Shared<'a> {
    units: &'a [Unit],
    config: &'a Config,
    scan_all: bool,
    source: &'a (dyn Fn(&Entry) -> Read + Sync),
    flat: Vec<(usize, usize, &'a Entry)>,
    next: AtomicUsize,
    next_late: AtomicUsize,
    prepared: OnceLock<Prepared>,
}

/// Reads, indexes and scans the files of `units` on `threads` threads, each
/// with a large stack. Each thread parses files until none are left, keeping
/// the trees of those it will scan; once every crate's index is complete,
/// each scans the trees it holds. Files scanned only because of what the
/// index showed (an import renaming a spawning fn) are parsed then.
fn run(
    units: &[Unit],
    config: &Config,
    threads: usize,
    scan_all: bool,
    source: &(dyn Fn(&Entry) -> Read + Sync),
) -> Result<Report, Error> {
    let shared = Shared {
        units,
        config,
        scan_all,
        source,
        flat: units
            .iter()
            .enumerate()
            .flat_map(|(u, unit)| unit.files.iter().enumerate().map(move |(id, e)| (u, id, e)))
            .collect(),
        next: AtomicUsize::new(0),
        next_late: AtomicUsize::new(0),
        prepared: OnceLock::new(),
    };
    let mut results = Vec::new();
    let mut spawn_error = None;
    std::thread::scope(|scope| {
        let (loaded_tx, loaded_rx) = mpsc::channel();
        let mut handles = Vec::new();
        let mut go = Vec::new();
        for _ in 0..threads.max(1) {
            let (go_tx, go_rx) = mpsc::channel();
            let loaded_tx = loaded_tx.clone();
            let shared = &shared;
            let handle = std::thread::Builder::new()
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, move || worker(shared, loaded_tx, &go_rx));
            match handle {
                Ok(handle) => {
                    handles.push(handle);
                    go.push(go_tx);
                }
                Err(err) => {
                    spawn_error = Some(Error(format!("cannot start worker threads: {err}")));
                    break;
                }
            }
        }
        drop(loaded_tx);
        let mut slots: Vec<Option<Loaded>> = shared.flat.iter().map(|_| None).collect();
        for batch in loaded_rx {
            for (slot, loaded) in batch {
                slots[slot] = Some(loaded);
            }
        }
        // A slot stays empty only when a worker panicked; its panic is
        // raised below, once the others have stopped.
        if !handles.is_empty() && slots.iter().all(Option::is_some) {
            let slots = slots.into_iter().flatten().collect();
            let _ = shared.prepared.set(prepare(&shared, slots));
            for go in &go {
                let _ = go.send(());
            }
        }
        drop(go);
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let prepared = match shared.prepared.into_inner() {
        Some(prepared) => prepared,
        None => return Err(spawn_error.unwrap_or_else(|| Error("no worker threads".to_owned()))),
    };
    Ok(assemble(units, prepared, results, config))
}

/// One worker thread: parses files until none are left, hands their
/// summaries over, waits for the index, then scans.
fn worker(
    shared: &Shared<'_>,
    loaded_tx: mpsc::Sender<Vec<(usize, Loaded)>>,
    go: &mpsc::Receiver<()>,
) -> Vec<(usize, usize, Scanned)> {
    let mut held = Vec::new();
    let mut batch = Vec::new();
    loop {
        let slot = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(&(_, id, entry)) = shared.flat.get(slot) else {
            break;
        };
        let loaded = if entry.index_only {
            Loaded::empty()
        } else {
            let read = (shared.source)(entry);
            Loaded::load(read, slot, id, &entry.module, shared.scan_all, &mut held)
        };
        batch.push((slot, loaded));
    }
    let _ = loaded_tx.send(batch);
    drop(loaded_tx);
    let mut out = Vec::new();
    let prepared = match go.recv() {
        Ok(()) => shared.prepared.get(),
        Err(_) => None,
    };
    let Some(prepared) = prepared else {
        drop(held);
        proc_macro2::extra::invalidate_current_thread_spans();
        return out;
    };
    for tree in held {
        let Some((u, pos)) = prepared.place.get(tree.slot).copied().flatten() else {
            continue;
        };
        let state = &prepared.units[u];
        let text = &state.texts[pos];
        if !text.wanted {
            continue;
        }
        let entry = &shared.units[u].files[text.entry];
        let scanned = scan_tree(
            &state.index,
            text.entry,
            entry,
            &text.text,
            shared.config,
            &prepared.fix_type,
            &tree.file,
            tree.markers,
            tree.in_literal,
        );
        out.push((u, pos, scanned));
    }
    proc_macro2::extra::invalidate_current_thread_spans();
    loop {
        let i = shared.next_late.fetch_add(1, Ordering::Relaxed);
        let Some(&(u, pos)) = prepared.late.get(i) else {
            break;
        };
        let state = &prepared.units[u];
        let text = &state.texts[pos];
        let entry = &shared.units[u].files[text.entry];
        let scanned = match &text.full_error {
            Some(err) => {
                let source = SourceFile::new(&entry.rel, &text.text);
                Scanned {
                    diagnostics: vec![parse_error(&source, err)],
                    fixes: Vec::new(),
                    suppressed: 0,
                    sites: Vec::new(),
                }
            }
            None => scan_file(
                &state.index,
                text.entry,
                entry,
                &text.text,
                shared.config,
                &prepared.fix_type,
            ),
        };
        out.push((u, pos, scanned));
    }
    out
}

/// Completes the fragments: an `index_only` file gets a copy of the fragment
/// of the crate that audits it, relocated to its own module path. Returns,
/// for each crate, the files its `#[path]` attributes mount.
fn mount(shared: &Shared<'_>, slots: &mut [Loaded]) -> Vec<Vec<Fragment>> {
    let own: HashMap<PathBuf, usize> = shared
        .flat
        .iter()
        .enumerate()
        .filter(|(_, (_, _, entry))| !entry.index_only)
        .map(|(slot, (_, _, entry))| (workspace::normalize(&entry.abs), slot))
        .collect();
    let copies: Vec<(usize, Fragment)> = shared
        .flat
        .iter()
        .enumerate()
        .filter(|(_, (_, _, entry))| entry.index_only)
        .filter_map(|(slot, &(_, id, entry))| {
            let from = *own.get(&workspace::normalize(&entry.abs))?;
            let fragment = slots[from].fragment.as_ref()?;
            let module = &shared.flat[from].2.module;
            Some((slot, fragment.relocated(id, module, &entry.module)))
        })
        .collect();
    for (slot, fragment) in copies {
        slots[slot].fragment = Some(fragment);
    }
    // Each crate's `mod` declarations with a `#[path]`: the declaring file,
    // whether it is mod-rs, the declaration.
    let mut decls: Vec<Vec<(PathBuf, bool, ModDecl)>> =
        shared.units.iter().map(|_| Vec::new()).collect();
    for (slot, &(u, _, entry)) in shared.flat.iter().enumerate() {
        let Some(fragment) = &slots[slot].fragment else {
            continue;
        };
        let mod_rs = entry.abs.ends_with("mod.rs") || crate_root(&entry.module) == entry.module;
        let with_path = fragment.mods.iter().filter(|decl| decl.has_path());
        decls[u].extend(with_path.map(|decl| (entry.abs.clone(), mod_rs, decl.clone())));
    }
    decls
        .into_iter()
        .enumerate()
        .map(|(u, decls)| path_mounts(shared, slots, &own, u, decls))
        .collect()
}

/// The files the declarations `work` of the crate `u` mount, each a copy of
/// the fragment of the crate that audits it, at the declared module path.
/// A mounted file's own `mod` declarations are followed in turn (a file
/// loaded by `#[path]` is mod-rs). Each file is mounted once per crate,
/// which also ends cycles; files the audit does not read are not mounted.
fn path_mounts(
    shared: &Shared<'_>,
    slots: &[Loaded],
    own: &HashMap<PathBuf, usize>,
    u: usize,
    mut work: Vec<(PathBuf, bool, ModDecl)>,
) -> Vec<Fragment> {
    let mut mounted = Vec::new();
    let mut out = Vec::new();
    while let Some((file, mod_rs, decl)) = work.pop() {
        let found = workspace::mod_files(&file, mod_rs, &decl)
            .into_iter()
            .find_map(|path| Some((*own.get(&path)?, path)));
        let Some((from, path)) = found else {
            continue;
        };
        if mounted.contains(&from) {
            continue;
        }
        mounted.push(from);
        let Some(fragment) = &slots[from].fragment else {
            continue;
        };
        let id = shared.units[u].files.len() + out.len();
        let copy = fragment.relocated(id, &shared.flat[from].2.module, &decl.module);
        let mod_rs = decl.path.is_some() || path.ends_with("mod.rs");
        work.extend(copy.mods.iter().map(|d| (path.clone(), mod_rs, d.clone())));
        out.push(copy);
    }
    out
}

/// Builds each crate's index from its files' fragments (in file order), and
/// decides which files are scanned: those that parse and mention `spawn` or
/// `tracked` (or all, with `scan_all` or when an import renames a spawning
/// fn). Files not scanned were checked to parse at item level only; a syntax
/// error inside one of their fn bodies is left to rustc. An `index_only` file
/// adds a copy of the fragment of the crate that audits it, mounted at its
/// own module path, and nothing else: that crate reports it; so does a file
/// a `#[path]` attribute mounts (see [`mount`]). A crate that reaches a
/// library by name (its package's, or another member's it depends on) shares
/// one index of it ([`library_index`]).
fn prepare(shared: &Shared<'_>, mut slots: Vec<Loaded>) -> Prepared {
    let mounts = mount(shared, &mut slots);
    let mut libraries = Libraries {
        built: HashMap::new(),
        building: Vec::new(),
        next_mounted: shared.flat.len(),
    };
    for unit in shared.units {
        let own = unit.lib.iter().map(|(name, l)| (name, l));
        for (name, l) in own.chain(unit.deps.iter().map(|(_, name, l)| (name, l))) {
            libraries.build(shared, &slots, &mounts, *l, name);
        }
    }
    let libraries = libraries.built;
    let mut per_unit: Vec<Vec<(usize, usize, Loaded)>> =
        shared.units.iter().map(|_| Vec::new()).collect();
    for (slot, (&(u, id, _), loaded)) in shared.flat.iter().zip(slots).enumerate() {
        per_unit[u].push((slot, id, loaded));
    }
    let mut prepared = Prepared {
        units: Vec::new(),
        place: shared.flat.iter().map(|_| None).collect(),
        late: Vec::new(),
        fix_type: config::task_type_expr(shared.config.fix_type.as_deref().unwrap_or("General")),
    };
    let units = shared.units.iter().zip(per_unit).zip(mounts);
    for (u, ((unit, files), mounted)) in units.enumerate() {
        let mut report = empty_report();
        let mut fragments = Vec::new();
        let mut texts = Vec::new();
        for (slot, id, loaded) in files {
            fragments.extend(loaded.fragment);
            if unit.files[id].index_only {
                continue;
            }
            report.files += 1;
            match loaded.text {
                Ok(text) => {
                    let parsed = match &loaded.parse_error {
                        Some(err) => {
                            let source = SourceFile::new(&unit.files[id].rel, &text);
                            report.diagnostics.push(parse_error(&source, err));
                            false
                        }
                        None => {
                            prepared.place[slot] = Some((u, texts.len()));
                            true
                        }
                    };
                    texts.push(Text {
                        entry: id,
                        text,
                        parsed,
                        held: loaded.held,
                        wanted: false,
                        full_error: loaded.full_error,
                    });
                }
                Err(err) => report.io_errors.push(err),
            }
        }
        fragments.extend(mounted);
        let lib = unit.lib.as_ref().map(|(name, _)| name.clone());
        let mut index = CrateIndex::new(unit.roots.clone(), lib, fragments);
        if let Some(library) = unit.lib.as_ref().and_then(|(_, l)| libraries.get(l)) {
            index = index.linking(Arc::clone(library));
        }
        for (name, _, l) in &unit.deps {
            if let Some(library) = libraries.get(l) {
                index.depending(name, library);
            }
        }
        for (pos, text) in texts.iter_mut().enumerate() {
            text.wanted =
                text.parsed && (shared.scan_all || index.renames_spawn || mentions(&text.text));
            if text.wanted && !text.held {
                prepared.late.push((u, pos));
            }
        }
        prepared.units.push(UnitState {
            index,
            report,
            texts,
        });
    }
    prepared
}

/// The libraries' indexes, by the library's position among the units.
struct Libraries {
    built: HashMap<usize, Arc<CrateIndex>>,
    /// The libraries being built, one inside the other.
    building: Vec<usize>,
    /// The next id for a file a library's `#[path]` attributes mount.
    next_mounted: FileId,
}

impl Libraries {
    /// Builds the index of the library `l`, named `name`, once, after those
    /// of the members its package depends on, which it links. A library met
    /// again while its own dependencies are built (a cycle, which Cargo
    /// rejects) is linked by none of them.
    fn build(
        &mut self,
        shared: &Shared<'_>,
        slots: &[Loaded],
        mounts: &[Vec<Fragment>],
        l: usize,
        name: &str,
    ) {
        if self.built.contains_key(&l) || self.building.contains(&l) {
            return;
        }
        self.building.push(l);
        for (_, dep, d) in &shared.units[l].deps {
            self.build(shared, slots, mounts, *d, dep);
        }
        self.building.pop();
        let mut index = library_index(shared, slots, &mounts[l], l, name, self.next_mounted);
        self.next_mounted += mounts[l].len();
        for (dep, _, d) in &shared.units[l].deps {
            if let Some(library) = self.built.get(d) {
                index.depending(dep, library);
            }
        }
        self.built.insert(l, Arc::new(index));
    }
}

/// The index of the library crate `l`, named `name`, as the crates that
/// reach it by name see it: its files' fragments and the files its `#[path]`
/// attributes mount (`mounted`), under [`lib_root`]. Each file's id is
/// marked with [`LIBRARY_FILE`] so that none is taken for a file of such a
/// crate, and is its position in `shared.flat` (a mounted file's: from
/// `mounted_ids` on), so that no two libraries share one.
fn library_index(
    shared: &Shared<'_>,
    slots: &[Loaded],
    mounted: &[Fragment],
    l: usize,
    name: &str,
    mounted_ids: FileId,
) -> CrateIndex {
    let root = lib_root(name);
    let unit = &shared.units[l];
    let files = shared
        .flat
        .iter()
        .zip(slots)
        .enumerate()
        .filter(|(_, ((u, _, _), _))| *u == l);
    let own = files.filter_map(|(slot, (&(_, _, entry), loaded))| {
        let fragment = loaded.fragment.as_ref()?;
        let module = [root.as_slice(), &entry.module].concat();
        Some(fragment.relocated(LIBRARY_FILE | slot, &entry.module, &module))
    });
    let mounted = mounted.iter().enumerate().map(|(i, fragment)| {
        let id = LIBRARY_FILE | (mounted_ids + i);
        fragment.relocated(id, &Vec::new(), &root)
    });
    let fragments = own.chain(mounted).collect();
    CrateIndex::new(unit.roots.clone(), Some(name.to_owned()), fragments)
}

/// Puts the scans' results together, crate by crate in file order, and lints
/// the catalogue: each crate's sites, against its library's task names.
fn assemble(
    units: &[Unit],
    mut prepared: Prepared,
    results: Vec<(usize, usize, Scanned)>,
    config: &Config,
) -> Report {
    let mut scans: Vec<Vec<Option<Scanned>>> = prepared
        .units
        .iter()
        .map(|state| state.texts.iter().map(|_| None).collect())
        .collect();
    for (u, pos, scanned) in results {
        scans[u][pos] = Some(scanned);
    }
    let reports: Vec<Report> = prepared
        .units
        .iter_mut()
        .map(|state| std::mem::replace(&mut state.report, empty_report()))
        .collect();
    let handles = names_tokio_handle(units, &prepared);
    let mut parts = Vec::new();
    for ((((unit, state), scans), mut part), handles) in units
        .iter()
        .zip(&prepared.units)
        .zip(scans)
        .zip(reports)
        .zip(handles)
    {
        let mut site_files = Vec::new();
        for (text, scanned) in state.texts.iter().zip(scans) {
            let Some(scanned) = scanned else {
                continue;
            };
            let entry = &unit.files[text.entry];
            let offset = part.diagnostics.len();
            part.diagnostics.extend(scanned.diagnostics);
            part.suppressed += scanned.suppressed;
            if scanned.suppressed > 0 {
                part.suppressed_in
                    .push((entry.rel.clone(), scanned.suppressed));
            }
            part.fixes.extend(scanned.fixes.into_iter().map(|(i, mut f)| {
                if handles && f.keeps_handle {
                    f.blocked = Some(
                        "its JoinHandle is kept, and the crate names tokio's `JoinHandle` type, which tracked's is not",
                    );
                }
                (i + offset, entry.abs.clone(), f)
            }));
            if !scanned.sites.is_empty() {
                site_files.push((SourceFile::new(&entry.rel, &text.text), scanned.sites));
            }
        }
        parts.push((part, site_files));
    }
    let lints: Vec<Vec<Diagnostic>> = units
        .iter()
        .zip(&parts)
        .map(|(unit, (_, sites))| {
            let library = unit.lib.as_ref().map_or(&[][..], |(_, l)| &parts[*l].1);
            lint::lint(library, sites, config.types.as_deref())
        })
        .collect();
    let mut report = empty_report();
    for ((mut part, _), lints) in parts.into_iter().zip(lints) {
        part.diagnostics.extend(lints);
        report.files += part.files;
        report.suppressed += part.suppressed;
        report.suppressed_in.extend(part.suppressed_in);
        report.io_errors.extend(part.io_errors);
        let offset = report.diagnostics.len();
        report.diagnostics.extend(part.diagnostics);
        report
            .fixes
            .extend(part.fixes.into_iter().map(|(i, p, f)| (i + offset, p, f)));
    }
    report
}

/// For each crate, whether it or the library it reaches by name names
/// tokio's `JoinHandle` type in any file (conservatively: `JoinHandle` not
/// after `tracked::`, or tokio-util's `AbortOnDropHandle`, which takes one),
/// so that a spawn's handle may be stored where only tokio's fits.
fn names_tokio_handle(units: &[Unit], prepared: &Prepared) -> Vec<bool> {
    let names = |text: &str| {
        let tokio = |(at, _): (usize, &str)| !text[..at].ends_with("tracked::");
        text.match_indices("JoinHandle").any(tokio) || text.contains("AbortOnDropHandle")
    };
    let naming: std::collections::HashSet<&std::path::Path> = units
        .iter()
        .zip(&prepared.units)
        .flat_map(|(unit, state)| {
            let texts = state.texts.iter().filter(|text| names(&text.text));
            texts.map(|text| unit.files[text.entry].abs.as_path())
        })
        .collect();
    let own: Vec<bool> = units
        .iter()
        .map(|unit| unit.files.iter().any(|e| naming.contains(e.abs.as_path())))
        .collect();
    units
        .iter()
        .zip(&own)
        .map(|(unit, &own_names)| own_names || unit.lib.as_ref().is_some_and(|(_, l)| own[*l]))
        .collect()
}

fn empty_report() -> Report {
    Report {
        root: PathBuf::new(),
        files: 0,
        diagnostics: Vec::new(),
        suppressed: 0,
        io_errors: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        fixes: Vec::new(),
        suppressed_in: Vec::new(),
        excluded: false,
    }
}

/// What scanning one file produced.
struct Scanned {
    diagnostics: Vec<Diagnostic>,
    fixes: Vec<(usize, Fix)>,
    suppressed: usize,
    sites: Vec<Site>,
}

/// Parses a file in full and scans it; `id` is the file's id in `index`.
fn scan_file(
    index: &CrateIndex,
    id: FileId,
    entry: &Entry,
    text: &str,
    config: &Config,
    fix_type: &str,
) -> Scanned {
    let markers = suppress::candidates(text);
    let positions: Vec<_> = markers.iter().map(|m| m.at).collect();
    let parsed = parse::parse_file(text, &positions, true);
    let scanned = match parsed {
        Ok((file, in_literal)) => {
            let scanned = scan_tree(
                index, id, entry, text, config, fix_type, &file, markers, in_literal,
            );
            drop(file);
            scanned
        }
        Err(err) => {
            let source = SourceFile::new(&entry.rel, text);
            Scanned {
                diagnostics: vec![parse_error(&source, &err)],
                fixes: Vec::new(),
                suppressed: 0,
                sites: Vec::new(),
            }
        }
    };
    proc_macro2::extra::invalidate_current_thread_spans();
    scanned
}

/// Scans a parsed file: its spawns, suppression markers and `#[tracked]`
/// sites. `id` is the file's id in `index`, which ranks its own definitions
/// first.
#[allow(clippy::too_many_arguments)]
fn scan_tree(
    index: &CrateIndex,
    id: FileId,
    entry: &Entry,
    text: &str,
    config: &Config,
    fix_type: &str,
    file: &syn::File,
    markers: Vec<Marker>,
    in_literal: Vec<bool>,
) -> Scanned {
    let source = SourceFile::new(&entry.rel, text);
    let mut out = Scanned {
        diagnostics: Vec::new(),
        fixes: Vec::new(),
        suppressed: 0,
        sites: Vec::new(),
    };
    fn cx<'a>(
        index: &'a CrateIndex,
        id: usize,
        entry: &'a Entry,
        fix_type: &'a str,
        line_map: Option<&'a [(usize, usize)]>,
    ) -> Context<'a> {
        Context {
            resolver: Resolver::new(index),
            file: id,
            module: entry.module.clone(),
            crate_name: &entry.crate_name,
            fix_type,
            line_map,
        }
    }
    let mut scanner = Scanner::new(cx(index, id, entry, fix_type, None));
    scanner.visit_file(file);
    let mut spawns = std::mem::take(&mut scanner.spawns);
    out.sites = std::mem::take(&mut scanner.sites);
    if config.doctests {
        for block in doctest::blocks(file) {
            let mut scanner = Scanner::new(cx(index, id, entry, fix_type, Some(&block.line_map)));
            if let Ok(stmts) = block.parse() {
                scanner.visit_stmts(&stmts);
            }
            spawns.append(&mut scanner.spawns);
        }
    }
    spawns.sort_by_key(|s| s.region);
    spawns.dedup_by_key(|s| s.region);
    let markers: Vec<_> = markers
        .into_iter()
        .zip(in_literal)
        .filter(|(_, lit)| !lit)
        .map(|(m, _)| m)
        .collect();
    let lines: Vec<(Rule, usize, Vec<usize>)> = spawns
        .iter()
        .map(|s| (s.rule, s.region.line, s.statement_lines.clone()))
        .collect();
    let (suppressed, marker_diagnostics) = suppress::apply(&source, &markers, &lines);
    for (spawn, suppressed) in spawns.into_iter().zip(suppressed) {
        if suppressed {
            out.suppressed += 1;
            continue;
        }
        let message = match spawn.rule {
            Rule::UntrackedBlockInPlace => format!(
                "`{}` blocks without telling the tracker, whose watchdog takes it for a long poll",
                spawn.api
            ),
            _ => format!("`{}` spawns a task the tracker never sees", spawn.api),
        };
        let mut d = source.diagnostic(spawn.rule, spawn.region, message);
        d.api = Some(spawn.api);
        d.help = Some(spawn.help);
        if let Some(fix) = spawn.fix {
            out.fixes.push((out.diagnostics.len(), fix));
        }
        out.diagnostics.push(d);
    }
    out.diagnostics.extend(marker_diagnostics);
    out
}

/// The diagnostic for a file that does not parse.
fn parse_error(source: &SourceFile<'_>, err: &ParseError) -> Diagnostic {
    let region = Region {
        line: err.line,
        column: err.column,
        end_line: err.line,
        end_column: err.column + 1,
    };
    let message = format!("cannot parse: {}", err.message);
    let mut d = source.diagnostic(Rule::ParseError, region, message);
    d.help = Some(
        "the audit skipped this file; exclude it with `audit-exclude` if it is not meant to compile"
            .to_owned(),
    );
    d
}

/// Applies `audit-allow`: spawns (and tokio `block_in_place` calls) in
/// those files are suppressed, and a pattern
/// that matches no spawn is itself reported, unless `audited` (the files of
/// a partial audit) says its files were not audited.
fn allow_list(
    report: &mut Report,
    config: &Config,
    manifest: &str,
    manifest_text: &str,
    audited: Option<&[&str]>,
) {
    if config.allow.is_empty() {
        return;
    }
    let mut used = vec![false; config.allow.len()];
    let mut keep = vec![true; report.diagnostics.len()];
    for (d, keep) in report.diagnostics.iter().zip(&mut keep) {
        if !matches!(d.rule, Rule::UntrackedSpawn | Rule::UntrackedBlockInPlace) {
            continue;
        }
        for (pattern, used) in config.allow.iter().zip(&mut used) {
            if config::matches(pattern, &d.file) {
                *used = true;
                *keep = false;
            }
        }
        if !*keep {
            report.suppressed_in.push((d.file.clone(), 1));
        }
    }
    let removed = keep.iter().filter(|k| !**k).count();
    report.suppressed += removed;
    retain(report, &keep);
    let source = SourceFile::new(manifest, manifest_text);
    let table = settings_table(manifest_text);
    for (pattern, used) in config.allow.iter().zip(used) {
        let out_of_reach =
            audited.is_some_and(|files| !files.iter().any(|f| config::matches(pattern, f)));
        if used || out_of_reach {
            continue;
        }
        // The entry's text from the `audit-allow` key on: the same text may
        // stand earlier (a member's path in `members = [...]`).
        let quoted = format!("\"{pattern}\"");
        let key = manifest_text
            .lines()
            .position(|l| l.trim_start().starts_with("audit-allow"))
            .unwrap_or(0);
        let (line, column) = manifest_text
            .lines()
            .enumerate()
            .skip(key)
            .find_map(|(i, l)| l.find(&quoted).map(|c| (i + 1, l[..c].chars().count() + 1)))
            .unwrap_or((1, 1));
        let region = Region {
            line,
            column,
            end_line: line,
            end_column: column + quoted.chars().count(),
        };
        let mut d = source.diagnostic(
            Rule::UnusedSuppression,
            region,
            format!("`audit-allow` entry `{pattern}` matches no untracked spawn or block_in_place"),
        );
        d.help = Some(format!("remove it from `{table} audit-allow`"));
        report.diagnostics.push(d);
    }
}

/// The table of a manifest the settings come from, as [`Config`] reads
/// them: `[workspace.metadata.tracked]` when the manifest has workspace
/// metadata, else `[package.metadata.tracked]`.
fn settings_table(manifest_text: &str) -> &'static str {
    let table = manifest_text.parse::<toml::Table>().ok();
    let metadata = table
        .as_ref()
        .and_then(|t| t.get("workspace")?.get("metadata"));
    if metadata.is_some() {
        "[workspace.metadata.tracked]"
    } else {
        "[package.metadata.tracked]"
    }
}

/// Keeps the diagnostics whose flag is set, renumbering the fixes.
fn retain(report: &mut Report, keep: &[bool]) {
    let mut new_index = Vec::with_capacity(keep.len());
    let mut next = 0;
    for k in keep {
        new_index.push(next);
        next += usize::from(*k);
    }
    let mut flags = keep.iter();
    report
        .diagnostics
        .retain(|_| *flags.next().unwrap_or(&true));
    report
        .fixes
        .retain(|(i, _, _)| keep.get(*i).copied().unwrap_or(false));
    for (i, _, _) in &mut report.fixes {
        *i = new_index[*i];
    }
}

/// Sorts the diagnostics, keeping fix indices pointing at theirs.
fn finish(report: &mut Report) {
    let mut order: Vec<usize> = (0..report.diagnostics.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&report.diagnostics[a], &report.diagnostics[b]);
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
    let mut position = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut old: Vec<Option<Diagnostic>> = std::mem::take(&mut report.diagnostics)
        .into_iter()
        .map(Some)
        .collect();
    report.diagnostics = order.iter().filter_map(|&i| old[i].take()).collect();
    for (i, _, _) in &mut report.fixes {
        *i = position[*i];
    }
    report.fixes.sort_by_key(|(i, _, _)| *i);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Crate roots sharing a unit (as the files of a directory outside the
    /// Cargo layout do): `b.rs` imports tokio's fns under the names `c.rs`
    /// and `d.rs` define, and each file's own definitions rank first. `d.rs`
    /// is scanned from its held tree; `c.rs`, which mentions neither `spawn`
    /// nor `tracked`, only once the index shows a renamed spawning fn.
    /// Neither verdict may change when `a.rs` cannot be read (a read error
    /// injected by the reader: permissions do not stop root).
    #[test]
    fn a_file_that_cannot_be_read_leaves_the_others_ranking_their_own_definitions_first() {
        let sources = [
            ("a.rs", ""),
            ("b.rs", "use tokio::spawn;\nuse tokio::spawn as go;\n"),
            ("c.rs", "fn go(_: u8) {}\nfn f() { go(1); }\n"),
            ("d.rs", "fn spawn(_: u8) {}\nfn f() { spawn(1); }\n"),
        ];
        let files = sources.iter().map(|(rel, _)| Entry {
            abs: PathBuf::from(rel),
            rel: (*rel).to_owned(),
            crate_name: "scripts".to_owned(),
            module: Vec::new(),
            index_only: false,
        });
        let units = [Unit {
            roots: tokio_api::default_roots(),
            files: files.collect(),
            lib: None,
            deps: Vec::new(),
        }];
        for unreadable in [None, Some("a.rs")] {
            let source = |entry: &Entry| match sources.iter().find(|(rel, _)| *rel == entry.rel) {
                Some((rel, text)) if Some(*rel) != unreadable => Read::Text((*text).to_owned()),
                _ => Read::Failed(entry.rel.clone()),
            };
            let report = run(&units, &Config::default(), 1, false, &source).expect("audit runs");
            let found: Vec<_> = report
                .diagnostics
                .iter()
                .map(Diagnostic::location)
                .collect();
            assert!(found.is_empty(), "{unreadable:?} unreadable: {found:?}");
            assert_eq!(report.io_errors.len(), usize::from(unreadable.is_some()));
        }
    }
}

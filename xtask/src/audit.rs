//! The audit pipeline: discover files, summarise each into the crate index,
//! scan each against it, apply suppressions, lint the catalogue.

use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, Region, Rule, Severity, SourceFile};
use crate::index::{CrateIndex, Fragment, ModPath};
use crate::lint::{self, Site};
use crate::parse::{self, ParseError, STACK_SIZE};
use crate::resolve::Resolver;
use crate::scan::{Context, Fix, Scanner};
use crate::workspace::{self, Entry, Unit};
use crate::{doctest, suppress};
use rayon::prelude::*;
use std::path::PathBuf;
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
    /// How many untracked spawns markers or the allow-list suppressed.
    pub suppressed: usize,
    /// Files that could not be read.
    pub io_errors: Vec<String>,
    /// Rewrites `--fix` may apply, by index into `diagnostics`.
    pub(crate) fixes: Vec<(usize, PathBuf, Fix)>,
}

impl Report {
    /// 0 when clean, 1 with errors, 2 when files could not be read.
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
    let mut ws = workspace::discover(
        options.path.as_deref(),
        options.manifest_path.as_deref(),
        &options.exclude,
    )
    .map_err(Error)?;
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
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK_SIZE)
        .build()
        .map_err(|e| Error(format!("cannot start worker threads: {e}")))?;
    let mut report = pool.install(|| run(&ws.units, &ws.config));
    report.root = ws.root.clone();
    if let Some((path, text)) = &manifest {
        allow_list(&mut report, &ws.config, path, text);
    }
    finish(&mut report);
    Ok(report)
}

/// Audits one source text as a lone crate root, with default settings; the
/// text need not be valid Rust. Runs on a thread with a large stack.
pub fn check_source(path: &str, text: &str) -> Vec<Diagnostic> {
    let (path, text) = (path.to_owned(), text.to_owned());
    let job = move || {
        let units = [Unit {
            tokio_names: vec!["tokio".to_owned()],
            files: Vec::new(),
        }];
        let file = Loaded::from_text(0, Ok(text), &Vec::new());
        let mut report = analyse(
            &units[0],
            vec![(
                Entry {
                    abs: PathBuf::from(&path),
                    rel: path.clone(),
                    crate_name: "main".to_owned(),
                    module: Vec::new(),
                },
                file,
            )],
            &Config::default(),
            true,
        );
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

/// A file read and summarised.
struct Loaded {
    text: Result<String, String>,
    fragment: Option<Fragment>,
    parse_error: Option<ParseError>,
}

impl Loaded {
    fn read(entry: &Entry, id: usize) -> Loaded {
        let text = match std::fs::read(&entry.abs) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| ()),
            Err(err) => {
                return Loaded {
                    text: Err(format!("{}: {err}", entry.rel)),
                    fragment: None,
                    parse_error: None,
                }
            }
        };
        match text {
            Ok(text) => Loaded::from_text(id, Ok(text), &entry.module),
            Err(()) => Loaded {
                text: Ok(String::new()),
                fragment: None,
                parse_error: Some(ParseError {
                    line: 1,
                    column: 1,
                    message: "file is not valid UTF-8".to_owned(),
                }),
            },
        }
    }

    fn from_text(id: usize, text: Result<String, String>, module: &ModPath) -> Loaded {
        let mut loaded = Loaded {
            text,
            fragment: None,
            parse_error: None,
        };
        if let Ok(text) = &loaded.text {
            match parse::parse_items(text) {
                Ok(file) => loaded.fragment = Some(Fragment::of_file(&file, id, module)),
                Err(err) => loaded.parse_error = Some(err),
            }
        }
        proc_macro2::extra::invalidate_current_thread_spans();
        loaded
    }
}

fn run(units: &[Unit], config: &Config) -> Report {
    let mut report = empty_report();
    let flat: Vec<(usize, usize, &Entry)> = units
        .iter()
        .enumerate()
        .flat_map(|(u, unit)| unit.files.iter().enumerate().map(move |(id, e)| (u, id, e)))
        .collect();
    let mut loaded: Vec<Vec<(Entry, Loaded)>> = units.iter().map(|_| Vec::new()).collect();
    let read: Vec<(usize, Entry, Loaded)> = flat
        .par_iter()
        .map(|&(u, id, entry)| (u, entry.clone(), Loaded::read(entry, id)))
        .collect();
    for (u, entry, file) in read {
        loaded[u].push((entry, file));
    }
    let parts: Vec<Report> = units
        .par_iter()
        .zip(loaded)
        .map(|(unit, files)| analyse(unit, files, config, false))
        .collect();
    for part in parts {
        report.files += part.files;
        report.suppressed += part.suppressed;
        report.io_errors.extend(part.io_errors);
        let offset = report.diagnostics.len();
        report.diagnostics.extend(part.diagnostics);
        report
            .fixes
            .extend(part.fixes.into_iter().map(|(i, p, f)| (i + offset, p, f)));
    }
    report
}

fn empty_report() -> Report {
    Report {
        root: PathBuf::new(),
        files: 0,
        diagnostics: Vec::new(),
        suppressed: 0,
        io_errors: Vec::new(),
        fixes: Vec::new(),
    }
}

/// What scanning one file produced.
struct Scanned {
    diagnostics: Vec<Diagnostic>,
    fixes: Vec<(usize, Fix)>,
    suppressed: usize,
    sites: Vec<Site>,
}

/// Builds one crate's index and scans its files against it: those that
/// mention `spawn` or `tracked` (or all, with `scan_all` or when an import
/// renames a spawning fn). Files not scanned were checked to parse at item
/// level only; a syntax error inside one of their fn bodies is left to rustc.
fn analyse(unit: &Unit, files: Vec<(Entry, Loaded)>, config: &Config, scan_all: bool) -> Report {
    let mut report = empty_report();
    report.files = files.len();
    let mut fragments = Vec::new();
    let mut texts = Vec::new();
    for (entry, loaded) in files {
        fragments.extend(loaded.fragment);
        match loaded.text {
            Ok(text) => {
                if let Some(err) = &loaded.parse_error {
                    let source = SourceFile {
                        path: &entry.rel,
                        text: &text,
                    };
                    let d = parse_error(&source, err);
                    report.diagnostics.push(d);
                    texts.push((entry, text, false));
                } else {
                    texts.push((entry, text, true));
                }
            }
            Err(err) => report.io_errors.push(err),
        }
    }
    let index = CrateIndex::new(unit.tokio_names.clone(), fragments);
    let fix_type = config::task_type_expr(config.fix_type.as_deref().unwrap_or("General"));
    let scanned: Vec<Option<Scanned>> = texts
        .par_iter()
        .enumerate()
        .map(|(id, (entry, text, parsed))| {
            let wanted = *parsed
                && (scan_all
                    || index.renames_spawn
                    || text.contains("spawn")
                    || text.contains("tracked"));
            wanted.then(|| scan_file(&index, id, entry, text, config, &fix_type))
        })
        .collect();
    let mut site_files = Vec::new();
    for ((entry, text, _), scanned) in texts.iter().zip(scanned) {
        let Some(scanned) = scanned else {
            continue;
        };
        let offset = report.diagnostics.len();
        report.diagnostics.extend(scanned.diagnostics);
        report.suppressed += scanned.suppressed;
        report.fixes.extend(
            scanned
                .fixes
                .into_iter()
                .map(|(i, f)| (i + offset, entry.abs.clone(), f)),
        );
        if !scanned.sites.is_empty() {
            site_files.push((
                SourceFile {
                    path: &entry.rel,
                    text,
                },
                scanned.sites,
            ));
        }
    }
    report
        .diagnostics
        .extend(lint::lint(&site_files, config.types.as_deref()));
    report
}

fn scan_file(
    index: &CrateIndex,
    id: usize,
    entry: &Entry,
    text: &str,
    config: &Config,
    fix_type: &str,
) -> Scanned {
    let source = SourceFile {
        path: &entry.rel,
        text,
    };
    let markers = suppress::candidates(text);
    let positions: Vec<_> = markers.iter().map(|m| m.at).collect();
    let mut out = Scanned {
        diagnostics: Vec::new(),
        fixes: Vec::new(),
        suppressed: 0,
        sites: Vec::new(),
    };
    let parsed = parse::parse_file(text, &positions, true);
    let (file, in_literal) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            proc_macro2::extra::invalidate_current_thread_spans();
            out.diagnostics.push(parse_error(&source, &err));
            return out;
        }
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
    scanner.visit_file(&file);
    let mut spawns = std::mem::take(&mut scanner.spawns);
    out.sites = std::mem::take(&mut scanner.sites);
    if config.doctests {
        for block in doctest::blocks(&file) {
            let mut scanner = Scanner::new(cx(index, id, entry, fix_type, Some(&block.line_map)));
            if let Ok(stmts) = block.parse() {
                scanner.visit_stmts(&stmts);
            }
            spawns.append(&mut scanner.spawns);
        }
    }
    drop(file);
    proc_macro2::extra::invalidate_current_thread_spans();
    spawns.sort_by_key(|s| s.region);
    spawns.dedup_by_key(|s| s.region);
    let markers: Vec<_> = markers
        .into_iter()
        .zip(in_literal)
        .filter(|(_, lit)| !lit)
        .map(|(m, _)| m)
        .collect();
    let lines: Vec<(usize, Vec<usize>)> = spawns
        .iter()
        .map(|s| (s.region.line, s.statement_lines.clone()))
        .collect();
    let (suppressed, marker_diagnostics) = suppress::apply(&source, &markers, &lines);
    for (spawn, suppressed) in spawns.into_iter().zip(suppressed) {
        if suppressed {
            out.suppressed += 1;
            continue;
        }
        let mut d = source.diagnostic(
            Rule::UntrackedSpawn,
            spawn.region,
            format!("`{}` spawns a task the tracker never sees", spawn.api),
        );
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

/// Applies `audit-allow`: spawns in those files are suppressed, and a pattern
/// that matches no spawn is itself reported.
fn allow_list(report: &mut Report, config: &Config, manifest: &str, manifest_text: &str) {
    if config.allow.is_empty() {
        return;
    }
    let mut used = vec![false; config.allow.len()];
    let mut keep = vec![true; report.diagnostics.len()];
    for (d, keep) in report.diagnostics.iter().zip(&mut keep) {
        if d.rule != Rule::UntrackedSpawn {
            continue;
        }
        for (pattern, used) in config.allow.iter().zip(&mut used) {
            if config::matches(pattern, &d.file) {
                *used = true;
                *keep = false;
            }
        }
    }
    let removed = keep.iter().filter(|k| !**k).count();
    report.suppressed += removed;
    retain(report, &keep);
    let source = SourceFile {
        path: manifest,
        text: manifest_text,
    };
    for (pattern, used) in config.allow.iter().zip(used) {
        if used {
            continue;
        }
        let quoted = format!("\"{pattern}\"");
        let (line, column) = manifest_text
            .lines()
            .enumerate()
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
            format!("`audit-allow` entry `{pattern}` matches no untracked spawn"),
        );
        d.help = Some("remove it from `[workspace.metadata.tracked] audit-allow`".to_owned());
        report.diagnostics.push(d);
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

//! Which files the audit reads, grouped into the crates they belong to.
//!
//! Packages come from `cargo metadata`; each package directory is walked for
//! `.rs` files, skipping `target/`, `vendor/` and `node_modules/` at a
//! package's root ([`build_or_vendored`]), hidden directories, nested
//! packages (a directory with its own `Cargo.toml`) and excluded paths, and
//! following symbolic links as rustc does, except back up the walk. Each target
//! `cargo metadata` lists is a crate: its `src_path` is the crate root, its
//! `name` (`-` read as `_`) the crate name. The other files in and below a
//! root's directory are modules of the targets rooted in the deepest such
//! directory (`src/` for `src/lib.rs` and `src/main.rs`, `tests/` for
//! `tests/common/`), except the package directory itself: a crate rooted there
//! (the build script) has the files its `mod` items mount, followed as rustc
//! follows them ([`mod_tree`]). Files no target claims, and every file of a
//! directory without a `Cargo.toml`, are grouped by the default layout
//! ([`place`]): as in Cargo, `src/lib.rs`, `src/main.rs`, each
//! `src/bin/foo.rs`, the build script, each `tests/foo.rs` (likewise each
//! example and bench) and each `tests/foo/main.rs` with the other files of
//! `foo/` is a crate; the other files of `src/` are modules of the library and
//! `src/main.rs`, those of another subdirectory of `src/bin/`, `tests/`,
//! `examples/` or `benches/` of every crate there; any other file is a crate
//! root, grouped by its top directory. Each crate a module file belongs to
//! indexes it, and the first audits it. The binaries, tests, examples and
//! benches reach the library by its crate name, through its index mounted
//! under `::name` (see `index::lib_root`). A file's
//! module path is derived from where it sits, as rustc's default module layout
//! would; where a `#[path]` attribute mounts it instead is found once the files
//! are parsed ([`mod_files`]).
//!
//! What `--path` names becomes a [`Plan`] ([`discover`]): the workspaces to
//! audit, each on its own, and what of them to report (a file or directory
//! inside a package is read with the whole package, and only its findings
//! kept: [`narrow`]); [`combine`] puts their reports together.

use crate::audit::Report;
use crate::config::{self, Config};
use crate::index::{Fragment, ModDecl, ModPath};
use crate::parse::{self, STACK_SIZE};
use crate::tokio_api::{self, Root, CRATES};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// One `.rs` file to audit.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) abs: PathBuf,
    /// Relative to the audited root, `/`-separated.
    pub(crate) rel: String,
    /// The crate's name, as `module_path!()` starts.
    pub(crate) crate_name: String,
    pub(crate) module: ModPath,
    /// A file another crate audits (a shared module): here it only adds to
    /// the index.
    pub(crate) index_only: bool,
}

/// The files that resolve names against each other.
#[derive(Debug)]
pub(crate) struct Unit {
    /// Names under which tokio and tokio-util are reachable.
    pub(crate) roots: Vec<Root>,
    pub(crate) files: Vec<Entry>,
    /// The package's library, when this crate reaches it by name (a binary,
    /// test, example or bench): its crate name and its position among the
    /// units. Its index, mounted under `index::lib_root`, is built once and shared
    /// by every such crate (`index::CrateIndex::linking`).
    pub(crate) lib: Option<(String, usize)>,
    /// The libraries of the other packages of the workspace this crate
    /// depends on: the name it reaches each by, the library's crate name and
    /// its position among the units (`index::CrateIndex::depending`).
    pub(crate) deps: Vec<(String, String, usize)>,
}

/// What to audit.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    /// The root manifest, when there is one.
    pub(crate) manifest: Option<PathBuf>,
    pub(crate) config: Config,
    pub(crate) units: Vec<Unit>,
    /// The paths the walk could not read, each as `path: why`.
    pub(crate) problems: Vec<String>,
    /// What the report should say without failing the audit: that `cargo
    /// metadata` failed, so the files were grouped by the default layout.
    pub(crate) warnings: Vec<String>,
    /// The file or directory whose findings are reported, canonical; the rest
    /// is read only to resolve names (`--path` to a file or directory inside
    /// a package). `None`: everything.
    pub(crate) scope: Option<PathBuf>,
    /// Whether packages of the workspace were left out (`--path` to a
    /// member): its `audit-allow` entries for their files, which were not
    /// audited, are not reported as unused.
    pub(crate) partial: bool,
}

/// What `--path` asks for: workspaces, each audited on its own, reported
/// together.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The directory paths in the report are relative to.
    pub(crate) root: PathBuf,
    pub(crate) parts: Vec<Workspace>,
    /// What could not be audited, each as `path: why`.
    pub(crate) problems: Vec<String>,
    /// The path `--path` or `--manifest-path` gave, as given: what an audit
    /// of nothing names. `None`: `root`.
    pub(crate) asked: Option<PathBuf>,
}

impl Plan {
    fn one(ws: Workspace) -> Plan {
        Plan {
            root: ws.root.clone(),
            parts: vec![ws],
            problems: Vec::new(),
            asked: None,
        }
    }

    /// The parts, reported relative to `root`; one part keeps its own root.
    fn of(root: &Path, mut parts: Vec<Workspace>, problems: Vec<String>) -> Plan {
        if parts.len() == 1 {
            let mut plan = Plan::one(parts.remove(0));
            plan.problems = problems;
            return plan;
        }
        Plan {
            root: root.to_path_buf(),
            parts,
            problems,
            asked: None,
        }
    }
}

struct Package {
    dir: PathBuf,
    name: String,
    roots: Vec<Root>,
    /// Its targets, from `cargo metadata`; none for a directory without a
    /// `Cargo.toml`, whose crates the layout implies.
    targets: Vec<Target>,
    /// Its path dependencies, from `cargo metadata`: the name the code
    /// reaches each by (its `rename`, else its package name, `-` read as
    /// `_`), its package name (likewise) and whether the library depends on
    /// it too (not a dev- or build-dependency).
    deps: Vec<(String, String, bool)>,
}

/// A target of a package: a crate.
struct Target {
    kind: Kind,
    /// The crate's name: the target's, `-` read as `_`.
    name: String,
    /// The crate root.
    root: PathBuf,
}

/// How a crate relates to its package's library.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lib,
    /// A binary, test, example or bench: reaches the library by name.
    Links,
    /// The build script, or a file outside any target.
    Other,
}

impl Target {
    /// The targets `cargo metadata` lists for `package`.
    fn of_package(package: &Value) -> Vec<Target> {
        let targets = package["targets"].as_array().map(Vec::as_slice);
        let target = |target: &Value| {
            let kinds = target["kind"].as_array()?;
            let is = |kind: &str| kinds.iter().any(|k| k == kind);
            let kind = if is("custom-build") {
                Kind::Other
            } else if ["bin", "test", "example", "bench"].into_iter().any(is) {
                Kind::Links
            } else {
                Kind::Lib
            };
            Some(Target {
                kind,
                name: target["name"].as_str()?.replace('-', "_"),
                root: normalize(Path::new(target["src_path"].as_str()?)),
            })
        };
        targets
            .unwrap_or_default()
            .iter()
            .filter_map(target)
            .collect()
    }
}

/// Finds what to audit from `--path` or `--manifest-path` (neither: the
/// workspace around the current directory).
///
/// A directory or `Cargo.toml` of a package is that package, in its
/// workspace. A directory without a `Cargo.toml` is walked by the default
/// layout (or, inside a package, is that package's part of it), and each
/// package below it is audited as a package. A `.rs` file is its package's
/// part of it, or a crate of its own outside any package. When `cargo
/// metadata` fails on a manifest, its directory is walked by the default
/// layout with the settings the manifest holds ([`fallback`]), and the
/// failure is a warning, with or without a path ([`around_here`]): the audit
/// ran, and its exit code is its findings'.
pub(crate) fn discover(
    path: Option<&Path>,
    manifest: Option<&Path>,
    exclude: &[String],
) -> Result<Plan, String> {
    let mut plan = plan(path, manifest, exclude)?;
    plan.asked = manifest.or(path).map(Path::to_path_buf);
    Ok(plan)
}

/// [`discover`], but for the path an audit of nothing names.
fn plan(path: Option<&Path>, manifest: Option<&Path>, exclude: &[String]) -> Result<Plan, String> {
    if let Some(manifest) = manifest {
        return package_plan(manifest, None, exclude);
    }
    let Some(path) = path else {
        return match metadata(None) {
            Ok(json) => Ok(Plan::one(from_metadata(&json, None, exclude)?)),
            Err(why) => around_here(&why, exclude),
        };
    };
    if path.is_dir() {
        let manifest = path.join("Cargo.toml");
        if manifest.is_file() {
            return package_plan(&manifest, Some(path), exclude);
        }
        let mut parts = Vec::new();
        let mut problems = Vec::new();
        // Inside a package's or workspace's tree, paths are shown from its
        // root, as for the run without `--path`.
        let mut root = path.to_path_buf();
        match enclosing(path) {
            Some(dir) => {
                let scope = path.canonicalize().ok();
                for mut ws in package(&dir.join("Cargo.toml"), Some(&dir), exclude)? {
                    ws.scope.clone_from(&scope);
                    parts.push(ws);
                }
                root.clone_from(&parts[0].root);
            }
            None => parts.push(layout(path, exclude)),
        }
        nested(path, exclude, &mut parts, &mut problems);
        return Ok(Plan::of(&root, parts, problems));
    }
    if path.file_name().is_some_and(|n| n == "Cargo.toml") {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        return package_plan(path, Some(dir), exclude);
    }
    if path.extension().is_some_and(|e| e == "rs") && path.is_file() {
        if let Some(dir) = enclosing(path) {
            let scope = path.canonicalize().ok();
            let mut parts = package(&dir.join("Cargo.toml"), Some(&dir), exclude)?;
            for ws in &mut parts {
                ws.scope.clone_from(&scope);
            }
            return Ok(Plan::of(&dir, parts, Vec::new()));
        }
        let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let rel = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Plan::one(Workspace {
            root,
            manifest: None,
            config: Config::default(),
            units: vec![Unit {
                roots: tokio_api::default_roots(),
                files: vec![Entry {
                    abs: path.to_path_buf(),
                    rel,
                    crate_name: "main".to_owned(),
                    module: Vec::new(),
                    index_only: false,
                }],
                lib: None,
                deps: Vec::new(),
            }],
            problems: Vec::new(),
            warnings: Vec::new(),
            scope: None,
            partial: false,
        }));
    }
    Err(format!(
        "{}: not a directory, a Cargo.toml or a .rs file",
        path.display()
    ))
}

/// The workspace around the current directory when `cargo metadata` failed
/// on it (`why`): that of the nearest directory at or above it with a
/// `Cargo.toml`, whose root is found as Cargo finds it ([`workspace_root`]);
/// audited by [`fallback`]. The failure is a warning, not a problem: the
/// audit ran, and its exit code is its findings'. Without any `Cargo.toml`
/// there is no workspace to audit.
fn around_here(why: &str, exclude: &[String]) -> Result<Plan, String> {
    let here = std::env::current_dir().map_err(|_| why.to_owned())?;
    let has_manifest = |dir: &&Path| dir.join("Cargo.toml").is_file();
    let Some(nearest) = here.ancestors().find(has_manifest) else {
        return Err(why.to_owned());
    };
    let root = workspace_root(nearest);
    let (mut parts, failure) = fallback(&root.join("Cargo.toml"), why, exclude, nearest, None)?;
    parts[0].warnings.push(failure);
    Ok(Plan::of(&root, parts, Vec::new()))
}

/// The root directory of the workspace the package in `dir` belongs to,
/// found from the manifests as Cargo finds it: `dir` itself when its
/// `Cargo.toml` has a `[workspace]` table; else the directory its
/// `package.workspace` names; else the first directory above it whose
/// `Cargo.toml` has a `[workspace]` table that does not exclude it
/// (`workspace.exclude`); else `dir`. A root `package.workspace` names that
/// is not at or above `dir`, or has no `Cargo.toml`, leaves `dir` on its
/// own: the fallback walks a workspace from its root down. `dir` itself is
/// returned as given; another root, as an absolute path.
fn workspace_root(dir: &Path) -> PathBuf {
    let Ok(abs) = std::path::absolute(dir).map(|p| normalize(&p)) else {
        return dir.to_path_buf();
    };
    let own = read_manifest(&abs.join("Cargo.toml")).ok();
    let pointer = own.as_ref().and_then(|t| {
        let pointer = t.get("package")?.get("workspace")?.as_str()?;
        Some(normalize(&abs.join(pointer)))
    });
    let root = if own.as_ref().is_some_and(|t| t.contains_key("workspace")) {
        None
    } else if let Some(pointer) = pointer {
        let usable = abs.starts_with(&pointer) && pointer.join("Cargo.toml").is_file();
        usable.then_some(pointer)
    } else {
        abs.ancestors().skip(1).find_map(|above| {
            let table = read_manifest(&above.join("Cargo.toml")).ok()?;
            let not_members = strings(table.get("workspace")?.get("exclude"));
            let rel = relative(above, &abs);
            let excluded = not_members.iter().any(|p| config::matches(p, &rel));
            (!excluded).then(|| above.to_path_buf())
        })
    };
    match root {
        Some(root) if root != abs => root,
        _ => dir.to_path_buf(),
    }
}

/// The directory of the package `path` lies in: the nearest one above it
/// with a `Cargo.toml`.
fn enclosing(path: &Path) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    real.ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// [`package`] as a plan of its own, reported from its workspace's root.
fn package_plan(manifest: &Path, only: Option<&Path>, exclude: &[String]) -> Result<Plan, String> {
    let parts = package(manifest, only, exclude)?;
    let root = parts[0].root.clone();
    Ok(Plan::of(&root, parts, Vec::new()))
}

/// The packages of the workspace whose member (or root) `manifest` is, those
/// in and below `only` if given, with the workspace's configuration. When
/// `cargo metadata` fails on a manifest that exists, the workspace's root,
/// found as the run without `--path` finds it ([`workspace_root`]), is
/// walked by the default layout ([`fallback`]), and why is a warning.
fn package(
    manifest: &Path,
    only: Option<&Path>,
    exclude: &[String],
) -> Result<Vec<Workspace>, String> {
    let why = match metadata(Some(manifest)) {
        Ok(json) => return Ok(vec![from_metadata(&json, only, exclude)?]),
        Err(why) if !manifest.is_file() => return Err(why),
        Err(why) => why,
    };
    let dir = parent_dir(manifest);
    let root = workspace_root(dir).join("Cargo.toml");
    let (mut parts, failure) = fallback(&root, &why, exclude, dir, only)?;
    parts[0].warnings.push(failure);
    Ok(parts)
}

/// The directory of `manifest`, on which `cargo metadata` failed (`why`),
/// walked as a directory without a `Cargo.toml` is ([`layout`], then
/// [`nested`]), but with the settings and the package name its `Cargo.toml`
/// holds, read as TOML: `[workspace.metadata.tracked]`, else
/// `[package.metadata.tracked]`. When it has a `[workspace]` table, each
/// package below it that is not a workspace of its own nor in
/// `workspace.exclude` is its member: walked in the same workspace, with
/// those settings, paths relative to its root; so is `member`, the package
/// whose workspace this is, wherever it lies below the root (its
/// `package.workspace` may name a root the walk does not reach it from).
/// With `only`, the packages in and below it, as [`from_metadata`] keeps
/// them. Returns the parts and the warning that says what failed.
fn fallback(
    manifest: &Path,
    why: &str,
    exclude: &[String],
    member: &Path,
    only: Option<&Path>,
) -> Result<(Vec<Workspace>, String), String> {
    let dir = parent_dir(manifest);
    let why = why.strip_prefix("`cargo metadata` failed:").unwrap_or(why);
    let why: Vec<&str> = why
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let (table, unread) = match read_manifest(manifest) {
        Ok(table) => (table, String::new()),
        Err(err) => (
            toml::Table::new(),
            format!(" and its settings not read ({err})"),
        ),
    };
    let failure = format!(
        "Cargo.toml: `cargo metadata` failed, so its files were grouped by the default layout{unread}: {}",
        why.join(" ")
    );
    let config = manifest_config(&table)?;
    let mut packages = vec![Package {
        name: package_name(&table).unwrap_or_else(|| dir_name(dir)),
        ..Package::layout(dir)
    }];
    let mut problems = Vec::new();
    let mut others = Vec::new();
    let excludes = [config.exclude.as_slice(), exclude].concat();
    let below = packages_below(dir, &excludes, &mut problems);
    match table.get("workspace") {
        Some(workspace) => {
            let not_members = strings(workspace.get("exclude"));
            for found in below {
                let rel = relative(dir, &found);
                let own = read_manifest(&found.join("Cargo.toml")).ok();
                let separate = own.as_ref().is_some_and(|t| t.contains_key("workspace"))
                    || not_members.iter().any(|p| config::matches(p, &rel));
                if separate {
                    others.push(found);
                } else {
                    let name = own.as_ref().and_then(package_name);
                    packages.push(Package {
                        name: name.unwrap_or_else(|| dir_name(&found)),
                        ..Package::layout(&found)
                    });
                }
            }
        }
        None => others = below,
    }
    // The member, unless the walk found it: at its path below the root.
    let real = |path: &Path| path.canonicalize().ok();
    let real_member = real(member);
    let found = |path: &Path| real_member.is_some() && real(path) == real_member;
    let below_root = real_member
        .as_ref()
        .zip(real(dir))
        .and_then(|(m, d)| Some(dir.join(m.strip_prefix(d).ok()?)));
    if let Some(path) = below_root.filter(|_| !packages.iter().any(|p| found(&p.dir))) {
        others.retain(|other| !found(other));
        let name = read_manifest(&member.join("Cargo.toml")).ok();
        packages.push(Package {
            name: name
                .as_ref()
                .and_then(package_name)
                .unwrap_or_else(|| dir_name(&path)),
            ..Package::layout(&path)
        });
    }
    let all = packages.len();
    if let Some(only) = only.and_then(real) {
        let inside = |path: &Path| real(path).is_some_and(|p| p.starts_with(&only));
        packages.retain(|package| inside(&package.dir));
        others.retain(|other| inside(other));
    }
    let partial = packages.len() < all;
    let (units, walk_problems) = walk(dir, &packages, &config.exclude, exclude);
    let mut parts = vec![Workspace {
        root: dir.to_path_buf(),
        manifest: Some(dir.join("Cargo.toml")),
        config,
        units,
        problems: walk_problems,
        warnings: Vec::new(),
        scope: None,
        partial,
    }];
    audit_each(dir, &others, exclude, &mut parts, &mut problems);
    parts[0].problems.extend(problems);
    Ok((parts, failure))
}

/// The directory `path` is in (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The manifest at `path`, parsed.
fn read_manifest(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.parse::<toml::Table>()
        .map_err(|e| e.message().trim().to_owned())
}

/// The settings of a manifest, as [`Config::from_metadata`] reads them from
/// `cargo metadata`: the workspace's metadata when there is some, else the
/// package's.
fn manifest_config(table: &toml::Table) -> Result<Config, String> {
    let metadata = |key: &str| table.get(key).and_then(|t| t.get("metadata"));
    let Some(metadata) = metadata("workspace").or_else(|| metadata("package")) else {
        return Ok(Config::default());
    };
    let json = serde_json::to_value(metadata).map_err(|e| format!("Cargo.toml: {e}"))?;
    Config::from_metadata(Some(&json))
}

/// The `name` of a manifest's `[package]`, as a crate name.
fn package_name(table: &toml::Table) -> Option<String> {
    let name = table.get("package")?.get("name")?.as_str()?;
    Some(name.replace('-', "_"))
}

/// The strings of a TOML array (none if it is not one).
fn strings(value: Option<&toml::Value>) -> Vec<String> {
    let items = value.and_then(toml::Value::as_array).map(Vec::as_slice);
    let items = items.unwrap_or_default().iter();
    items
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The name a directory gives the package it holds: its own, `-` read as
/// `_`.
fn dir_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().replace('-', "_")))
        .unwrap_or_else(|| "crate".to_owned())
}

impl Package {
    /// The directory `dir` as a package of the default layout, named after
    /// it.
    fn layout(dir: &Path) -> Package {
        Package {
            dir: dir.to_path_buf(),
            name: dir_name(dir),
            roots: tokio_api::default_roots(),
            targets: Vec::new(),
            deps: Vec::new(),
        }
    }
}

/// The directory `dir`, without a `Cargo.toml`, walked as one package by the
/// default layout, named after the directory.
fn layout(dir: &Path, exclude: &[String]) -> Workspace {
    let config = Config::default();
    let (units, problems) = walk(dir, &[Package::layout(dir)], &config.exclude, exclude);
    Workspace {
        root: dir.to_path_buf(),
        manifest: None,
        config,
        units,
        problems,
        warnings: Vec::new(),
        scope: None,
        partial: false,
    }
}

/// Adds to `parts` each package below `dir` (see [`packages_below`]), each
/// audited on its own.
fn nested(dir: &Path, exclude: &[String], parts: &mut Vec<Workspace>, problems: &mut Vec<String>) {
    let mut found = packages_below(dir, exclude, problems);
    // A package whose files a part audits already (`--path` to a folder of
    // an enclosing workspace's members) is not audited again on its own.
    let audited: Vec<PathBuf> = parts
        .iter()
        .flat_map(|ws| &ws.units)
        .flat_map(|unit| &unit.files)
        .filter_map(|entry| entry.abs.canonicalize().ok())
        .collect();
    found.retain(|package| {
        package.canonicalize().map_or(true, |real| {
            !audited.iter().any(|file| file.starts_with(&real))
        })
    });
    audit_each(dir, &found, exclude, parts, problems);
}

/// The packages below `dir` (not `dir` itself): the directories with a
/// `Cargo.toml` the walk reaches, skipping what it skips, not looking inside
/// a package (its workspace lists its members).
fn packages_below(dir: &Path, exclude: &[String], problems: &mut Vec<String>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = Vec::new();
    while let Some(here) = stack.pop() {
        for entry in entries(dir, &here, problems) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let skip = name.starts_with('.')
                || build_or_vendored(&here, &name, here == dir)
                || exclude
                    .iter()
                    .any(|p| config::matches(p, &relative(dir, &path)));
            if skip || !path.is_dir() {
                continue;
            }
            // A link back up the tree would walk it without end.
            match path.canonicalize() {
                Ok(real) if !seen.contains(&real) => seen.push(real),
                _ => continue,
            }
            if path.join("Cargo.toml").is_file() {
                found.push(path);
            } else {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether `name`, a directory in `parent`, is Cargo's build directory or
/// vendored sources: `target`, `vendor` or `node_modules` at the root of a
/// walk (`top`) or next to a `Cargo.toml`, or `node_modules` next to a
/// `package.json`. Elsewhere, as in `src/target/`, it may be a module
/// directory, and is read.
fn build_or_vendored(parent: &Path, name: &str, top: bool) -> bool {
    let at_root = || top || parent.join("Cargo.toml").is_file();
    match name {
        "target" | "vendor" => at_root(),
        "node_modules" => at_root() || parent.join("package.json").is_file(),
        _ => false,
    }
}

/// Adds to `parts` the packages in the directories `found` below `dir`,
/// each audited on its own ([`package`]); Cargo runs for all of them at
/// once.
fn audit_each(
    dir: &Path,
    found: &[PathBuf],
    exclude: &[String],
    parts: &mut Vec<Workspace>,
    problems: &mut Vec<String>,
) {
    let results: Vec<Result<Vec<Workspace>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = found
            .iter()
            .map(|dir| scope.spawn(move || package(&dir.join("Cargo.toml"), Some(dir), exclude)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (path, result) in found.iter().zip(results) {
        match result {
            Ok(more) => parts.extend(more),
            Err(why) => problems.push(problem(dir, &path.join("Cargo.toml"), why)),
        }
    }
}

/// The output of `cargo metadata --no-deps` for `manifest` (none: the
/// current directory's).
fn metadata(manifest: Option<&Path>) -> Result<Value, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    if let Some(manifest) = manifest {
        cmd.arg("--manifest-path").arg(manifest);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run `cargo metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo metadata` failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cannot read `cargo metadata` output: {e}"))
}

fn from_metadata(
    json: &Value,
    only_under: Option<&Path>,
    exclude: &[String],
) -> Result<Workspace, String> {
    let root = PathBuf::from(
        json["workspace_root"]
            .as_str()
            .ok_or("`cargo metadata` gave no workspace_root")?,
    );
    let packages = json["packages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let root_manifest = root.join("Cargo.toml");
    let mut config = match json.get("metadata").filter(|m| !m.is_null()) {
        Some(metadata) => Config::from_metadata(Some(metadata))?,
        None => {
            let root_package = packages.iter().find(|p| {
                p["manifest_path"].as_str().map(PathBuf::from) == Some(root_manifest.clone())
            });
            Config::from_metadata(root_package.and_then(|p| p.get("metadata")))?
        }
    };
    let only_under = only_under.and_then(|p| p.canonicalize().ok());
    let mut found = Vec::new();
    let mut partial = false;
    for package in packages {
        let Some(manifest) = package["manifest_path"].as_str() else {
            continue;
        };
        let dir = Path::new(manifest)
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if let Some(under) = &only_under {
            if !dir.canonicalize().is_ok_and(|d| d.starts_with(under)) {
                partial = true;
                continue;
            }
        }
        let deps = package["dependencies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut roots: Vec<Root> = Vec::new();
        for krate in CRATES {
            let package = krate.replace('_', "-");
            let mut names: Vec<String> = deps
                .iter()
                .filter(|d| d["name"] == package.as_str())
                .map(|d| d["rename"].as_str().unwrap_or(krate).replace('-', "_"))
                .collect();
            names.sort();
            names.dedup();
            if names.is_empty() {
                names.push((*krate).to_owned());
            }
            roots.extend(names.into_iter().map(|name| (name, *krate)));
        }
        let name = package["name"]
            .as_str()
            .unwrap_or("crate")
            .replace('-', "_");
        let targets = Target::of_package(package);
        let deps = deps
            .iter()
            .filter(|d| d["path"].is_string())
            .filter_map(|d| {
                let package = d["name"].as_str()?.replace('-', "_");
                let name = d["rename"].as_str().map(|r| r.replace('-', "_"));
                let normal = d["kind"].is_null();
                Some((name.unwrap_or_else(|| package.clone()), package, normal))
            })
            .collect();
        found.push(Package {
            dir,
            name,
            roots,
            targets,
            deps,
        });
    }
    let excludes = std::mem::take(&mut config.exclude);
    let (units, problems) = walk(&root, &found, &excludes, exclude);
    config.exclude = excludes;
    Ok(Workspace {
        root,
        manifest: Some(root_manifest),
        config,
        units,
        problems,
        warnings: Vec::new(),
        scope: None,
        partial,
    })
}

/// Keeps what `ws` reports of `report`, its audit: with a scope, the findings
/// in it and the counts of the files and suppressions in it. Problems reading
/// files are all kept: any of them may have hidden a name the scope resolves.
/// A scope with no file read that `audit-exclude` or `exclude` (`--exclude`)
/// names is excluded as asked: a note says so.
pub(crate) fn narrow(report: &mut Report, ws: &Workspace, exclude: &[String]) {
    let Some(scope) = &ws.scope else {
        return;
    };
    let root = ws.root.canonicalize().unwrap_or_else(|_| ws.root.clone());
    let Ok(scope) = scope.strip_prefix(&root) else {
        report.files = 0;
        report.suppressed = 0;
        report.suppressed_in.clear();
        retain(report, |_| false);
        return;
    };
    let scope = relative(Path::new(""), scope);
    let inside = |rel: &str| {
        scope.is_empty()
            || rel
                .strip_prefix(scope.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let entries = ws.units.iter().flat_map(|unit| &unit.files);
    report.files = entries.filter(|e| !e.index_only && inside(&e.rel)).count();
    report.suppressed_in.retain(|(file, _)| inside(file));
    report.suppressed = report.suppressed_in.iter().map(|(_, n)| n).sum();
    retain(report, |file| inside(file));
    if report.files > 0 || scope.is_empty() {
        return;
    }
    let matching = |patterns: &[String]| {
        let mut found = patterns.iter().filter(|p| config::matches(p, &scope));
        found.next().cloned()
    };
    let by = match (matching(&ws.config.exclude), matching(exclude)) {
        (Some(pattern), _) => format!("`audit-exclude` entry `{pattern}`"),
        (None, Some(pattern)) => format!("`--exclude {pattern}`"),
        (None, None) => return,
    };
    report.excluded = true;
    report.notes.push(format!(
        "{scope}: not audited: excluded by configuration ({by})"
    ));
}

/// Keeps the diagnostics whose file `keep` accepts, renumbering the fixes.
fn retain(report: &mut Report, keep: impl Fn(&str) -> bool) {
    let kept: Vec<bool> = report.diagnostics.iter().map(|d| keep(&d.file)).collect();
    let mut new_index = Vec::with_capacity(kept.len());
    let mut next = 0;
    for &k in &kept {
        new_index.push(next);
        next += usize::from(k);
    }
    let mut flags = kept.iter();
    report
        .diagnostics
        .retain(|_| *flags.next().unwrap_or(&true));
    report.fixes.retain(|(i, _, _)| kept[*i]);
    for (i, _, _) in &mut report.fixes {
        *i = new_index[*i];
    }
}

/// The reports of a plan's parts, each with its workspace's root, as one
/// report with paths relative to the plan's `root`, and the plan's
/// `problems`. One that read no file at all says so as a problem, naming
/// the path asked for, unless what it was asked to read is excluded by the
/// configuration: an audit of nothing must not pass as clean.
pub(crate) fn combine(plan: Plan, parts: Vec<(PathBuf, Report)>) -> Report {
    let Plan {
        root,
        problems,
        asked,
        ..
    } = plan;
    let root = root.as_path();
    let real = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut report = Report {
        root: root.to_path_buf(),
        files: 0,
        diagnostics: Vec::new(),
        suppressed: 0,
        io_errors: problems,
        warnings: Vec::new(),
        notes: Vec::new(),
        fixes: Vec::new(),
        suppressed_in: Vec::new(),
        excluded: false,
    };
    for (part_root, part) in parts {
        // A path relative to the part's root, made relative to `root`.
        let prefix = match part_root.canonicalize() {
            Ok(dir) if dir != real => match dir.strip_prefix(&real) {
                Ok(rel) => relative(Path::new(""), rel),
                Err(_) => dir.to_string_lossy().into_owned(),
            },
            _ => String::new(),
        };
        let rebase = |rel: &str| match (prefix.as_str(), rel) {
            ("", rel) => rel.to_owned(),
            (prefix, "." | "") => prefix.to_owned(),
            (prefix, rel) => format!("{prefix}/{rel}"),
        };
        let offset = report.diagnostics.len();
        report.files += part.files;
        report.suppressed += part.suppressed;
        let suppressed_in = part.suppressed_in.iter();
        report
            .suppressed_in
            .extend(suppressed_in.map(|(file, n)| (rebase(file), *n)));
        let io = |io: &String| match io.strip_prefix(".:") {
            Some(why) if !prefix.is_empty() => format!("{prefix}:{why}"),
            _ => rebase(io),
        };
        report.io_errors.extend(part.io_errors.iter().map(io));
        report.warnings.extend(part.warnings.iter().map(io));
        report.notes.extend(part.notes.iter().map(io));
        report.excluded |= part.excluded;
        report
            .diagnostics
            .extend(part.diagnostics.into_iter().map(|mut d| {
                d.file = rebase(&d.file);
                d
            }));
        report
            .fixes
            .extend(part.fixes.into_iter().map(|(i, p, f)| (i + offset, p, f)));
    }
    if report.files == 0 && !report.excluded {
        let asked = asked.as_deref().unwrap_or(root);
        let shown = if asked.as_os_str().is_empty() {
            "."
        } else {
            &asked.to_string_lossy()
        };
        report.io_errors.push(format!(
            "{shown}: nothing audited: no `.rs` file found there that the audit reads"
        ));
    }
    report
}

/// Collects the `.rs` files of each package into crates; also returns the
/// paths that could not be read, each as `path: why`.
fn walk(
    root: &Path,
    packages: &[Package],
    config_exclude: &[String],
    exclude: &[String],
) -> (Vec<Unit>, Vec<String>) {
    let excluded = |rel: &str| {
        config_exclude
            .iter()
            .chain(exclude)
            .any(|p| config::matches(p, rel))
    };
    let mut units = Vec::new();
    let mut problems = Vec::new();
    // Each package's crates (their positions) and its library's.
    let mut placed = Vec::new();
    for package in packages {
        let files = package_files(root, package, &excluded, &mut problems);
        let first = units.len();
        let (crates, lib) = package_units(package, files, first);
        units.extend(crates);
        placed.push((first..units.len(), lib));
    }
    for (package, (crates, own)) in packages.iter().zip(&placed) {
        for (name, dep, normal) in &package.deps {
            let found = packages.iter().position(|p| p.name == *dep);
            let Some((_, Some(lib))) = found.map(|p| &placed[p]) else {
                continue;
            };
            if Some(lib) == own.as_ref() {
                continue;
            }
            for u in crates.clone() {
                if *normal || own.as_ref().is_none_or(|(_, l)| *l != u) {
                    units[u].deps.push((name.clone(), lib.0.clone(), lib.1));
                }
            }
        }
    }
    (units, problems)
}

/// The `.rs` files of a package, in walk order, each with its path in the
/// package. Symbolic links are followed, as rustc follows them, and files
/// keep the path through the link; a link to a directory the walk is in
/// (the package directory, or one above it) is not followed, which ends
/// loops. A directory that cannot be listed, a link to one that cannot be
/// resolved, and a `.rs` link that leads nowhere (dangling, or a loop of
/// links; hidden names aside, as Emacs's lock files are such links) go to
/// `problems`, and the walk goes on; any other link that leads nowhere is
/// skipped.
fn package_files(
    root: &Path,
    package: &Package,
    excluded: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Vec<(Entry, Vec<String>)> {
    let mut files = Vec::new();
    let real = match package.dir.canonicalize() {
        Ok(real) => real,
        Err(err) => {
            problems.push(problem(root, &package.dir, &err));
            return files;
        }
    };
    // Each directory to walk, with the real paths of the directories from the
    // package directory down to it.
    let mut stack = vec![(package.dir.clone(), vec![real])];
    while let Some((dir, chain)) = stack.pop() {
        for entry in entries(root, &dir, problems) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = relative(root, &path);
            if excluded(&rel) {
                continue;
            }
            let (kind, link) = match followed_type(&entry) {
                Ok(found) => found,
                Err(err) => {
                    if name.ends_with(".rs") && !name.starts_with('.') {
                        problems.push(nowhere(root, &path, &err));
                    }
                    continue;
                }
            };
            if kind.is_dir() {
                let skip = name.starts_with('.')
                    || build_or_vendored(&dir, &name, dir == package.dir)
                    || path.join("Cargo.toml").is_file();
                if skip {
                    continue;
                }
                match real_dir(&chain, &path, link) {
                    Ok(Some(real)) => stack.push((path, [chain.as_slice(), &[real]].concat())),
                    Ok(None) => {}
                    Err(err) => problems.push(problem(root, &path, &err)),
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                let parts = components(path.strip_prefix(&package.dir).unwrap_or(&path));
                let entry = Entry {
                    abs: path,
                    rel,
                    crate_name: String::new(),
                    module: Vec::new(),
                    index_only: false,
                };
                files.push((entry, parts));
            }
        }
    }
    files
}

/// The entries of the directory `dir`, by name; why it cannot be listed, in
/// full or in part, goes to `problems`.
fn entries(root: &Path, dir: &Path, problems: &mut Vec<String>) -> Vec<std::fs::DirEntry> {
    let mut entries = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(read) => {
            for entry in read {
                match entry {
                    Ok(entry) => entries.push(entry),
                    Err(err) => problems.push(problem(root, dir, &err)),
                }
            }
        }
        Err(err) => problems.push(problem(root, dir, &err)),
    }
    entries.sort_by_key(std::fs::DirEntry::file_name);
    entries
}

/// `path: why`, `path` relative to `root` (`.` for `root` itself).
fn problem(root: &Path, path: &Path, why: impl std::fmt::Display) -> String {
    let rel = relative(root, path);
    let rel = if rel.is_empty() { "." } else { &rel };
    format!("{rel}: {why}")
}

/// `path: link to target: err` for the link at `path` that leads nowhere
/// (`path: err` if it is no link).
fn nowhere(root: &Path, path: &Path, err: &std::io::Error) -> String {
    match std::fs::read_link(path) {
        Ok(target) => problem(
            root,
            path,
            format_args!("link to {}: {err}", target.display()),
        ),
        Err(_) => problem(root, path, err),
    }
}

/// The type of `entry`, through a symbolic link, and whether it is one; an
/// error for a link that leads nowhere (dangling, or a loop of links).
fn followed_type(entry: &std::fs::DirEntry) -> std::io::Result<(std::fs::FileType, bool)> {
    let kind = entry.file_type()?;
    if !kind.is_symlink() {
        return Ok((kind, false));
    }
    let target = std::fs::metadata(entry.path())?;
    Ok((target.file_type(), true))
}

/// The real path of the directory `path`, in the one whose walk `chain`
/// ends with; `None` when it is a link back to a directory of `chain` or
/// above one, which would walk those files again, or without end. An error
/// when `path` is a link that cannot be resolved.
fn real_dir(chain: &[PathBuf], path: &Path, link: bool) -> std::io::Result<Option<PathBuf>> {
    let Some(parent) = chain.last() else {
        return Ok(None);
    };
    if !link {
        return Ok(path.file_name().map(|name| parent.join(name)));
    }
    let real = path.canonicalize()?;
    let back = chain.iter().any(|dir| dir.starts_with(&real));
    Ok((!back).then_some(real))
}

/// A crate of a package: one of its targets, or one the layout implies.
#[derive(PartialEq)]
enum Key {
    Target(usize),
    Layout(String),
}

/// Groups a package's files into crates; `base` is the position of its
/// first crate among all. Each target whose root is among `files` is a
/// crate; the other files in and below its root's directory are its modules
/// (in the deepest such directory, of every target rooted there). The files
/// no target claims are placed by the layout ([`place`]). Also returns the
/// library's crate name and position, if the package has one.
fn package_units(
    package: &Package,
    files: Vec<(Entry, Vec<String>)>,
    base: usize,
) -> (Vec<Unit>, Option<(String, usize)>) {
    let unit = |file: Entry| Unit {
        roots: package.roots.clone(),
        files: vec![file],
        lib: None,
        deps: Vec::new(),
    };
    let mut units: Vec<(Key, Unit)> = Vec::new();
    // The directories of the targets' roots, each with its crate's position.
    let mut homes: Vec<(&Path, usize)> = Vec::new();
    // The positions of the crates rooted in the package directory itself.
    let mut top = Vec::new();
    for (t, target) in package.targets.iter().enumerate() {
        let Some((file, _)) = files.iter().find(|(file, _)| file.abs == target.root) else {
            continue;
        };
        let index_only = units.iter().any(|(_, u)| u.files[0].abs == file.abs);
        let root = Entry {
            crate_name: target.name.clone(),
            index_only,
            ..file.clone()
        };
        match target.root.parent() {
            Some(dir) if dir != package.dir => homes.push((dir, units.len())),
            _ => top.push(units.len()),
        }
        units.push((Key::Target(t), unit(root)));
    }
    let targets = units.len();
    let mounted = top_modules(&mut units, &top, &files, &homes);
    // Files shared by the crates whose layout keys start with a prefix.
    let mut shared: Vec<(String, Entry)> = Vec::new();
    for (file, parts) in files {
        if mounted.contains(&file.abs)
            || units[..targets]
                .iter()
                .any(|(_, u)| u.files[0].abs == file.abs)
        {
            continue;
        }
        let home = homes
            .iter()
            .map(|&(dir, _)| dir)
            .filter(|dir| file.abs.starts_with(dir))
            .max_by_key(|dir| dir.components().count());
        if let Some(home) = home {
            let module = module_path(&components(
                file.abs.strip_prefix(home).unwrap_or(&file.abs),
            ));
            let crates = homes.iter().filter(|(dir, _)| *dir == home);
            for (i, &(_, u)) in crates.enumerate() {
                let unit = &mut units[u].1;
                unit.files.push(Entry {
                    crate_name: unit.files[0].crate_name.clone(),
                    module: module.clone(),
                    index_only: i > 0,
                    ..file.clone()
                });
            }
            continue;
        }
        let own_main =
            |dir: &str, sub: &str| package.dir.join(dir).join(sub).join("main.rs").is_file();
        let (place, crate_name, module) = place(&package.name, &parts, own_main);
        let entry = Entry {
            crate_name,
            module,
            ..file
        };
        let key = match place {
            Place::Crate(key) => Key::Layout(key),
            Place::Shared(prefix) => {
                shared.push((prefix, entry));
                continue;
            }
        };
        match units.iter_mut().find(|(k, _)| *k == key) {
            Some((_, unit)) => unit.files.push(entry),
            None => units.push((key, unit(entry))),
        }
    }
    for (prefix, entry) in shared {
        let mut first = true;
        let sharing = |key: &Key| matches!(key, Key::Layout(k) if k.starts_with(&prefix));
        for (_, unit) in units.iter_mut().filter(|(k, _)| sharing(k)) {
            unit.files.push(Entry {
                crate_name: unit.files[0].crate_name.clone(),
                index_only: !first,
                ..entry.clone()
            });
            first = false;
        }
        if first {
            // No crate to share it: a crate of its own, with any other such file.
            units.push((Key::Layout(format!("{prefix}*")), unit(entry)));
        }
    }
    // The library, by name, in each crate that reaches it.
    let kind = |key: &Key| match key {
        Key::Target(t) => package.targets[*t].kind,
        Key::Layout(k) if k == "src:lib" => Kind::Lib,
        Key::Layout(k) if links_lib(k) => Kind::Links,
        Key::Layout(_) => Kind::Other,
    };
    let lib = units.iter().position(|(key, _)| kind(key) == Kind::Lib);
    let lib = lib.map(|l| {
        let name = match &units[l].0 {
            Key::Target(t) => package.targets[*t].name.clone(),
            Key::Layout(_) => package.name.clone(),
        };
        (name, base + l)
    });
    if let Some(lib) = &lib {
        for (_, unit) in units.iter_mut().filter(|(key, _)| kind(key) == Kind::Links) {
            unit.lib = Some(lib.clone());
        }
    }
    (units.into_iter().map(|(_, unit)| unit).collect(), lib)
}

/// Adds to each crate of `top`, rooted in the package directory itself (the
/// build script's, whose directory holds every other target's), the files
/// its `mod` items mount, at their module paths; a target's root, or a file
/// in another target's directory, is left to that target. `units` are the
/// targets' crates. Returns the files mounted: the first crate that mounts
/// one audits it, the others index it.
fn top_modules(
    units: &mut [(Key, Unit)],
    top: &[usize],
    files: &[(Entry, Vec<String>)],
    homes: &[(&Path, usize)],
) -> Vec<PathBuf> {
    let free: HashMap<&Path, &Entry> = files
        .iter()
        .map(|(file, _)| (file.abs.as_path(), file))
        .filter(|(abs, _)| !homes.iter().any(|(dir, _)| abs.starts_with(dir)))
        .filter(|(abs, _)| !units.iter().any(|(_, unit)| unit.files[0].abs == *abs))
        .collect();
    let mut mounted = Vec::new();
    for &u in top {
        let unit = &mut units[u].1;
        let root = unit.files[0].clone();
        for (abs, module) in mod_tree(&root.abs, &|path| free.contains_key(path)) {
            let Some(&file) = free.get(abs.as_path()) else {
                continue;
            };
            unit.files.push(Entry {
                crate_name: root.crate_name.clone(),
                module,
                index_only: mounted.contains(&abs),
                ..file.clone()
            });
            mounted.push(abs);
        }
    }
    mounted
}

/// The files the `mod` items of the crate root `root` mount, each with its
/// module path, found as rustc finds them among those `walked` accepts and
/// followed in turn; a `#[path]` is left to `audit::mount`. Files are parsed
/// at item level on a thread with a large stack; one that cannot be read or
/// parsed mounts nothing.
fn mod_tree(root: &Path, walked: &(dyn Fn(&Path) -> bool + Sync)) -> Vec<(PathBuf, ModPath)> {
    let follow = || {
        let mut found: Vec<(PathBuf, ModPath)> = Vec::new();
        let mut work = vec![(root.to_path_buf(), true, Vec::new())];
        while let Some((file, mod_rs, module)) = work.pop() {
            let decls = mod_decls(&file, &module).into_iter();
            for decl in decls.filter(|decl| !decl.has_path()) {
                let path = mod_files(&file, mod_rs, &decl)
                    .into_iter()
                    .find(|path| walked(path));
                let Some(path) = path else {
                    continue;
                };
                if found.iter().any(|(seen, _)| *seen == path) {
                    continue;
                }
                let mod_rs = path.ends_with("mod.rs");
                found.push((path.clone(), decl.module.clone()));
                work.push((path, mod_rs, decl.module));
            }
        }
        found
    };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, follow);
        match thread.map(std::thread::ScopedJoinHandle::join) {
            Ok(Ok(found)) => found,
            // A panic in the engine is a bug: let it surface.
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Vec::new(),
        }
    })
}

/// The `mod name;` items of the file at `path`, whose top level is `module`.
fn mod_decls(path: &Path, module: &ModPath) -> Vec<ModDecl> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    match parse::parse_items(&text) {
        Ok(file) => Fragment::of_file(&file, 0, module).mods,
        Err(_) => Vec::new(),
    }
}

/// Whether the crate of this key reaches its package's library by name: a
/// binary, test, example or bench, or a module one of them shares.
fn links_lib(key: &str) -> bool {
    key == "src:main"
        || ["src/bin/", "tests/", "examples/", "benches/"]
            .iter()
            .any(|dir| key.starts_with(dir))
}

/// Where a file goes, by the key of its crate within the package.
enum Place {
    /// Into one crate.
    Crate(String),
    /// Into every crate whose key starts with this prefix (`tests/` for
    /// `tests/common/mod.rs`; `src:` for a module of the library and
    /// `src/main.rs`).
    Shared(String),
}

/// Which crate a file of a package belongs to, that crate's name, and the
/// file's module path in it. `own_main(dir, sub)`: whether `dir/sub/main.rs`
/// exists, making `dir/sub/` one target.
fn place(
    package: &str,
    parts: &[String],
    own_main: impl Fn(&str, &str) -> bool,
) -> (Place, String, ModPath) {
    // A target's crate name: its name, `-` read as `_`.
    let krate = |s: &str| stem(s).replace('-', "_");
    // Below a directory whose `main.rs` is a crate root: that root is the
    // crate's top; any other file, `lib.rs` and `main.rs` deeper down
    // included, is a module of its own name.
    let below_main = |parts: &[String]| -> ModPath {
        if parts == ["main.rs"] {
            Vec::new()
        } else {
            module_path(parts)
        }
    };
    let target = |dir: &str| matches!(dir, "tests" | "examples" | "benches");
    let one =
        |key: &str, name: String, module: ModPath| (Place::Crate(key.to_owned()), name, module);
    let shared = |prefix: &str, name: String, module: ModPath| {
        (Place::Shared(prefix.to_owned()), name, module)
    };
    match parts {
        [file] if file == "build.rs" => one("build", "build_script_build".to_owned(), Vec::new()),
        [file] => one(file, stem(file), Vec::new()),
        [dir, rest @ ..] if dir == "src" => match rest {
            [file] if file == "lib.rs" => one("src:lib", package.to_owned(), Vec::new()),
            [file] if file == "main.rs" => one("src:main", package.to_owned(), Vec::new()),
            [bin, file] if bin == "bin" => {
                one(&format!("src/bin/{}", stem(file)), krate(file), Vec::new())
            }
            [bin, sub, inner @ ..] if bin == "bin" && own_main("src/bin", sub) => {
                one(&format!("src/bin/{sub}"), krate(sub), below_main(inner))
            }
            [bin, inner @ ..] if bin == "bin" => {
                shared("src/bin/", stem(&inner[0]), module_path(inner))
            }
            _ => shared("src:", package.to_owned(), module_path(rest)),
        },
        [dir, file] if target(dir) => {
            one(&format!("{dir}/{}", stem(file)), krate(file), Vec::new())
        }
        [dir, sub, rest @ ..] if target(dir) && own_main(dir, sub) => {
            one(&format!("{dir}/{sub}"), krate(sub), below_main(rest))
        }
        [dir, rest @ ..] if target(dir) => {
            shared(&format!("{dir}/"), stem(&rest[0]), module_path(rest))
        }
        [dir, file] => one(dir, stem(file), Vec::new()),
        [dir, first, rest @ ..] => {
            let module = if rest == ["main.rs"] {
                Vec::new()
            } else {
                module_path(&parts[1..])
            };
            one(dir, stem(first), module)
        }
        [] => one("", package.to_owned(), Vec::new()),
    }
}

/// A file name without `.rs`.
fn stem(name: &str) -> String {
    name.strip_suffix(".rs").unwrap_or(name).to_owned()
}

/// The module path of the file at `parts` below its crate root's directory,
/// as rustc's default module layout would place it.
fn module_path(parts: &[String]) -> ModPath {
    let mut out: ModPath = parts.iter().map(|p| stem(p)).collect();
    if out.last().is_some_and(|last| last == "mod") {
        out.pop();
    }
    out
}

/// The names of `path`'s components.
fn components(path: &Path) -> Vec<String> {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// The files rustc would load for `decl`, declared in `file`, first choice
/// first. `mod_rs`: whether `file` is a crate root, a `mod.rs` or itself
/// loaded by `#[path]`. Such a file's modules sit in its directory; those of
/// another file `foo.rs` in `foo/`, except that a `#[path]` outside inline
/// modules is relative to its directory too. Each inline module adds its
/// name, or its own `#[path]`, as a directory.
pub(crate) fn mod_files(file: &Path, mod_rs: bool, decl: &ModDecl) -> Vec<PathBuf> {
    let mut dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let stem = file.file_stem().unwrap_or_default();
    // Whether `foo/` of a non-mod-rs `foo.rs` is still to be entered.
    let mut pending = !mod_rs;
    for (name, path) in &decl.inline {
        match path {
            Some(path) => dir.push(path),
            None if pending => dir.extend([stem, name.as_ref()]),
            None => dir.push(name),
        }
        pending = false;
    }
    if let Some(path) = &decl.path {
        return vec![normalize(&dir.join(path))];
    }
    if pending {
        dir.push(stem);
    }
    let name = decl.module.last().map_or("", String::as_str);
    vec![
        normalize(&dir.join(format!("{name}.rs"))),
        normalize(&dir.join(name).join("mod.rs")),
    ]
}

/// `path` without `.` and with each `dir/..` taken out, as the file system
/// would read it (symbolic links aside).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `root`, with `/` separators.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(module: &[&str], path: Option<&str>, inline: &[(&str, Option<&str>)]) -> ModDecl {
        ModDecl {
            module: module.iter().map(|s| (*s).to_owned()).collect(),
            path: path.map(str::to_owned),
            inline: inline
                .iter()
                .map(|(name, path)| ((*name).to_owned(), path.map(str::to_owned)))
                .collect(),
        }
    }

    fn files(file: &str, mod_rs: bool, decl: &ModDecl) -> Vec<String> {
        mod_files(Path::new(file), mod_rs, decl)
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// The examples of the Reference's "The path attribute", and the plain
    /// forms.
    #[test]
    fn module_files_are_found_where_rustc_looks() {
        let top = decl(&["a", "b", "c"], Some("foo.rs"), &[]);
        assert_eq!(files("src/a/b.rs", false, &top), ["src/a/foo.rs"]);
        assert_eq!(files("src/a/mod.rs", true, &top), ["src/a/foo.rs"]);
        let inline = decl(&["inline", "inner"], Some("other.rs"), &[("inline", None)]);
        assert_eq!(
            files("src/a/b.rs", false, &inline),
            ["src/a/b/inline/other.rs"]
        );
        assert_eq!(
            files("src/a/mod.rs", true, &inline),
            ["src/a/inline/other.rs"]
        );
        let plain = decl(&["x"], None, &[]);
        assert_eq!(
            files("src/a/b.rs", false, &plain),
            ["src/a/b/x.rs", "src/a/b/x/mod.rs"]
        );
        assert_eq!(
            files("src/lib.rs", true, &plain),
            ["src/x.rs", "src/x/mod.rs"]
        );
        let dir = decl(
            &["thread", "local"],
            Some("tls.rs"),
            &[("thread", Some("files"))],
        );
        assert_eq!(files("src/a/b.rs", false, &dir), ["src/a/files/tls.rs"]);
        let up = decl(&["server"], Some("../tests/support/server.rs"), &[]);
        assert_eq!(
            files("/p/benches/run.rs", true, &up),
            ["/p/tests/support/server.rs"]
        );
    }
}

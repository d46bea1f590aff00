//! The compile-time task catalogue: every `#[tracked]` fn and every spawn it
//! rewrote, collected through `inventory` before `main` runs.
//!
//! Each site is a `static` emitted by the macro; tasks link to it by
//! reference, so the catalogue can say which sites never ran and how many
//! live tasks each one has, and a lint can check names and types without
//! running anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::record::{Record, Site};
use crate::{TaskType, Tracker};

/// What a catalogue site declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SiteKind {
    /// An `async fn` annotated with `#[tracked]`.
    Fn,
    /// A `tokio::spawn` (or `spawn_blocking`, `spawn_local`) inside an
    /// annotated fn, rewritten into a tracked spawn.
    Spawn,
}

impl SiteKind {
    /// The kind's name, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Fn => "fn",
            SiteKind::Spawn => "spawn",
        }
    }
}

/// A task site known at compile time: one per `#[tracked]` fn and one per
/// rewritten spawn, each a `static` emitted by the macro.
///
/// Sites are built only by the macro; read them through [`catalogue`] or a
/// task's [`TaskSnapshot::fn_site`](crate::TaskSnapshot::fn_site) and
/// [`TaskSnapshot::spawn_site`](crate::TaskSnapshot::spawn_site).
pub struct StaticSite {
    name: &'static str,
    ty: TaskType,
    kind: SiteKind,
    module_path: &'static str,
    file: &'static str,
    line: u32,
    column: u32,
    tier: Option<u8>,
    /// For a fn site, the fn's identifier; for a spawn site, the identifier
    /// of the spawned call (`vote_processor` in `spawn(vote_processor(s))`),
    /// or `""`. A spawned annotated fn claims its task when they match.
    target: &'static str,
    ran: AtomicBool,
}

/// Set once any task with a static site has been registered, so that an
/// empty catalogue can be told apart from one `inventory` failed to collect.
static ANY_SITE_RAN: AtomicBool = AtomicBool::new(false);

impl StaticSite {
    /// Builds a site; called by the macro's generated statics only.
    #[doc(hidden)]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per field, called by generated code"
    )]
    pub const fn __new(
        name: &'static str,
        ty: TaskType,
        kind: SiteKind,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        column: u32,
        tier: Option<u8>,
        target: &'static str,
    ) -> Self {
        StaticSite {
            name,
            ty,
            kind,
            module_path,
            file,
            line,
            column,
            tier,
            target,
            ran: AtomicBool::new(false),
        }
    }

    /// The name its tasks get: `module::fn` for a fn (or the `name = "…"`
    /// given), `module::fn::callee` for a spawn.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The type its tasks get.
    pub fn ty(&self) -> TaskType {
        self.ty
    }

    /// Whether it is an annotated fn or a rewritten spawn.
    pub fn kind(&self) -> SiteKind {
        self.kind
    }

    /// The module it is in, as `module_path!()` gives it.
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// Its source location: the fn's name, or the spawn call.
    pub fn location(&self) -> Site {
        Site {
            file: self.file,
            line: self.line,
            column: self.column,
        }
    }

    /// The shutdown tier given with `tier = …`, if any.
    pub fn tier(&self) -> Option<u8> {
        self.tier
    }

    /// Whether a task has been registered with this site in this process.
    pub fn has_run(&self) -> bool {
        // Relaxed: a report; nothing is published with the flag.
        self.ran.load(Ordering::Relaxed)
    }

    pub(crate) fn target(&self) -> &'static str {
        self.target
    }

    /// Notes that a task ran from this site. Reads first, so that in steady
    /// state the flag's cache line stays shared instead of bouncing.
    pub(crate) fn mark_ran(&self) {
        // Relaxed: the flags are reports; they order nothing else.
        if !self.ran.load(Ordering::Relaxed) {
            self.ran.store(true, Ordering::Relaxed);
        }
        if !ANY_SITE_RAN.load(Ordering::Relaxed) {
            ANY_SITE_RAN.store(true, Ordering::Relaxed);
        }
    }

    fn sort_key(&self) -> (&'static str, u32, u32, SiteKind, &'static str) {
        (self.file, self.line, self.column, self.kind, self.name)
    }
}

impl fmt::Debug for StaticSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSite")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("kind", &self.kind)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for StaticSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}) at {}",
            self.kind.as_str(),
            self.name,
            self.ty,
            self.location()
        )
    }
}

/// One site as `inventory` collects it.
#[doc(hidden)]
pub struct Entry(pub &'static StaticSite);

inventory::collect!(Entry);

/// Every site the `#[tracked]` attribute emitted in this program.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// let catalogue = tracked::catalogue();
/// for site in catalogue.sites() {
///     println!("{site}");
/// }
/// assert!(catalogue.lint(None).is_empty());
/// ```
pub fn catalogue() -> Catalogue {
    let mut sites: Vec<&'static StaticSite> = inventory::iter::<Entry>
        .into_iter()
        .map(|entry| entry.0)
        .collect();
    sites.sort_by_key(|site| site.sort_key());
    sites.dedup_by(|a, b| std::ptr::eq(*a, *b));
    Catalogue { sites }
}

/// The sites of the program, ordered by file, line and column.
#[derive(Clone, Debug)]
pub struct Catalogue {
    sites: Vec<&'static StaticSite>,
}

/// Whether the catalogue can be trusted to be complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogueStatus {
    /// `inventory` collected these many sites: those of the crates linked
    /// into the program. A dependency the program never names (no item of
    /// it used) may be left out by the linker, and its sites with it; `use
    /// that_crate as _;` keeps it in. `cargo xtask audit` reads every crate
    /// of the workspace from source.
    Collected(usize),
    /// No sites, and no task with a static site has run: the program has no
    /// `#[tracked]` code, or has not reached it yet.
    Empty,
    /// No sites, although tasks from `#[tracked]` code ran: `inventory` does
    /// not work on this target, or the linker dropped the crate holding them.
    NotCollected,
}

/// A site and its tasks in one tracker.
#[derive(Clone, Debug)]
pub struct SiteUsage {
    /// The site.
    pub site: &'static StaticSite,
    /// Live tasks linked to it.
    pub live: usize,
    /// Finished tasks linked to it still in the tracker's history.
    pub finished: usize,
}

impl Catalogue {
    /// The sites, in a stable order: file, line, column, kind, name.
    pub fn sites(&self) -> &[&'static StaticSite] {
        &self.sites
    }

    /// Sites whose module path is `module` or lies below it.
    pub fn in_module(&self, module: &str) -> Vec<&'static StaticSite> {
        self.sites
            .iter()
            .copied()
            .filter(|site| {
                site.module_path == module
                    || site
                        .module_path
                        .strip_prefix(module)
                        .is_some_and(|rest| rest.starts_with("::"))
            })
            .collect()
    }

    /// Whether the catalogue is complete, empty, or was not collected.
    pub fn status(&self) -> CatalogueStatus {
        if !self.sites.is_empty() {
            CatalogueStatus::Collected(self.sites.len())
        } else if ANY_SITE_RAN.load(Ordering::Relaxed) {
            CatalogueStatus::NotCollected
        } else {
            CatalogueStatus::Empty
        }
    }

    /// Sites no task has been registered with in this process.
    pub fn never_ran(&self) -> Vec<&'static StaticSite> {
        self.sites
            .iter()
            .copied()
            .filter(|site| !site.has_run())
            .collect()
    }

    /// Each site with its live and remembered finished tasks in `tracker`.
    ///
    /// A task counts for its fn site and for the spawn site it came from,
    /// when it has both.
    pub fn usage(&self, tracker: &Tracker) -> Vec<SiteUsage> {
        let mut live: BTreeMap<*const StaticSite, usize> = BTreeMap::new();
        for record in tracker.inner.registry.live(|r| r.has_static_site()) {
            for site in record.static_sites() {
                *live.entry(std::ptr::from_ref(site)).or_default() += 1;
            }
        }
        let mut finished: BTreeMap<*const StaticSite, usize> = BTreeMap::new();
        let inner = &tracker.inner;
        let ended = inner
            .registry
            .history_entries(Record::has_static_site, &inner.clock);
        for entry in ended {
            for site in entry.record.static_sites() {
                *finished.entry(std::ptr::from_ref(site)).or_default() += 1;
            }
        }
        self.sites
            .iter()
            .map(|&site| {
                let key = std::ptr::from_ref(site);
                SiteUsage {
                    site,
                    live: live.get(&key).copied().unwrap_or(0),
                    finished: finished.get(&key).copied().unwrap_or(0),
                }
            })
            .collect()
    }

    /// Checks the catalogue: duplicate names, and, when `declared` is given,
    /// site types not in it and declared types no site uses.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// use tracked::TaskType;
    ///
    /// let declared = [TaskType::NETWORK, TaskType::CONSENSUS];
    /// for finding in tracked::catalogue().lint(Some(&declared)) {
    ///     eprintln!("{finding}");
    /// }
    /// ```
    pub fn lint(&self, declared: Option<&[TaskType]>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut by_name: BTreeMap<&'static str, Vec<&'static StaticSite>> = BTreeMap::new();
        for &site in &self.sites {
            by_name.entry(site.name).or_default().push(site);
        }
        for (name, sites) in by_name {
            if sites.len() > 1 {
                findings.push(Finding::DuplicateName { name, sites });
            }
        }
        if let Some(declared) = declared {
            for &site in &self.sites {
                if !declared.contains(&site.ty) {
                    findings.push(Finding::UndeclaredType { site });
                }
            }
            let used: BTreeSet<TaskType> = self.sites.iter().map(|site| site.ty).collect();
            for &ty in declared {
                if !used.contains(&ty) {
                    findings.push(Finding::UnusedType { ty });
                }
            }
        }
        findings
    }
}

/// A problem the catalogue lint found.
#[derive(Clone, Debug)]
pub enum Finding {
    /// Several sites give their tasks the same name.
    DuplicateName {
        /// The shared name.
        name: &'static str,
        /// The sites using it, in catalogue order.
        sites: Vec<&'static StaticSite>,
    },
    /// A site's type is not in the declared list.
    UndeclaredType {
        /// The site.
        site: &'static StaticSite,
    },
    /// A declared type that no site uses.
    UnusedType {
        /// The type.
        ty: TaskType,
    },
}

impl Finding {
    /// The rule's name, as printed.
    pub fn rule(&self) -> &'static str {
        match self {
            Finding::DuplicateName { .. } => "duplicate-name",
            Finding::UndeclaredType { .. } => "undeclared-type",
            Finding::UnusedType { .. } => "unused-type",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = self.rule();
        match self {
            Finding::DuplicateName { name, sites } => {
                write!(f, "{rule}: `{name}` is used by {} sites:", sites.len())?;
                for site in sites {
                    write!(f, " {};", site.location())?;
                }
                write!(f, " give each a distinct `name = \"…\"`")
            }
            Finding::UndeclaredType { site } => write!(
                f,
                "{rule}: {} at {} has type `{}`, which is not declared; declare it or fix `type = \"…\"`",
                site.name,
                site.location(),
                site.ty
            ),
            Finding::UnusedType { ty } => write!(
                f,
                "{rule}: type `{ty}` is declared but no site uses it; remove it from the list"
            ),
        }
    }
}

//! What the audit knows about the spawning APIs of tokio and tokio-util: the
//! spawning functions, the types whose methods spawn, and the modules that
//! re-export them. Paths start with the crate (`tokio`, `tokio_util`).

/// The crates whose APIs the audit knows, as code names them by default.
pub(crate) const CRATES: &[&str] = &["tokio", "tokio_util"];

/// A name under which one of [`CRATES`] is reachable: (name, crate).
pub(crate) type Root = (String, &'static str);

/// Each crate under its own name.
pub(crate) fn default_roots() -> Vec<Root> {
    CRATES.iter().map(|c| ((*c).to_owned(), *c)).collect()
}

/// A spawning free function of tokio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpawnFn {
    Spawn,
    SpawnBlocking,
    SpawnLocal,
}

impl SpawnFn {
    /// The tracked free function that replaces it.
    pub(crate) fn tracked(self) -> &'static str {
        match self {
            SpawnFn::Spawn => "tracked::spawn",
            SpawnFn::SpawnBlocking => "tracked::spawn_blocking",
            SpawnFn::SpawnLocal => "tracked::spawn_local",
        }
    }
}

/// A tokio or tokio-util type whose methods the audit follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokioType {
    JoinSet,
    JoinSetBuilder,
    LocalSet,
    TaskBuilder,
    Handle,
    Runtime,
    /// `tokio::runtime::LocalRuntime`: added in tokio 1.41 under
    /// `tokio_unstable`, stable since 1.51.
    LocalRuntime,
    RuntimeBuilder,
    TaskTracker,
    JoinMap,
    JoinQueue,
    LocalPoolHandle,
}

impl TokioType {
    /// The path users see in tokio's docs.
    pub(crate) fn path(self) -> &'static str {
        match self {
            TokioType::JoinSet => "tokio::task::JoinSet",
            TokioType::JoinSetBuilder => "tokio::task::join_set::Builder",
            TokioType::LocalSet => "tokio::task::LocalSet",
            TokioType::TaskBuilder => "tokio::task::Builder",
            TokioType::Handle => "tokio::runtime::Handle",
            TokioType::Runtime => "tokio::runtime::Runtime",
            TokioType::LocalRuntime => "tokio::runtime::LocalRuntime",
            TokioType::RuntimeBuilder => "tokio::runtime::Builder",
            TokioType::TaskTracker => "tokio_util::task::TaskTracker",
            TokioType::JoinMap => "tokio_util::task::JoinMap",
            TokioType::JoinQueue => "tokio_util::task::JoinQueue",
            TokioType::LocalPoolHandle => "tokio_util::task::LocalPoolHandle",
        }
    }

    /// Whether `method` on this type spawns a task: `from_iter` (and so
    /// `collect` into it) and `extend` spawn each future they are given.
    pub(crate) fn spawns(self, method: &str) -> bool {
        const ALL: &[&str] = &[
            "spawn",
            "spawn_on",
            "spawn_local",
            "spawn_local_on",
            "spawn_blocking",
            "spawn_blocking_on",
        ];
        match self {
            TokioType::JoinSet if matches!(method, "from_iter" | "extend") => true,
            TokioType::JoinQueue if method == "from_iter" => true,
            TokioType::JoinSet
            | TokioType::JoinSetBuilder
            | TokioType::TaskBuilder
            | TokioType::TaskTracker
            | TokioType::JoinMap
            | TokioType::JoinQueue => ALL.contains(&method),
            TokioType::LocalPoolHandle => {
                matches!(method, "spawn_pinned" | "spawn_pinned_by_idx")
            }
            TokioType::Handle | TokioType::Runtime => {
                matches!(method, "spawn" | "spawn_blocking")
            }
            TokioType::LocalRuntime => matches!(method, "spawn_local" | "spawn_blocking"),
            TokioType::LocalSet => method == "spawn_local",
            TokioType::RuntimeBuilder => false,
        }
    }

    /// What calling `method` on a value of this type returns, if it is a type
    /// the audit follows. `Some((ty, true))` means wrapped in a `Result`.
    pub(crate) fn method_returns(self, method: &str) -> Option<(TokioType, bool)> {
        match (self, method) {
            (TokioType::JoinSet, "build_task") => Some((TokioType::JoinSetBuilder, false)),
            (TokioType::JoinSetBuilder, "name") => Some((TokioType::JoinSetBuilder, false)),
            (TokioType::TaskBuilder, "name") => Some((TokioType::TaskBuilder, false)),
            (TokioType::Runtime | TokioType::LocalRuntime, "handle") => {
                Some((TokioType::Handle, false))
            }
            (TokioType::RuntimeBuilder, "build") => Some((TokioType::Runtime, true)),
            (TokioType::RuntimeBuilder, "build_local") => Some((TokioType::LocalRuntime, true)),
            (TokioType::RuntimeBuilder, _) => Some((TokioType::RuntimeBuilder, false)),
            _ => None,
        }
    }

    /// What the associated function `name` returns, as for
    /// [`TokioType::method_returns`].
    pub(crate) fn assoc_returns(self, name: &str) -> Option<(TokioType, bool)> {
        match (self, name) {
            (
                TokioType::JoinSet
                | TokioType::LocalSet
                | TokioType::TaskBuilder
                | TokioType::TaskTracker
                | TokioType::LocalPoolHandle,
                "new" | "default",
            ) => Some((self, false)),
            (
                TokioType::JoinMap | TokioType::JoinQueue,
                "new" | "default" | "with_capacity" | "with_hasher" | "with_capacity_and_hasher",
            ) => Some((self, false)),
            (TokioType::Handle, "current") => Some((self, false)),
            (TokioType::Handle, "try_current")
            | (TokioType::Runtime | TokioType::LocalRuntime, "new") => Some((self, true)),
            (TokioType::RuntimeBuilder, "new_multi_thread" | "new_current_thread") => {
                Some((self, false))
            }
            _ => None,
        }
    }

    /// The tracked replacement for a spawning method of this type.
    pub(crate) fn help(self) -> &'static str {
        match self {
            TokioType::JoinSet | TokioType::JoinSetBuilder => {
                "use `tracked::JoinSet`, whose spawns register each task with the tracker"
            }
            TokioType::TaskBuilder => {
                "use `tracked::Builder::new(name, ty)` instead of tokio's task builder: it has the same `spawn`, `spawn_blocking`, `spawn_local`, `spawn_local_on` and `spawn_on`"
            }
            TokioType::Handle | TokioType::Runtime => {
                "use `tracked::Tracker::spawn_on` (or `spawn_blocking`) with this runtime handle"
            }
            TokioType::LocalSet => {
                "use `tracked::Builder::new(name, ty).spawn_local_on(future, &local_set)` (or `tracked::spawn_local` inside the `LocalSet`)"
            }
            TokioType::LocalRuntime => {
                "use `tracked::spawn_local(name, ty, future)` (or `tracked::spawn_blocking`) inside `block_on` of this runtime"
            }
            TokioType::RuntimeBuilder => "",
            TokioType::TaskTracker => {
                "use a `tracked::Group` (`tracker.group(name)`): it spawns tracked tasks, counts them and cancels them with a timeout"
            }
            TokioType::JoinMap => "use `tracked::JoinSet` (its tasks can return their key)",
            TokioType::JoinQueue => {
                "spawn with `tracked::spawn` and keep the handles in a `VecDeque`, awaited front first: results in spawn order, as `JoinQueue` gives them"
            }
            TokioType::LocalPoolHandle => {
                "have the closure create a `#[tracked]` fn's future: it registers itself on its first poll"
            }
        }
    }
}

/// What a path names in one of [`CRATES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokioItem {
    Module,
    Fn(SpawnFn),
    Type(TokioType),
    /// `tokio::task::block_in_place`: spawns nothing, but blocks a worker
    /// without telling the tracker, whose watchdog then calls the poll a
    /// long one; `tracked::block_in_place` marks it meant.
    BlockInPlace,
}

/// The tracked replacement for [`BLOCK_IN_PLACE`]: the same signature
/// (`F: FnOnce() -> R`), with the current tracked task marked.
pub(crate) const TRACKED_BLOCK_IN_PLACE: &str = "tracked::block_in_place";

/// Looks up a path that starts with its crate (`["tokio", "task", "spawn"]`).
pub(crate) fn item(path: &[String]) -> Option<TokioItem> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    Some(match path.as_slice() {
        ["tokio"] | ["tokio", "task" | "runtime"] | ["tokio", "task", "join_set"] => {
            TokioItem::Module
        }
        ["tokio", "spawn"] | ["tokio", "task", "spawn"] => TokioItem::Fn(SpawnFn::Spawn),
        ["tokio", "task", "spawn_blocking"] => TokioItem::Fn(SpawnFn::SpawnBlocking),
        ["tokio", "task", "spawn_local"] => TokioItem::Fn(SpawnFn::SpawnLocal),
        ["tokio", "task", "block_in_place"] => TokioItem::BlockInPlace,
        ["tokio", "task", "JoinSet"] | ["tokio", "task", "join_set", "JoinSet"] => {
            TokioItem::Type(TokioType::JoinSet)
        }
        ["tokio", "task", "join_set", "Builder"] => TokioItem::Type(TokioType::JoinSetBuilder),
        ["tokio", "task", "LocalSet"] => TokioItem::Type(TokioType::LocalSet),
        ["tokio", "task", "Builder"] => TokioItem::Type(TokioType::TaskBuilder),
        ["tokio", "runtime", "Handle"] => TokioItem::Type(TokioType::Handle),
        ["tokio", "runtime", "Runtime"] => TokioItem::Type(TokioType::Runtime),
        ["tokio", "runtime", "LocalRuntime"] => TokioItem::Type(TokioType::LocalRuntime),
        ["tokio", "runtime", "Builder"] => TokioItem::Type(TokioType::RuntimeBuilder),
        ["tokio_util"] | ["tokio_util", "task"] | ["tokio_util", "task", "task_tracker"] => {
            TokioItem::Module
        }
        ["tokio_util", "task", "TaskTracker"]
        | ["tokio_util", "task", "task_tracker", "TaskTracker"] => {
            TokioItem::Type(TokioType::TaskTracker)
        }
        ["tokio_util", "task", "JoinMap"] => TokioItem::Type(TokioType::JoinMap),
        ["tokio_util", "task", "JoinQueue"] => TokioItem::Type(TokioType::JoinQueue),
        ["tokio_util", "task", "LocalPoolHandle"] => TokioItem::Type(TokioType::LocalPoolHandle),
        _ => return None,
    })
}

/// Whether a glob import of the module at `module` brings in `name`, among
/// the names the audit follows.
pub(crate) fn glob_exports(module: &[String], name: &str) -> bool {
    let mut path = module.to_vec();
    path.push(name.to_owned());
    item(&path).is_some()
}

/// How a finding names the API: `tokio::task::spawn_blocking`.
pub(crate) fn display(path: &[String]) -> String {
    path.join("::")
}

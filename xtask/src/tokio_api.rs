//! What the audit knows about tokio's public API: the spawning functions, the
//! types whose methods spawn, and the modules that re-export them.

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

/// A tokio type whose methods the audit follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokioType {
    JoinSet,
    JoinSetBuilder,
    LocalSet,
    TaskBuilder,
    Handle,
    Runtime,
    RuntimeBuilder,
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
            TokioType::RuntimeBuilder => "tokio::runtime::Builder",
        }
    }

    /// Whether `method` on this type spawns a task.
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
            TokioType::JoinSet | TokioType::JoinSetBuilder | TokioType::TaskBuilder => {
                ALL.contains(&method)
            }
            TokioType::Handle | TokioType::Runtime => {
                matches!(method, "spawn" | "spawn_blocking")
            }
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
            (TokioType::Runtime, "handle") => Some((TokioType::Handle, false)),
            (TokioType::RuntimeBuilder, "build") => Some((TokioType::Runtime, true)),
            (TokioType::RuntimeBuilder, _) => Some((TokioType::RuntimeBuilder, false)),
            _ => None,
        }
    }

    /// What the associated function `name` returns, as for
    /// [`TokioType::method_returns`].
    pub(crate) fn assoc_returns(self, name: &str) -> Option<(TokioType, bool)> {
        match (self, name) {
            (
                TokioType::JoinSet | TokioType::LocalSet | TokioType::TaskBuilder,
                "new" | "default",
            ) => Some((self, false)),
            (TokioType::Handle, "current") => Some((self, false)),
            (TokioType::Handle, "try_current") | (TokioType::Runtime, "new") => Some((self, true)),
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
                "use `tracked::Builder::new(name, ty).spawn(future)` instead of tokio's task builder"
            }
            TokioType::Handle | TokioType::Runtime => {
                "use `tracked::Tracker::spawn_on` (or `spawn_blocking`) with this runtime handle"
            }
            TokioType::LocalSet => {
                "use `tracked::spawn_local(name, ty, future)` inside the `LocalSet`"
            }
            TokioType::RuntimeBuilder => "",
        }
    }
}

/// What a path inside the `tokio` crate names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokioItem {
    Module,
    Fn(SpawnFn),
    Type(TokioType),
}

/// Looks up a path relative to the crate root of tokio (`["task", "spawn"]`).
pub(crate) fn item(path: &[String]) -> Option<TokioItem> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    Some(match path.as_slice() {
        [] | ["task"] | ["runtime"] | ["task", "join_set"] => TokioItem::Module,
        ["spawn"] | ["task", "spawn"] => TokioItem::Fn(SpawnFn::Spawn),
        ["task", "spawn_blocking"] => TokioItem::Fn(SpawnFn::SpawnBlocking),
        ["task", "spawn_local"] => TokioItem::Fn(SpawnFn::SpawnLocal),
        ["task", "JoinSet"] | ["task", "join_set", "JoinSet"] => {
            TokioItem::Type(TokioType::JoinSet)
        }
        ["task", "join_set", "Builder"] => TokioItem::Type(TokioType::JoinSetBuilder),
        ["task", "LocalSet"] => TokioItem::Type(TokioType::LocalSet),
        ["task", "Builder"] => TokioItem::Type(TokioType::TaskBuilder),
        ["runtime", "Handle"] => TokioItem::Type(TokioType::Handle),
        ["runtime", "Runtime"] => TokioItem::Type(TokioType::Runtime),
        ["runtime", "Builder"] => TokioItem::Type(TokioType::RuntimeBuilder),
        _ => return None,
    })
}

/// The names a glob import of the tokio module at `module` brings in, among
/// those the audit follows.
pub(crate) fn glob_exports(module: &[String], name: &str) -> bool {
    let mut path = module.to_vec();
    path.push(name.to_owned());
    item(&path).is_some()
}

/// How a finding names the API: `tokio::task::spawn_blocking`.
pub(crate) fn display(path: &[String]) -> String {
    let mut out = String::from("tokio");
    for segment in path {
        out.push_str("::");
        out.push_str(segment);
    }
    out
}

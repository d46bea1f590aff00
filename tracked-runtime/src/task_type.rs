//! Task types: an open set of categories named by strings.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// The category of a task, used for stats, queries and metric labels.
///
/// Types are an open set: any string names one, and two types are equal when
/// their names are. Common categories are predefined as constants; declare
/// your own as constants too, without touching this crate.
///
/// Keep the number of distinct types small (tens, not thousands): a type is a
/// metric label and owns a row of counters in every tracker. A tracker
/// counts its first 127 types apart and any more together, as `(other)`.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::TaskType;
///
/// const GOSSIP: TaskType = TaskType::new("Gossip");
///
/// assert_eq!(GOSSIP.name(), "Gossip");
/// assert_eq!(TaskType::new("Network"), TaskType::NETWORK);
/// ```
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct TaskType(&'static str);

impl TaskType {
    /// Network I/O: connections, listeners, peers.
    pub const NETWORK: TaskType = TaskType("Network");
    /// Consensus rounds and voting.
    pub const CONSENSUS: TaskType = TaskType("Consensus");
    /// Database access and storage.
    pub const DATABASE: TaskType = TaskType("Database");
    /// Periodic housekeeping.
    pub const MAINTENANCE: TaskType = TaskType("Maintenance");
    /// Game or business logic.
    pub const GAME_LOGIC: TaskType = TaskType("GameLogic");
    /// User interface and presentation.
    pub const UI: TaskType = TaskType("UI");
    /// Anything else; the default.
    pub const GENERAL: TaskType = TaskType("General");

    /// The predefined categories, in the order of the constants above.
    pub const PREDEFINED: [TaskType; 7] = [
        Self::NETWORK,
        Self::CONSENSUS,
        Self::DATABASE,
        Self::MAINTENANCE,
        Self::GAME_LOGIC,
        Self::UI,
        Self::GENERAL,
    ];

    /// A type named by a string literal; usable in `const` items.
    pub const fn new(name: &'static str) -> Self {
        TaskType(name)
    }

    /// A type named at run time (from configuration, say).
    ///
    /// Each distinct name is stored once for the life of the process, so
    /// calling this repeatedly with the same name does not grow memory.
    pub fn from_name(name: &str) -> Self {
        static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let mut names = NAMES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = names.get(name) {
            return TaskType(existing);
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        TaskType(leaked)
    }

    /// The type's name.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl PartialEq for TaskType {
    fn eq(&self, other: &Self) -> bool {
        // Constants of the same literal usually share one address, so the
        // pointer check settles most comparisons without reading the bytes.
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

impl std::hash::Hash for TaskType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: equal types have equal names.
        self.0.hash(state);
    }
}

impl Default for TaskType {
    fn default() -> Self {
        Self::GENERAL
    }
}

impl fmt::Debug for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_equal_constants_and_are_interned() {
        let a = TaskType::from_name("Consensus");
        assert_eq!(a, TaskType::CONSENSUS);
        let b = TaskType::from_name(&String::from("Custom"));
        let c = TaskType::from_name("Custom");
        assert!(std::ptr::eq(b.name(), c.name()));
    }
}

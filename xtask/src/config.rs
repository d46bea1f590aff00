//! Settings from `[workspace.metadata.tracked]` in the audited root's
//! `Cargo.toml` (or `[package.metadata.tracked]` of a lone package):
//!
//! ```toml
//! [workspace.metadata.tracked]
//! types = ["Network", "Consensus"]      # declared task types (catalogue lint)
//! fix-type = "General"                  # type `--fix` writes
//! audit-exclude = ["fuzz", "tests/ui"]  # paths never scanned
//! audit-allow = ["src/rt/spawn.rs"]     # files whose spawns are allowed
//! audit-doctests = false                # scan code blocks in doc comments
//! ```
//!
//! Paths are relative to the root, with `/`; `*` matches within one path
//! component and `**` across components; a pattern also matches everything
//! below the directory it names.

use serde_json::Value;

/// The audit's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Declared task types; `None` when not declared.
    pub types: Option<Vec<String>>,
    /// The task type `--fix` writes; `General` when unset.
    pub fix_type: Option<String>,
    /// Paths that are never scanned.
    pub exclude: Vec<String>,
    /// Paths whose untracked spawns are allowed.
    pub allow: Vec<String>,
    /// Whether doc-comment code blocks are scanned.
    pub doctests: bool,
}

impl Config {
    /// Reads the `tracked` table of a `metadata` value from `cargo metadata`.
    pub(crate) fn from_metadata(metadata: Option<&Value>) -> Result<Config, String> {
        let mut config = Config::default();
        let Some(table) = metadata.and_then(|m| m.get("tracked")) else {
            return Ok(config);
        };
        let Some(table) = table.as_object() else {
            return Err("`metadata.tracked` must be a table".to_owned());
        };
        for (key, value) in table {
            let strings = || -> Result<Vec<String>, String> {
                value
                    .as_array()
                    .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                    .ok_or_else(|| format!("`metadata.tracked.{key}` must be an array of strings"))
            };
            match key.as_str() {
                "types" => config.types = Some(strings()?),
                "audit-exclude" => config.exclude = strings()?,
                "audit-allow" => config.allow = strings()?,
                "fix-type" => {
                    let ty = value
                        .as_str()
                        .ok_or("`metadata.tracked.fix-type` must be a string")?;
                    config.fix_type = Some(ty.to_owned());
                }
                "audit-doctests" => {
                    config.doctests = value
                        .as_bool()
                        .ok_or("`metadata.tracked.audit-doctests` must be a boolean")?;
                }
                // Other tools (the `#[tracked]` catalogue) may read more keys.
                _ => {}
            }
        }
        Ok(config)
    }
}

/// The Rust expression for a task type name: a predefined constant when there
/// is one, else `tracked::TaskType::new("...")`.
pub(crate) fn task_type_expr(name: &str) -> String {
    let constant = match name {
        "Network" => "NETWORK",
        "Consensus" => "CONSENSUS",
        "Database" => "DATABASE",
        "Maintenance" => "MAINTENANCE",
        "GameLogic" => "GAME_LOGIC",
        "UI" => "UI",
        "General" => "GENERAL",
        _ => return format!("tracked::TaskType::new({name:?})"),
    };
    format!("tracked::TaskType::{constant}")
}

/// Whether `path` (relative, `/`-separated) matches `pattern`, or lies below
/// a directory it matches.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let path: Vec<&str> = path.split('/').collect();
    (0..=path.len()).any(|n| match_components(&pattern, &path[..n]))
}

fn match_components(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_components(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((name, tail)) => {
                match_component(first.as_bytes(), name.as_bytes()) && match_components(rest, tail)
            }
            None => false,
        },
    }
}

fn match_component(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| match_component(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && match_component(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && match_component(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_paths_and_what_lies_below() {
        assert!(matches(
            "xtask/tests/fixtures",
            "xtask/tests/fixtures/audit/src/lib.rs"
        ));
        assert!(matches("src/rt/spawn.rs", "src/rt/spawn.rs"));
        assert!(!matches("src/rt", "src/rtx/a.rs"));
        assert!(matches("**/ui", "tracked-macros/tests/ui/x.rs"));
        assert!(matches("src/*.rs", "src/lib.rs"));
        assert!(!matches("src/*.rs", "src/a/lib.rs"));
        assert!(matches("**", "anything/at/all.rs"));
    }

    #[test]
    fn task_types_use_predefined_constants() {
        assert_eq!(task_type_expr("GameLogic"), "tracked::TaskType::GAME_LOGIC");
        assert_eq!(
            task_type_expr("Indexer"),
            "tracked::TaskType::new(\"Indexer\")"
        );
    }
}

//! `--format json`: one JSON object per line, one line per diagnostic (JSON
//! Lines); the summary goes to stderr.
//!
//! # Schema (stable; fields are only ever added)
//!
//! | field        | type           | meaning                                                    |
//! |--------------|----------------|------------------------------------------------------------|
//! | `rule`       | string         | `untracked-spawn`, `parse-error`, `unused-suppression`, … (see [`Rule`](crate::Rule)) |
//! | `severity`   | string         | `error` or `warning`                                       |
//! | `file`       | string         | path relative to the audited root, `/`-separated           |
//! | `line`       | integer        | 1-based line of the start                                  |
//! | `column`     | integer        | 1-based column of the start, in characters                 |
//! | `end_line`   | integer        | 1-based line of the end                                    |
//! | `end_column` | integer        | 1-based column just past the end, in characters            |
//! | `api`        | string or null | for `untracked-spawn`: the tokio API, e.g. `tokio::task::JoinSet::spawn` |
//! | `message`    | string         | what is wrong                                              |
//! | `help`       | string or null | how to fix it (the tracked replacement)                    |
//!
//! Keys are written in alphabetical order.

use crate::diagnostic::Diagnostic;
use serde_json::{json, Value};

/// The JSON object of one diagnostic.
pub fn to_json(d: &Diagnostic) -> Value {
    json!({
        "rule": d.rule.id(),
        "severity": d.severity.as_str(),
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "end_line": d.end_line,
        "end_column": d.end_column,
        "api": d.api,
        "message": d.message,
        "help": d.help,
    })
}

/// All diagnostics as JSON Lines.
pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&to_json(d).to_string());
        out.push('\n');
    }
    out
}

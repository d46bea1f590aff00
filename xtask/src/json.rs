//! `--format json`: one JSON object per line, one line per diagnostic (JSON
//! Lines), then one per file or directory that could not be read (rule
//! `io-error`, no position); the summary goes to stderr.
//!
//! # Schema (stable; fields are only ever added)
//!
//! | field        | type           | meaning                                                    |
//! |--------------|----------------|------------------------------------------------------------|
//! | `rule`       | string         | `untracked-spawn`, `parse-error`, `unused-suppression`, … (see [`Rule`](crate::Rule)), or `io-error` |
//! | `severity`   | string         | `error` or `warning`                                       |
//! | `file`       | string         | path relative to the audited root, `/`-separated (`io-error`: the path as the error names it) |
//! | `line`       | integer        | 1-based line of the start (`io-error`: null)               |
//! | `column`     | integer        | 1-based column of the start, in characters (`io-error`: null) |
//! | `end_line`   | integer        | 1-based line of the end (`io-error`: null)                 |
//! | `end_column` | integer        | 1-based column just past the end, in characters (`io-error`: null) |
//! | `api`        | string or null | for `untracked-spawn` and `untracked-block-in-place`: the tokio API, e.g. `tokio::task::JoinSet::spawn` |
//! | `message`    | string         | what is wrong                                              |
//! | `help`       | string or null | how to fix it (the tracked replacement)                    |
//!
//! Keys are written in alphabetical order.

use crate::audit::Report;
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

/// The JSON object of a file or directory that could not be read, given as
/// [`Report::io_errors`] holds it (`path: why`).
fn io_error(problem: &str) -> Value {
    let (file, why) = split_io_error(problem);
    json!({
        "rule": "io-error",
        "severity": "error",
        "file": file,
        "line": null,
        "column": null,
        "end_line": null,
        "end_column": null,
        "api": null,
        "message": format!("cannot read {file}: {why}"),
        "help": null,
    })
}

/// The path and the reason of an I/O error held as `path: why`.
pub(crate) fn split_io_error(problem: &str) -> (&str, &str) {
    problem.split_once(": ").unwrap_or((problem, ""))
}

/// All diagnostics, then the I/O errors, as JSON Lines.
pub fn render(report: &Report) -> String {
    let diagnostics = report.diagnostics.iter().map(to_json);
    let io_errors = report.io_errors.iter().map(|p| io_error(p));
    let mut out = String::new();
    for value in diagnostics.chain(io_errors) {
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

//! `--fix`: rewrites direct spawns (`tokio::spawn(f)`, `tokio::task::spawn*(f)`
//! and their aliases) into tracked spawns, touching nothing else.
//!
//! Input: `tokio::spawn(serve(conn))` in `fn accept` of `my_app::net`.
//! Output: `tracked::spawn("my_app::net::accept", tracked::TaskType::GENERAL, serve(conn))`.

use crate::audit::{Error, Report};
use crate::diagnostic::Region;
use crate::scan::Fix;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// What `--fix` changed.
#[derive(Debug, Default)]
pub struct FixOutcome {
    /// How many spawns were rewritten.
    pub fixed: usize,
    /// The files written, relative to the root.
    pub files: Vec<String>,
}

/// Applies every fix the report offers; writes only files that change.
pub fn apply(report: &Report) -> Result<FixOutcome, Error> {
    let mut outcome = FixOutcome::default();
    for (path, fixes) in by_file(report) {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        let mut edits = Vec::new();
        for fix in fixes {
            let (Some(callee), Some(paren)) =
                (span(&text, fix.callee), span(&text, fix.open_paren))
            else {
                continue;
            };
            if text.get(paren.clone()) != Some("(") {
                continue;
            }
            edits.push((
                paren.end,
                paren.end,
                arguments(&text, paren.end, &fix.arguments),
            ));
            edits.push((callee.start, callee.end, fix.replacement.clone()));
            outcome.fixed += 1;
        }
        edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut fixed = text.clone();
        let mut limit = usize::MAX;
        for (start, end, replacement) in edits {
            if end > limit {
                continue;
            }
            fixed.replace_range(start..end, &replacement);
            limit = start;
        }
        if fixed != text {
            std::fs::write(path, fixed).map_err(|e| Error(format!("{}: {e}", path.display())))?;
            outcome
                .files
                .push(crate::workspace::relative(&report.root, path));
        }
    }
    Ok(outcome)
}

/// The fixes of each file, by path. A file reached by several paths (through
/// symbolic links) gets those of the first the report lists, so that it is
/// rewritten once: another path's fixes point into the text as it was.
fn by_file(report: &Report) -> BTreeMap<&PathBuf, Vec<&Fix>> {
    let mut first: HashMap<PathBuf, &PathBuf> = HashMap::new();
    let mut by_file: BTreeMap<&PathBuf, Vec<&Fix>> = BTreeMap::new();
    for (_, path, fix) in &report.fixes {
        let real = path.canonicalize().unwrap_or_else(|_| path.clone());
        if *first.entry(real).or_insert(path) == path {
            by_file.entry(path).or_default().push(fix);
        }
    }
    by_file
}

/// The text inserted after the `(` at `at`: inline, or on a line of its own
/// (indented as the next line) when the arguments start on the next line.
fn arguments(text: &str, at: usize, arguments: &str) -> String {
    let rest = &text[at..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    if !rest[..line_end].trim().is_empty() || line_end == rest.len() {
        return arguments.to_owned();
    }
    let next = &rest[line_end + 1..];
    let indent = &next[..next.len() - next.trim_start_matches([' ', '\t']).len()];
    format!("\n{indent}{}", arguments.trim_end())
}

/// The byte range of a region of `text`.
fn span(text: &str, region: Region) -> Option<std::ops::Range<usize>> {
    Some(
        offset(text, region.line, region.column)?
            ..offset(text, region.end_line, region.end_column)?,
    )
}

/// The byte offset of a 1-based line and character column.
fn offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let rest = &text[start..];
    let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let mut chars = line_text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(line_text.len()));
    Some(start + chars.nth(column.checked_sub(1)?)?)
}

//! `--fix`: rewrites direct spawns (`tokio::spawn(f)`, `tokio::task::spawn*(f)`
//! and their aliases) into tracked spawns, and direct calls of tokio's
//! `block_in_place(f)` into `::tracked::block_in_place(f)` (the same
//! signature), touching nothing else.
//!
//! Input: `tokio::spawn(serve(conn))` in `fn accept` of `my_app::net`.
//! Output: `::tracked::spawn("my_app::net::serve", ::tracked::TaskType::GENERAL, serve(conn))`
//! (from the root: a module named `tracked` in scope cannot shadow it). The
//! name is the fn the spawn calls, as `#[tracked]` names it; for an `async`
//! block or a closure, the fn spawning it (`my_app::net::accept`).

use crate::audit::Report;
use crate::diagnostic::{Region, Rule};
use crate::scan::Fix;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What `--fix` changed.
#[derive(Debug, Default)]
pub struct FixOutcome {
    /// How many spawns were rewritten.
    pub fixed: usize,
    /// How many calls of tokio's `block_in_place` were rewritten.
    pub fixed_block_in_place: usize,
    /// The files written, relative to the root.
    pub files: Vec<String>,
    /// The files that could not be read or written, each with the reason;
    /// every other file is fixed all the same.
    pub failed: Vec<String>,
    /// The spawns left as they were because the rewrite might not compile,
    /// each as `file:line:column: why`.
    pub skipped: Vec<String>,
}

/// Applies every fix the report offers; writes only files that change, each
/// whole or not at all.
pub fn apply(report: &Report) -> FixOutcome {
    let mut outcome = FixOutcome::default();
    for (path, mut fixes) in by_file(report) {
        let shown = crate::workspace::relative(&report.root, path);
        fixes.retain(|fix| {
            let Some(why) = fix.blocked else {
                return true;
            };
            let at = fix.callee;
            let skipped = format!("{shown}:{}:{}: {why}", at.line, at.column);
            outcome.skipped.push(skipped);
            false
        });
        if fixes.is_empty() {
            continue;
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                outcome.failed.push(format!("{shown}: {e}"));
                continue;
            }
        };
        // The audit's columns do not count a byte-order mark; it stays.
        let (bom, body) = match text.strip_prefix('\u{feff}') {
            Some(body) => ("\u{feff}", body),
            None => ("", text.as_str()),
        };
        let (fixed, (spawns, in_place)) = rewrite(body, &fixes);
        if fixed == body {
            continue;
        }
        let fixed = format!("{bom}{fixed}");
        match replace(path, &fixed) {
            Ok(()) => {
                outcome.fixed += spawns;
                outcome.fixed_block_in_place += in_place;
                outcome.files.push(shown);
            }
            Err(e) => outcome.failed.push(format!("{shown}: {e}")),
        }
    }
    outcome
}

/// `text` with `fixes` applied, and how many were: spawns, and calls of
/// `block_in_place`.
fn rewrite(text: &str, fixes: &[&Fix]) -> (String, (usize, usize)) {
    let mut edits = Vec::new();
    let mut count = (0, 0);
    for fix in fixes {
        let (Some(callee), Some(paren)) = (span(text, fix.callee), span(text, fix.open_paren))
        else {
            continue;
        };
        if text.get(paren.clone()) != Some("(") {
            continue;
        }
        // Nothing to insert (`block_in_place`): not even the line break
        // `arguments` puts before arguments that start on the next line.
        if !fix.arguments.is_empty() {
            edits.push((
                paren.end,
                paren.end,
                arguments(text, paren.end, &fix.arguments),
            ));
        }
        edits.push((callee.start, callee.end, fix.replacement.clone()));
        match fix.rule {
            Rule::UntrackedBlockInPlace => count.1 += 1,
            _ => count.0 += 1,
        }
    }
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut fixed = text.to_owned();
    let mut limit = usize::MAX;
    for (start, end, replacement) in edits {
        if end > limit {
            continue;
        }
        fixed.replace_range(start..end, &replacement);
        limit = start;
    }
    (fixed, count)
}

/// Replaces the file at `path` (through any symbolic link, which stays) with
/// `text`: written beside it, then renamed over it, so that a failure (a
/// full disk, say) leaves the file as it was rather than cut short. The
/// file keeps its permissions.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let real = path.canonicalize()?;
    let permissions = std::fs::metadata(&real)?.permissions();
    let name = real.file_name().unwrap_or_default().to_string_lossy();
    let temp = real.with_file_name(format!(".{name}.xtask-fix"));
    let written = std::fs::write(&temp, text)
        .and_then(|()| std::fs::set_permissions(&temp, permissions))
        .and_then(|()| std::fs::rename(&temp, &real));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
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

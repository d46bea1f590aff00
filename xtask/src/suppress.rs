//! Inline suppression markers:
//! `// tracked: allow(untracked-spawn) -- <reason>` (or
//! `allow(untracked-block-in-place)`, or both rules separated by a comma),
//! after code on the line of the call, or alone on the line directly above
//! it; a marker suppresses the findings of the rules it names. The line a marker
//! covers may also be the first line of a statement that holds the call, or
//! that of its first attribute, so a marker above `JoinHandle::new(` covers a
//! `tokio::spawn` in its arguments. It reaches through statements no further
//! than the nearest spawn holding the call: a marker above
//! `tokio::spawn(async {` covers that spawn, not those inside its future on
//! the lines below, which need markers of their own (see
//! `scan::Spawn::statement_lines`).

use crate::diagnostic::{Diagnostic, Region, Rule, SourceFile};
use proc_macro2::LineColumn;

/// The rules a marker may name.
const SUPPRESSIBLE: &[Rule] = &[Rule::UntrackedSpawn, Rule::UntrackedBlockInPlace];

/// A `// tracked:` comment found in the text.
#[derive(Debug)]
pub(crate) struct Marker {
    /// Where the `//` is.
    pub(crate) at: LineColumn,
    /// The line whose findings it suppresses.
    pub(crate) target: usize,
    body: String,
}

/// Finds the candidate markers of a file: `//` followed by `tracked:`.
/// Whether each really is a comment (not inside a string) is decided by the
/// lexer, see [`crate::parse::parse_file`].
pub(crate) fn candidates(text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    if !text.contains("tracked:") {
        return out;
    }
    for (index, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line[from..].find("//") {
            let start = from + found;
            let after = line[start..].trim_start_matches('/').trim_start();
            if let Some(body) = after.strip_prefix("tracked:") {
                let body = body.trim();
                if body.starts_with("allow") {
                    let code_before = !line[..start].trim().is_empty();
                    let number = index + 1;
                    out.push(Marker {
                        at: LineColumn {
                            line: number,
                            column: line[..start].chars().count(),
                        },
                        target: if code_before { number } else { number + 1 },
                        body: body.to_owned(),
                    });
                    break;
                }
            }
            from = start + 2;
        }
    }
    out
}

/// Applies the markers to the file's findings, given as the rule of each,
/// its line and the lines where the statements holding it start: returns
/// which findings are suppressed, and diagnostics about the markers
/// themselves. A marker suppresses only the findings of the rules it names.
pub(crate) fn apply(
    file: &SourceFile<'_>,
    markers: &[Marker],
    lines: &[(Rule, usize, Vec<usize>)],
) -> (Vec<bool>, Vec<Diagnostic>) {
    let mut suppressed = vec![false; lines.len()];
    let mut out = Vec::new();
    for marker in markers {
        let len = file
            .text
            .lines()
            .nth(marker.at.line - 1)
            .map_or(0, |l| l.chars().count());
        let region = Region {
            line: marker.at.line,
            column: marker.at.column + 1,
            end_line: marker.at.line,
            end_column: len + 1,
        };
        let (rules, reason) = match parse(&marker.body) {
            Ok(parsed) => parsed,
            Err(message) => {
                let mut d = file.diagnostic(Rule::MalformedSuppression, region, message);
                d.help = Some("write `// tracked: allow(untracked-spawn) -- <reason>`".to_owned());
                out.push(d);
                continue;
            }
        };
        let known = |r: &String| SUPPRESSIBLE.iter().any(|rule| rule.id() == r);
        if let Some(unknown) = rules.iter().find(|r| !known(r)) {
            let mut d = file.diagnostic(
                Rule::MalformedSuppression,
                region,
                format!("unknown rule `{unknown}` in suppression"),
            );
            d.help = Some(
                "the suppressible rules are `untracked-spawn` and `untracked-block-in-place`"
                    .to_owned(),
            );
            out.push(d);
            continue;
        }
        if reason.is_empty() {
            let mut d = file.diagnostic(
                Rule::SuppressionWithoutReason,
                region,
                "suppression without a reason".to_owned(),
            );
            d.help = Some("say why this spawn may bypass the tracker: `// tracked: allow(untracked-spawn) -- <reason>`".to_owned());
            out.push(d);
        }
        let mut used = false;
        for ((rule, line, statement), flag) in lines.iter().zip(&mut suppressed) {
            let named = rules.iter().any(|r| r == rule.id());
            if named && (*line == marker.target || statement.contains(&marker.target)) {
                *flag = true;
                used = true;
            }
        }
        if !used {
            let mut d = file.diagnostic(
                Rule::UnusedSuppression,
                region,
                "suppression marker suppresses nothing".to_owned(),
            );
            d.help = Some(
                "remove it, or put it on the line of the spawn or alone on the line directly above"
                    .to_owned(),
            );
            out.push(d);
        }
    }
    (suppressed, out)
}

/// Parses `allow(rule, ...) -- reason`.
fn parse(body: &str) -> Result<(Vec<String>, String), String> {
    let malformed = || "malformed suppression marker".to_owned();
    let rest = body
        .strip_prefix("allow")
        .ok_or_else(malformed)?
        .trim_start();
    let rest = rest.strip_prefix('(').ok_or_else(malformed)?;
    let close = rest.find(')').ok_or_else(malformed)?;
    let rules: Vec<String> = rest[..close]
        .split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if rules.is_empty() {
        return Err("suppression marker names no rule".to_owned());
    }
    let rest = rest[close + 1..].trim();
    let reason = match rest.strip_prefix("--") {
        Some(reason) => reason.trim().to_owned(),
        None if rest.is_empty() => String::new(),
        None => return Err("expected `-- <reason>` after the rule list".to_owned()),
    };
    Ok((rules, reason))
}

//! What the audit reports, and the rustc-style text rendering of it.

use std::cell::OnceCell;
use std::fmt::Write as _;

/// The check a [`Diagnostic`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A task spawned through tokio instead of the tracker.
    UntrackedSpawn,
    /// A file that does not parse; it was skipped.
    ParseError,
    /// A suppression marker without a `-- reason`.
    SuppressionWithoutReason,
    /// A `// tracked: allow(...)` marker that cannot be understood.
    MalformedSuppression,
    /// A suppression marker or allow-list entry that suppresses nothing.
    UnusedSuppression,
    /// Two `#[tracked]` sites with the same task name.
    DuplicateTaskName,
    /// A `#[tracked(...)]` attribute with bad arguments.
    MalformedTrackedAttribute,
    /// A `#[tracked(type = "...")]` whose type is not declared in the config.
    UndeclaredTaskType,
    /// A worker blocked through tokio's `block_in_place` instead of
    /// `tracked::block_in_place`, so the watchdog takes it for a long poll.
    UntrackedBlockInPlace,
}

impl Rule {
    /// Every rule, in the order SARIF lists them.
    pub const ALL: [Rule; 9] = [
        Rule::UntrackedSpawn,
        Rule::ParseError,
        Rule::SuppressionWithoutReason,
        Rule::MalformedSuppression,
        Rule::UnusedSuppression,
        Rule::DuplicateTaskName,
        Rule::MalformedTrackedAttribute,
        Rule::UndeclaredTaskType,
        Rule::UntrackedBlockInPlace,
    ];

    /// The stable kebab-case id used in output and suppression markers.
    pub fn id(self) -> &'static str {
        match self {
            Rule::UntrackedSpawn => "untracked-spawn",
            Rule::ParseError => "parse-error",
            Rule::SuppressionWithoutReason => "suppression-without-reason",
            Rule::MalformedSuppression => "malformed-suppression",
            Rule::UnusedSuppression => "unused-suppression",
            Rule::DuplicateTaskName => "duplicate-task-name",
            Rule::MalformedTrackedAttribute => "malformed-tracked-attribute",
            Rule::UndeclaredTaskType => "undeclared-task-type",
            Rule::UntrackedBlockInPlace => "untracked-block-in-place",
        }
    }

    /// One sentence saying what the rule checks.
    pub fn description(self) -> &'static str {
        match self {
            Rule::UntrackedSpawn => "A task is spawned through tokio, so the tracker never learns its name, type or owner.",
            Rule::ParseError => "A file does not parse as Rust; the audit skipped it.",
            Rule::SuppressionWithoutReason => "A `// tracked: allow(untracked-spawn)` marker must give a reason after `--`.",
            Rule::MalformedSuppression => "A `// tracked: allow(...)` marker that names an unknown rule or is malformed.",
            Rule::UnusedSuppression => "A suppression marker or allow-list entry that suppresses nothing.",
            Rule::DuplicateTaskName => "Two `#[tracked]` sites share a task name.",
            Rule::MalformedTrackedAttribute => "A `#[tracked(...)]` attribute has unknown, duplicate or ill-typed arguments.",
            Rule::UndeclaredTaskType => "A `#[tracked]` task type is not in `[workspace.metadata.tracked] types`.",
            Rule::UntrackedBlockInPlace => "A task blocks through tokio's `block_in_place`, so the tracker's watchdog takes the blocking for a long poll; `tracked::block_in_place` marks it meant.",
        }
    }
}

/// How serious a diagnostic is. Any error makes the audit exit with 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Fails the audit.
    Error,
    /// Reported only.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding, located by 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The check that produced it.
    pub rule: Rule,
    /// Whether it fails the audit.
    pub severity: Severity,
    /// Path relative to the audited root, with `/` separators.
    pub file: String,
    /// 1-based line of the start.
    pub line: usize,
    /// 1-based column of the start, in characters.
    pub column: usize,
    /// 1-based line of the end.
    pub end_line: usize,
    /// 1-based column just past the end, in characters.
    pub end_column: usize,
    /// For `untracked-spawn` and `untracked-block-in-place`: the tokio API
    /// called, as `tokio::task::JoinSet::spawn`.
    pub api: Option<String>,
    /// What is wrong, one line.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The source line at `line`, for rendering.
    pub snippet: String,
}

impl Diagnostic {
    /// `path:line:column`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }

    /// Renders the diagnostic as rustc does, ending with a blank line.
    pub fn render(&self) -> String {
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.rule.id(),
            self.message
        );
        let _ = writeln!(out, "{pad}--> {}", self.location());
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{} | {}", self.line, self.snippet.trim_end());
        let indent: String = self
            .snippet
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let line_len = self.snippet.trim_end().chars().count();
        let end = if self.end_line == self.line {
            self.end_column.saturating_sub(1)
        } else {
            line_len
        };
        let width = end.saturating_sub(self.column.saturating_sub(1)).max(1);
        let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(width));
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out.push('\n');
        out
    }
}

/// Where something is in a file: 1-based lines and character columns, the
/// end exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Region {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) end_line: usize,
    pub(crate) end_column: usize,
}

impl Region {
    /// The region a span covers.
    pub(crate) fn of(span: proc_macro2::Span) -> Region {
        Region::between(span, span)
    }

    /// From the start of `first` to the end of `last`.
    pub(crate) fn between(first: proc_macro2::Span, last: proc_macro2::Span) -> Region {
        let (start, end) = (first.start(), last.end());
        Region {
            line: start.line.max(1),
            column: start.column + 1,
            end_line: end.line.max(1),
            end_column: end.column + 1,
        }
    }
}

/// The lines of one file, to build diagnostics that quote them.
pub(crate) struct SourceFile<'a> {
    pub(crate) path: &'a str,
    pub(crate) text: &'a str,
    /// Where each line starts, found when the first diagnostic needs it.
    line_starts: OnceCell<Vec<usize>>,
}

impl<'a> SourceFile<'a> {
    pub(crate) fn new(path: &'a str, text: &'a str) -> Self {
        SourceFile {
            path,
            text,
            line_starts: OnceCell::new(),
        }
    }

    /// A diagnostic at `region` of this file.
    pub(crate) fn diagnostic(&self, rule: Rule, region: Region, message: String) -> Diagnostic {
        Diagnostic {
            rule,
            severity: Severity::Error,
            file: self.path.to_owned(),
            line: region.line,
            column: region.column,
            end_line: region.end_line,
            end_column: region.end_column,
            api: None,
            message,
            help: None,
            snippet: self.line(region.line).to_owned(),
        }
    }

    /// The text of the 1-based line `line` without its line ending, as
    /// `str::lines` gives it; empty past the end.
    fn line(&self, line: usize) -> &'a str {
        let text = self.text;
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let Some(&start) = line.checked_sub(1).and_then(|i| starts.get(i)) else {
            return "";
        };
        let rest = &text[start..];
        match rest.find('\n') {
            Some(end) => {
                let line = &rest[..end];
                line.strip_suffix('\r').unwrap_or(line)
            }
            None => rest,
        }
    }
}

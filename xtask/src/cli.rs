//! The `cargo xtask` command line.

use crate::audit::{self, Options, Report};
use crate::bench;
use crate::diagnostic::Rule;
use crate::{fix, json, sarif};
use std::io::Write;
use std::path::PathBuf;

const AUDIT_USAGE: &str = "\
audit options:
  --path <DIR|Cargo.toml|FILE>  audit this directory, package or file
  --manifest-path <Cargo.toml>  audit this workspace
  --format <text|json|sarif>    output format (default: text)
  --fix                         rewrite direct tokio spawns (and block_in_place) into tracked ones
  --type <NAME>                 task type --fix writes outside #[tracked(type)] fns (default: fix-type, else General)
  --exclude <PATTERN>           skip paths matching PATTERN (repeatable)
  --doctests                    also scan code blocks in doc comments

exit codes: 0 clean, 1 findings, 2 usage or I/O error, or nothing audited
";

/// Which command line runs: `cargo xtask` in this workspace, or `cargo
/// tracked` (the `cargo-tracked` binary), the audit installed for any
/// project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `cargo xtask`: the audit and this workspace's benchmarks.
    Xtask,
    /// `cargo tracked`: the audit alone.
    CargoTracked,
}

impl Program {
    fn usage(self) -> String {
        match self {
            Program::Xtask => format!(
                "\
usage: cargo xtask <command>

commands:
  audit [options]       find tokio spawns (and block_in_place) that bypass the tracker
  bench [spawn]         run the spawn benchmark (`cargo bench --bench spawn`)
  bench audit [options] time the audit next to `grep -rn spawn`

{AUDIT_USAGE}
bench audit options:
  --path <DIR>                  time this tree instead of generated code
  --lines <N>                   lines of generated code (default: 150000)
"
            ),
            Program::CargoTracked => format!(
                "\
usage: cargo tracked audit [options]

finds tokio spawns (and block_in_place) that bypass the tracker

{AUDIT_USAGE}"
            ),
        }
    }
}

/// Output formats of `audit`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Sarif,
}

/// Runs `cargo xtask` with `args` (without the program name); returns the
/// exit code.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run_as(Program::Xtask, args, out, err)
}

/// Runs the command line `args` (after the program's name) as `program`.
pub fn run_as(program: Program, args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let xtask = program == Program::Xtask;
    let result = match args.as_slice() {
        ["audit", rest @ ..] => run_audit(program, rest, out, err),
        ["bench"] | ["bench", "spawn"] if xtask => bench::spawn(),
        ["bench", "audit", rest @ ..] if xtask => bench::audit(rest, out),
        ["help" | "--help" | "-h"] | [] => {
            let _ = write!(out, "{}", program.usage());
            Ok(0)
        }
        [other, ..] => Err(Failure::Usage(format!("unknown command `{other}`"))),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            let _ = writeln!(err, "error: {message}\n\n{}", program.usage());
            2
        }
        Err(Failure::Run(message)) => {
            let _ = writeln!(err, "error: {message}");
            2
        }
    }
}

/// Why a command stopped: a mistake in how it was called, answered with the
/// usage text, or a failure while it ran, where the usage would only bury
/// the message.
pub(crate) enum Failure {
    Usage(String),
    Run(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Usage(message)
    }
}

fn run_audit(
    program: Program,
    args: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Failure> {
    let mut options = Options::default();
    let mut format = None;
    let mut fix = false;
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        let mut value = || {
            args.next()
                .copied()
                .ok_or_else(|| format!("`{arg}` needs a value"))
        };
        match arg {
            "--path" => once(&mut options.path, arg, PathBuf::from(value()?))?,
            "--manifest-path" => once(&mut options.manifest_path, arg, PathBuf::from(value()?))?,
            "--exclude" => options.exclude.push(value()?.to_owned()),
            "--type" => once(&mut options.fix_type, arg, value()?.to_owned())?,
            "--doctests" => options.doctests = Some(true),
            "--fix" => fix = true,
            "--format" => {
                let chosen = match value()? {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "sarif" => Format::Sarif,
                    other => {
                        return Err(Failure::Usage(format!(
                            "unknown format `{other}`; expected `text`, `json` or `sarif`"
                        )))
                    }
                };
                once(&mut format, arg, chosen)?;
            }
            "-h" | "--help" => {
                let _ = write!(out, "{}", program.usage());
                return Ok(0);
            }
            other => return Err(format!("unknown option `{other}`").into()),
        }
    }
    if options.path.is_some() && options.manifest_path.is_some() {
        return Err(
            "`--path` and `--manifest-path` name what to audit; give one of them"
                .to_owned()
                .into(),
        );
    }
    let format = format.unwrap_or(Format::Text);
    if let Some(ty) = &options.fix_type {
        if ty.trim().is_empty() {
            return Err("`--type` must not be empty".to_owned().into());
        }
    }
    let run = |options: &Options| audit::audit(options).map_err(|e| Failure::Run(e.0));
    let mut report = run(&options)?;
    let mut failed = false;
    if fix {
        let before = report.spawns();
        let before_in_place = blocks_in_place(&report);
        let outcome = fix::apply(&report);
        let files = outcome.files.len();
        // Each kind of finding says what it had, and the files written once.
        if before > 0 || before_in_place == 0 {
            let _ = writeln!(
                err,
                "fix: rewrote {} of {before} untracked spawns in {files} file(s)",
                outcome.fixed,
            );
        }
        if before_in_place > 0 {
            let _ = writeln!(
                err,
                "fix: rewrote {} of {before_in_place} calls of tokio's block_in_place into tracked::block_in_place{}",
                outcome.fixed_block_in_place,
                if before > 0 { String::new() } else { format!(" in {files} file(s)") }
            );
        }
        for file in &outcome.files {
            let _ = writeln!(err, "fix: wrote {file}");
        }
        for skipped in &outcome.skipped {
            let _ = writeln!(err, "fix: not fixed: {skipped}");
        }
        for failure in &outcome.failed {
            let _ = writeln!(err, "error: fix: cannot rewrite {failure}");
        }
        failed = !outcome.failed.is_empty();
        report = run(&options)?;
        let left = report.spawns();
        if left > 0 {
            let _ = writeln!(
                err,
                "fix: could not fix {left} untracked spawn(s) (method calls, spawns passed as values, in macro_rules! or doc comments, with generic arguments, or whose JoinHandle may go where tokio's type is named); listed below"
            );
        }
        let left = blocks_in_place(&report);
        if left > 0 {
            let _ = writeln!(
                err,
                "fix: could not fix {left} call(s) of tokio's block_in_place (passed as values, in macro_rules! or doc comments, or with generic arguments); listed below"
            );
        }
    }
    print(&report, format, out, err);
    // A file left unfixed is an I/O error, as an unreadable one is.
    Ok(if failed { 2 } else { report.exit_code() })
}

/// Sets `slot` to the value of `option`, which may be given once: a second
/// one would silently override the first (`--path a --path b` auditing only
/// `b`).
fn once<T>(slot: &mut Option<T>, option: &str, value: T) -> Result<(), Failure> {
    if slot.is_some() {
        return Err(format!("`{option}` given more than once; the audit takes one").into());
    }
    *slot = Some(value);
    Ok(())
}

fn print(report: &Report, format: Format, out: &mut dyn Write, err: &mut dyn Write) {
    let rendered = match format {
        Format::Text => report.diagnostics.iter().map(|d| d.render()).collect(),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
    };
    let _ = out.write_all(rendered.as_bytes());
    for warning in &report.warnings {
        let _ = writeln!(err, "warning: {warning}");
    }
    for note in &report.notes {
        let _ = writeln!(err, "note: {note}");
    }
    for io in &report.io_errors {
        let _ = writeln!(err, "error: cannot read {io}");
    }
    let summary = report.summary();
    if format == Format::Text {
        let _ = writeln!(out, "{summary}");
        if report
            .diagnostics
            .iter()
            .any(|d| d.rule == Rule::UntrackedSpawn)
        {
            let _ = writeln!(
                out,
                "note: to allow a spawn, add `// tracked: allow(untracked-spawn) -- <reason>` on its line or the line above"
            );
        }
        if blocks_in_place(report) > 0 {
            let _ = writeln!(
                out,
                "note: to allow tokio's block_in_place, add `// tracked: allow(untracked-block-in-place) -- <reason>` on its line or the line above"
            );
        }
    } else {
        let _ = writeln!(err, "{summary}");
    }
}

/// How many calls of tokio's `block_in_place` the report finds.
fn blocks_in_place(report: &Report) -> usize {
    report
        .diagnostics
        .iter()
        .filter(|d| d.rule == Rule::UntrackedBlockInPlace)
        .count()
}

/// Entry point of the binaries: `xtask`, and `cargo-tracked`, which Cargo
/// runs for `cargo tracked …` with `tracked` as its first argument.
pub fn main_as(program: Program) -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if program == Program::CargoTracked && args.first().is_some_and(|a| a == "tracked") {
        args.remove(0);
    }
    // Unlocked handles: a lock held for the whole run would deadlock any
    // worker thread that prints.
    let code = run_as(
        program,
        &args,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::ExitCode::from(code)
}

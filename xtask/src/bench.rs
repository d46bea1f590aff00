//! `cargo xtask bench`: the runtime's spawn benchmark, and the audit's speed
//! next to `grep -rn spawn` on the same tree.

use crate::audit::{self, Options};
use crate::cli::Failure;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs `cargo bench --bench spawn` in the workspace root.
pub(crate) fn spawn() -> Result<u8, Failure> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["bench", "--bench", "spawn"])
        .current_dir(root)
        .status()
        .map_err(|e| Failure::Run(format!("cannot run cargo: {e}")))?;
    Ok(status.code().map_or(2, |c| u8::try_from(c).unwrap_or(1)))
}

/// Times the audit on `--path` or on `--lines` of generated code, and
/// `grep -rn spawn` on the same tree.
pub(crate) fn audit(args: &[&str], out: &mut dyn Write) -> Result<u8, Failure> {
    let mut path = None;
    let mut lines = 150_000;
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        let value = args
            .next()
            .copied()
            .ok_or_else(|| format!("`{arg}` needs a value"));
        match arg {
            "--path" => path = Some(PathBuf::from(value?)),
            "--lines" => {
                lines = value?
                    .parse()
                    .map_err(|_| "`--lines` needs a number".to_owned())?
            }
            other => return Err(format!("unknown option `{other}`").into()),
        }
    }
    let generated = path.is_none();
    let dir = match path {
        Some(path) => path,
        None => generate(lines).map_err(Failure::Run)?,
    };
    let result = measure(&dir, out);
    if generated {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map_err(Failure::Run)
}

/// How many timed runs of the audit `bench audit` makes; it reports the
/// fastest and the median, as other processes make single runs noisy.
const RUNS: usize = 5;

fn measure(dir: &Path, out: &mut dyn Write) -> Result<u8, String> {
    let options = Options {
        path: Some(dir.to_path_buf()),
        ..Options::default()
    };
    // A first run warms the file cache, so both timings read from memory.
    let _ = audit::audit(&options);
    let mut walls = Vec::new();
    let cpu_before = cpu_time();
    let mut report = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        report = Some(audit::audit(&options).map_err(|e| e.0)?);
        walls.push(start.elapsed().as_secs_f64());
    }
    let cpu = cpu_before
        .zip(cpu_time())
        .map(|(before, after)| (after - before) / RUNS as f64);
    let report = report.ok_or("no audit run")?;
    walls.sort_by(f64::total_cmp);
    let (fastest, median) = (walls[0], walls[RUNS / 2]);
    let start = Instant::now();
    let grep = Command::new("grep")
        .args(["-rn", "--include=*.rs", "spawn"])
        .arg(dir)
        .stderr(Stdio::null())
        .output();
    let grep_time = start.elapsed();
    let total_lines: usize = walk_lines(dir);
    let _ = writeln!(
        out,
        "bench audit: {} ({} lines in {} files)",
        dir.display(),
        total_lines,
        report.files
    );
    let _ = writeln!(
        out,
        "  cargo xtask audit: {fastest:>8.3} s  ({} untracked spawns, {} other problems)",
        report.spawns(),
        report.diagnostics.len() - report.spawns()
    );
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu = cpu.map_or_else(
        || "CPU time unknown".to_owned(),
        |c| format!("{c:.3} s of CPU"),
    );
    let _ = writeln!(
        out,
        "                     fastest of {RUNS} runs; median {median:.3} s; {cpu} per run on {threads} threads"
    );
    match grep {
        Ok(grep) => {
            let matches = grep.stdout.iter().filter(|&&b| b == b'\n').count();
            let _ = writeln!(
                out,
                "  grep -rn spawn:    {:>8.3} s  ({matches} matching lines)",
                grep_time.as_secs_f64()
            );
        }
        Err(err) => {
            let _ = writeln!(out, "  grep -rn spawn:    not run ({err})");
        }
    }
    if cfg!(debug_assertions) {
        let _ = writeln!(out, "  note: this is a debug build; `cargo run --release -p xtask -- bench audit` shows real speed");
    }
    Ok(0)
}

/// The CPU time (user and system) this process has used so far, in seconds,
/// from `/proc/self/stat`; `None` where there is no such file.
fn cpu_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the whole line, in clock ticks (USER_HZ, 100 on
    // every Linux target).
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let total = ticks(11)? + ticks(12)?;
    Some(total as f64 / 100.0)
}

fn walk_lines(dir: &Path) -> usize {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                total += std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
            }
        }
    }
    total
}

/// Writes a crate of about `lines` lines of ordinary async Rust, with a few
/// spawns of every kind, into a fresh temporary directory.
fn generate(lines: usize) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("tracked-audit-bench-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut lib = String::from("//! Generated for `cargo xtask bench audit`.\n");
    let mut written = 0;
    let mut n = 0;
    while written < lines {
        let module = module_text(n);
        written += module.lines().count();
        let _ = writeln!(lib, "pub mod m{n};");
        std::fs::write(src.join(format!("m{n}.rs")), module)
            .map_err(|e| format!("{}: {e}", src.display()))?;
        n += 1;
    }
    std::fs::write(src.join("lib.rs"), lib).map_err(|e| format!("{}: {e}", src.display()))?;
    Ok(dir)
}

fn module_text(n: usize) -> String {
    let mut s = String::from(
        "//! A generated module.\n\nuse std::collections::HashMap;\nuse std::sync::Arc;\nuse tokio::task::JoinSet;\n\n",
    );
    for i in 0..12 {
        let _ = write!(
            s,
            r#"/// State of worker {i} in module {n}.
#[derive(Debug, Default, Clone)]
pub struct Worker{i} {{
    pub name: String,
    pub counts: HashMap<String, u64>,
    pub limit: Option<usize>,
}}

impl Worker{i} {{
    /// Creates a worker.
    pub fn new(name: &str) -> Self {{
        Self {{ name: name.to_owned(), counts: HashMap::new(), limit: Some({i}) }}
    }}

    /// Records an event, returning the new count.
    pub fn record(&mut self, key: &str) -> u64 {{
        let entry = self.counts.entry(key.to_owned()).or_insert(0);
        *entry += 1;
        if let Some(limit) = self.limit {{
            if *entry as usize > limit {{
                println!("{{}}: {{}} over limit {{}}", self.name, key, limit);
            }}
        }}
        *entry
    }}

    /// Processes a batch; the spawn is here so the audit has work to do.
    pub async fn run(self: Arc<Self>, items: Vec<u32>) -> u64 {{
        let mut set = JoinSet::new();
        for item in items.iter().copied().filter(|x| x % 2 == {parity}) {{
            let me = Arc::clone(&self);
            set.spawn(async move {{ me.name.len() as u64 + u64::from(item) }});
        }}
        let mut total = 0;
        while let Some(result) = set.join_next().await {{
            total += result.unwrap_or_default();
        }}
        let values: Vec<u64> = vec![total, 1, 2, 3];
        match values.as_slice() {{
            [first, .., last] if first > last => first - last,
            [_, rest @ ..] => rest.iter().sum(),
            [] => 0,
        }}
    }}
}}

pub async fn start_{i}() {{
    let worker = Arc::new(Worker{i}::new("w{i}"));
    // A comment that mentions tokio::spawn, which must not count.
    let handle = tokio::spawn(worker.clone().run(vec![1, 2, 3]));
    let _ = handle.await;
    assert!(worker.limit.is_some(), "limit for {{}}", "w{i}");
}}

"#,
            parity = i % 2
        );
    }
    s
}

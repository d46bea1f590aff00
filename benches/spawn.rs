//! Spawn overhead of a tracked task against bare tokio and its peers.
//!
//! One run measures every variant on every scenario and prints a side-by-side
//! table of ratios to bare `tokio::spawn`, plus the targets of issue 2. It is
//! a custom harness (`harness = false`) rather than criterion because the
//! interesting output is that one table, not a report per benchmark.
//!
//! ```text
//! cargo bench --bench spawn                 # full run, about 40 s on 2 idle cores
//! cargo bench --bench spawn -- --quick      # fewer rounds (or TRACKED_BENCH_QUICK=1)
//! cargo bench --bench spawn -- --only ours-global --scenarios A   # for a profiler
//! cargo bench --bench spawn -- --tasks 20000 --rounds 1          # small, for callgrind
//! cargo bench --bench spawn -- --spans      # spans on vs off, under a subscriber
//! cargo bench --bench spawn -- --detail     # the levels of detail: default, busy_time, wakes
//! cargo bench --bench spawn -- --probe      # ours next to a slab-registry design probe
//! ```
//!
//! Scenarios, all on a 2-worker multi-thread runtime; the spawner is itself a
//! task on that runtime, as in a service:
//! - **A**: 200,000 trivial tasks spawned from one task, all spawned first,
//!   then all handles awaited in order (ns per task). Memory grows to 200,000
//!   live tasks, so record pools cannot help.
//! - **A/1k**: the same 200,000 tasks in batches of 1,000 (spawn 1,000, await
//!   them, repeat): the steady state of a service (ns per task).
//! - **B**: A split over two concurrent spawner tasks, 100,000 each (ns per
//!   task, total wall time over all 200,000).
//! - **C**: 1,000 tasks each doing 1,000 `yield_now().await` (ns per poll).
//! - **D**: bytes per live task with 200,000 tasks parked on a `Notify`, from
//!   a counting global allocator: live heap after spawning minus before,
//!   over the count. The handles' `Vec` is allocated before the window, so
//!   only task and registry memory counts. Each variant gets a fresh instance
//!   for D (the global tracker cannot, so it is measured warm).
//! - **allocs**: heap allocations per task in the batched steady state.
//!
//! With `--spans` the run compares task spans instead: a `fmt` subscriber
//! (INFO, writing to a sink) is installed, as in a service that logs, and
//! the variants are bare tokio and ours on trackers built with
//! `spans(false)` and `spans(true)`. Without a subscriber a span is never
//! created, so the default table measures spans as they cost with none.
//!
//! With `--detail` it compares the levels of detail instead: ours on
//! trackers built by default, with `busy_time(true)` (timed polls) and with
//! `wakes(true)` (timed polls and followed wakes), next to bare tokio and
//! tokio-metrics, which times polls and wakes too.
//!
//! With `--probe` it puts ours next to `common/slab_probe.rs`: the per-task
//! work of a tracker whose records are slab entries rather than `Arc`s (see
//! that file and `docs/benchmarks.md`), as a bound on what a redesign of the
//! registry could reach.
//!
//! Each scenario is measured in several rounds after a warm-up round; within
//! a round the variants are interleaved (in a rotating order) so drift on a
//! shared machine hits all of them alike, and the median is reported.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::JoinError;

#[path = "common/naive.rs"]
mod naive;
use naive::Naive;

#[path = "common/slab_probe.rs"]
mod slab_probe;

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// Counts live bytes and allocations while `COUNTING` is on; otherwise one
/// relaxed load per call, so the timed scenarios are not skewed.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees carry over; the counters have no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free(layout.size());
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_free(layout.size());
        count_alloc(new_size);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn count_alloc(size: usize) {
    // Relaxed throughout: the counters are read after the measured work has
    // been awaited, which already orders them.
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(size as i64, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

fn count_free(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_sub(size as i64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Variants
// ---------------------------------------------------------------------------

/// One way of spawning a task.
trait Spawner: Send + Sync + 'static {
    /// The handle `spawn` returns; all variants resolve to tokio's result.
    type Handle: Future<Output = Result<(), JoinError>> + Send + Unpin + 'static;

    /// A fresh instance (a new registry, tracker or monitor).
    fn new() -> Self;

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static;
}

/// Plain `tokio::spawn`: the baseline every ratio divides by.
struct Bare;

impl Spawner for Bare {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        Bare
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // tracked: allow(untracked-spawn) -- the baseline being measured.
        tokio::spawn(future)
    }
}

/// tokio-util's `TaskTracker`: counts live tasks, nothing more.
struct UtilTracker(tokio_util::task::TaskTracker);

impl Spawner for UtilTracker {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        UtilTracker(tokio_util::task::TaskTracker::new())
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(future) // tracked: allow(untracked-spawn) -- a peer being measured.
    }
}

/// tokio-metrics' `TaskMonitor`: aggregate poll and schedule metrics.
struct Monitor(tokio_metrics::TaskMonitor);

impl Spawner for Monitor {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        Monitor(tokio_metrics::TaskMonitor::new())
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // tracked: allow(untracked-spawn) -- a peer being measured.
        tokio::spawn(self.0.instrument(future))
    }
}

impl Spawner for Naive {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        Naive::default()
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Naive::spawn(self, future)
    }
}

/// The slab-registry design probe (`--probe`), on a registry of its own;
/// with `LOCAL_ENDS` a task's end writes nothing of its spawner's shard.
struct Probe<const LOCAL_ENDS: bool>(&'static slab_probe::Registry);

impl<const LOCAL_ENDS: bool> Spawner for Probe<LOCAL_ENDS> {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        Probe(slab_probe::registry())
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        slab_probe::spawn::<LOCAL_ENDS, _>(self.0, "bench", 1, future)
    }
}

/// Ours at its default level, through the free function and so the
/// process-wide tracker.
struct OursGlobal;

impl Spawner for OursGlobal {
    type Handle = tracked::JoinHandle<()>;

    fn new() -> Self {
        OursGlobal
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tracked::spawn("bench", tracked::TaskType::GENERAL, future)
    }
}

/// Ours at its default level on a dedicated `Tracker` (one `Arc` clone more
/// per spawn than the global one).
struct OursTracker(tracked::Tracker);

impl Spawner for OursTracker {
    type Handle = tracked::JoinHandle<()>;

    fn new() -> Self {
        OursTracker(tracked::Tracker::new())
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn("bench", tracked::TaskType::GENERAL, future)
    }
}

/// Ours on a dedicated tracker with task spans on or off (`--spans`).
struct OursSpans<const ON: bool>(tracked::Tracker);

impl<const ON: bool> Spawner for OursSpans<ON> {
    type Handle = tracked::JoinHandle<()>;

    fn new() -> Self {
        OursSpans(tracked::Tracker::builder().spans(ON).build())
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn("bench", tracked::TaskType::GENERAL, future)
    }
}

/// Ours on a dedicated tracker at a level of detail (`--detail`): 0 the
/// default, 1 `busy_time(true)`, 2 `wakes(true)`.
struct OursDetail<const LEVEL: u8>(tracked::Tracker);

impl<const LEVEL: u8> Spawner for OursDetail<LEVEL> {
    type Handle = tracked::JoinHandle<()>;

    fn new() -> Self {
        OursDetail(
            tracked::Tracker::builder()
                .busy_time(LEVEL >= 1)
                .wakes(LEVEL >= 2)
                .build(),
        )
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn("bench", tracked::TaskType::GENERAL, future)
    }
}

/// Ours through an annotated fn: `tokio::spawn(annotated(fut))` where the
/// fn is `#[tracked]`. Spawned by plain tokio outside an annotated body, the
/// fn registers itself on its first poll as a root unit in the global
/// tracker (a spawn rewritten inside an annotated body would instead claim a
/// record registered at spawn; that path needs the spawn call in an
/// annotated body, which a generic harness cannot give it).
struct OursAnnotated;

#[tracked::tracked(name = "bench")]
async fn annotated<F>(body: F)
where
    F: Future<Output = ()> + Send,
{
    body.await;
}

impl Spawner for OursAnnotated {
    type Handle = tokio::task::JoinHandle<()>;

    fn new() -> Self {
        OursAnnotated
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // tracked: allow(untracked-spawn) -- the annotated fn tracks itself.
        tokio::spawn(annotated(future))
    }
}

/// The reference for the annotated variant: `tracked::spawn` of the same fn
/// without the attribute, so that both carry the fn's own state machine
/// (`body.await` keeps `body` twice: captured, and moved into the await).
struct OursSameFn;

async fn unannotated<F>(body: F)
where
    F: Future<Output = ()> + Send,
{
    body.await;
}

impl Spawner for OursSameFn {
    type Handle = tracked::JoinHandle<()>;

    fn new() -> Self {
        OursSameFn
    }

    fn spawn<F>(&self, future: F) -> Self::Handle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tracked::spawn("bench", tracked::TaskType::GENERAL, unannotated(future))
    }
}

/// The variants, in table order. The first is the baseline.
fn variants(config: &Config) -> Vec<Box<dyn Bench>> {
    if config.spans {
        return vec![
            subject::<Bare>("tokio::spawn", false),
            subject::<OursSpans<false>>("ours spans(false)", true),
            subject::<OursSpans<true>>("ours spans(true)", true),
        ];
    }
    if config.probe {
        return vec![
            subject::<Bare>("tokio::spawn", false),
            subject::<UtilTracker>("tokio-util TaskTracker", false),
            subject::<OursGlobal>("ours-global", true),
            subject::<Probe<false>>("slab probe", true),
            subject::<Probe<true>>("slab probe, local ends", true),
        ];
    }
    if config.detail {
        return vec![
            subject::<Bare>("tokio::spawn", false),
            subject::<Monitor>("tokio-metrics TaskMonitor", false),
            subject::<OursDetail<0>>("ours default", true),
            subject::<OursDetail<1>>("ours busy_time(true)", true),
            subject::<OursDetail<2>>("ours wakes(true)", true),
        ];
    }
    vec![
        subject::<Bare>("tokio::spawn", false),
        subject::<UtilTracker>("tokio-util TaskTracker", false),
        subject::<Monitor>("tokio-metrics TaskMonitor", false),
        subject::<Naive>("naive Mutex<HashMap>", false),
        subject::<OursGlobal>("ours-global", true),
        subject::<OursTracker>("ours-tracker", true),
        subject::<OursSameFn>("ours-global, same fn", true),
        subject::<OursAnnotated>("ours-#[tracked] fn", true),
    ]
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// Tasks in A, B and D; `--tasks N` lowers it for runs under a profiler.
static TASKS: AtomicUsize = AtomicUsize::new(200_000);

fn tasks() -> usize {
    TASKS.load(Ordering::Relaxed)
}

const BATCH: usize = 1_000;
const YIELD_TASKS: usize = 1_000;
const YIELDS: usize = 1_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    A,
    ABatched,
    B,
    C,
    D,
    Allocs,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::A,
        Scenario::ABatched,
        Scenario::B,
        Scenario::C,
        Scenario::D,
        Scenario::Allocs,
    ];

    fn label(self) -> &'static str {
        match self {
            Scenario::A => "A",
            Scenario::ABatched => "A/1k",
            Scenario::B => "B",
            Scenario::C => "C",
            Scenario::D => "D",
            Scenario::Allocs => "allocs",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Scenario::A | Scenario::ABatched | Scenario::B => "ns/task",
            Scenario::C => "ns/poll",
            Scenario::D => "B/task",
            Scenario::Allocs => "allocs/task",
        }
    }
}

/// A variant, type-erased so the list above can hold them all.
trait Bench {
    fn name(&self) -> &'static str;
    fn ours(&self) -> bool;
    fn measure(&self, rt: &Runtime, scenario: Scenario) -> f64;
}

struct Subject<S> {
    name: &'static str,
    ours: bool,
    shared: Arc<S>,
}

fn subject<S: Spawner>(name: &'static str, ours: bool) -> Box<dyn Bench> {
    Box::new(Subject {
        name,
        ours,
        shared: Arc::new(S::new()),
    })
}

impl<S: Spawner> Bench for Subject<S> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn ours(&self) -> bool {
        self.ours
    }

    fn measure(&self, rt: &Runtime, scenario: Scenario) -> f64 {
        let shared = Arc::clone(&self.shared);
        // The driver runs as a task on a worker, as a spawner in a service
        // does; spawning from `block_on`'s thread would go through the
        // runtime's injection queue instead.
        // tracked: allow(untracked-spawn) -- the bench driver.
        let driver = rt.spawn(async move {
            match scenario {
                Scenario::A => per(spawn_all(&*shared, tasks()).await, tasks()),
                Scenario::ABatched => per(spawn_batched(&*shared, tasks()).await, tasks()),
                Scenario::B => per(two_spawners(shared).await, tasks()),
                Scenario::C => per(yielders(&*shared).await, YIELD_TASKS * (YIELDS + 1)),
                Scenario::D => parked_bytes(&S::new()).await,
                Scenario::Allocs => allocations(&*shared).await,
            }
        });
        rt.block_on(driver)
            .expect("the bench driver does not panic")
    }
}

fn per(elapsed: Duration, count: usize) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

async fn spawn_all<S: Spawner>(spawner: &S, n: usize) -> Duration {
    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        handles.push(spawner.spawn(async {}));
    }
    for handle in handles {
        handle.await.expect("trivial tasks do not fail");
    }
    start.elapsed()
}

async fn spawn_batched<S: Spawner>(spawner: &S, n: usize) -> Duration {
    let mut handles = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..n / BATCH {
        for _ in 0..BATCH {
            handles.push(spawner.spawn(async {}));
        }
        for handle in handles.drain(..) {
            handle.await.expect("trivial tasks do not fail");
        }
    }
    start.elapsed()
}

async fn two_spawners<S: Spawner>(spawner: Arc<S>) -> Duration {
    let start = Instant::now();
    let spawners: Vec<_> = (0..2)
        .map(|_| {
            let spawner = Arc::clone(&spawner);
            // tracked: allow(untracked-spawn) -- the bench's spawner tasks.
            tokio::spawn(async move { spawn_all(&*spawner, tasks() / 2).await })
        })
        .collect();
    for spawner in spawners {
        spawner.await.expect("spawners do not panic");
    }
    start.elapsed()
}

async fn yielders<S: Spawner>(spawner: &S) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            spawner.spawn(async {
                for _ in 0..YIELDS {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("yielders do not fail");
    }
    start.elapsed()
}

async fn parked_bytes<S: Spawner>(spawner: &S) -> f64 {
    let notify = Arc::new(Notify::new());
    let parked = Arc::new(AtomicUsize::new(0));
    let count = tasks();
    let mut handles = Vec::with_capacity(count);
    COUNTING.store(true, Ordering::Relaxed);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for _ in 0..count {
        let notify = Arc::clone(&notify);
        let parked = Arc::clone(&parked);
        handles.push(spawner.spawn(async move {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registers as a waiter now, so `notify_waiters` below cannot
            // miss a task that has been counted as parked.
            notified.as_mut().enable();
            parked.fetch_add(1, Ordering::Release);
            notified.await;
        }));
    }
    while parked.load(Ordering::Acquire) < count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::Relaxed);
    notify.notify_waiters();
    for handle in handles {
        handle.await.expect("parked tasks do not fail");
    }
    (after - before) as f64 / count as f64
}

async fn allocations<S: Spawner>(spawner: &S) -> f64 {
    const N: usize = 20_000;
    // Reach the steady state first (pools and queues sized), then count.
    spawn_batched(spawner, N).await;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    spawn_batched(spawner, N).await;
    COUNTING.store(false, Ordering::Relaxed);
    // The handle `Vec` is reused across batches, so it allocates nothing here.
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

struct Config {
    rounds: usize,
    only: Option<String>,
    scenarios: Vec<Scenario>,
    /// Spans on vs off under a subscriber, instead of the peers.
    spans: bool,
    /// The levels of detail, instead of the peers.
    detail: bool,
    /// Ours next to the slab-registry design probe.
    probe: bool,
}

fn config() -> Config {
    let mut rounds = 7;
    let mut only = None;
    let mut scenarios = Scenario::ALL.to_vec();
    let mut spans = false;
    let mut detail = false;
    let mut probe = false;
    if std::env::var_os("TRACKED_BENCH_QUICK").is_some_and(|v| v != "0") {
        rounds = 2;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => rounds = 2,
            "--spans" => spans = true,
            "--detail" => detail = true,
            "--probe" => probe = true,
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds takes a number");
            }
            "--tasks" => {
                let n: usize = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--tasks takes a number");
                TASKS.store(n.max(BATCH) / BATCH * BATCH, Ordering::Relaxed);
            }
            "--only" => only = Some(args.next().expect("--only takes a variant name")),
            "--scenarios" => {
                let list = args.next().expect("--scenarios takes e.g. A,C");
                scenarios = Scenario::ALL
                    .into_iter()
                    .filter(|s| list.split(',').any(|l| l.eq_ignore_ascii_case(s.label())))
                    .collect();
            }
            // `cargo bench` passes `--bench`; filters are not supported.
            _ => {}
        }
    }
    Config {
        rounds: rounds.max(1),
        only,
        scenarios,
        spans,
        detail,
        probe,
    }
}

fn main() {
    let config = config();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if config.spans {
        // Every task span is wanted and formatted (the `fmt` layer records
        // its fields); nothing is printed, so the terminal costs nothing.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .init();
    }
    let mut variants = variants(&config);
    if let Some(only) = &config.only {
        variants.retain(|v| v.name() == only || v.name() == "tokio::spawn");
    }
    let started = Instant::now();
    println!(
        "tracked spawn benchmark: {} rounds + 1 warm-up, {} cpus, {}",
        config.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );

    // samples[variant][scenario] = one value per round.
    let mut samples = vec![vec![Vec::new(); Scenario::ALL.len()]; variants.len()];
    for round in 0..=config.rounds {
        for (s, &scenario) in Scenario::ALL.iter().enumerate() {
            if !config.scenarios.contains(&scenario) {
                continue;
            }
            for k in 0..variants.len() {
                let v = (k + round) % variants.len();
                let value = variants[v].measure(&rt, scenario);
                if round > 0 {
                    samples[v][s].push(value);
                }
            }
        }
        let label = if round == 0 { "warm-up" } else { "round" };
        eprintln!("{label} {round} done at {:.1?}", started.elapsed());
    }

    let medians: Vec<Vec<Option<f64>>> = samples
        .iter()
        .map(|per_variant| per_variant.iter().map(|s| median(s)).collect())
        .collect();
    print_table(&variants, &config, &medians, &samples);
    println!("\ntotal time {:.1?}", started.elapsed());
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

fn print_table(
    variants: &[Box<dyn Bench>],
    config: &Config,
    medians: &[Vec<Option<f64>>],
    samples: &[Vec<Vec<f64>>],
) {
    let shown: Vec<(usize, Scenario)> = Scenario::ALL
        .into_iter()
        .enumerate()
        .filter(|(_, s)| config.scenarios.contains(s))
        .collect();
    let base = &medians[0];

    println!(
        "\nMedian of {} rounds; ratio to tokio::spawn in parentheses (D: difference in bytes).\n",
        config.rounds
    );
    let mut header = String::from("| variant |");
    let mut rule = String::from("|---|");
    for (_, s) in &shown {
        header += &format!(" {} ({}) |", s.label(), s.unit());
        rule += "---:|";
    }
    println!("{header}\n{rule}");
    for (v, variant) in variants.iter().enumerate() {
        let mut line = format!("| {} |", variant.name());
        for &(s, scenario) in &shown {
            let cell = match (medians[v][s], base[s]) {
                (Some(value), Some(bare)) => cell(scenario, value, bare),
                _ => "-".to_owned(),
            };
            line += &format!(" {cell} |");
        }
        println!("{line}");
    }

    println!("\nTargets for ours (issue 2): A ≤ 1.15×, B ≤ 1.25×, C ≤ 1.05×, D ≤ +64 bytes.\n");
    for (v, variant) in variants.iter().enumerate() {
        if !variant.ours() {
            continue;
        }
        let mut marks = Vec::new();
        for (scenario, limit) in [
            (Scenario::A, 1.15),
            (Scenario::B, 1.25),
            (Scenario::C, 1.05),
            (Scenario::D, 64.0),
        ] {
            let s = Scenario::ALL
                .iter()
                .position(|&x| x == scenario)
                .expect("listed");
            let (Some(value), Some(bare)) = (medians[v][s], base[s]) else {
                continue;
            };
            let (measured, ok) = if scenario == Scenario::D {
                (format!("+{:.0} B", value - bare), value - bare <= limit)
            } else {
                (format!("{:.2}×", value / bare), value / bare <= limit)
            };
            let mark = if ok { "pass" } else { "MISS" };
            marks.push(format!("{} {measured} {mark}", scenario.label()));
        }
        println!("- {}: {}", variant.name(), marks.join(", "));
    }

    println!("\nSpread (min–max over rounds, same units):\n");
    for (v, variant) in variants.iter().enumerate() {
        let spreads: Vec<String> = shown
            .iter()
            .filter(|(s, _)| !samples[v][*s].is_empty())
            .map(|&(s, scenario)| {
                let values = &samples[v][s];
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!("{} {min:.1}–{max:.1}", scenario.label())
            })
            .collect();
        println!("- {}: {}", variant.name(), spreads.join(", "));
    }
}

fn cell(scenario: Scenario, value: f64, bare: f64) -> String {
    match scenario {
        Scenario::D => {
            // Rounded first, so that a variant a fraction of a byte below bare
            // reads "+0", not "-0" or "+-0".
            let above = (value - bare).round() + 0.0;
            format!("{value:.0} ({above:+.0})")
        }
        Scenario::Allocs => format!("{value:.2}"),
        _ => format!("{value:.0} ({:.2}×)", value / bare),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".to_owned())
}

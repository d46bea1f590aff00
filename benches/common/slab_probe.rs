//! A design probe for `--probe`: the least a tracker can do per task and
//! still keep what issue 2 asks of every task at the default level. It is not
//! a tracker (no queries, no tracker API), only the per-task work, laid out as
//! a redesign of the registry would lay it out, to measure what that layout
//! costs next to ours.
//!
//! - Each task's record is an 80-byte entry in a slab page of the spawner's
//!   shard: stable addresses, pages never freed, an intrusive free list. The
//!   task's wrapper holds a `&'static` to its entry, so there is no `Arc`, no
//!   pool, no separate allocation and no reference count per task.
//! - A spawn takes its shard's lock once (allocate the entry, count the
//!   spawn); the end takes the same lock once (count the ending and its
//!   duration, copy the entry into the shard's history ring, free the entry).
//! - "Local ends" changes only the end: it counts the ending and keeps it in
//!   the history of the *ending* thread's shard, and frees the entry by a
//!   store into the entry alone; spawns find ended entries by looking at a
//!   few past a cursor ([`REUSE_TRIES`]). So a task's end writes nothing of
//!   its spawner's shard (its lock, counters or free list), which another
//!   core is using to spawn.
//! - Per task: id, parent (from the current task), name, type, spawn site,
//!   spawned / first-poll / finished times (three clock reads, as ours),
//!   poll count, state, tokio's abort handle (for cancels); panics caught.
//!
//! Safe code only: entries are atomics, pages and registries are leaked (one
//! registry per benchmark instance).

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::task::{AbortHandle, JoinHandle};

const PAGE: usize = 4096;
const TYPES: usize = 16;
const SHARDS: usize = 8;
const HISTORY: usize = 10_000 / SHARDS;
const NO_SLOT: u32 = u32::MAX;
/// With local ends: entries a spawn looks at for an ended one before it
/// takes a new one.
const REUSE_TRIES: u32 = 8;

/// States; `FREE` marks an entry on the free list.
const FREE: u8 = 0;
const PENDING: u8 = 1;
const RUNNING: u8 = 2;
const COMPLETED: u8 = 3;
const PANICKED: u8 = 4;
const CANCELLED: u8 = 5;

/// One task's record. Written by its spawner under the shard's lock, then by
/// its own wrapper (polls, first poll) and read by listings under the lock.
struct Entry {
    /// The task's id; while the entry is free, the next free slot.
    id: AtomicU64,
    parent: AtomicU64,
    name_ptr: AtomicPtr<u8>,
    name_len: AtomicUsize,
    site: AtomicPtr<Location<'static>>,
    spawned_at: AtomicU64,
    first_poll: AtomicU64,
    polls: AtomicU32,
    state: AtomicU8,
    ty: AtomicU8,
    abort: Mutex<Abort>,
}

/// The task's tokio abort handle, and whether the task ended: a spawner whose
/// task ended before it could store the handle drops the handle instead.
#[derive(Default)]
struct Abort {
    handle: Option<AbortHandle>,
    ended: bool,
}

/// A finished task, as history keeps it (name and site by address: the
/// probe has no queries to read them back).
#[allow(dead_code)] // Written, never read.
#[derive(Clone, Copy)]
struct Finished {
    id: u64,
    parent: u64,
    name: (usize, usize),
    site: usize,
    spawned_at: u64,
    first_poll: u64,
    finished_at: u64,
    polls: u32,
    state: u8,
    ty: u8,
}

struct ShardState {
    pages: Vec<&'static [Entry]>,
    free: u32,
    len: u32,
    /// Per type: spawned, then one counter per ending state.
    counts: [[u64; 6]; TYPES],
    /// Per type: task durations in 32 power-of-two buckets.
    durations: [[u64; 32]; TYPES],
    history: Vec<Finished>,
    next_evicted: usize,
    /// With local ends: where the search for an ended entry goes on.
    cursor: u32,
}

/// Keeps each shard on cache lines of its own.
#[repr(align(128))]
struct Shard(Mutex<ShardState>);

pub(crate) struct Registry {
    shards: Vec<Shard>,
    epoch: quanta::Instant,
}

/// A fresh registry, leaked: each benchmark instance gets its own.
pub(crate) fn registry() -> &'static Registry {
    Box::leak(Box::new(Registry {
        shards: (0..SHARDS)
            .map(|_| {
                Shard(Mutex::new(ShardState {
                    pages: Vec::new(),
                    free: NO_SLOT,
                    len: 0,
                    counts: [[0; 6]; TYPES],
                    durations: [[0; 32]; TYPES],
                    history: Vec::new(),
                    next_evicted: 0,
                    cursor: 0,
                }))
            })
            .collect(),
        epoch: quanta::Instant::now(),
    }))
}

impl Registry {
    fn now(&self) -> u64 {
        let nanos = quanta::Instant::now().duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
    }
}

impl ShardState {
    fn entry(&self, slot: u32) -> &'static Entry {
        let slot = slot as usize;
        &self.pages[slot / PAGE][slot % PAGE]
    }

    /// With local ends: the next ended entry among a few past the cursor,
    /// else a new one.
    fn reuse_or_append(&mut self) -> u32 {
        for _ in 0..REUSE_TRIES.min(self.len) {
            let slot = self.cursor;
            self.cursor = if slot + 1 == self.len { 0 } else { slot + 1 };
            // Acquire: the end's reads of the entry come before its reuse.
            if self.entry(slot).state.load(Ordering::Acquire) == FREE {
                return slot;
            }
        }
        if self.len as usize == self.pages.len() * PAGE {
            self.grow();
        }
        self.len += 1;
        self.len - 1
    }

    fn allocate(&mut self) -> u32 {
        if self.free != NO_SLOT {
            let slot = self.free;
            self.free = self.entry(slot).id.load(Ordering::Relaxed) as u32;
            return slot;
        }
        if self.len as usize == self.pages.len() * PAGE {
            self.grow();
        }
        self.len += 1;
        self.len - 1
    }

    #[cold]
    fn grow(&mut self) {
        let page: Box<[Entry]> = (0..PAGE)
            .map(|_| Entry {
                id: AtomicU64::new(0),
                parent: AtomicU64::new(0),
                name_ptr: AtomicPtr::new(std::ptr::null_mut()),
                name_len: AtomicUsize::new(0),
                site: AtomicPtr::new(std::ptr::null_mut()),
                spawned_at: AtomicU64::new(0),
                first_poll: AtomicU64::new(0),
                polls: AtomicU32::new(0),
                state: AtomicU8::new(FREE),
                ty: AtomicU8::new(0),
                abort: Mutex::default(),
            })
            .collect();
        self.pages.push(Box::leak(page));
    }

    fn remember(&mut self, finished: Finished) {
        if self.history.len() < HISTORY {
            self.history.push(finished);
        } else {
            let at = self.next_evicted;
            self.history[at] = finished;
            self.next_evicted = (at + 1) % HISTORY;
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<&'static Entry>> = const { Cell::new(None) };
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    /// This thread's block of ids: next, end.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SHARD.with(|shard| {
        if shard.get() == usize::MAX {
            shard.set(NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        shard.get()
    })
}

/// Ids come in blocks per thread, so a spawn writes no shared counter.
fn next_id() -> u64 {
    static BLOCKS: AtomicU64 = AtomicU64::new(1);
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = BLOCKS.fetch_add(1024, Ordering::Relaxed);
            end = next + 1024;
        }
        ids.set((next + 1, end));
        next
    })
}

/// Spawns `future` on tokio as a task recorded in `registry`.
#[track_caller]
pub(crate) fn spawn<const LOCAL_ENDS: bool, F>(
    registry: &'static Registry,
    name: &'static str,
    ty: u8,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let site = Location::caller();
    let parent = CURRENT
        .with(Cell::get)
        .map_or(0, |e| e.id.load(Ordering::Relaxed));
    let id = next_id();
    let now = registry.now();
    let shard = shard_index();
    let (entry, slot) = {
        let mut state = registry.shards[shard].0.lock().unwrap();
        let slot = if LOCAL_ENDS {
            state.reuse_or_append()
        } else {
            state.allocate()
        };
        state.counts[usize::from(ty)][0] += 1;
        let entry = state.entry(slot);
        entry.id.store(id, Ordering::Relaxed);
        entry.parent.store(parent, Ordering::Relaxed);
        entry
            .name_ptr
            .store(name.as_ptr().cast_mut(), Ordering::Relaxed);
        entry.name_len.store(name.len(), Ordering::Relaxed);
        entry
            .site
            .store(std::ptr::from_ref(site).cast_mut(), Ordering::Relaxed);
        entry.spawned_at.store(now, Ordering::Relaxed);
        entry.first_poll.store(0, Ordering::Relaxed);
        entry.polls.store(0, Ordering::Relaxed);
        entry.ty.store(ty, Ordering::Relaxed);
        entry.state.store(PENDING, Ordering::Relaxed);
        *entry.abort.lock().unwrap() = Abort::default();
        (entry, slot)
    };
    // tracked: allow(untracked-spawn) -- the probe spawns its own wrapper.
    let handle = tokio::spawn(Probed {
        future,
        end: End {
            local_ends: LOCAL_ENDS,
            registry,
            entry: Some(entry),
            shard: shard as u32,
            slot,
        },
    });
    // The task may have ended already, and its entry may even hold another
    // task by now: an ended entry says so, a reused one has another id (both
    // written before the mutex this reads them under was last released).
    let mut abort = entry.abort.lock().unwrap();
    if !abort.ended && entry.id.load(Ordering::Relaxed) == id {
        abort.handle = Some(handle.abort_handle());
    }
    drop(abort);
    handle
}

pin_project_lite::pin_project! {
    struct Probed<F> {
        #[pin]
        future: F,
        end: End,
    }
}

/// Records the task's end; as `Cancelled` if dropped before it ended.
struct End {
    /// Whether the end writes nothing of its spawner's shard.
    local_ends: bool,
    registry: &'static Registry,
    entry: Option<&'static Entry>,
    shard: u32,
    slot: u32,
}

impl End {
    fn finish(&mut self, state: u8) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        let now = self.registry.now();
        let abort = {
            let mut abort = entry.abort.lock().unwrap();
            abort.ended = true;
            abort.handle.take()
        };
        // Local ends count and keep the ending in the ending thread's shard,
        // and free the entry with a store its spawner's shard finds later:
        // nothing of the spawner's is written here.
        let home = if self.local_ends {
            shard_index()
        } else {
            self.shard as usize
        };
        let mut shard = self.registry.shards[home].0.lock().unwrap();
        let ty = entry.ty.load(Ordering::Relaxed);
        let spawned_at = entry.spawned_at.load(Ordering::Relaxed);
        let lived = now.saturating_sub(spawned_at);
        shard.counts[usize::from(ty)][usize::from(state)] += 1;
        shard.durations[usize::from(ty)][(64 - lived.leading_zeros() as usize).min(31)] += 1;
        shard.remember(Finished {
            id: entry.id.load(Ordering::Relaxed),
            parent: entry.parent.load(Ordering::Relaxed),
            name: (
                entry.name_ptr.load(Ordering::Relaxed).addr(),
                entry.name_len.load(Ordering::Relaxed),
            ),
            site: entry.site.load(Ordering::Relaxed).addr(),
            spawned_at,
            first_poll: entry.first_poll.load(Ordering::Relaxed),
            finished_at: now,
            polls: entry.polls.load(Ordering::Relaxed),
            state,
            ty,
        });
        if self.local_ends {
            drop(shard);
            // Release: the reads above come before the entry's reuse.
            entry.state.store(FREE, Ordering::Release);
        } else {
            entry.state.store(FREE, Ordering::Relaxed);
            entry.id.store(u64::from(shard.free), Ordering::Relaxed);
            shard.free = self.slot;
            drop(shard);
        }
        drop(abort);
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.finish(CANCELLED);
    }
}

#[cold]
#[inline(never)]
fn first_poll(registry: &Registry, entry: &Entry) {
    entry.first_poll.store(registry.now(), Ordering::Relaxed);
    entry.state.store(RUNNING, Ordering::Relaxed);
}

impl<F: Future> Future for Probed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let entry = this.end.entry.expect("not polled after it ended");
        let polls = entry.polls.load(Ordering::Relaxed);
        entry.polls.store(polls + 1, Ordering::Relaxed);
        if polls == 0 {
            first_poll(this.end.registry, entry);
        }
        let previous = CURRENT.replace(Some(entry));
        let future = this.future;
        let result = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        CURRENT.set(previous);
        match result {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(ready) => {
                this.end.finish(COMPLETED);
                ready
            }
            Err(payload) => {
                this.end.finish(PANICKED);
                resume_unwind(payload)
            }
        }
    }
}

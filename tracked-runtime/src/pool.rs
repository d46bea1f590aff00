//! Records kept for reuse, so that steady-state spawning allocates nothing
//! beyond tokio's task.
//!
//! A record leaving history was last written thousands of tasks ago and is
//! cold in cache. The end that evicts it puts it in its shard's pool without
//! touching it, and a spawning thread moves records from there in batches
//! into a stash of its own, under the lock, again without touching them. Each
//! record is then checked to be unshared, cleared and filled outside any
//! lock, so its cache misses never lengthen a critical section another
//! thread may be waiting on; and the stash prefetches the record the next
//! spawn will take, so that by then it is in cache.

use std::cell::RefCell;
use std::sync::Arc;

use crate::record::Record;

/// Records a thread moves from a shard's pool into its stash at a time.
pub(crate) const BATCH: usize = 32;

thread_local! {
    /// Records ready for this thread's next spawns, of any tracker: a pooled
    /// record holds nothing of the tracker it came from.
    static STASH: RefCell<Vec<Arc<Record>>> = const { RefCell::new(Vec::new()) };
}

/// A record for a new task, cleared and written by `fill`, from this
/// thread's stash or, when it is empty, from what `refill` puts there;
/// a new one when neither has an unshared record.
pub(crate) fn take(
    refill: impl FnOnce(&mut Vec<Arc<Record>>),
    fill: impl FnOnce(&mut Record),
) -> Arc<Record> {
    let mut refill = Some(refill);
    while let Some(mut record) = pop(&mut refill) {
        // A record still shared (a reader cloned it just before it left
        // history) is let go: its last holder frees it.
        if let Some(reused) = Arc::get_mut(&mut record) {
            reused.reset();
            fill(reused);
            return record;
        }
    }
    let mut fresh = Record::blank();
    fill(&mut fresh);
    Arc::new(fresh)
}

/// The next stashed record, refilling the stash once when it is empty.
fn pop(refill: &mut Option<impl FnOnce(&mut Vec<Arc<Record>>)>) -> Option<Arc<Record>> {
    STASH
        .try_with(|stash| {
            let mut stash = stash.try_borrow_mut().ok()?;
            if stash.is_empty() {
                (refill.take()?)(&mut stash);
            }
            let record = stash.pop();
            if let Some(next) = stash.last() {
                prefetch(next);
            }
            record
        })
        .ok()
        .flatten()
}

/// Asks the CPU to bring `record` into cache: the next spawn reuses it, and
/// it is most likely cold. A spawn's time is enough to hide the miss.
#[inline]
fn prefetch(record: &Arc<Record>) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // The reference counts sit just before the record, in the same
        // allocation; cover both, one cache line at a time.
        let start = Arc::as_ptr(record).cast::<i8>().wrapping_sub(16);
        let len = std::mem::size_of::<Record>() + 16;
        for offset in (0..len).step_by(64) {
            // SAFETY: a prefetch is a hint: it reads nothing the program can
            // observe and never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = record;
}

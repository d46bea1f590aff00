//! One shard's live tasks: a slab of records indexed by slot, and the inbox
//! that spawns push into.
//!
//! A spawn takes its slot from the inbox, under the inbox's lock, and writes
//! it into its own record while the record is hot in its cache. Booking puts
//! the record at that slot and the task's end empties it; no other entry
//! moves. So ending a task never writes to another task's record, as a
//! swap-remove would: the moved record's slot, most likely in the cache of
//! the thread that just spawned it. Emptied slots go back to the inbox at the
//! next booking.
//!
//! When at most a quarter of a large slab is in use, it is compacted in
//! place, a few hundred slots per task end ([`STEP`]), so that no holder of
//! the shard's lock waits for a pass over the whole slab. A pass moves
//! records down only, rewriting the slots of the records it moves: a walk
//! over the slab from the top down, spread over several holds of the lock,
//! may see a moved record twice but never misses one ([`Live::moves`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::Record;

/// Slab length below which the slab is never compacted. Smaller under Miri,
/// where the tests of a pass would take minutes.
pub(crate) const COMPACT_MIN: usize = if cfg!(miri) { 256 } else { 4096 };

/// Slots a compaction pass walks per task end: at most this many records
/// are moved, and their slots rewritten, in one hold of the shard's lock.
pub(crate) const STEP: usize = if cfg!(miri) { 32 } else { 512 };

/// Capacity the spare vector keeps after booking a burst.
const BOOKING_KEEP: usize = 1024;

/// Tasks spawned into a shard and not yet booked, and the slots to give the
/// next ones.
#[derive(Default)]
pub(crate) struct Inbox {
    records: Vec<Arc<Record>>,
    /// Slots emptied and handed back, reused first.
    free: Vec<u32>,
    /// Slots ever handed out: the slab's length once all are booked.
    next: u32,
}

impl Inbox {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Queues a spawned task for booking, with its slot; returns how many
    /// are queued now.
    pub(crate) fn push(&mut self, record: Arc<Record>) -> usize {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        // Relaxed: the slot is read under the shard's lock, after a booking
        // that took this lock to take the record.
        record.slot.store(slot, Ordering::Relaxed);
        self.records.push(record);
        self.records.len()
    }
}

/// The booked live records of one shard. Used under the shard's lock.
#[derive(Default)]
pub(crate) struct Live {
    slots: Vec<Option<Arc<Record>>>,
    len: usize,
    /// Slots emptied since the last booking, to hand back to the inbox.
    freed: Vec<u32>,
    /// The spare vector swapped with the inbox's, so both keep capacity.
    booking: Vec<Arc<Record>>,
    /// The compaction under way, if any.
    pass: Option<Pass>,
    /// Times a compaction moved records. A walk that saw this change may
    /// have taken a record twice.
    moves: u64,
}

/// A compaction under way. The records below `end`, the slab's length when
/// it began, move down from `read` to `write`, a [`STEP`] at a time; spawns
/// meanwhile get slots from `end` up, and the last step moves those down
/// after the others. A slot emptied below `write` is reused as usual; one
/// at or above it is not, as the pass may still write there.
#[derive(Clone, Copy)]
struct Pass {
    read: usize,
    write: usize,
    end: usize,
}

impl Live {
    /// Books every record in `inbox`, calling `booked` on each; the inbox's
    /// lock is held for a swap of two vectors. Returns how many.
    pub(crate) fn book(&mut self, inbox: &Mutex<Inbox>, booked: impl FnMut(&Record)) -> usize {
        self.take_in(inbox, booked, false)
    }

    /// Books the inbox. With `freeze`, which starts a compaction, the
    /// emptied slots are not handed back but dropped, so that every spawn
    /// takes a slot past the slab's end until the pass is over.
    fn take_in(
        &mut self,
        inbox: &Mutex<Inbox>,
        mut booked: impl FnMut(&Record),
        freeze: bool,
    ) -> usize {
        let mut batch = std::mem::take(&mut self.booking);
        let slots = {
            let mut inbox = lock(inbox);
            std::mem::swap(&mut inbox.records, &mut batch);
            if freeze {
                // After a burst these lists are long: keep a usual batch's
                // capacity, not the burst's.
                inbox.free.clear();
                inbox.free.shrink_to(BOOKING_KEEP);
                self.freed.clear();
                self.freed.shrink_to(BOOKING_KEEP);
            } else {
                inbox.free.append(&mut self.freed);
            }
            inbox.next as usize
        };
        if self.slots.len() < slots {
            self.slots.resize(slots, None);
        }
        let count = batch.len();
        for record in batch.drain(..) {
            booked(&record);
            let slot = record.slot.load(Ordering::Relaxed) as usize;
            debug_assert!(self.slots[slot].is_none(), "a slot is given to one task");
            self.slots[slot] = Some(record);
            self.len += 1;
        }
        // After a burst, the spare keeps no more than a usual batch.
        batch.shrink_to(BOOKING_KEEP);
        self.booking = batch;
        count
    }

    fn entry(&mut self, record: &Arc<Record>) -> Option<&mut Option<Arc<Record>>> {
        let slot = record.slot.load(Ordering::Relaxed) as usize;
        self.slots
            .get_mut(slot)
            .filter(|entry| entry.as_ref().is_some_and(|r| Arc::ptr_eq(r, record)))
    }

    /// Whether `record` is booked here.
    #[cfg(test)]
    pub(crate) fn contains(&mut self, record: &Arc<Record>) -> bool {
        self.entry(record).is_some()
    }

    /// Removes a booked record; `None` if it is not here.
    pub(crate) fn remove(&mut self, record: &Arc<Record>) -> Option<Arc<Record>> {
        let removed = self.entry(record)?.take();
        let slot = record.slot.load(Ordering::Relaxed);
        // During a pass, a slot it may still write to is not reused.
        if self.pass.is_none_or(|pass| (slot as usize) < pass.write) {
            self.freed.push(slot);
        }
        self.len -= 1;
        removed
    }

    /// Puts `new` in the place of `old`, at the same slot. Returns `false`
    /// (and changes nothing) if `old` is not booked here.
    pub(crate) fn replace(&mut self, old: &Arc<Record>, new: Arc<Record>) -> bool {
        debug_assert_eq!(
            old.slot.load(Ordering::Relaxed),
            new.slot.load(Ordering::Relaxed)
        );
        match self.entry(old) {
            Some(entry) => {
                *entry = Some(new);
                true
            }
            None => false,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.slots.iter().flatten()
    }

    /// Calls `f` on the records in at most `max` slots below `below` (the
    /// slab's end if `None`), top down; returns where to go on from, `None`
    /// once slot 0 was passed. Records only ever move down, so walks that go
    /// on from where the last one ended see every record booked all along,
    /// and see one twice only if [`Live::moves`] changed in between.
    pub(crate) fn scan(
        &self,
        below: Option<usize>,
        max: usize,
        f: impl FnMut(&Arc<Record>),
    ) -> Option<usize> {
        let top = below.map_or(self.slots.len(), |below| below.min(self.slots.len()));
        let bottom = top.saturating_sub(max);
        self.slots[bottom..top].iter().rev().flatten().for_each(f);
        (bottom > 0).then_some(bottom)
    }

    pub(crate) fn moves(&self) -> u64 {
        self.moves
    }

    /// Slots in the slab, used or not.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The record booked for `record`'s task: `record` itself, or the one a
    /// claim put in its place. A claim keeps the slot, so the slot is looked
    /// at first; the whole slab only if a compaction renumbered the task.
    pub(crate) fn find(&self, record: &Record) -> Option<&Arc<Record>> {
        let id = record.id;
        let slot = record.slot.load(Ordering::Relaxed) as usize;
        match self.slots.get(slot) {
            Some(Some(found)) if found.id == id => Some(found),
            _ => self.iter().find(|found| found.id == id),
        }
    }

    /// Whether a compaction pass is under way.
    pub(crate) fn compacting(&self) -> bool {
        self.pass.is_some()
    }

    /// Walks `walk` more slots of the compaction under way, or starts one if
    /// at most a quarter of a large slab is in use: books the inbox
    /// (`booked` as for [`Live::book`]) and walks the first ones. Spawns
    /// wait for the inbox's lock only to start a pass and, at its last step,
    /// to renumber the tasks spawned meanwhile.
    ///
    /// Returns the slab's old allocation when a pass ends, for the caller
    /// to free after unlocking.
    #[must_use = "the old slab is to be dropped after unlocking"]
    pub(crate) fn compact_step(
        &mut self,
        inbox: &Mutex<Inbox>,
        booked: impl FnMut(&Record),
        walk: usize,
    ) -> Retired {
        let mut pass = match self.pass {
            Some(pass) => pass,
            None if self.slots.len() >= COMPACT_MIN && self.len * 4 <= self.slots.len() => {
                self.take_in(inbox, booked, true);
                Pass {
                    read: 0,
                    write: 0,
                    end: self.slots.len(),
                }
            }
            None => return Retired::default(),
        };
        let stop = pass.read.saturating_add(walk).min(pass.end);
        pass.write = self.move_down(pass.read..stop, pass.write);
        pass.read = stop;
        if pass.read < pass.end {
            self.pass = Some(pass);
            return Retired::default();
        }
        self.pass = None;
        self.end_pass(inbox, pass)
    }

    /// Moves the records in `from` down to the slots from `write` on, in
    /// order, rewriting the slots of those that move; returns the slot after
    /// the last one written.
    fn move_down(&mut self, from: std::ops::Range<usize>, mut write: usize) -> usize {
        let mut moved = false;
        for read in from {
            if let Some(record) = self.slots[read].take() {
                if write != read {
                    // Relaxed: slots are read under the shard's lock, held here.
                    record.slot.store(write as u32, Ordering::Relaxed);
                    moved = true;
                }
                self.slots[write] = Some(record);
                write += 1;
            }
        }
        if moved {
            self.moves += 1;
        }
        write
    }

    /// The last step of a pass: moves the records booked since it began
    /// down after the others, renumbers the ones still in the inbox, and
    /// hands back the slab's old allocation if it is much too large.
    fn end_pass(&mut self, inbox: &Mutex<Inbox>, pass: Pass) -> Retired {
        // Spawns meanwhile take slots past the slab's end or emptied below
        // `write`, so the inbox's lock is needed only to renumber the queue.
        let used = self.move_down(pass.end..self.slots.len(), pass.write);
        let mut kept = used;
        let mut inbox = lock(inbox);
        // Queued spawns past the slab's end follow; the ones given a slot
        // emptied below `write` keep it.
        for record in &inbox.records {
            if record.slot.load(Ordering::Relaxed) as usize >= pass.end {
                record.slot.store(kept as u32, Ordering::Relaxed);
                kept += 1;
            }
        }
        inbox.next = kept as u32;
        drop(inbox);
        let keep = used.max(COMPACT_MIN);
        if self.slots.capacity() <= 2 * keep {
            // Small enough to give back in place. Capacity left over would
            // change how the slab grows in the next burst.
            self.slots.truncate(used);
            self.slots.shrink_to(keep);
            return Retired::default();
        }
        // Copied to a new allocation; the old one, and the empty slots past
        // `used`, are freed by the caller after unlocking.
        let mut slab = Vec::with_capacity(keep);
        slab.extend(self.slots.drain(..used));
        std::mem::replace(&mut self.slots, slab)
    }
}

/// A slab's old allocation, to be freed after the shard's lock is released:
/// freeing a large one takes the allocator a while. Empty (and allocating
/// nothing) otherwise.
pub(crate) type Retired = Vec<Option<Arc<Record>>>;

pub(crate) fn lock(inbox: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    // A push or a swap cannot leave the inbox torn.
    inbox.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{lock, Inbox, Live, COMPACT_MIN, STEP};
    use crate::record::Record;
    use crate::TaskId;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    fn spawn(inbox: &Mutex<Inbox>) -> Arc<Record> {
        let record = Arc::new(Record::blank());
        lock(inbox).push(Arc::clone(&record));
        record
    }

    fn slot(record: &Record) -> u32 {
        record.slot.load(Ordering::Relaxed)
    }

    /// Runs compaction steps until no pass is under way; returns how many.
    fn compact_fully(live: &mut Live, inbox: &Mutex<Inbox>) -> usize {
        let mut steps = 0;
        loop {
            drop(live.compact_step(inbox, |_| {}, STEP));
            steps += 1;
            if live.pass.is_none() {
                return steps;
            }
        }
    }

    fn with_id(id: u64) -> Record {
        let mut record = Record::blank();
        record.id = TaskId::from_u64(id).expect("non-zero");
        record
    }

    /// A claim's record takes the old one's slot. The task is found from
    /// the old record at that slot, or by a search once a compaction moved
    /// the new one.
    #[test]
    fn a_task_is_found_at_its_slot_or_after_a_compaction_by_search() {
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let records: Vec<_> = (1..=COMPACT_MIN as u64)
            .map(|id| {
                let record = Arc::new(with_id(id));
                lock(&inbox).push(Arc::clone(&record));
                record
            })
            .collect();
        let _ = live.book(&inbox, |_| {});
        let old = &records[COMPACT_MIN - 1];
        let fresh = with_id(COMPACT_MIN as u64);
        fresh.slot.store(slot(old), Ordering::Relaxed);
        let fresh = Arc::new(fresh);
        assert!(live.replace(old, Arc::clone(&fresh)));
        assert!(live
            .find(old)
            .is_some_and(|found| Arc::ptr_eq(found, &fresh)));
        for record in &records[..COMPACT_MIN - 1] {
            assert!(live.remove(record).is_some());
        }
        compact_fully(&mut live, &inbox);
        assert_eq!(slot(&fresh), 0, "moved down");
        assert!(live
            .find(old)
            .is_some_and(|found| Arc::ptr_eq(found, &fresh)));
        assert!(live.find(&records[0]).is_none(), "ended");
    }

    #[test]
    fn an_emptied_slot_is_reused_after_the_next_booking() {
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let (a, b) = (spawn(&inbox), spawn(&inbox));
        assert!(!live.contains(&a), "not booked yet");
        let _ = live.book(&inbox, |_| {});
        assert!(live.contains(&a) && live.contains(&b));
        assert!(live.remove(&a).is_some());
        assert!(live.remove(&a).is_none(), "removed once");
        // Booking hands the emptied slot back; the next spawn takes it.
        let _ = live.book(&inbox, |_| {});
        let c = spawn(&inbox);
        assert_eq!(slot(&c), 0);
        let _ = live.book(&inbox, |_| {});
        assert_eq!(live.iter().count(), 2);
        assert!(live.contains(&b) && live.contains(&c));
    }

    /// A pass runs a step at a time while tasks are spawned, booked and
    /// ended between its steps; at the end every live or queued task holds
    /// one of the first slots, once.
    #[test]
    fn a_sparse_slab_is_compacted_step_by_step_under_spawns_and_ends() {
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let records: Vec<_> = (0..2 * COMPACT_MIN).map(|_| spawn(&inbox)).collect();
        let _ = live.book(&inbox, |_| {});
        drop(live.compact_step(&inbox, |_| {}, STEP));
        assert!(live.pass.is_none(), "not sparse");

        // End three tasks in four, keeping every fourth.
        let mut kept: Vec<Arc<Record>> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if i % 4 == 0 {
                kept.push(Arc::clone(record));
            } else {
                assert!(live.remove(record).is_some());
            }
        }
        // Booking hands the emptied slots back: `before` takes one.
        let _ = live.book(&inbox, |_| {});
        let before = spawn(&inbox);
        assert!((slot(&before) as usize) < 2 * COMPACT_MIN);
        kept.push(before);

        // The first step books `before` and moves the first records down.
        drop(live.compact_step(&inbox, |_| {}, STEP));
        let pass = live.pass.expect("a pass under way");
        assert_eq!(pass.read, STEP);
        assert!(pass.write > 0 && pass.write < pass.read);
        assert!(live.moves() > 0, "records moved down");
        let during = spawn(&inbox);
        assert!(slot(&during) as usize >= 2 * COMPACT_MIN, "past the end");
        let _ = live.book(&inbox, |_| {});
        kept.push(during);

        // A slot emptied below the pass's write position is reused; one
        // above it is not, as the pass would write there.
        let low = kept.remove(0);
        assert!((slot(&low) as usize) < pass.write);
        assert!(live.remove(&low).is_some());
        let high = kept.remove(kept.len() / 2);
        assert!(slot(&high) as usize >= pass.read);
        assert!(live.remove(&high).is_some());
        let _ = live.book(&inbox, |_| {});
        let reused = spawn(&inbox);
        assert_eq!(slot(&reused), slot(&low));
        kept.push(reused);

        drop(live.compact_step(&inbox, |_| {}, STEP));
        let queued = spawn(&inbox);
        assert!(slot(&queued) as usize >= 2 * COMPACT_MIN, "past the end");
        kept.push(queued);
        // Still queued when the pass ends, in a slot emptied below `write`:
        // it keeps that slot.
        let low = kept.remove(0);
        assert!(live.remove(&low).is_some());
        let _ = live.book(&inbox, |_| {});
        let queued_low = spawn(&inbox);
        assert_eq!(slot(&queued_low), slot(&low));
        kept.push(queued_low);
        let steps = compact_fully(&mut live, &inbox);
        assert!(steps > 1, "walked in steps");
        let _ = live.book(&inbox, |_| {});

        assert_eq!(live.iter().count(), kept.len());
        let mut slots: Vec<u32> = kept.iter().map(|r| slot(r)).collect();
        slots.sort_unstable();
        let dense: Vec<u32> = (0..kept.len() as u32).collect();
        assert_eq!(slots, dense, "the first slots, once each");
        assert!(live.slots() <= COMPACT_MIN, "memory given back");
        for record in &kept {
            assert!(live.remove(record).is_some());
        }
        assert_eq!(live.iter().count(), 0);
    }

    /// A walk from the top down, a chunk at a time with compaction steps in
    /// between, takes every record that stays booked, and takes one twice
    /// only if records moved meanwhile.
    #[test]
    fn a_walk_between_compaction_steps_misses_no_record() {
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let records: Vec<_> = (0..2 * COMPACT_MIN).map(|_| spawn(&inbox)).collect();
        let _ = live.book(&inbox, |_| {});
        for (i, record) in records.iter().enumerate() {
            if i % 8 != 0 {
                assert!(live.remove(record).is_some());
            }
        }
        let mut seen: Vec<*const Record> = Vec::new();
        let moves = live.moves();
        let mut below = None;
        loop {
            let next = live.scan(below, 64, |r| seen.push(Arc::as_ptr(r)));
            // A step after every chunk: the pass overtakes the walk.
            drop(live.compact_step(&inbox, |_| {}, STEP));
            match next {
                Some(next) => below = Some(next),
                None => break,
            }
        }
        assert!(live.moves() > moves, "records moved during the walk");
        for record in records.iter().step_by(8) {
            assert!(seen.contains(&Arc::as_ptr(record)), "a record was missed");
        }
    }

    /// Random spawns, bookings, ends, compaction steps of random sizes and
    /// walks, against a model of which tasks are live: every booked task
    /// sits at its slot and no slot holds two; every walk takes each task
    /// booked throughout it; after a pass, the slab's empty slots are
    /// exactly the ones left to hand out.
    #[test]
    fn random_operations_keep_every_task_at_its_own_slot() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let mut queued: Vec<Arc<Record>> = Vec::new();
        let mut booked: Vec<Arc<Record>> = Vec::new();
        let (mut growing, mut passes, mut walks_across) = (true, 0, 0);
        let mut round = 0;
        // One pass is minutes' work under Miri.
        while passes < if cfg!(miri) { 1 } else { 4 } {
            round += 1;
            assert!(round < 1_000_000, "no pass after a million operations");
            // Grow past twice COMPACT_MIN, then end tasks until an eighth
            // of it is left, so that the slab is compacted.
            if growing && booked.len() >= 2 * COMPACT_MIN {
                growing = false;
            } else if !growing && booked.len() <= COMPACT_MIN / 8 {
                growing = true;
            }
            let (spawns, ends) = if growing { (8, 1) } else { (1, 8) };
            let was = live.compacting();
            match next(100) {
                0..=39 => (0..next(2 * spawns)).for_each(|_| queued.push(spawn(&inbox))),
                40..=49 => {
                    let _ = live.book(&inbox, |_| {});
                    booked.append(&mut queued);
                }
                50..=84 => {
                    for _ in 0..next(2 * ends).min(booked.len()) {
                        let record = booked.swap_remove(next(booked.len()));
                        assert!(live.remove(&record).is_some(), "a booked task is found");
                    }
                }
                85..=97 => {
                    // Without booking first, as a task's end steps: tasks
                    // still queued when a pass ends are renumbered or keep
                    // their slots.
                    let starts = !was;
                    drop(live.compact_step(&inbox, |_| {}, 1 + next(STEP)));
                    if starts && live.compacting() {
                        // Starting a pass books the inbox.
                        booked.append(&mut queued);
                    }
                    if was && !live.compacting() {
                        // After a pass no slot is lost: the slab's empty
                        // slots are the ones to be handed out, once each.
                        let _ = live.book(&inbox, |_| {});
                        booked.append(&mut queued);
                        let inbox = lock(&inbox);
                        assert_eq!(inbox.next as usize, live.slots.len());
                        let mut empty: Vec<u32> = (0..live.slots.len())
                            .filter(|&i| live.slots[i].is_none())
                            .map(|i| i as u32)
                            .collect();
                        let mut free = inbox.free.clone();
                        free.sort_unstable();
                        empty.sort_unstable();
                        assert_eq!(free, empty, "empty slots are the free ones");
                    }
                }
                _ => {
                    // A walk with small steps in between, as a listing
                    // makes them while tasks end.
                    let _ = live.book(&inbox, |_| {});
                    booked.append(&mut queued);
                    let mut seen = std::collections::HashSet::new();
                    let (mut below, moves) = (None, live.moves());
                    loop {
                        let at = live.scan(below, 64, |r| {
                            seen.insert(Arc::as_ptr(r));
                        });
                        drop(live.compact_step(&inbox, |_| {}, 1 + next(STEP / 4)));
                        match at {
                            Some(at) => below = Some(at),
                            None => break,
                        }
                    }
                    walks_across += usize::from(live.moves() != moves);
                    for record in &booked {
                        assert!(seen.contains(&Arc::as_ptr(record)), "a walk missed a task");
                    }
                }
            }
            passes += usize::from(was && !live.compacting());
            // The whole slab is checked now and then: checking it after
            // every operation would make the test quadratic.
            if round % 64 == 0 {
                for record in &booked {
                    let at = slot(record) as usize;
                    assert!(
                        live.slots[at]
                            .as_ref()
                            .is_some_and(|r| Arc::ptr_eq(r, record)),
                        "a booked task sits at its slot"
                    );
                }
                assert_eq!(live.iter().count(), booked.len());
                assert_eq!(live.len, booked.len());
            }
        }
        assert!(walks_across > 0, "walks met passes: {walks_across}");
        assert!(live.moves() > 0, "passes ran");
    }
}

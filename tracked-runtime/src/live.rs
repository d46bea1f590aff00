//! One shard's live tasks: a slab of records indexed by slot, and the inbox
//! that spawns push into.
//!
//! A spawn takes its slot from the inbox, under the inbox's lock, and writes
//! it into its own record while the record is hot in its cache. Booking puts
//! the record at that slot and the task's end empties it; no other entry
//! moves. So ending a task never writes to another task's record, as a
//! swap-remove would: the moved record's slot, most likely in the cache of
//! the thread that just spawned it. Emptied slots go back to the inbox at the
//! next booking. When at most a quarter of a large slab is in use, it is
//! compacted in place, which rewrites the slots of the records it moves.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::Record;

/// Slab length below which the slab is never compacted.
pub(crate) const COMPACT_MIN: usize = 4096;

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
    /// Slots emptied since the last booking.
    freed: Vec<u32>,
    /// The spare vector swapped with the inbox's, so both keep capacity.
    booking: Vec<Arc<Record>>,
    /// Compactions so far. A scan spread over several holds of the shard's
    /// lock starts over when this changed in between: slots were renumbered.
    compactions: u64,
}

impl Live {
    /// Books every record in `inbox`, calling `booked` on each; the inbox's
    /// lock is held for a swap of two vectors.
    pub(crate) fn book(&mut self, inbox: &Mutex<Inbox>, booked: impl FnMut(&Record)) {
        self.take_in(inbox, booked, false);
    }

    /// Books the inbox. With `freeze`, the emptied slots are not handed
    /// back but dropped, so that until the inbox's slots are reset every
    /// spawn takes a slot past the slab's end.
    fn take_in(&mut self, inbox: &Mutex<Inbox>, mut booked: impl FnMut(&Record), freeze: bool) {
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
    }

    fn entry(&mut self, record: &Arc<Record>) -> Option<&mut Option<Arc<Record>>> {
        let slot = record.slot.load(Ordering::Relaxed) as usize;
        self.slots
            .get_mut(slot)
            .filter(|entry| entry.as_ref().is_some_and(|r| Arc::ptr_eq(r, record)))
    }

    /// Whether `record` is booked here.
    pub(crate) fn contains(&mut self, record: &Arc<Record>) -> bool {
        self.entry(record).is_some()
    }

    /// Removes a booked record; `None` if it is not here.
    pub(crate) fn remove(&mut self, record: &Arc<Record>) -> Option<Arc<Record>> {
        let removed = self.entry(record)?.take();
        self.freed.push(record.slot.load(Ordering::Relaxed));
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

    /// Calls `f` on the records in at most `max` slots from `from` on;
    /// returns the slot to go on from, `None` past the slab's end. A record
    /// booked all along is seen exactly once by scans that go on from where
    /// the last one ended, as long as [`Live::compactions`] is unchanged.
    pub(crate) fn scan(
        &self,
        from: usize,
        max: usize,
        f: impl FnMut(&Arc<Record>),
    ) -> Option<usize> {
        let end = from.saturating_add(max).min(self.slots.len());
        self.slots
            .get(from..end)
            .into_iter()
            .flatten()
            .flatten()
            .for_each(f);
        (end < self.slots.len()).then_some(end)
    }

    pub(crate) fn compactions(&self) -> u64 {
        self.compactions
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

    /// Compacts the slab if at most a quarter of it is in use, and it is
    /// large: books the inbox (`booked` as for [`Live::book`]), moves the
    /// records down to the first slots, and gives spawns made meanwhile the
    /// slots right after them. Spawns wait for the inbox's lock only twice,
    /// for a swap and for those few renumberings, not for the whole pass.
    pub(crate) fn compact_if_sparse(&mut self, inbox: &Mutex<Inbox>, booked: impl FnMut(&Record)) {
        if self.slots.len() < COMPACT_MIN || self.len * 4 > self.slots.len() {
            return;
        }
        self.take_in(inbox, booked, true);
        self.compact(inbox);
    }

    /// Compacts a slab whose inbox was booked with `freeze`.
    fn compact(&mut self, inbox: &Mutex<Inbox>) {
        self.compactions += 1;
        let mut kept = 0;
        for index in 0..self.slots.len() {
            if let Some(record) = self.slots[index].take() {
                // Relaxed: slots are read under the shard's lock, held here.
                record.slot.store(kept as u32, Ordering::Relaxed);
                self.slots[kept] = Some(record);
                kept += 1;
            }
        }
        let end = self.slots.len();
        self.slots.truncate(kept);
        self.slots.shrink_to(kept.max(COMPACT_MIN));
        let mut inbox = lock(inbox);
        for (offset, record) in inbox.records.iter().enumerate() {
            debug_assert!(record.slot.load(Ordering::Relaxed) as usize >= end);
            record.slot.store((kept + offset) as u32, Ordering::Relaxed);
        }
        inbox.next = (kept + inbox.records.len()) as u32;
    }
}

pub(crate) fn lock(inbox: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    // A push or a swap cannot leave the inbox torn.
    inbox.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{lock, Inbox, Live, COMPACT_MIN};
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
        live.book(&inbox, |_| {});
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
        live.compact_if_sparse(&inbox, |_| {});
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
        live.book(&inbox, |_| {});
        assert!(live.contains(&a) && live.contains(&b));
        assert!(live.remove(&a).is_some());
        assert!(live.remove(&a).is_none(), "removed once");
        // Booking hands the emptied slot back; the next spawn takes it.
        live.book(&inbox, |_| {});
        let c = spawn(&inbox);
        assert_eq!(slot(&c), 0);
        live.book(&inbox, |_| {});
        assert_eq!(live.iter().count(), 2);
        assert!(live.contains(&b) && live.contains(&c));
    }

    #[test]
    fn a_sparse_slab_is_compacted_and_the_inbox_renumbered() {
        let inbox = Mutex::new(Inbox::default());
        let mut live = Live::default();
        let records: Vec<_> = (0..COMPACT_MIN).map(|_| spawn(&inbox)).collect();
        let mut booked = 0;
        live.book(&inbox, |_| booked += 1);
        assert_eq!(booked, COMPACT_MIN);
        live.compact_if_sparse(&inbox, |_| {});
        assert_eq!(slot(&records[COMPACT_MIN - 1]) as usize, COMPACT_MIN - 1);

        // End three tasks in four; one more is spawned before the pass and
        // two while it runs (between its two steps).
        let (ended, kept): (Vec<_>, Vec<_>) =
            records.iter().enumerate().partition(|(i, _)| i % 4 != 0);
        for (_, record) in &ended {
            assert!(live.remove(record).is_some());
        }
        // Booking hands the emptied slots back: `before` takes one.
        live.book(&inbox, |_| {});
        let before = spawn(&inbox);
        assert!((slot(&before) as usize) < COMPACT_MIN);
        live.take_in(&inbox, |_| {}, true);
        assert!(live.contains(&before), "booked by the pass");
        let during = [spawn(&inbox), spawn(&inbox)];
        let past_end = |r: &Arc<Record>| slot(r) as usize >= COMPACT_MIN;
        assert!(
            during.iter().all(past_end),
            "given slots past the slab's end"
        );
        live.compact(&inbox);
        live.book(&inbox, |_| {});
        let queued = [before, Arc::clone(&during[0]), Arc::clone(&during[1])];

        let now: Vec<&Arc<Record>> = kept.iter().map(|(_, r)| *r).chain(&queued).collect();
        assert_eq!(live.iter().count(), now.len());
        let mut slots: Vec<u32> = now.iter().map(|r| slot(r)).collect();
        slots.sort_unstable();
        let dense: Vec<u32> = (0..now.len() as u32).collect();
        assert_eq!(
            slots, dense,
            "kept and queued records hold the first slots, once each"
        );
        for record in &now {
            assert!(live.remove(record).is_some());
        }
        assert_eq!(live.iter().count(), 0);
    }
}

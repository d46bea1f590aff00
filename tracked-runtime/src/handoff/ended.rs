//! Ended tasks on their way to their shard's books: a lock-free stack that
//! the threads ending tasks push onto and the shard lock's next holder takes
//! whole. Ending a task then takes no lock: the shard's lock, live list and
//! counters stay with the thread that spawns into the shard instead of
//! bouncing to whichever worker ran the task.
//!
//! The stack is intrusive (each node carries its own link, so a push
//! allocates nothing) and never pops one node: the taker swaps the whole
//! stack out, so no node can be taken while another thread is reading its
//! link, and there is no ABA problem.

use std::ptr::{self, NonNull};

use super::sync::{AtomicPtr, Ordering};

/// A node of the stack: something holding the link to the node below it.
pub(crate) trait Linked: Sized {
    fn link(&self) -> &AtomicPtr<Self>;
}

/// A stack of nodes that the pushers own until they are taken.
#[derive(Debug)]
pub(crate) struct Ended<T> {
    head: AtomicPtr<T>,
}

impl<T: Linked> Ended<T> {
    pub(crate) fn new() -> Self {
        Ended {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Pushes `node`. Whatever the pusher wrote before is visible to the
    /// thread that takes it.
    ///
    /// # Safety
    ///
    /// `node` must stay valid, and not be pushed again, until [`take_all`]
    /// has handed it back.
    ///
    /// [`take_all`]: Ended::take_all
    pub(crate) unsafe fn push(&self, node: NonNull<T>) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the caller keeps `node` valid, and no other thread
            // reads its link before the exchange below publishes it.
            unsafe { node.as_ref() }
                .link()
                .store(head, Ordering::Relaxed);
            // Release: publishes the link and the pusher's earlier writes
            // to the taker's Acquire swap.
            match self.head.compare_exchange_weak(
                head,
                node.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Whether nothing is waiting; one load, no ordering. Lets the taker skip
    /// the swap in the common case of nothing to take.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every node pushed so far, oldest first; each is handed back
    /// once, and from then on belongs to the caller again.
    pub(crate) fn take_all(&self) -> Taken<T> {
        // Acquire: pairs with each push's Release, so the links and what the
        // pushers wrote before pushing are visible.
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // Newest first as pushed; reversed in place, through the links.
        let mut oldest_first = ptr::null_mut();
        while let Some(current) = NonNull::new(node) {
            // SAFETY: every node in the stack was pushed valid and stays
            // valid until handed back; the swap made this thread the only
            // one that reaches them.
            let link = unsafe { current.as_ref() }.link();
            node = link.load(Ordering::Relaxed);
            link.store(oldest_first, Ordering::Relaxed);
            oldest_first = current.as_ptr();
        }
        Taken { next: oldest_first }
    }
}

/// The nodes [`Ended::take_all`] took, oldest first. Nodes not iterated are
/// not handed back, so iterate to the end.
#[must_use = "the taken nodes are handed back only by iterating"]
pub(crate) struct Taken<T> {
    next: *mut T,
}

impl<T: Linked> Iterator for Taken<T> {
    type Item = NonNull<T>;

    fn next(&mut self) -> Option<NonNull<T>> {
        let node = NonNull::new(self.next)?;
        // SAFETY: taken from the stack by `take_all`, still valid (the
        // pusher's contract), and reached only through this iterator.
        self.next = unsafe { node.as_ref() }.link().load(Ordering::Relaxed);
        Some(node)
    }
}

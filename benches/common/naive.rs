//! The naive registry the benchmarks compare against: what a hand-written
//! tracker does. One global map behind one mutex, an entry inserted at spawn
//! and removed when the task ends (by a drop guard, so cancelled tasks are
//! removed too). Names and types are `&'static str`, which spares it the
//! `String` allocations such code often has.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
pub(crate) struct Naive {
    next_id: AtomicU64,
    tasks: Arc<Mutex<HashMap<u64, TaskInfo>>>,
}

#[derive(Clone)]
#[allow(dead_code, reason = "a registry stores what it would be asked for")]
pub(crate) struct TaskInfo {
    name: &'static str,
    ty: &'static str,
    spawned_at: Instant,
}

struct Deregister {
    id: u64,
    tasks: Arc<Mutex<HashMap<u64, TaskInfo>>>,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl Naive {
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let info = TaskInfo {
            name: "bench",
            ty: "General",
            spawned_at: Instant::now(),
        };
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, info);
        let guard = Deregister {
            id,
            tasks: Arc::clone(&self.tasks),
        };
        // tracked: allow(untracked-spawn) -- a peer being measured.
        tokio::spawn(async move {
            let _guard = guard;
            future.await;
        })
    }

    /// Every live task, cloned out under the map's lock, as such code lists
    /// its tasks.
    #[allow(dead_code, reason = "only the snapshot benchmark lists tasks")]
    pub(crate) fn list(&self) -> Vec<(u64, TaskInfo)> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, info)| (*id, info.clone()))
            .collect()
    }
}

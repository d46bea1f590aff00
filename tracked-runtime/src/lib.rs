//! The runtime task tracker behind `tracked`.
//!
//! Spawn tasks with a name and a type instead of bare `tokio::spawn`, and the
//! tracker can tell at any moment what is running, of which type, spawned by
//! whom and where, since when, and how everything that finished ended. It
//! runs on stable tokio: no `--cfg tokio_unstable`.
//!
//! # Examples
//!
//! ```
//! # extern crate tracked_runtime as tracked;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tracked::{Query, TaskState, TaskType, Tracker};
//!
//! let tracker = Tracker::new();
//! let parent = tracker.spawn("round", TaskType::CONSENSUS, async {
//!     // Spawned from inside a tracked task: same tracker, parent recorded.
//!     tracked::spawn("vote", TaskType::CONSENSUS, async {}).await.unwrap();
//! });
//! let parent_id = parent.id();
//! parent.await.unwrap();
//!
//! let stats = tracker.stats();
//! assert_eq!(stats.total.completed, 2);
//! let votes = tracker.finished(&Query::new().parent(parent_id));
//! assert_eq!(votes[0].name, "vote");
//! assert_eq!(votes[0].state, TaskState::Completed);
//! # }
//! ```

mod busy;
mod catalogue;
mod clock;
mod control;
mod current;
mod events;
mod failure;
mod handoff;
mod heartbeat;
mod histogram;
mod history;
#[cfg(feature = "http")]
pub mod http;
mod id;
mod inline;
mod instrument;
mod join_set;
#[cfg(feature = "journal")]
pub mod journal;
mod live;
#[cfg(feature = "otel")]
pub mod otel;
mod outcome;
mod panic;
mod pool;
mod private;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod query;
mod record;
mod registry;
mod shutdown;
mod snapshot;
mod spawn;
mod stats;
mod task_type;
mod text;
mod tracker;
mod wake;
mod watchdog;

pub use catalogue::{
    catalogue, Catalogue, CatalogueStatus, Finding, SiteKind, SiteUsage, StaticSite,
};
pub use control::{CancelReport, Group, GroupCount, StubbornTask};
pub use current::{block_in_place, current, progress, CurrentTask};
pub use events::{Event, EventKind, EventStream, Received, Warning};
pub use heartbeat::{Heartbeat, HeartbeatHandle, PhaseStats};
pub use histogram::{
    Bounds, DurationHistogram, Histogram, PollHistogram, PollTimes, TaskLifetimes,
};
pub use id::TaskId;
pub use instrument::task_id;
pub use join_set::JoinSet;
pub use outcome::{Outcome, TaskOutput, ERR_WITHOUT_TEXT};
pub use panic::OnPanic;
pub use query::{Query, TaskDetail, TaskTree};
pub use record::{Label, Site, SpawnKind, TaskName, TaskState};
pub use shutdown::{ShutdownPlan, ShutdownReport, Tier, TierReport};
pub use snapshot::{ProgressMessage, ProgressSnapshot, TaskSnapshot};
pub use spawn::{spawn, spawn_blocking, spawn_local, AbortHandle, Builder, JoinHandle};
pub use stats::{Counts, Stats};
pub use task_type::TaskType;
pub use tracker::{Tracker, TrackerBuilder};
pub use wake::Wakes;
pub use watchdog::{Health, Thresholds, TypeHealth, Warned, WarningCounts, Watchdog};

#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}

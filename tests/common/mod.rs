//! Helpers shared by the integration tests.

use tracked::Tracker;

/// `spawned = live + completed + failed + panicked + cancelled`, per type and
/// in total.
pub(crate) fn assert_invariant(tracker: &Tracker) {
    let stats = tracker.stats();
    for counts in stats.by_type.values().chain([&stats.total]) {
        assert_eq!(
            counts.spawned,
            counts.live() + counts.finished(),
            "{counts:?}"
        );
    }
}

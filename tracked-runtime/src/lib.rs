//! The runtime tracker.

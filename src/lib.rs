//! `tracked` gives every tokio task an identity and an owner.
//!
//! This is the facade crate: it re-exports [`tracked_runtime`] so that users
//! need a single dependency line. See the README for a quickstart and
//! `ARCHITECTURE.md` for how the crates fit together.

pub use tracked_runtime::*;

/// Tracks an `async fn` and the tokio spawns in its body; see the macro's
/// own documentation.
pub use tracked_macros::tracked;

// The README's Rust examples run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

// So do the migration guide's.
#[doc = include_str!("../docs/migrating.md")]
#[cfg(doctest)]
pub struct MigratingDoctests;

// And the troubleshooting guide's.
#[doc = include_str!("../docs/troubleshooting.md")]
#[cfg(doctest)]
pub struct TroubleshootingDoctests;

//! The `#[tracked]` attribute macro.

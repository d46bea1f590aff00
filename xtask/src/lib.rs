//! The audit engine behind `cargo xtask audit`: finds every tokio task
//! spawned outside the tracker, without compiling anything.
//!
//! Other workspaces' xtasks can call it directly:
//!
//! ```no_run
//! let report = xtask::audit(&xtask::Options::default()).expect("audit could not run");
//! for diagnostic in &report.diagnostics {
//!     eprint!("{}", diagnostic.render());
//! }
//! std::process::exit(report.exit_code().into());
//! ```
//!
//! See `xtask/README.md` for what it finds, how to suppress a finding, the
//! configuration keys and the JSON schema.

mod audit;
mod bench;
pub mod cli;
mod config;
mod diagnostic;
mod doctest;
mod fix;
mod index;
pub mod json;
mod lint;
mod macros;
mod parse;
mod resolve;
pub mod sarif;
mod scan;
mod suppress;
mod tokio_api;
mod workspace;

pub use audit::{audit, check_source, Error, Options, Report};
pub use config::Config;
pub use diagnostic::{Diagnostic, Rule, Severity};
pub use fix::{apply as fix, FixOutcome};

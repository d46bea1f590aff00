//! `cargo tracked audit`: the audit for any project. Install it from a
//! checkout of tracked with `cargo install --path xtask --bin cargo-tracked`.

// As in `cargo xtask`: malloc and free were a third of the audit's time
// with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    xtask::cli::main_as(xtask::cli::Program::CargoTracked)
}

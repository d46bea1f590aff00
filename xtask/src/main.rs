//! `cargo xtask`: project automation; see `cargo xtask help`.

// Parsing with syn allocates a node per token; malloc and free were a third
// of the audit's time with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    xtask::cli::main_as(xtask::cli::Program::Xtask)
}

// The allocator of the whole process (see the note in Cargo.toml). The `system-allocator` feature
// leaves glibc's malloc in place, for heap profilers (heaptrack) that see only malloc's calls.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ducha::cli::main()
}

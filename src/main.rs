//! The `scimsync` binary. Everything lives in the `scimsync-cli` crate; this stays thin.

// mimalloc rather than glibc's malloc: a large cycle frees and allocates many small buffers
// (JSON, headers, state and log records) among a long-lived heap, where glibc's malloc spent a
// fifth of the engine's CPU searching its free lists (capacity bench, 100k tenant).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    scimsync_cli::main()
}

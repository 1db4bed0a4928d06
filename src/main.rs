//! The `scimsync` binary. Everything lives in the `scimsync-cli` crate; this stays thin.

// A cycle builds and frees maps of every assignment and member. With glibc's allocator a
// quarter of a quiet cycle went to freeing them (and consolidating the freed chunks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    scimsync_cli::main()
}

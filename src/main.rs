//! The `scimsync` binary. Everything lives in the `scimsync-cli` crate; this stays thin.

fn main() -> std::process::ExitCode {
    scimsync_cli::main()
}

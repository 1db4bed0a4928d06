//! The `scimsync` command line: thin glue from flags to the engine.
//!
//! Exit codes: 0 success; 1 the cycle or command failed; 2 the configuration is invalid;
//! 4 the cycle completed but some objects failed (see the provisioning log).

mod commands;
mod demo;
mod render;
mod wiring;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "scimsync",
    version,
    about = "Self-hosted, Entra-compatible SCIM provisioning engine"
)]
struct Cli {
    /// Directory that holds each job's state (one sled database per job).
    #[arg(
        long,
        global = true,
        default_value = "scimsync-state",
        env = "SCIMSYNC_STATE"
    )]
    state: PathBuf,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run provisioning cycles for one job (the first is the initial cycle).
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Run one cycle and exit instead of running on the job's schedule.
        #[arg(long)]
        once: bool,
        /// Print each cycle's report as JSON (one document per cycle).
        #[arg(long)]
        json: bool,
    },
    /// Dry run: show the exact SCIM requests the next cycle would send. Writes nothing.
    Preview {
        #[arg(long)]
        config: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check both connections as Entra's "Test Connection" does.
    TestConnection {
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a job configuration file and report every problem with its line and column.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the built-in demo: an emulated tenant and a built-in SCIM app, both on loopback.
    Demo {
        /// Users in the demo tenant.
        #[arg(long, default_value_t = 300)]
        users: usize,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run { config, once, json } => {
                commands::run(&config, &cli.state, once, json).await
            }
            Command::Preview { config, json } => commands::preview(&config, &cli.state, json).await,
            Command::TestConnection { config } => commands::test_connection(&config).await,
            Command::Validate { config } => commands::validate(&config),
            Command::Demo { users } => demo::run(users, cli.verbose > 0).await,
        }
    });
    ExitCode::from(code)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

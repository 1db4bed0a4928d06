//! The `scimsync` command line: thin glue from flags to the engine.
//!
//! Exit codes: 0 success; 1 the cycle or command failed; 2 the configuration is invalid;
//! 4 the cycle completed but some objects failed (see the provisioning log); 5 the cycle was
//! held: its disables and deletes wait for `approve-deletions` (deletion threshold, sudden
//! drop, or an empty source read). When several apply: 2, then 1, then 5, then 4.

mod apps;
mod commands;
#[cfg(feature = "demo")]
mod demo;
mod entra;
mod eval;
mod logs;
mod progress;
mod render;
mod serve;
mod status;
#[cfg(test)]
mod test_support;
mod wiring;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, as `--help` shows them.
const EXIT_CODES: &str = "Exit codes:
  0  success
  1  the cycle or command failed (also: approve-deletions found the held set changed)
  2  the configuration is invalid
  4  the cycle completed, but some objects failed (see `scimsync logs`)
  5  cycle held: disables/deletes wait for approve-deletions (deletion threshold, sudden
     drop, or an empty source read)
When several apply, the first of 2, 1, 5, 4 wins (a held cycle with failed objects exits 5).";

/// Exit code: the cycle or command failed.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code: the cycle completed, some objects failed.
pub(crate) const EXIT_OBJECT_FAILURES: u8 = 4;
/// Exit code: the cycle held its disables and deletes for approval.
pub(crate) const EXIT_HELD: u8 = 5;

#[derive(Parser, Debug)]
#[command(
    name = "scimsync",
    version,
    about = "Self-hosted, Entra-compatible SCIM provisioning engine",
    after_help = EXIT_CODES
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
    #[command(after_help = EXIT_CODES)]
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
    /// Dry run: show the exact SCIM requests the next cycle would send, and whether it would
    /// hold its disables and deletes (`staged` lines). Writes nothing.
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
    /// Check a job configuration file and report every problem with its line and column,
    /// including each secret (env: or file:) that cannot be read (values are never shown).
    Validate {
        #[arg(long)]
        config: PathBuf,
        /// Do not read the secrets: check the file alone (e.g. on a machine without them).
        #[arg(long)]
        offline: bool,
    },
    /// Show a job's provisioning log (one entry per object per cycle), filtered.
    Logs(logs::LogsArgs),
    /// Each job's last and current cycle, escrows, quarantine and held deletions.
    Status {
        /// The jobs of this config directory (and the admin API of its `serve`).
        #[arg(long, conflicts_with = "config")]
        config_dir: Option<PathBuf>,
        /// One job file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run every job in a config directory on its schedule, with the admin API.
    Serve {
        /// Directory of job files (`*.toml`) and the service file `scimsync.toml`.
        #[arg(long)]
        config_dir: PathBuf,
        /// `text` for people, `json` (one object per line) for log shippers.
        #[arg(long, value_enum, default_value = "text")]
        log_format: serve::LogFormat,
    },
    /// Restart a job with Entra's reset scopes (default: watermark, escrows, quarantine).
    Restart {
        #[arg(long)]
        job: String,
        /// Comma list of watermark, escrows, quarantine, full (`full` also forgets links).
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        #[arg(long)]
        config_dir: PathBuf,
    },
    /// Entra's "Allow deletes": show the disables and deletes the last cycle held, and why, and
    /// approve exactly that set (the next cycle sends those; one that would also disable or
    /// delete others is held again).
    #[command(after_help = "Nothing held: says so, approves nothing, exits 0.\n\
        A --fingerprint that no longer matches the held set: shows both fingerprints, approves \
        nothing, exits 1.")]
    ApproveDeletions {
        #[arg(long)]
        job: String,
        #[arg(long)]
        config_dir: PathBuf,
        /// Approve only if the held set still has this fingerprint (as `status` or a dry run
        /// showed it).
        #[arg(long)]
        fingerprint: Option<String>,
        /// Show the held set; approve nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Provision one user or group now and print Entra's steps with the exact SCIM requests.
    Provision {
        #[arg(long)]
        job: String,
        /// Object id or user principal name.
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        /// Group object id (with its members, at most five).
        #[arg(long)]
        group: Option<String>,
        /// Show the steps without writing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        config_dir: PathBuf,
    },
    /// Run the built-in demo: an emulated tenant and a built-in SCIM app, both on loopback.
    #[cfg(feature = "demo")]
    Demo {
        /// Users in the demo tenant.
        #[arg(long, default_value_t = 300)]
        users: usize,
        /// Where the demo keeps its job file and state, to explore them afterwards.
        #[arg(long, default_value = "scimsync-demo")]
        dir: PathBuf,
    },
    /// List the app templates `init` can start a job from.
    Apps,
    /// Write a job file from an app template and say what is left to fill in.
    Init {
        /// The template (see `scimsync apps`).
        #[arg(long)]
        app: String,
        /// Where to write the job file (default: <app>.toml here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// The Entra tenant id or domain.
        #[arg(long)]
        tenant_id: Option<String>,
        /// The app registration's client id.
        #[arg(long)]
        client_id: Option<String>,
        /// The enterprise app's object id (service principal).
        #[arg(long)]
        service_principal_id: Option<String>,
        /// The app's SCIM endpoint (Entra's "Tenant URL"); replaces a URL the template fixes.
        #[arg(long)]
        tenant_url: Option<String>,
        /// Microsoft Graph endpoint (national clouds).
        #[arg(long)]
        graph_url: Option<String>,
        /// Sign-in endpoint (national clouds).
        #[arg(long)]
        login_url: Option<String>,
    },
    /// Write a job file from the synchronization schema downloaded from Entra ("Review your
    /// schema here"): its mappings, scoping filters and target object actions.
    ImportEntra(entra::ImportArgs),
    /// Write a job's synchronization schema as Entra exports it (the way back of import-entra).
    ExportEntra(entra::ExportArgs),
    /// Evaluate an expression, or the job's whole user mapping, for one user, step by step.
    Eval {
        #[arg(long)]
        config: PathBuf,
        /// The user's object id or user principal name, read from Graph with the job's source.
        #[arg(long, conflicts_with = "json", required_unless_present = "json")]
        user: Option<String>,
        /// A JSON file with the user's Entra source attributes instead of Graph.
        #[arg(long)]
        json: Option<PathBuf>,
        /// The expression to evaluate (default: every user mapping of the job).
        #[arg(long)]
        expression: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve { log_format, .. } => serve::init_tracing(cli.verbose, *log_format),
        _ => init_tracing(cli.verbose),
    }
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
            Command::Validate { config, offline } => commands::validate(&config, offline),
            Command::Logs(args) => logs::command(&args, &cli.state).await,
            Command::Status {
                config_dir,
                config,
                json,
            } => status::command(config_dir, config, &cli.state, json).await,
            Command::Serve {
                config_dir,
                log_format,
            } => serve::serve_as(&config_dir, &cli.state, log_format).await,
            Command::Restart {
                job,
                scope,
                config_dir,
            } => serve::restart(&config_dir, &cli.state, &job, &scope).await,
            Command::ApproveDeletions {
                job,
                config_dir,
                fingerprint,
                dry_run,
            } => {
                serve::approve_deletions(
                    &config_dir,
                    &cli.state,
                    &job,
                    fingerprint.as_deref(),
                    dry_run,
                )
                .await
            }
            Command::Provision {
                job,
                user,
                group,
                dry_run,
                config_dir,
            } => serve::provision(&config_dir, &cli.state, &job, user, group, dry_run).await,
            #[cfg(feature = "demo")]
            Command::Demo { users, dir } => demo::run(users, &dir, cli.verbose > 0).await,
            Command::Apps => apps::list(),
            Command::Init {
                app,
                out,
                force,
                tenant_id,
                client_id,
                service_principal_id,
                tenant_url,
                graph_url,
                login_url,
            } => apps::init(
                &app,
                out.as_deref(),
                force,
                &apps::InitValues {
                    tenant_id,
                    client_id,
                    service_principal_id,
                    tenant_url,
                    graph_url,
                    login_url,
                },
            ),
            Command::Eval {
                config,
                user,
                json,
                expression,
            } => eval::command(&config, user, json, expression.as_deref()).await,
            Command::ImportEntra(args) => entra::import(&args),
            Command::ExportEntra(args) => entra::export(&args),
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

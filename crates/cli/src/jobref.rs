//! One way to name a job on every job command: `--config FILE`, or `--job NAME` with
//! `--config-dir DIR` (the directory `serve` runs). And `--state DIR`, only on the commands
//! that read or write a job's state.

use scimsync_config::JobConfig;
use std::path::{Path, PathBuf};

/// The flags that name a job.
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// The job file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "job",
        required_unless_present = "job"
    )]
    pub config: Option<PathBuf>,
    /// The job's name (its `name` key), looked up among the job files of --config-dir.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The directory of job files (`*.toml`) and of the service file `scimsync.toml`, as
    /// `serve` is given it.
    #[arg(long, value_name = "DIR", env = "SCIMSYNC_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
}

/// `--state DIR`.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArg {
    /// Directory that holds each job's state (one sled database per job).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "scimsync-state",
        env = "SCIMSYNC_STATE"
    )]
    pub state: PathBuf,
}

impl JobArgs {
    /// The job file: `--config`, or the file in `--config-dir` whose job is named `--job`
    /// (else `<DIR>/<NAME>.toml`, so a file that does not load still shows its own errors).
    /// An unknown name is an error that lists the jobs there (exit 2).
    pub fn file(&self) -> Result<PathBuf, u8> {
        let (Some(name), None) = (&self.job, &self.config) else {
            return self.config.clone().ok_or(2);
        };
        let Some(dir) = &self.config_dir else {
            eprintln!(
                "error: --job {name} needs --config-dir DIR (or give the job file with --config FILE)"
            );
            return Err(2);
        };
        find_in_dir(dir, name)
    }

    /// The job file, loaded and validated (warnings and errors printed).
    pub fn load(&self) -> Result<JobConfig, u8> {
        crate::wiring::load(&self.file()?)
    }

    /// The job's name without needing its file: `--job`, or the `name` of `--config`.
    pub fn name(&self) -> Result<String, u8> {
        match (&self.job, &self.config) {
            (Some(name), _) => Ok(name.clone()),
            _ => self.load().map(|c| c.name),
        }
    }

    /// Where the service file (`scimsync.toml`) is looked for: `--config-dir`, else the
    /// directory of the job file.
    pub fn service_dir(&self) -> PathBuf {
        match (&self.config_dir, &self.config) {
            (Some(d), _) => d.clone(),
            (None, Some(f)) => parent_dir(f),
            (None, None) => PathBuf::from("."),
        }
    }
}

/// The directory of a file, `.` for a bare file name.
pub fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn find_in_dir(dir: &Path, name: &str) -> Result<PathBuf, u8> {
    let (loaded, errors) = scimsync_config::load_dir(dir);
    if let Some(l) = loaded.iter().find(|l| l.job.name == name) {
        return Ok(l.job.path.clone());
    }
    let by_stem = dir.join(format!("{name}.toml"));
    if by_stem.is_file() {
        return Ok(by_stem);
    }
    // The job may be in a file that does not load: its errors say why.
    for e in &errors {
        eprintln!("error: {e}");
    }
    let mut names: Vec<&str> = loaded.iter().map(|l| l.job.name.as_str()).collect();
    names.sort_unstable();
    eprintln!(
        "error: {}",
        unknown_job(name, &dir.display().to_string(), &names)
    );
    Err(2)
}

/// "no job named X in DIR; the jobs there: a, b" (or "there are none").
pub fn unknown_job(name: &str, place: &str, known: &[&str]) -> String {
    if known.is_empty() {
        format!("no job named {name:?} in {place}: there are none")
    } else {
        format!(
            "no job named {name:?} in {place}; the jobs there: {}",
            known.join(", ")
        )
    }
}

/// The jobs that have state under `state` (one directory each), sorted.
pub fn state_jobs(state: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(state).ok()?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.contains(".corrupt-") && !n.starts_with('.'))
        .collect();
    names.sort();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"name = "NAME"
[source]
tenant_id = "t"
client_id = "c"
client_secret = "env:X"
scope = "all"
[target]
url = "https://app.example.com/scim"
token = "env:Y"
[[users.mappings]]
target = "userName"
source = "userPrincipalName"
matching = 1
"#;

    fn args(job: Option<&str>, dir: Option<&Path>, config: Option<&Path>) -> JobArgs {
        JobArgs {
            config: config.map(Path::to_path_buf),
            job: job.map(str::to_string),
            config_dir: dir.map(Path::to_path_buf),
        }
    }

    #[test]
    fn a_job_is_found_by_name_or_file_and_an_unknown_one_lists_the_known() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), JOB.replace("NAME", "alpha")).unwrap();
        std::fs::write(dir.path().join("b.toml"), JOB.replace("NAME", "beta")).unwrap();
        let found = args(Some("beta"), Some(dir.path()), None).file().unwrap();
        assert_eq!(found, dir.path().join("b.toml"));
        let cfg = args(None, None, Some(&found)).load().unwrap();
        assert_eq!(cfg.name, "beta");
        assert_eq!(args(Some("gamma"), Some(dir.path()), None).file(), Err(2));
        assert_eq!(
            unknown_job("gamma", "jobs/", &["alpha", "beta"]),
            "no job named \"gamma\" in jobs/; the jobs there: alpha, beta"
        );
        // --job alone cannot find a file.
        assert_eq!(args(Some("beta"), None, None).file(), Err(2));
        assert_eq!(args(Some("beta"), None, None).name(), Ok("beta".into()));
        assert_eq!(
            args(None, None, Some(Path::new("x.toml"))).service_dir(),
            PathBuf::from(".")
        );
    }
}

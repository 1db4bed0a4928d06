//! A config directory: every `*.toml` job file in it, plus the service file `scimsync.toml`.

use crate::{ConfigError, Loaded, SecretRef, ServiceConfig, validate};
use scimsync_core::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The service file's name in a config directory; [`load_dir`] skips it.
pub const SERVICE_FILE: &str = "scimsync.toml";

/// `[admin] tls_cert` and `tls_key` in the service file: the admin API speaks HTTPS with this
/// certificate chain and private key, both PEM, each `file:PATH` (relative to the service file)
/// or `env:NAME` holding the PEM text. They are read when `serve` starts ([`AdminTls::read`]),
/// and a problem with either is reported at the file:line:column of its key. The key is a
/// secret: never shown, not even in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    /// The certificate chain, leaf first.
    pub cert: SecretRef,
    /// The leaf certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: SecretRef,
    file: PathBuf,
    cert_at: (usize, usize),
    key_at: (usize, usize),
}

/// The PEM text [`AdminTls`] names, read (`Debug` shows the key's origin only).
#[derive(Debug)]
pub struct AdminTlsPem {
    pub cert: String,
    pub key: Secret,
}

impl AdminTls {
    /// `cert_at` and `key_at`: the 1-based line and column of each value in `file`.
    pub(crate) fn new(
        file: &Path,
        cert: SecretRef,
        cert_at: (usize, usize),
        key: SecretRef,
        key_at: (usize, usize),
    ) -> AdminTls {
        AdminTls {
            cert,
            key,
            file: file.to_path_buf(),
            cert_at,
            key_at,
        }
    }

    /// Read both now. Each one that cannot be read is an error at its key (never with its
    /// content).
    pub fn read(&self) -> Result<AdminTlsPem, Vec<ConfigError>> {
        let cert = self
            .cert
            .resolve()
            .map_err(|e| self.cert_error(format!("cannot read the certificate chain: {e}")));
        let key = self
            .key
            .resolve()
            .map_err(|e| self.key_error(format!("cannot read the private key: {e}")));
        match (cert, key) {
            (Ok(cert), Ok(key)) => Ok(AdminTlsPem {
                cert: cert.expose().to_string(),
                key,
            }),
            (c, k) => Err(c.err().into_iter().chain(k.err()).collect()),
        }
    }

    /// A problem with the certificate chain, at `tls_cert`.
    pub fn cert_error(&self, message: impl Into<String>) -> ConfigError {
        self.error(self.cert_at, "admin.tls_cert", message.into())
    }

    /// A problem with the private key, at `tls_key`. The message must not quote the key.
    pub fn key_error(&self, message: impl Into<String>) -> ConfigError {
        self.error(self.key_at, "admin.tls_key", message.into())
    }

    fn error(&self, (line, column): (usize, usize), key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: key.into(),
            message,
        }
    }
}

fn unreadable(path: &Path, what: &str, why: String) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read the {what}: {why}"),
    }
}

/// Read and validate the service file (normally `<config-dir>/scimsync.toml`).
pub fn load_service(path: &Path) -> Result<ServiceConfig, Vec<ConfigError>> {
    let text = crate::read_bounded(path).map_err(|e| vec![unreadable(path, "service file", e)])?;
    validate::parse_service(path, &text)
}

/// Load every job file (`*.toml` except [`SERVICE_FILE`] and hidden files) in `dir`, in file
/// name order. Returns the valid jobs and the errors of the others; one bad file does not stop
/// the rest. Two files with the same job `name` are both rejected: which one was meant cannot
/// be guessed, and running either would let the other's edits silently do nothing.
pub fn load_dir(dir: &Path) -> (Vec<Loaded>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return (
                Vec::new(),
                vec![unreadable(dir, "config directory", e.to_string())],
            );
        }
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let is_job = path.extension().is_some_and(|x| x == "toml")
                    && name != SERVICE_FILE
                    && !name.starts_with('.')
                    && path.is_file();
                if is_job {
                    paths.push(path);
                }
            }
            Err(e) => errors.push(unreadable(dir, "config directory", e.to_string())),
        }
    }
    paths.sort();

    let mut loaded = Vec::new();
    // Each valid job with the line:column of its `name` value.
    let mut texts: Vec<(Loaded, (usize, usize))> = Vec::new();
    for path in paths {
        let text = match crate::read_bounded(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(unreadable(&path, "job file", e));
                continue;
            }
        };
        match validate::parse(&path, &text) {
            Ok(l) => {
                let at = name_position(&text);
                texts.push((l, at));
            }
            Err(e) => errors.extend(e),
        }
    }
    let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (l, _)) in texts.iter().enumerate() {
        by_name.entry(l.job.name.clone()).or_default().push(i);
    }
    for (i, (l, (line, column))) in texts.iter().enumerate() {
        let same = &by_name[&l.job.name];
        if same.len() > 1 {
            let others: Vec<String> = same
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| texts[j].0.job.path.display().to_string())
                .collect();
            errors.push(ConfigError {
                file: l.job.path.clone(),
                line: *line,
                column: *column,
                key: "name".into(),
                message: format!(
                    "job name {:?} is also used by {}: job names must be unique in a config directory",
                    l.job.name,
                    others.join(", ")
                ),
            });
        }
    }
    for (l, _) in texts {
        if by_name[&l.job.name].len() == 1 {
            loaded.push(l);
        }
    }
    // File order, then position: what an admin reads top to bottom.
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    (loaded, errors)
}

/// Where the `name` value sits, for the duplicate-name error (the file parsed, so it exists).
fn name_position(text: &str) -> (usize, usize) {
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return (0, 0);
    };
    match root.get_ref().get("name") {
        Some(v) => crate::error::LineIndex::new(text).position(v.span().start),
        None => (0, 0),
    }
}

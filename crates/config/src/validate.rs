//! From TOML text to a [`JobConfig`]: syntax, shape (see `schema`), then meaning, collecting
//! every error on the way instead of stopping at the first.

use crate::error::LineIndex;
use crate::raw::Choice;
use crate::raw::{
    RawClause, RawFilter, RawJob, RawMapping, RawNotifications, RawService, RawSmtp, RawSource,
    RawTarget, RawUsers,
};
use crate::schema::{self, Field, Issue};
use crate::{
    AdminConfig, Apply, AssertionAlgorithm, Clause, ConfigError, JobConfig, Loaded, Mapping,
    MappingValue, Notifications, Operator, ScopeSetting, ScopingFilter, SecretRef, SecretSite,
    ServiceConfig, Smtp, SmtpTls, SourceConfig, TargetConfig, UsersConfig,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeTable;

/// The first `{{NAME}}` template placeholder in `s` (upper-case letters and `_`).
fn placeholder_in(s: &str) -> Option<&str> {
    let start = s.find("{{")?;
    let len = s[start + 2..].find("}}")?;
    let name = &s[start + 2..start + 2 + len];
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    plain.then(|| &s[start..start + 4 + len])
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    let (mut cx, raw) = prepare::<RawJob>(path, text, schema::JOB)?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let job = cx.job(raw, base_dir);
    if cx.errors.is_empty() {
        sort(&mut cx.warnings);
        Ok(Loaded {
            job,
            warnings: cx.warnings,
            secrets: cx.secrets,
        })
    } else {
        Err(cx.finish_errors())
    }
}

pub(crate) fn parse_service(path: &Path, text: &str) -> Result<ServiceConfig, Vec<ConfigError>> {
    let (mut cx, raw) = prepare::<RawService>(path, text, schema::SERVICE)?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    let admin = match raw.admin {
        None => AdminConfig::default(),
        Some(a) => AdminConfig::from_raw(&mut cx, a.span(), a.into_inner(), base_dir),
    };
    let store = raw
        .store
        .map(|s| crate::StoreConfig::from_raw(&mut cx, s.span(), s.into_inner(), base_dir));
    if cx.errors.is_empty() {
        sort(&mut cx.warnings);
        Ok(ServiceConfig {
            path: path.to_path_buf(),
            admin,
            store,
            warnings: cx.warnings,
        })
    } else {
        Err(cx.finish_errors())
    }
}

/// Syntax and shape: on success the typed tree and a context holding any shape errors, so the
/// semantic pass can add its own before everything is reported together.
/// Syntax errors listed one by one; more are counted in one last error.
const MAX_SYNTAX_ERRORS: usize = 20;

fn prepare<'a, R: for<'de> Deserialize<'de>>(
    path: &'a Path,
    text: &'a str,
    fields: &'static [Field],
) -> Result<(Cx<'a>, R), Vec<ConfigError>> {
    let mut cx = Cx {
        file: path,
        lines: LineIndex::new(text),
        errors: Vec::new(),
        warnings: Vec::new(),
        pruned: HashSet::new(),
        secrets: Vec::new(),
    };

    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The tree is incomplete after a syntax error; anything checked on it would mislead.
        // Naming each error's key rescans the text, so a garbled file (thousands of errors)
        // would cost the square of its size: the first ones are listed, the rest counted.
        let total = syntax.len();
        for (i, e) in syntax.into_iter().enumerate() {
            let at = e.span().unwrap_or(0..0);
            if i == MAX_SYNTAX_ERRORS {
                let more = total - MAX_SYNTAX_ERRORS;
                let message =
                    format!("{more} more syntax error(s) from here on; fix the ones above first");
                cx.error(at, String::new(), message);
                break;
            }
            let key = schema::syntax_key(text, at.start);
            cx.error(at, key, e.message());
        }
        return Err(cx.finish_errors());
    }

    let mut issues = Vec::new();
    schema::check(root.get_mut(), fields, "", &mut issues, &mut cx.pruned);
    for Issue { span, key, message } in issues {
        cx.error(span, key, message);
    }

    match R::deserialize(toml::de::Deserializer::from(root.clone())) {
        Ok(raw) => Ok((cx, raw)),
        Err(e) => {
            // The shape pass should have caught everything serde can object to; this is the
            // backstop, so keep its message but never let it carry a secret's value.
            let at = e.span().unwrap_or(0..0);
            let key = schema::locate(root.get_ref(), at.start, "");
            let message = if schema::is_secret_key(fields, &key) {
                "invalid secret reference".to_string()
            } else {
                e.message().to_string()
            };
            cx.error(at, key, message);
            Err(cx.finish_errors())
        }
    }
}

/// A table's span and keys; an absent table is an empty one.
fn open<R: Default>(raw: Option<Spanned<R>>) -> (Range<usize>, R) {
    raw.map(|r| (r.span(), r.into_inner()))
        .unwrap_or_else(|| (NOWHERE, R::default()))
}

/// What an empty table means: its keys' defaults (converting it reports nothing).
pub(crate) fn empty_table<R: Default, T>(from_raw: fn(&mut Cx<'_>, Range<usize>, R) -> T) -> T {
    let mut cx = Cx {
        file: Path::new(""),
        lines: LineIndex::new(""),
        errors: Vec::new(),
        warnings: Vec::new(),
        pruned: HashSet::new(),
        secrets: Vec::new(),
    };
    let value = from_raw(&mut cx, NOWHERE, R::default());
    debug_assert!(cx.errors.is_empty() && cx.warnings.is_empty());
    value
}

fn sort(list: &mut Vec<ConfigError>) {
    list.sort_by(|a, b| (a.line, a.column, &a.key).cmp(&(b.line, b.column, &b.key)));
    list.dedup();
}

/// Placeholder when a required value is missing: an error has been recorded, so it never
/// reaches a caller.
const NOWHERE: Range<usize> = 0..0;

pub(crate) struct Cx<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    /// Keys already reported for a wrong type: not "missing" as well.
    pruned: HashSet<String>,
    /// Every secret reference parsed, where it is written (for `validate` to resolve).
    secrets: Vec<SecretSite>,
}

impl Cx<'_> {
    fn at(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = self.lines.position(span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    fn error(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let e = self.at(span, key, message);
        self.errors.push(e);
    }

    fn warn(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let w = self.at(span, key, message);
        self.warnings.push(w);
    }

    /// Remember where a parsed secret reference is written.
    fn secret_site(&mut self, span: Range<usize>, key: &str, reference: &SecretRef) {
        let (line, column) = self.lines.position(span.start);
        self.secrets.push(SecretSite {
            key: key.to_string(),
            file: self.file.to_path_buf(),
            line,
            column,
            reference: reference.clone(),
        });
    }

    fn finish_errors(&mut self) -> Vec<ConfigError> {
        let mut errors = std::mem::take(&mut self.errors);
        sort(&mut errors);
        errors
    }

    /// Whether `key` or a table above it was already reported (wrong type or missing table).
    fn suppressed(&self, key: &str) -> bool {
        let mut k = key;
        loop {
            if self.pruned.contains(k) {
                return true;
            }
            match k.rfind(['.', '[']) {
                Some(i) => k = &k[..i],
                None => return false,
            }
        }
    }

    fn missing(&mut self, table: &Range<usize>, key: &str, what: &str) {
        if !self.suppressed(key) {
            self.error(table.clone(), key, format!("missing required key: {what}"));
        }
    }

    /// A required string: non-empty, or an error at the value (empty) or the table (missing).
    /// A `{{NAME}}` left from an app template: an error at the value, naming the `init` flag
    /// that fills it. True when one was found.
    fn placeholder(&mut self, v: &Spanned<String>, key: &str) -> bool {
        let Some(name) = placeholder_in(v.get_ref()) else {
            return false;
        };
        let flag = name
            .trim_matches(['{', '}'])
            .to_ascii_lowercase()
            .replace('_', "-");
        self.error(
            v.span(),
            key,
            format!(
                "`{name}` is not filled in: write the value here, or run `scimsync init` again \
                 with --{flag}"
            ),
        );
        true
    }

    pub(crate) fn required(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
        what: &str,
    ) -> String {
        match v {
            Some(v) if v.get_ref().trim().is_empty() => {
                self.error(v.span(), key, "must not be empty");
                String::new()
            }
            Some(v) if self.placeholder(&v, key) => String::new(),
            Some(v) => v.into_inner(),
            None => {
                self.missing(table, key, what);
                String::new()
            }
        }
    }

    fn job(&mut self, raw: RawJob, base_dir: &Path) -> JobConfig {
        JobConfig::from_raw(self, NOWHERE, raw, base_dir)
    }

    /// The file being read.
    pub(crate) fn file(&mut self) -> std::path::PathBuf {
        self.file.to_path_buf()
    }

    /// A value another rule computed.
    pub(crate) fn copied<T>(&mut self, v: T) -> T {
        v
    }

    /// `name`: the job id.
    pub(crate) fn job_name(&mut self, v: Option<Spanned<String>>, key: &str) -> String {
        match v {
            Some(n) => {
                let valid = !n.get_ref().is_empty()
                    && n.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    self.error(
                        n.span(),
                        key,
                        "expected letters, digits, `_` or `-` only (it is the job id)",
                    );
                }
                n.into_inner()
            }
            None => {
                self.missing(&NOWHERE, key, "the job id, e.g. name = \"tribeloo\"");
                String::new()
            }
        }
    }

    /// A string parsed by its type (`FromStr`, whose error is the message); the type's
    /// default when absent or invalid.
    pub(crate) fn parsed<T>(&mut self, v: Option<Spanned<String>>, key: &str) -> T
    where
        T: std::str::FromStr + Default,
        T::Err: Into<String>,
    {
        let Some(s) = v else {
            return T::default();
        };
        match s.get_ref().parse::<T>() {
            Ok(t) => t,
            Err(message) => {
                self.error(s.span(), key, message);
                T::default()
            }
        }
    }

    /// A required table's span and content; a missing one is reported once (unless an earlier
    /// error already explains it) and read as empty, so its keys are not reported again.
    fn required_table<R: Default>(
        &mut self,
        raw: Option<Spanned<R>>,
        table: &str,
        what: &str,
    ) -> (Range<usize>, R) {
        match raw {
            Some(r) => (r.span(), r.into_inner()),
            None => {
                if !self.suppressed(table) {
                    self.error(
                        NOWHERE,
                        table,
                        format!("missing required table [{table}] ({what})"),
                    );
                }
                self.pruned.insert(table.into());
                (NOWHERE, R::default())
            }
        }
    }

    pub(crate) fn source(
        &mut self,
        raw: Option<Spanned<RawSource>>,
        _key: &str,
        base_dir: &Path,
    ) -> SourceConfig {
        let (at, raw) = self.required_table(raw, "source", "Microsoft Graph");
        SourceConfig::from_raw(self, at, raw, base_dir)
    }

    /// `source.client_secret`, checked with `certificate` and `private_key`: exactly one of
    /// client_secret and certificate (+ private_key).
    pub(crate) fn credentials(
        &mut self,
        secret: Option<Spanned<String>>,
        key: &str,
        cert: &Option<Spanned<String>>,
        private_key: &Option<Spanned<String>>,
        at: &Range<usize>,
        base_dir: &Path,
    ) -> Option<SecretRef> {
        let spans = (
            secret.as_ref().map(Spanned::span),
            cert.as_ref().map(Spanned::span),
            private_key.as_ref().map(Spanned::span),
        );
        let secret = self.optional_secret(secret, key, base_dir, true);
        match spans {
            (None, None, None) => {
                let suppressed = ["client_secret", "certificate", "private_key"]
                    .iter()
                    .any(|k| self.suppressed(&format!("source.{k}")));
                if !suppressed {
                    self.missing(
                        at,
                        "source.client_secret",
                        "a secret reference such as env:NAME or file:PATH (or certificate + \
                         private_key instead)",
                    );
                }
            }
            (Some(_), Some(c), _) => self.error(
                c,
                "source.certificate",
                "client_secret is already set: use exactly one of client_secret or certificate",
            ),
            (Some(_), None, Some(k)) => self.error(
                k,
                "source.private_key",
                "private_key belongs to certificate, but client_secret is set",
            ),
            (None, Some(_), None) => self.missing(
                at,
                "source.private_key",
                "the certificate's PKCS#8 PEM private key, e.g. file:app.key",
            ),
            (None, None, Some(k)) => self.error(
                k,
                "source.private_key",
                "needs `certificate` (the client certificate PEM) next to it",
            ),
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        }
        secret
    }

    /// `source.assertion_algorithm`: only used with a certificate.
    pub(crate) fn assertion_algorithm(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        client_secret: &Option<SecretRef>,
        certificate: &Option<SecretRef>,
    ) -> AssertionAlgorithm {
        match v {
            Some(alg) if certificate.is_none() && client_secret.is_some() => {
                self.warn(
                    alg.span(),
                    key,
                    "only used with `certificate`; ignored with client_secret",
                );
                AssertionAlgorithm::default()
            }
            alg => self.choice(alg, key),
        }
    }

    /// `source.service_principal_id`: required with `scope = "assigned"` (written after it,
    /// so read from `scope` as written; an invalid scope counts as the default).
    pub(crate) fn service_principal_id(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        scope: &Option<Spanned<String>>,
        at: &Range<usize>,
    ) -> Option<String> {
        let scope = scope
            .as_ref()
            .and_then(|s| ScopeSetting::NAMES.iter().find(|(n, _)| n == s.get_ref()))
            .map_or_else(ScopeSetting::default, |(_, t)| *t);
        match v {
            Some(v) if v.get_ref().trim().is_empty() => {
                self.error(v.span(), key, "must not be empty");
                None
            }
            Some(v) if self.placeholder(&v, key) => None,
            Some(v) => Some(v.into_inner()),
            None if scope == ScopeSetting::Assigned => {
                if !self.suppressed(key) {
                    self.error(
                        at.clone(),
                        key,
                        "required when scope = \"assigned\" (the default): set the enterprise app's \
                         service principal object id, or set scope = \"all\"",
                    );
                }
                None
            }
            None => None,
        }
    }

    /// `source.exclude_default_access`: a warning when it cannot have an effect.
    pub(crate) fn exclude_default_access(
        &mut self,
        v: Option<Spanned<bool>>,
        key: &str,
        scope: ScopeSetting,
    ) -> bool {
        match v {
            Some(v) if *v.get_ref() && scope == ScopeSetting::All => {
                self.warn(
                    v.span(),
                    key,
                    "has no effect with scope = \"all\": every user is in scope regardless of roles",
                );
                true
            }
            v => v.is_some_and(Spanned::into_inner),
        }
    }

    pub(crate) fn target(
        &mut self,
        raw: Option<Spanned<RawTarget>>,
        _key: &str,
        base_dir: &Path,
    ) -> TargetConfig {
        let (at, raw) = self.required_table(raw, "target", "the app's SCIM endpoint");
        TargetConfig::from_raw(self, at, raw, base_dir)
    }

    /// `target.url`: required, and `aadOptscim062020` in it is Entra's switch, not ours.
    pub(crate) fn target_url(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
    ) -> String {
        let Some(u) = v else {
            self.missing(table, key, "the app's SCIM base URL (Entra's Tenant URL)");
            return String::new();
        };
        let url = self.url(Some(u.clone()), key, "");
        if u.get_ref().contains("aadOptscim062020") {
            self.warn(
                u.span(),
                key,
                "aadOptscim062020 is Entra's switch for RFC-compliant PATCH; here that is \
                 dialect = \"rfc\" (the default), and the URL is sent to the app as written",
            );
        }
        url
    }

    pub(crate) fn notifications(
        &mut self,
        raw: Option<Spanned<RawNotifications>>,
        _key: &str,
        base_dir: &Path,
    ) -> Notifications {
        let (at, raw) = open(raw);
        Notifications::from_raw(self, at, raw, base_dir)
    }

    /// An optional http(s) URL (see [`Cx::url`]).
    pub(crate) fn optional_url(&mut self, v: Option<Spanned<String>>, key: &str) -> Option<String> {
        v.map(|u| self.url(Some(u), key, ""))
    }

    /// `notifications.webhook_token`: only next to `webhook_url`.
    pub(crate) fn webhook_token(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        webhook_url: &Option<String>,
        base_dir: &Path,
    ) -> Option<SecretRef> {
        let token_span = v.as_ref().map(Spanned::span);
        let token = self.optional_secret(v, key, base_dir, true);
        if let Some(span) = token_span
            && webhook_url.is_none()
            && !self.suppressed("notifications.webhook_url")
        {
            self.error(
                span,
                key,
                "needs `webhook_url`: there is no webhook to send it to",
            );
        }
        token
    }

    /// `[notifications.smtp]`, when written.
    pub(crate) fn smtp(
        &mut self,
        v: Option<Spanned<RawSmtp>>,
        _key: &str,
        base_dir: &Path,
    ) -> Option<Smtp> {
        v.map(|s| Smtp::from_raw(self, s.span(), s.into_inner(), base_dir))
    }

    /// `notifications.smtp.host`: a host name (an IPv6 address without its brackets).
    pub(crate) fn smtp_host(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
    ) -> String {
        match v {
            Some(h) if h.get_ref().contains("://") || is_host_with_port(h.get_ref()) => {
                self.error(
                    h.span(),
                    key,
                    "expected a host name only; set the port with `port`",
                );
                h.into_inner()
            }
            // An IPv6 address is written as is, or in brackets; the notifier wants it bare.
            Some(h) if h.get_ref().starts_with('[') && h.get_ref().contains(':') => h
                .into_inner()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            h => self.required(h, key, table, "the mail server's host name"),
        }
    }

    /// An optional string that, when written, is not empty.
    pub(crate) fn optional_nonempty(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
    ) -> Option<String> {
        match v {
            Some(u) if u.get_ref().trim().is_empty() => {
                self.error(u.span(), key, "must not be empty");
                None
            }
            u => u.map(Spanned::into_inner),
        }
    }

    /// `notifications.smtp.password`: set together with `username`.
    pub(crate) fn smtp_password(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        username: &Option<String>,
        table: &Range<usize>,
        base_dir: &Path,
    ) -> Option<SecretRef> {
        let password_span = v.as_ref().map(Spanned::span);
        let password = self.optional_secret(v, key, base_dir, true);
        match (username, password_span) {
            (Some(_), None) if !self.suppressed(key) => self.missing(
                table,
                key,
                "the SMTP password (a secret reference), as `username` is set",
            ),
            (None, Some(span)) if !self.suppressed("notifications.smtp.username") => {
                self.error(span, key, "needs `username` next to it")
            }
            _ => {}
        }
        password
    }

    /// `notifications.smtp.from`: a required mail address.
    pub(crate) fn address(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
        what: &str,
    ) -> String {
        match v {
            Some(f) => {
                self.check_address(&f, key);
                f.into_inner()
            }
            None => {
                self.missing(table, key, what);
                String::new()
            }
        }
    }

    /// `notifications.smtp.to`: at least one mail address.
    pub(crate) fn addresses(
        &mut self,
        v: Option<Vec<Spanned<String>>>,
        key: &str,
        table: &Range<usize>,
        what: &str,
    ) -> Vec<String> {
        match v {
            Some(list) if list.is_empty() => {
                self.error(table.clone(), key, "must list at least one recipient");
                Vec::new()
            }
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    self.check_address(&a, &format!("{key}[{i}]"));
                    a.into_inner()
                })
                .collect(),
            None => {
                self.missing(table, key, what);
                Vec::new()
            }
        }
    }

    /// `notifications.smtp.tls`, or the older `starttls` (not both); without either, the port
    /// decides: 465 is implicit TLS, anything else STARTTLS. `starttls = false` on 465 is
    /// implicit TLS too (as it always was). Credentials in cleartext are refused unless the
    /// host is loopback.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn smtp_tls(
        &mut self,
        tls: Option<Spanned<String>>,
        key: &str,
        starttls: Option<Spanned<bool>>,
        port: u16,
        host: &str,
        username: &Option<Spanned<String>>,
        password: &Option<Spanned<String>>,
    ) -> SmtpTls {
        let by_port = if port == 465 {
            SmtpTls::Implicit
        } else {
            SmtpTls::Starttls
        };
        let (tls, tls_at) = match (tls, starttls) {
            (Some(t), st) => {
                if let Some(st) = st {
                    self.error(
                        st.span(),
                        "notifications.smtp.starttls",
                        "`tls` is set: remove `starttls` (its older spelling)",
                    );
                }
                let span = t.span();
                let mode = self.choice_or(Some(t), key, by_port);
                (mode, Some((span, key)))
            }
            (None, Some(st)) => {
                let mode = match (*st.get_ref(), port) {
                    (true, _) => SmtpTls::Starttls,
                    (false, 465) => SmtpTls::Implicit,
                    (false, _) => SmtpTls::None,
                };
                (mode, Some((st.span(), "notifications.smtp.starttls")))
            }
            (None, None) => (by_port, None),
        };
        // As `username` converts: an empty one is an error of its own, not a credential.
        let credentials = username
            .as_ref()
            .is_some_and(|u| !u.get_ref().trim().is_empty())
            || password.is_some();
        if let Some((span, key)) = tls_at
            && tls == SmtpTls::None
            && credentials
            && !crate::smtp::is_loopback_host(host)
        {
            self.error(
                span,
                key,
                format!(
                    "would send the SMTP username and password in cleartext: {host:?} is not a \
                     loopback host. Use tls = \"starttls\" (port 587) or tls = \"implicit\" (port \
                     465), or remove username and password (plain SMTP only without credentials, \
                     or to localhost)"
                ),
            );
        }
        tls
    }

    /// A plausible mail address: `local@domain`, no spaces or angle brackets.
    fn check_address(&mut self, v: &Spanned<String>, key: &str) {
        let a = v.get_ref();
        let ok = a.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        }) && !a.contains(|c: char| c.is_whitespace() || c == '<' || c == '>');
        if !ok {
            self.error(
                v.span(),
                key,
                format!("expected a mail address like name@example.com, found {a:?}"),
            );
        }
    }

    pub(crate) fn users(
        &mut self,
        raw: Option<Spanned<RawUsers>>,
        _key: &str,
        top_skip: Option<Spanned<bool>>,
    ) -> UsersConfig {
        let (at, raw) = open(raw);
        UsersConfig::from_raw(self, at, raw, top_skip)
    }

    /// `users.skip_out_of_scope_deletions`, or the same key at the top level (not both).
    pub(crate) fn skip_out_of_scope_deletions(
        &mut self,
        v: Option<Spanned<bool>>,
        key: &str,
        top: Option<Spanned<bool>>,
    ) -> bool {
        match (top, v) {
            (Some(top), Some(inner)) => {
                let line = self.lines.line(top.span().start);
                self.error(
                    inner.span(),
                    key,
                    format!("also set at the top level (line {line}): set it in one place only"),
                );
                *top.get_ref()
            }
            (Some(v), None) | (None, Some(v)) => v.into_inner(),
            (None, None) => false,
        }
    }

    /// `[[<object>.mappings]]`; `require_matching` demands at least one matching attribute.
    pub(crate) fn mappings(
        &mut self,
        raw: Option<Vec<Spanned<RawMapping>>>,
        list_key: &str,
        mut at: Range<usize>,
        require_matching: bool,
    ) -> Vec<Mapping> {
        let object = list_key.trim_end_matches(".mappings");
        let raw = raw.unwrap_or_default();
        if let Some(first) = raw.first() {
            at = first.span();
        }
        let mut mappings = Vec::with_capacity(raw.len());
        // Lower-cased target → (index, line); precedence → (index, line).
        let mut targets: HashMap<String, (usize, usize)> = HashMap::new();
        let mut precedences: HashMap<i64, (usize, usize)> = HashMap::new();
        let mut any_matching = false;
        for (i, entry) in raw.into_iter().enumerate() {
            let span = entry.span();
            let line = self.lines.line(span.start);
            let key = format!("{list_key}[{i}]");
            let mut m = entry.into_inner();
            any_matching |= m.matching.is_some();

            let target = match m.target.take() {
                Some(t) => {
                    let name = t.get_ref().trim();
                    let tkey = format!("{key}.target");
                    if name.is_empty() {
                        self.error(t.span(), tkey, "must not be empty");
                    } else if name.eq_ignore_ascii_case("id") {
                        self.error(
                            t.span(),
                            tkey,
                            "the target `id` is assigned by the app and must not be mapped",
                        );
                    } else if let Err(msg) = crate::scim_names::check_target(object, name) {
                        self.error(t.span(), tkey, msg);
                    } else if let Some((j, first)) = targets.get(&name.to_ascii_lowercase()) {
                        let msg =
                            format!("`{name}` is already mapped by {list_key}[{j}] (line {first})");
                        self.error(t.span(), tkey, msg);
                    } else {
                        targets.insert(name.to_ascii_lowercase(), (i, line));
                    }
                    name.to_string()
                }
                None => {
                    self.missing(
                        &span,
                        &format!("{key}.target"),
                        "the SCIM attribute to write",
                    );
                    String::new()
                }
            };

            let value = self.mapping_value(&m, &key, &span);

            let matching = match &m.matching {
                None => None,
                Some(p) => {
                    let pkey = format!("{key}.matching");
                    let n = *p.get_ref();
                    if !(1..=i64::from(u32::MAX)).contains(&n) {
                        self.error(
                            p.span(),
                            pkey,
                            format!("must be 1 or more (1 is tried first), found {n}"),
                        );
                    } else if matches!(value, MappingValue::Constant { .. } | MappingValue::None) {
                        self.error(
                            p.span(),
                            pkey,
                            format!(
                                "only a source or expression mapping can match: a constant would match every {} to one object",
                                singular(object)
                            ),
                        );
                    } else if let Some((j, first)) = precedences.get(&n) {
                        let msg = format!(
                            "precedence {n} is already used by {list_key}[{j}] (line {first})"
                        );
                        self.error(p.span(), pkey, msg);
                    } else {
                        precedences.insert(n, (i, line));
                    }
                    u32::try_from(n).ok()
                }
            };

            let apply = self
                .one_of(m.apply, &format!("{key}.apply"), Apply::NAMES)
                .unwrap_or_default();
            let default = m.default.map(|d| {
                if matches!(value, MappingValue::Constant { .. }) {
                    self.warn(
                        d.span(),
                        format!("{key}.default"),
                        "never used: a constant mapping always has a value",
                    );
                }
                d.into_inner()
            });
            mappings.push(Mapping {
                target,
                value,
                matching,
                apply,
                default,
                required: m.required.is_some_and(Spanned::into_inner),
                line,
            });
        }
        if require_matching && !any_matching && !self.suppressed(list_key) {
            let (what, example) = if object == "groups" {
                (
                    "groups",
                    "target = \"displayName\", source = \"displayName\", matching = 1",
                )
            } else {
                (
                    "users",
                    "target = \"userName\", source = \"userPrincipalName\", matching = 1",
                )
            };
            let message = if mappings.is_empty() {
                format!(
                    "no mappings: add [[{list_key}]] entries, at least one with `matching`, e.g. {example}"
                )
            } else {
                format!(
                    "no mapping sets `matching`: at least one attribute must identify {what} in the app, e.g. {example}"
                )
            };
            self.error(at, list_key, message);
        }
        mappings
    }

    /// `[[<object>.scoping]]` filters and their clauses.
    pub(crate) fn scoping(
        &mut self,
        raw: Option<Vec<Spanned<RawFilter>>>,
        list_key: &str,
    ) -> Vec<ScopingFilter> {
        let object = list_key.trim_end_matches(".scoping");
        let mut filters = Vec::new();
        for (i, entry) in raw.unwrap_or_default().into_iter().enumerate() {
            let span = entry.span();
            let key = format!("{object}.scoping[{i}]");
            let RawFilter { name, clauses } = entry.into_inner();
            let name = match name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    self.error(n.span(), format!("{key}.name"), "must not be empty");
                    None
                }
                n => n.map(Spanned::into_inner),
            };
            let clauses = clauses.unwrap_or_default();
            if clauses.is_empty() && !self.suppressed(&format!("{key}.clauses")) {
                self.error(
                    span.clone(),
                    format!("{key}.clauses"),
                    format!(
                        "a scoping filter needs at least one clause: add [[{object}.scoping.clauses]] \
                         with attribute, operator and value"
                    ),
                );
            }
            let clauses = clauses
                .into_iter()
                .enumerate()
                .filter_map(|(j, c)| self.clause(c, &format!("{key}.clauses[{j}]")))
                .collect();
            filters.push(ScopingFilter {
                name,
                clauses,
                line: self.lines.line(span.start),
            });
        }
        filters
    }

    fn clause(&mut self, raw: Spanned<RawClause>, key: &str) -> Option<Clause> {
        let span = raw.span();
        let line = self.lines.line(span.start);
        let RawClause {
            attribute,
            operator,
            value,
        } = raw.into_inner();
        if let Some(a) = &attribute {
            self.source_attribute(a.get_ref(), a.span(), &format!("{key}.attribute"));
        }
        let attribute = self.required(
            attribute,
            &format!("{key}.attribute"),
            &span,
            "the source attribute to test, e.g. attribute = \"department\"",
        );
        let Some(operator) = operator else {
            self.missing(
                &span,
                &format!("{key}.operator"),
                "e.g. operator = \"EQUALS\" (Entra's spelling)",
            );
            return None;
        };
        let op = match Operator::parse(operator.get_ref()) {
            Ok(op) => op,
            Err(message) => {
                self.error(operator.span(), format!("{key}.operator"), message);
                return None;
            }
        };
        let vkey = format!("{key}.value");
        let value = match value {
            Some(v) if op.is_unary() => {
                self.error(
                    v.span(),
                    vkey,
                    format!("`{op}` takes no value: remove `value`"),
                );
                None
            }
            None if op.is_unary() => None,
            None => {
                if !self.suppressed(&vkey) {
                    self.error(
                        span.clone(),
                        vkey,
                        format!("missing required key: value (`{op}` compares with it)"),
                    );
                }
                None
            }
            Some(v) => {
                self.clause_value(op, &v, &vkey, line);
                Some(v.into_inner())
            }
        };
        Some(Clause {
            attribute,
            operator: op,
            value,
            line,
        })
    }

    fn clause_value(&mut self, op: Operator, v: &Spanned<String>, key: &str, line: usize) {
        let text = v.get_ref();
        let problem = match op {
            Operator::GreaterThan | Operator::GreaterThanOrEquals
                if text.trim().parse::<i64>().is_err() =>
            {
                Some(format!(
                    "`{op}` compares integers: expected a whole number, found {text:?}"
                ))
            }
            Operator::RegexMatch | Operator::NotRegexMatch => {
                regex::Regex::new(text).err().map(|e| {
                    // The regex crate's message spans several lines; keep the summary line.
                    let detail = match &e {
                        regex::Error::Syntax(s) => s
                            .lines()
                            .rev()
                            .find(|l| l.starts_with("error:"))
                            .unwrap_or("invalid syntax")
                            .trim_start_matches("error:")
                            .trim()
                            .to_string(),
                        other => other.to_string(),
                    };
                    format!(
                        "the pattern of the clause on line {line} does not compile: {detail} \
                         (Rust regex syntax: no lookaround or backreferences)"
                    )
                })
            }
            Operator::In | Operator::NotIn if text.split(',').all(|i| i.trim().is_empty()) => Some(
                format!("`{op}` takes a comma-separated list of values, found none"),
            ),
            _ => None,
        };
        if let Some(problem) = problem {
            self.error(v.span(), key, problem);
        }
    }

    /// `store.url`: required; a password written in a literal URL is warned about.
    pub(crate) fn store_url(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
        base_dir: &Path,
    ) -> SecretRef {
        let Some(url_value) = v else {
            self.error(
                table.clone(),
                key,
                "missing: give url = \"postgres://user@host/db\" (or env:NAME / file:PATH)",
            );
            return SecretRef::literal("");
        };
        let literal_with_password = {
            let v = url_value.get_ref();
            let authority = v.split_once("://").map(|(_, r)| r).unwrap_or("");
            let authority = authority.split(['/', '?']).next().unwrap_or("");
            authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
        };
        let url_span = url_value.span();
        let Some(url) = self.optional_secret(Some(url_value), key, base_dir, false) else {
            return SecretRef::literal("");
        };
        if url.is_literal() && literal_with_password {
            self.warn(
                url_span,
                key,
                "the URL holds a password; move it to password = \"env:NAME\" or file:PATH",
            );
        }
        url
    }

    /// `admin.bind`: an address and port; beyond loopback it needs a token, and TLS or
    /// `allow_plain_http` (read here as written, before they are converted).
    pub(crate) fn admin_bind(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        token: &Option<Spanned<String>>,
        tls_cert: &Option<Spanned<String>>,
        tls_key: &Option<Spanned<String>>,
        allow_plain_http: &Option<Spanned<bool>>,
    ) -> SocketAddr {
        let mut bind = crate::DEFAULT_ADMIN_BIND;
        if let Some(b) = &v {
            match b.get_ref().trim().parse::<SocketAddr>() {
                Ok(addr) => bind = addr,
                Err(_) => self.error(
                    b.span(),
                    key,
                    format!(
                        "expected an IP address and port like \"127.0.0.1:8787\", found {:?}",
                        b.get_ref()
                    ),
                ),
            }
        }
        // As `token` converts: an invalid reference is reported there, and is no token.
        let no_token = token
            .as_ref()
            .is_none_or(|t| SecretRef::parse(t.get_ref()).is_err());
        if no_token
            && !bind.ip().is_loopback()
            && !self.suppressed("admin.token")
            && let Some(b) = &v
        {
            self.error(
                b.span(),
                "admin.token",
                "the admin API listens beyond loopback, so it needs a token: set token = \"env:NAME\"",
            );
        }
        let tls_given = tls_cert.is_some() || tls_key.is_some();
        let plain_http = allow_plain_http.as_ref().is_some_and(|v| *v.get_ref());
        let beyond_loopback = !bind.ip().is_loopback();
        if beyond_loopback
            && !tls_given
            && !plain_http
            && !self.suppressed("admin.allow_plain_http")
            && let Some(b) = &v
        {
            self.error(
                b.span(),
                key,
                "the admin API listens beyond loopback without TLS, so the admin token would cross \
                 the network in clear: set tls_cert and tls_key (PEM files), or bind to loopback; \
                 allow_plain_http = true accepts the risk (behind a TLS proxy on a trusted network)",
            );
        }
        if let Some(a) = allow_plain_http
            && plain_http
        {
            if tls_given {
                self.warn(
                    a.span(),
                    "admin.allow_plain_http",
                    "has no effect: with tls_cert and tls_key the admin API speaks HTTPS only",
                );
            } else if beyond_loopback {
                self.warn(
                    a.span(),
                    "admin.allow_plain_http",
                    "the admin API answers plain HTTP beyond loopback: the admin token crosses the \
                     network in clear",
                );
            }
        }
        bind
    }

    /// `tls_cert` and `tls_key`: both or neither, each `file:PATH` (or `env:NAME`) of PEM text.
    /// The files are read when `serve` starts ([`crate::AdminTls::read`]).
    pub(crate) fn admin_tls(
        &mut self,
        cert: Option<Spanned<String>>,
        _cert_key: &str,
        key: Option<Spanned<String>>,
        base_dir: &Path,
    ) -> Option<crate::AdminTls> {
        let mut pem_ref = |v: &Spanned<String>, key: &str, what: &str| {
            let r = match SecretRef::parse(v.get_ref()) {
                Ok(r) if r.is_literal() => Err(format!(
                    "expected file:PATH of a PEM {what} (or env:NAME holding the PEM text)"
                )),
                other => other,
            };
            match r {
                Ok(r) => Some((r.rebased(base_dir), self.lines.position(v.span().start))),
                Err(message) => {
                    self.error(v.span(), key, message);
                    None
                }
            }
        };
        let c = cert
            .as_ref()
            .map(|v| pem_ref(v, "admin.tls_cert", "certificate chain"));
        let k = key
            .as_ref()
            .map(|v| pem_ref(v, "admin.tls_key", "private key"));
        match (c, k) {
            (Some(Some((cert, cert_at))), Some(Some((key, key_at)))) => {
                Some(crate::AdminTls::new(self.file, cert, cert_at, key, key_at))
            }
            (Some(Some(_)), None) => {
                if let Some(v) = &cert {
                    self.error(
                        v.span(),
                        "admin.tls_cert",
                        "tls_cert needs tls_key, the certificate's private key, as well",
                    );
                }
                None
            }
            (None, Some(Some(_))) => {
                if let Some(v) = &key {
                    self.error(
                        v.span(),
                        "admin.tls_key",
                        "tls_key needs tls_cert, the certificate chain it belongs to, as well",
                    );
                }
                None
            }
            _ => None,
        }
    }

    fn mapping_value(&mut self, m: &RawMapping, key: &str, span: &Range<usize>) -> MappingValue {
        let given: Vec<(&str, &Spanned<String>)> = [
            ("source", &m.source),
            ("constant", &m.constant),
            ("expression", &m.expression),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        match given.as_slice() {
            [] if m.default.is_some() => MappingValue::None,
            [] if ["source", "constant", "expression"]
                .iter()
                .any(|k| self.suppressed(&format!("{key}.{k}"))) =>
            {
                MappingValue::None
            }
            [] => {
                self.error(
                    span.clone(),
                    key,
                    "a mapping needs one of `source`, `constant` or `expression` (or only a `default`, \
                     for a value set on create)",
                );
                MappingValue::None
            }
            [(kind, v)] => {
                let vkey = format!("{key}.{kind}");
                match *kind {
                    "source" => {
                        if v.get_ref().trim().is_empty() {
                            self.error(v.span(), vkey, "must not be empty");
                        } else {
                            self.source_attribute(v.get_ref().trim(), v.span(), &vkey);
                        }
                        MappingValue::Direct {
                            source: v.get_ref().trim().to_string(),
                        }
                    }
                    "constant" => {
                        if v.get_ref().is_empty() {
                            self.error(
                                v.span(),
                                vkey,
                                "must not be empty: empty values are never sent",
                            );
                        }
                        MappingValue::Constant {
                            value: v.get_ref().clone(),
                        }
                    }
                    _ => {
                        self.expression(v, &vkey);
                        MappingValue::Expression {
                            text: v.get_ref().clone(),
                        }
                    }
                }
            }
            [(first, v), rest @ ..] => {
                for (kind, v) in rest {
                    let msg = format!(
                        "`{first}` is already set: a mapping takes exactly one of source, constant or expression"
                    );
                    self.error(v.span(), format!("{key}.{kind}"), msg);
                }
                // Keep the first so later checks don't pile on.
                let text = v.get_ref().clone();
                match *first {
                    "source" => MappingValue::Direct { source: text },
                    "constant" => MappingValue::Constant { value: text },
                    _ => MappingValue::Expression { text },
                }
            }
        }
    }

    /// Parse and check an expression; each problem is reported at its own line and column in
    /// the file (exact for literal strings, the usual way to write expressions; for basic
    /// strings with escapes the column can be off by the escapes before it).
    fn expression(&mut self, v: &Spanned<String>, key: &str) {
        let text = v.get_ref();
        let raw = self.lines.text().get(v.span()).unwrap_or_default();
        let delimiter = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
            let newline = raw[3..].starts_with('\n') as usize;
            3 + newline
        } else {
            1
        };
        let errors = match scimsync_expr::parse(text) {
            Err(e) => vec![e],
            Ok(expr) => {
                for name in scimsync_expr::attributes(&expr) {
                    self.source_attribute(&name, v.span(), key);
                    if name.eq_ignore_ascii_case("manager") {
                        // Entra too: a reference is mapped directly, never through a function.
                        self.error(
                            v.span(),
                            key,
                            "`manager` is a reference attribute: map it directly (`source = \"manager\"`), \
                             and scimsync writes the manager's target id once the manager is \
                             provisioned; inside an expression it would be the manager's Graph \
                             object id, which the target does not know"
                                .to_string(),
                        );
                    }
                }
                scimsync_expr::check(&expr, &|_| true)
            }
        };
        for e in errors {
            let offset = byte_offset(text, e.line, e.column);
            let at = v.span().start + delimiter + offset;
            self.error(at..at, key, format!("expression: {}", e.message));
        }
    }

    /// A source attribute a mapping, an expression or a scoping clause reads: a name that looks
    /// like a directory extension must be one exactly (it is sent to Graph's `$select` as
    /// written). Whether other names exist in Graph is checked by `scimsync validate`.
    fn source_attribute(&mut self, name: &str, span: Range<usize>, key: &str) {
        if name.len() >= EXTENSION_PREFIX.len()
            && name.as_bytes()[..EXTENSION_PREFIX.len()]
                .eq_ignore_ascii_case(EXTENSION_PREFIX.as_bytes())
            && !is_directory_extension(name)
        {
            self.error(
                span,
                key,
                format!(
                    "source attribute {name:?} is not a directory extension name: expected \
                     extension_<app id without hyphens: 32 lowercase hex digits>_<name: letters, \
                     digits, _> (case-sensitive), e.g. \
                     extension_b7d8e648520f41d3b9c0fdeb91768a0a_costCenter"
                ),
            );
        }
    }

    /// An enum value written as a lowercase string; `None` when absent or invalid.
    fn one_of<T: Copy>(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let v = v?;
        if let Some((_, t)) = options.iter().find(|(name, _)| name == v.get_ref()) {
            return Some(*t);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
        let expected = match names.as_slice() {
            [a, b] => format!("{a} or {b}"),
            _ => names.join(", "),
        };
        self.error(
            v.span(),
            key,
            format!("expected {expected}, found {:?}", v.get_ref()),
        );
        None
    }

    /// A sub-table; an absent one is an empty one.
    pub(crate) fn table<R: Default, T>(
        &mut self,
        v: Option<Spanned<R>>,
        _key: &str,
        from_raw: fn(&mut Cx<'_>, Range<usize>, R) -> T,
    ) -> T {
        let (at, raw) = open(v);
        from_raw(self, at, raw)
    }

    /// A whole number of seconds in `range`.
    pub(crate) fn secs_in(
        &mut self,
        v: Option<Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: Duration,
    ) -> Duration {
        Duration::from_secs(self.int_in(v, key, range, default.as_secs()))
    }

    /// A bool key; `default` when absent.
    pub(crate) fn flag(&mut self, v: Option<Spanned<bool>>, _key: &str, default: bool) -> bool {
        v.map_or(default, Spanned::into_inner)
    }

    /// A count of 1 or more.
    pub(crate) fn count(&mut self, v: Option<Spanned<i64>>, key: &str, default: u64) -> u64 {
        self.int_in(v, key, 1..=i64::MAX.unsigned_abs(), default)
    }

    /// A share of failed writes, 0..=1.
    pub(crate) fn share(&mut self, v: Option<Spanned<f64>>, key: &str, default: f64) -> f64 {
        match v {
            None => default,
            Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
            Some(r) => {
                self.error(
                    r.span(),
                    key,
                    format!(
                        "must be between 0 and 1 (a share of failed writes, e.g. 0.4), found {}",
                        r.get_ref()
                    ),
                );
                default
            }
        }
    }

    /// An enum key ([`Choice`]); its default when absent or invalid.
    pub(crate) fn choice<T: Choice + Default>(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
    ) -> T {
        self.one_of(v, key, T::NAMES).unwrap_or_default()
    }

    /// An enum key whose default depends on another one.
    pub(crate) fn choice_or<T: Choice>(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        default: T,
    ) -> T {
        self.one_of(v, key, T::NAMES).unwrap_or(default)
    }

    /// An integer key in `range`, as the type the config holds; `default` when absent (or,
    /// with an error recorded, when out of range), so each default is written once.
    pub(crate) fn int_in<T>(
        &mut self,
        v: Option<Spanned<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<T>,
        default: T,
    ) -> T
    where
        T: Copy + PartialOrd + std::fmt::Display + TryFrom<i64>,
    {
        let Some(v) = v else {
            return default;
        };
        match T::try_from(*v.get_ref()) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                let (min, max) = (range.start(), range.end());
                self.error(
                    v.span(),
                    key,
                    format!("must be between {min} and {max}, found {}", v.get_ref()),
                );
                default
            }
        }
    }

    /// An http(s) URL with a host and no credentials; `http` only for loopback. An empty
    /// `default` means the key is required (callers handle absence), else absence → default.
    pub(crate) fn url(&mut self, v: Option<Spanned<String>>, key: &str, default: &str) -> String {
        let Some(v) = v else {
            return default.to_string();
        };
        if self.placeholder(&v, key) {
            return String::new();
        }
        // URLs may carry tokens in their query, so messages describe the problem, not the URL.
        let problem = match url::Url::parse(v.get_ref().trim()) {
            Err(e) => Some(format!("not a valid URL: {e}")),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                Some(format!("expected an https URL, found scheme {:?}", u.scheme()))
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                Some("credentials do not belong in the URL: use the token or client_secret key".into())
            }
            Ok(u) => match u.host() {
                None => Some("the URL has no host".into()),
                Some(host) if u.scheme() == "http" && !is_loopback(&host) => Some(
                    "plain http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https".into(),
                ),
                Some(_) => None,
            },
        };
        if let Some(problem) = problem {
            self.error(v.span(), key, problem);
        }
        v.get_ref().trim().trim_end_matches('/').to_string()
    }

    pub(crate) fn secret(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        table: &Range<usize>,
        base_dir: &Path,
    ) -> SecretRef {
        let Some(v) = v else {
            self.missing(
                table,
                key,
                "a secret reference such as env:NAME or file:PATH",
            );
            return SecretRef::literal("");
        };
        match SecretRef::parse(v.get_ref()) {
            Ok(r) => {
                if r.is_literal() {
                    self.warn(
                        v.span(),
                        key,
                        "literal secret in the file; use env:NAME or file:PATH",
                    );
                }
                let r = r.rebased(base_dir);
                self.secret_site(v.span(), key, &r);
                r
            }
            Err(message) => {
                self.error(v.span(), key, message);
                SecretRef::literal("")
            }
        }
    }
}

impl Cx<'_> {
    /// An optional secret reference; `warn_literal` for real secrets (not certificates).
    pub(crate) fn optional_secret(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        base_dir: &Path,
        warn_literal: bool,
    ) -> Option<SecretRef> {
        let v = v?;
        match SecretRef::parse(v.get_ref()) {
            Ok(r) => {
                if warn_literal && r.is_literal() {
                    self.warn(
                        v.span(),
                        key,
                        "literal secret in the file; use env:NAME or file:PATH",
                    );
                }
                let r = r.rebased(base_dir);
                self.secret_site(v.span(), key, &r);
                Some(r)
            }
            Err(message) => {
                self.error(v.span(), key, message);
                None
            }
        }
    }

    /// A duration key; `default` when absent or invalid.
    pub(crate) fn duration_or(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        self.duration(v, key, Some(default)).unwrap_or(default)
    }

    /// A list of durations, `key[i]` each; the invalid ones dropped, `default` when absent.
    pub(crate) fn durations_or(
        &mut self,
        v: Option<Vec<Spanned<String>>>,
        key: &str,
        default: &[Duration],
    ) -> Vec<Duration> {
        match v {
            None => default.to_vec(),
            Some(list) => list
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| self.duration(Some(v), &format!("{key}[{i}]"), None))
                .collect(),
        }
    }

    /// `escrow.give_up_after`: a duration not shorter than the first retry delay.
    pub(crate) fn give_up_after(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        retry_delays: &[Duration],
        daily_after: Duration,
        default: Duration,
    ) -> Duration {
        let Some(v) = v else {
            return default;
        };
        let span = v.span();
        let g = self.duration(Some(v), key, None).unwrap_or(default);
        let first = retry_delays.first().copied().unwrap_or(daily_after);
        if g < first {
            self.error(
                span,
                key,
                "is shorter than the first retry delay: failed writes would never be retried",
            );
        }
        g
    }

    /// A duration like "6h", "28d", "30m", "45s" or "1h30m". `None` when invalid, or absent
    /// without a default.
    fn duration(
        &mut self,
        v: Option<Spanned<String>>,
        key: &str,
        default: Option<Duration>,
    ) -> Option<Duration> {
        let Some(v) = v else {
            return default;
        };
        match crate::schedule::parse_duration(v.get_ref().trim()) {
            Ok(d) => Some(d),
            Err(message) => {
                self.error(v.span(), key, message);
                None
            }
        }
    }
}

const EXTENSION_PREFIX: &str = "extension_";

/// `extension_[0-9a-f]{32}_[A-Za-z0-9_]+`: a directory extension source attribute (the same
/// rule as `scimsync_graph::is_directory_extension`, which reads it).
pub(crate) fn is_directory_extension(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(EXTENSION_PREFIX) else {
        return false;
    };
    let Some((app, attr)) = rest.split_once('_') else {
        return false;
    };
    app.len() == 32
        && app.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && !attr.is_empty()
        && attr.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `host:port` (or any `:` that does not make an IPv6 address).
fn is_host_with_port(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err()
}

fn singular(object: &str) -> &str {
    object.strip_suffix('s').unwrap_or(object)
}

/// Byte offset of a 1-based line and column (in characters) within `text`.
fn byte_offset(text: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let col = (column.max(1) - 1) as usize;
            return offset + l.char_indices().nth(col).map(|(b, _)| b).unwrap_or(l.len());
        }
        offset += l.len();
    }
    text.len()
}

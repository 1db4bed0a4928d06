//! From TOML text to a [`JobConfig`]: syntax, shape (see `schema`), then meaning, collecting
//! every error on the way instead of stopping at the first.

use crate::error::LineIndex;
use crate::raw::{RawActions, RawJob, RawMapping, RawSource, RawTarget, RawUsers};
use crate::schema::{self, Issue};
use crate::{
    Apply, ConfigError, DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, DEFAULT_MAX_CONCURRENCY,
    DEFAULT_PAGE_SIZE, DEFAULT_TIMEOUT, DialectSetting, JobConfig, Loaded, Mapping, MappingValue,
    Schedule, ScopeSetting, SecretRef, SourceConfig, TargetActions, TargetConfig, UsersConfig,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;
use toml::de::DeTable;

pub(crate) fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    let mut cx = Cx {
        file: path,
        lines: LineIndex::new(text),
        errors: Vec::new(),
        warnings: Vec::new(),
        pruned: HashSet::new(),
    };

    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The tree is incomplete after a syntax error; anything checked on it would mislead.
        for e in syntax {
            let at = e.span().unwrap_or(0..0);
            let key = schema::syntax_key(text, at.start);
            cx.error(at, key, e.message());
        }
        return Err(cx.finish_errors());
    }

    let mut issues = Vec::new();
    schema::check(root.get_mut(), schema::JOB, "", &mut issues, &mut cx.pruned);
    for Issue { span, key, message } in issues {
        cx.error(span, key, message);
    }

    let raw = match RawJob::deserialize(toml::de::Deserializer::from(root.clone())) {
        Ok(raw) => raw,
        Err(e) => {
            // The shape pass should have caught everything serde can object to; this is the
            // backstop, so keep its message but never let it carry a secret's value.
            let at = e.span().unwrap_or(0..0);
            let key = schema::locate(root.get_ref(), at.start, "");
            let message = if key.ends_with("client_secret") || key.ends_with("token") {
                "invalid secret reference".to_string()
            } else {
                e.message().to_string()
            };
            cx.error(at, key, message);
            return Err(cx.finish_errors());
        }
    };

    let base_dir = path.parent().unwrap_or(Path::new(""));
    let job = cx.job(raw, base_dir);
    if cx.errors.is_empty() {
        sort(&mut cx.warnings);
        Ok(Loaded {
            job,
            warnings: cx.warnings,
        })
    } else {
        Err(cx.finish_errors())
    }
}

fn sort(list: &mut Vec<ConfigError>) {
    list.sort_by(|a, b| (a.line, a.column, &a.key).cmp(&(b.line, b.column, &b.key)));
    list.dedup();
}

/// Placeholder when a required value is missing: an error has been recorded, so it never
/// reaches a caller.
const NOWHERE: Range<usize> = 0..0;

struct Cx<'a> {
    file: &'a Path,
    lines: LineIndex<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    /// Keys already reported for a wrong type: not "missing" as well.
    pruned: HashSet<String>,
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
    fn required(
        &mut self,
        v: Option<Spanned<String>>,
        table: &Range<usize>,
        key: &str,
        what: &str,
    ) -> String {
        match v {
            Some(v) if v.get_ref().trim().is_empty() => {
                self.error(v.span(), key, "must not be empty");
                String::new()
            }
            Some(v) => v.into_inner(),
            None => {
                self.missing(table, key, what);
                String::new()
            }
        }
    }

    fn job(&mut self, raw: RawJob, base_dir: &Path) -> JobConfig {
        let name = match raw.name {
            Some(n) => {
                let valid = !n.get_ref().is_empty()
                    && n.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    self.error(
                        n.span(),
                        "name",
                        "expected letters, digits, `_` or `-` only (it is the job id)",
                    );
                }
                n.into_inner()
            }
            None => {
                self.missing(&NOWHERE, "name", "the job id, e.g. name = \"tribeloo\"");
                String::new()
            }
        };
        let schedule = match raw.schedule {
            None => Schedule::default(),
            Some(s) => match s.get_ref().parse::<Schedule>() {
                Ok(schedule) => schedule,
                Err(message) => {
                    self.error(s.span(), "schedule", message);
                    Schedule::default()
                }
            },
        };
        JobConfig {
            path: self.file.to_path_buf(),
            name,
            schedule,
            skip_out_of_scope_deletions: raw
                .skip_out_of_scope_deletions
                .is_some_and(Spanned::into_inner),
            source: self.source(raw.source, base_dir),
            target: self.target(raw.target, base_dir),
            users: self.users(raw.users),
        }
    }

    fn source(&mut self, raw: Option<Spanned<RawSource>>, base_dir: &Path) -> SourceConfig {
        let (at, raw) = match raw {
            Some(r) => (r.span(), r.into_inner()),
            None => {
                if !self.suppressed("source") {
                    self.error(
                        NOWHERE,
                        "source",
                        "missing required table [source] (Microsoft Graph)",
                    );
                }
                self.pruned.insert("source".into());
                (NOWHERE, RawSource::empty())
            }
        };
        let tenant_id = self.required(
            raw.tenant_id,
            &at,
            "source.tenant_id",
            "the Entra tenant id or domain",
        );
        let client_id = self.required(
            raw.client_id,
            &at,
            "source.client_id",
            "the app registration's client id",
        );
        let client_secret = self.secret(raw.client_secret, &at, "source.client_secret", base_dir);
        let scope = self
            .choice(
                raw.scope,
                "source.scope",
                &[
                    ("assigned", ScopeSetting::Assigned),
                    ("all", ScopeSetting::All),
                ],
            )
            .unwrap_or_default();
        let service_principal_id = match raw.service_principal_id {
            Some(v) if v.get_ref().trim().is_empty() => {
                self.error(v.span(), "source.service_principal_id", "must not be empty");
                None
            }
            Some(v) => Some(v.into_inner()),
            None if scope == ScopeSetting::Assigned => {
                if !self.suppressed("source.service_principal_id") {
                    self.error(
                        at.clone(),
                        "source.service_principal_id",
                        "required when scope = \"assigned\" (the default): set the enterprise app's \
                         service principal object id, or set scope = \"all\"",
                    );
                }
                None
            }
            None => None,
        };
        let graph_url = self.url(raw.graph_url, "source.graph_url", DEFAULT_GRAPH_URL);
        let login_url = self.url(raw.login_url, "source.login_url", DEFAULT_LOGIN_URL);
        let page_size = self.int_in(
            raw.page_size,
            "source.page_size",
            1,
            999,
            i64::from(DEFAULT_PAGE_SIZE),
        );
        SourceConfig {
            tenant_id,
            client_id,
            client_secret,
            service_principal_id,
            scope,
            graph_url,
            login_url,
            page_size: u32::try_from(page_size).unwrap_or(DEFAULT_PAGE_SIZE),
        }
    }

    fn target(&mut self, raw: Option<Spanned<RawTarget>>, base_dir: &Path) -> TargetConfig {
        let (at, raw) = match raw {
            Some(r) => (r.span(), r.into_inner()),
            None => {
                if !self.suppressed("target") {
                    self.error(
                        NOWHERE,
                        "target",
                        "missing required table [target] (the app's SCIM endpoint)",
                    );
                }
                self.pruned.insert("target".into());
                (NOWHERE, RawTarget::empty())
            }
        };
        let url = match raw.url {
            Some(u) => {
                let url = self.url(Some(u.clone()), "target.url", "");
                if u.get_ref().contains("aadOptscim062020") {
                    self.warn(
                        u.span(),
                        "target.url",
                        "aadOptscim062020 is Entra's switch for RFC-compliant PATCH; here that is \
                         dialect = \"rfc\" (the default), and the URL is sent to the app as written",
                    );
                }
                url
            }
            None => {
                self.missing(
                    &at,
                    "target.url",
                    "the app's SCIM base URL (Entra's Tenant URL)",
                );
                String::new()
            }
        };
        let token = self.secret(raw.token, &at, "target.token", base_dir);
        let dialect = self
            .choice(
                raw.dialect,
                "target.dialect",
                &[
                    ("rfc", DialectSetting::Rfc),
                    ("entra", DialectSetting::Entra),
                ],
            )
            .unwrap_or_default();
        let max_concurrency = self.int_in(
            raw.max_concurrency,
            "target.max_concurrency",
            1,
            64,
            DEFAULT_MAX_CONCURRENCY as i64,
        );
        let timeout_default = DEFAULT_TIMEOUT.as_secs() as i64;
        let timeout_secs = self.int_in(
            raw.timeout_secs,
            "target.timeout_secs",
            1,
            3600,
            timeout_default,
        );
        let actions = match raw.actions {
            None => TargetActions::default(),
            Some(a) => {
                let RawActions {
                    create,
                    update,
                    delete,
                } = a.into_inner();
                let on = |v: Option<Spanned<bool>>| v.is_none_or(Spanned::into_inner);
                TargetActions {
                    create: on(create),
                    update: on(update),
                    delete: on(delete),
                }
            }
        };
        TargetConfig {
            url,
            token,
            dialect,
            max_concurrency: usize::try_from(max_concurrency).unwrap_or(DEFAULT_MAX_CONCURRENCY),
            timeout: Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(30)),
            actions,
        }
    }

    fn users(&mut self, raw: Option<Spanned<RawUsers>>) -> UsersConfig {
        let (mut at, raw) = match raw {
            Some(r) => (r.span(), r.into_inner().mappings.unwrap_or_default()),
            None => (NOWHERE, Vec::new()),
        };
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
            let key = format!("users.mappings[{i}]");
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
                    } else if let Some((j, first)) = targets.get(&name.to_ascii_lowercase()) {
                        let msg = format!(
                            "`{name}` is already mapped by users.mappings[{j}] (line {first})"
                        );
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
                            "only a source or expression mapping can match: a constant would match every user to one object",
                        );
                    } else if let Some((j, first)) = precedences.get(&n) {
                        let msg = format!(
                            "precedence {n} is already used by users.mappings[{j}] (line {first})"
                        );
                        self.error(p.span(), pkey, msg);
                    } else {
                        precedences.insert(n, (i, line));
                    }
                    u32::try_from(n).ok()
                }
            };

            let apply = self
                .choice(
                    m.apply,
                    &format!("{key}.apply"),
                    &[("always", Apply::Always), ("create", Apply::CreateOnly)],
                )
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
        if !any_matching && !self.suppressed("users.mappings") {
            let message = if mappings.is_empty() {
                "no mappings: add [[users.mappings]] entries, at least one with `matching`, e.g. \
                 target = \"userName\", source = \"userPrincipalName\", matching = 1"
            } else {
                "no mapping sets `matching`: at least one attribute must identify users in the app, \
                 e.g. target = \"userName\", source = \"userPrincipalName\", matching = 1"
            };
            self.error(at, "users.mappings", message);
        }
        UsersConfig { mappings }
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
                        self.error(v.span(), vkey, "expressions are not supported yet");
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

    /// An enum value written as a lowercase string; `None` when absent or invalid.
    fn choice<T: Copy>(
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

    fn int_in(
        &mut self,
        v: Option<Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
        default: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(v) if (min..=max).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
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
    fn url(&mut self, v: Option<Spanned<String>>, key: &str, default: &str) -> String {
        let Some(v) = v else {
            return default.to_string();
        };
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

    fn secret(
        &mut self,
        v: Option<Spanned<String>>,
        table: &Range<usize>,
        key: &str,
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
                r.rebased(base_dir)
            }
            Err(message) => {
                self.error(v.span(), key, message);
                SecretRef::literal("")
            }
        }
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

impl RawSource {
    fn empty() -> Self {
        RawSource {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            service_principal_id: None,
            scope: None,
            graph_url: None,
            login_url: None,
            page_size: None,
        }
    }
}

impl RawTarget {
    fn empty() -> Self {
        RawTarget {
            url: None,
            token: None,
            dialect: None,
            max_concurrency: None,
            timeout_secs: None,
            actions: None,
        }
    }
}

//! App templates (`config/apps/*.toml`, embedded in the binary) and the `apps` and `init`
//! commands: an admin starts a job the way Entra starts one from its gallery, with the app's
//! mappings ready-made, and only fills in the tenant and the credentials.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One embedded template.
pub struct AppTemplate {
    /// The name given to `init --app`.
    pub name: &'static str,
    pub description: &'static str,
    /// The TOML text, with `{{…}}` placeholders.
    pub text: &'static str,
}

pub const TEMPLATES: &[AppTemplate] = &[
    AppTemplate {
        name: "atmos",
        description: "Atmos (Axis Security): users with enterprise department/division, groups; removes users",
        text: include_str!("../../../config/apps/atmos.toml"),
    },
    AppTemplate {
        name: "chaos",
        description: "Chaos (Corporate Sign In): users only; removes users",
        text: include_str!("../../../config/apps/chaos.toml"),
    },
    AppTemplate {
        name: "cybsafe",
        description: "CybSafe: users and groups, skips Default Access assignments, fixed tenant URL; removes users",
        text: include_str!("../../../config/apps/cybsafe.toml"),
    },
    AppTemplate {
        name: "klaxoon",
        description: "Klaxoon: users (all attributes required), groups with the PRO licence extension; disables users",
        text: include_str!("../../../config/apps/klaxoon.toml"),
    },
    AppTemplate {
        name: "scim",
        description: "Any SCIM 2.0 app: Entra's default mapping for a custom (non-gallery) SCIM app",
        text: include_str!("../../../config/apps/scim.toml"),
    },
    AppTemplate {
        name: "tribeloo",
        description: "Tribeloo: users with the work address; removes users",
        text: include_str!("../../../config/apps/tribeloo.toml"),
    },
];

pub fn template(name: &str) -> Option<&'static AppTemplate> {
    TEMPLATES.iter().find(|t| t.name.eq_ignore_ascii_case(name))
}

/// Values for the placeholders, and the optional Graph endpoints of a national cloud (or an
/// emulator), as `init` takes them from its flags.
#[derive(Debug, Default, Clone)]
pub struct InitValues {
    /// The job's `name` (default: the template's).
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub service_principal_id: Option<String>,
    /// Fills `{{TENANT_URL}}`; for an app whose tutorial fixes the URL (CybSafe) it replaces
    /// that URL (a test instance, a proxy).
    pub tenant_url: Option<String>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
}

/// The job text for a template and what is still to be done.
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    /// Placeholders left in the text, e.g. `{{TENANT_ID}}`, with the flag that fills each.
    pub placeholders: Vec<(&'static str, &'static str)>,
    /// Environment variables the job reads its secrets from (`env:` references).
    pub env: Vec<String>,
    /// Notes to show (e.g. an overridden fixed URL).
    pub notes: Vec<String>,
}

const PLACEHOLDERS: &[(&str, &str)] = &[
    ("{{TENANT_ID}}", "--tenant-id"),
    ("{{CLIENT_ID}}", "--client-id"),
    ("{{SERVICE_PRINCIPAL_ID}}", "--service-principal-id"),
    ("{{TENANT_URL}}", "--tenant-url"),
];

/// Substitute the given values into a template. Values go inside TOML basic strings, so
/// quotes, backslashes and control characters are refused rather than escaped: none of these
/// values (ids, domains, URLs) can contain them.
pub fn render(t: &AppTemplate, v: &InitValues) -> Result<Rendered, String> {
    let check = |flag: &str, value: &Option<String>| -> Result<(), String> {
        match value {
            Some(s) if s.trim().is_empty() => Err(format!("{flag}: must not be empty")),
            Some(s) if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) => Err(format!(
                "{flag}: must not contain quotes, backslashes or control characters"
            )),
            _ => Ok(()),
        }
    };
    check("--tenant-id", &v.tenant_id)?;
    check("--client-id", &v.client_id)?;
    check("--service-principal-id", &v.service_principal_id)?;
    check("--tenant-url", &v.tenant_url)?;
    check("--graph-url", &v.graph_url)?;
    check("--login-url", &v.login_url)?;
    check("--name", &v.name)?;

    let mut text = t.text.to_string();
    let mut notes = Vec::new();
    let given = [
        ("{{TENANT_ID}}", &v.tenant_id),
        ("{{CLIENT_ID}}", &v.client_id),
        ("{{SERVICE_PRINCIPAL_ID}}", &v.service_principal_id),
        ("{{TENANT_URL}}", &v.tenant_url),
    ];
    for (placeholder, value) in given {
        if let Some(value) = value {
            text = text.replace(placeholder, value.trim());
        }
    }
    if let Some(url) = &v.tenant_url
        && !t.text.contains("{{TENANT_URL}}")
    {
        let (replaced, old) = replace_key(&text, "target", "url", url.trim())
            .ok_or_else(|| format!("template {} has no [target] url to replace", t.name))?;
        text = replaced;
        notes.push(format!(
            "[target] url: {} (instead of {old}, the URL the {} tutorial gives)",
            url.trim(),
            t.name
        ));
    }
    if let Some(name) = &v.name {
        text = set_top_level(&text, "name", name.trim())
            .ok_or_else(|| format!("template {} has no `name = …` line", t.name))?;
    }
    for (key, value) in [("graph_url", &v.graph_url), ("login_url", &v.login_url)] {
        if let Some(value) = value {
            text = uncomment_key(&text, key, value.trim())
                .ok_or_else(|| format!("template {} has no `# {key} = …` line", t.name))?;
        }
    }
    let placeholders = PLACEHOLDERS
        .iter()
        .filter(|(p, _)| text.contains(p))
        .copied()
        .collect();
    Ok(Rendered {
        env: env_refs(&text),
        placeholders,
        notes,
        text,
    })
}

/// Replace the value of `key = "…"` inside `[table]`; gives the new text and the old value.
fn replace_key(text: &str, table: &str, key: &str, value: &str) -> Option<(String, String)> {
    let mut in_table = false;
    let mut old = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_table = trimmed.starts_with(&format!("[{table}]"));
        }
        if in_table
            && old.is_none()
            && let Some(rest) = trimmed.strip_prefix(key)
            && let Some(rest) = rest.trim_start().strip_prefix('=')
        {
            let rest = rest.trim_start();
            let quoted = rest.strip_prefix('"')?;
            let end = quoted.find('"')?;
            old = Some(quoted[..end].to_string());
            out.push(format!("{key} = \"{value}\""));
            continue;
        }
        out.push(line.to_string());
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    old.map(|o| (joined, o))
}

/// Set a top-level `key = "…"` (one before the first table).
fn set_top_level(text: &str, key: &str, value: &str) -> Option<String> {
    let mut done = false;
    let mut in_table = false;
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        in_table |= line.trim_start().starts_with('[');
        let is_key = line
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='));
        if !done && !in_table && is_key {
            done = true;
            out.push(format!("{key} = \"{value}\""));
        } else {
            out.push(line.to_string());
        }
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    done.then_some(joined)
}

/// Turn the template's `# key = "default"` line into `key = "value"`.
fn uncomment_key(text: &str, key: &str, value: &str) -> Option<String> {
    let prefix = format!("# {key} = ");
    let mut found = false;
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if !found && line.starts_with(&prefix) {
            found = true;
            out.push(format!("{key} = \"{value}\""));
        } else {
            out.push(line.to_string());
        }
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    found.then_some(joined)
}

/// Names of the `"env:NAME"` references in uncommented lines, in order, without duplicates.
fn env_refs(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("\"env:") {
            let after = &rest[at + 5..];
            let end = after.find('"').unwrap_or(after.len());
            let name = after[..end].to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
            rest = &after[end..];
        }
    }
    names
}

/// `scimsync apps`.
pub fn list() -> u8 {
    let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
    outln!("App templates (use with `scimsync init --app NAME`):");
    for t in TEMPLATES {
        outln!("  {:width$}  {}", t.name, t.description);
    }
    0
}

/// `scimsync init`.
pub fn init(app: &str, out: Option<&Path>, force: bool, values: &InitValues) -> u8 {
    let Some(t) = template(app) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        eprintln!(
            "error: no app template named {app:?}; available: {}",
            names.join(", ")
        );
        return 2;
    };
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", t.name)));
    // The job is named after its file unless --name says otherwise, so `--job NAME` and the
    // file name agree.
    let mut values = values.clone();
    if values.name.is_none() {
        values.name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string);
    }
    let rendered = match render(t, &values) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options
        .open(&path)
        .and_then(|mut f| f.write_all(rendered.text.as_bytes()));
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            eprintln!(
                "error: {} already exists; not overwritten (use --force to replace it)",
                path.display()
            );
        } else {
            eprintln!("error: cannot write {}: {e}", path.display());
        }
        return 1;
    }
    out!("{}", next_steps(t, &path, &rendered));
    0
}

/// The top-level `name` of a rendered job text.
fn job_name(text: &str) -> Option<&str> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|r| r.split('"').next())
}

fn next_steps(t: &AppTemplate, path: &Path, r: &Rendered) -> String {
    let mut s = format!("wrote {} from the {} template\n", path.display(), t.name);
    if let Some(name) = job_name(&r.text) {
        s.push_str(&format!("job name: {name}\n"));
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    if r.placeholders.is_empty() {
        s.push_str("\nEvery placeholder is filled in.\n");
    } else {
        s.push_str("\nStill to fill in (edit the file, or run init again with the flag):\n");
        for (p, flag) in &r.placeholders {
            let what = match *p {
                "{{TENANT_ID}}" => "the Entra tenant (id or domain)",
                "{{CLIENT_ID}}" => "the app registration scimsync signs in with (client id)",
                "{{SERVICE_PRINCIPAL_ID}}" => "the enterprise app's object id (service principal)",
                _ => "the app's SCIM endpoint (Entra's \"Tenant URL\")",
            };
            s.push_str(&format!("  {p:26} {what} ({flag})\n"));
        }
    }
    if !r.env.is_empty() {
        s.push_str("\nSecrets are read from the environment; export before running:\n");
        for name in &r.env {
            let what = if name == "GRAPH_CLIENT_SECRET" {
                "the app registration's client secret"
            } else {
                "the app's SCIM token (Entra's \"Secret Token\")"
            };
            s.push_str(&format!("  export {name}=...    # {what}\n"));
        }
    }
    s.push_str(&format!(
        "\nThen: scimsync validate --config {p}\n      scimsync preview --config {p}\n",
        p = path.display()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy() -> InitValues {
        InitValues {
            name: None,
            tenant_id: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("00000000-0000-0000-0000-0000000000c1".into()),
            service_principal_id: Some("00000000-0000-0000-0000-0000000000a1".into()),
            tenant_url: Some("https://scim.example.com/scim/v2".into()),
            graph_url: None,
            login_url: None,
        }
    }

    #[test]
    fn every_template_with_placeholders_filled_is_a_valid_job() {
        for t in TEMPLATES {
            let r = render(t, &dummy()).unwrap();
            assert!(
                r.placeholders.is_empty(),
                "{}: {:?}",
                t.name,
                r.placeholders
            );
            assert!(!r.text.contains("{{"), "{}: a placeholder is left", t.name);
            let loaded = scimsync_config::parse(Path::new(&format!("{}.toml", t.name)), &r.text)
                .unwrap_or_else(|e| {
                    let errs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
                    panic!("{}: {}", t.name, errs.join("\n"))
                });
            assert!(
                loaded.warnings.is_empty(),
                "{}: {:?}",
                t.name,
                loaded.warnings
            );
            assert!(!loaded.job.users.mappings.is_empty());
            assert_eq!(loaded.job.target.url, "https://scim.example.com/scim/v2");
        }
    }

    #[test]
    fn templates_as_shipped_name_what_is_missing() {
        for t in TEMPLATES {
            let r = render(t, &InitValues::default()).unwrap();
            let left: Vec<&str> = r.placeholders.iter().map(|(p, _)| *p).collect();
            let mut expected = vec!["{{TENANT_ID}}", "{{CLIENT_ID}}", "{{SERVICE_PRINCIPAL_ID}}"];
            if t.name != "cybsafe" {
                expected.push("{{TENANT_URL}}");
            }
            assert_eq!(left, expected, "{}", t.name);
            assert_eq!(r.env[0], "GRAPH_CLIENT_SECRET", "{}", t.name);
            assert_eq!(r.env.len(), 2, "{}: {:?}", t.name, r.env);
        }
    }

    #[test]
    fn app_specific_settings_are_in_the_templates() {
        let job = |name: &str| {
            let r = render(template(name).unwrap(), &dummy()).unwrap();
            scimsync_config::parse(Path::new("t.toml"), &r.text)
                .unwrap()
                .job
        };
        use scimsync_config::Deprovision;
        assert_eq!(job("klaxoon").users.deprovision, Deprovision::Disable);
        for app in ["chaos", "tribeloo", "atmos", "cybsafe"] {
            assert_eq!(job(app).users.deprovision, Deprovision::Delete, "{app}");
        }
        assert!(job("cybsafe").source.exclude_default_access);
        assert!(!job("chaos").groups.enabled);
        assert!(job("atmos").groups.enabled && job("klaxoon").groups.enabled);
        let k = job("klaxoon");
        assert!(k.users.mappings.iter().all(|m| m.required));
        let license = k
            .groups
            .mappings
            .iter()
            .find(|m| m.target.ends_with(":klaxoon:2.0:Group:license"))
            .unwrap();
        assert_eq!(license.default.as_deref(), Some("true"));
    }

    #[test]
    fn a_fixed_tenant_url_is_kept_unless_overridden() {
        let cyb = template("cybsafe").unwrap();
        let mut v = dummy();
        v.tenant_url = None;
        let r = render(cyb, &v).unwrap();
        let job = scimsync_config::parse(Path::new("t.toml"), &r.text)
            .unwrap()
            .job;
        assert_eq!(job.target.url, "https://app.cybsafe.com/scim/v2");
        let r = render(cyb, &dummy()).unwrap();
        assert_eq!(r.notes.len(), 1, "the override is pointed out");
        let job = scimsync_config::parse(Path::new("t.toml"), &r.text)
            .unwrap()
            .job;
        assert_eq!(job.target.url, "https://scim.example.com/scim/v2");
    }

    #[test]
    fn graph_endpoints_and_bad_values() {
        let mut v = dummy();
        v.graph_url = Some("http://127.0.0.1:9/graph".into());
        v.login_url = Some("http://127.0.0.1:9/login".into());
        let r = render(template("chaos").unwrap(), &v).unwrap();
        let job = scimsync_config::parse(Path::new("t.toml"), &r.text)
            .unwrap()
            .job;
        assert_eq!(job.source.graph_url, "http://127.0.0.1:9/graph");
        assert_eq!(job.source.login_url, "http://127.0.0.1:9/login");
        v.tenant_id = Some("evil\"\nname = \"x".into());
        assert!(render(template("chaos").unwrap(), &v).is_err());
    }

    #[test]
    fn init_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, "keep me").unwrap();
        assert_eq!(init("chaos", Some(&path), false, &dummy()), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
        assert_eq!(init("chaos", Some(&path), true, &dummy()), 0);
        // The job is named after the file.
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\nname = \"job\"\n")
        );
        assert_eq!(init("nope", Some(&path), true, &dummy()), 2);
    }

    /// `init --name` sets the job's name; without it the name is the file's stem; either way
    /// the file is a valid job of that name.
    #[test]
    fn init_names_the_job_after_the_flag_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr-klaxoon.toml");
        assert_eq!(init("klaxoon", Some(&path), false, &dummy()), 0);
        let job = scimsync_config::load(&path).unwrap().job;
        assert_eq!(job.name, "hr-klaxoon");
        let mut v = dummy();
        v.name = Some("klaxoon-prod".into());
        assert_eq!(init("klaxoon", Some(&path), true, &v), 0);
        assert_eq!(
            scimsync_config::load(&path).unwrap().job.name,
            "klaxoon-prod"
        );
        v.name = Some("bad\"name".into());
        assert_eq!(init("klaxoon", Some(&path), true, &v), 2);
    }

    /// A template written without its values validates with "`{{TENANT_URL}}` is not filled
    /// in" at the placeholder's line and column.
    #[test]
    fn a_leftover_placeholder_is_named_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("klaxoon.toml");
        let mut v = dummy();
        v.tenant_url = None;
        assert_eq!(init("klaxoon", Some(&path), false, &v), 0);
        let errors = scimsync_config::load(&path).unwrap_err();
        let text = std::fs::read_to_string(&path).unwrap();
        let (line, column) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("\"{{TENANT_URL}}\"").map(|c| (i + 1, c + 1)))
            .unwrap();
        let e = errors
            .iter()
            .find(|e| e.key == "target.url")
            .unwrap_or_else(|| panic!("{errors:?}"));
        assert_eq!((e.line, e.column), (line, column));
        assert!(
            e.to_string().contains(
                "`{{TENANT_URL}}` is not filled in: write the value here, or run \
                           `scimsync init` again with --tenant-url"
            ),
            "{e}"
        );
    }
}

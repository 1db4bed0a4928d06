//! `import-entra` and `export-entra`: a job file from the synchronization schema an admin
//! downloads from Entra ("Review your schema here", `GET …/jobs/{id}/schema`), and the schema of
//! a job. The translation lives in `scimsync_config::entra_schema`; this is the glue: files,
//! flags, Graph's table of readable source attributes, and what is left to do.

use scimsync_config::entra_schema::{self, Finding, ImportOptions, ObjectKind, Severity};
use scimsync_config::{Deprovision, ScopeSetting};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `scimsync import-entra`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The schema JSON downloaded from Entra (Provisioning → Edit attribute mappings → Show
    /// advanced options → Review your schema here → Download).
    #[arg(long)]
    pub schema: PathBuf,
    /// Where to write the job file (default: <name>.toml here).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The job id (default: the --out file's name, else "entra-app").
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// The Entra tenant id or domain.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// The app registration's client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The enterprise app's object id (service principal).
    #[arg(long)]
    pub service_principal_id: Option<String>,
    /// The app's SCIM endpoint (Entra's "Tenant URL", the job's BaseAddress).
    #[arg(long)]
    pub tenant_url: Option<String>,
    /// Microsoft Graph endpoint (national clouds).
    #[arg(long)]
    pub graph_url: Option<String>,
    /// Sign-in endpoint (national clouds).
    #[arg(long)]
    pub login_url: Option<String>,
    /// Entra's Scope: "assigned" (Sync only assigned users and groups) or "all" (SyncAll).
    #[arg(long, default_value = "assigned", value_parser = ["assigned", "all"])]
    pub scope: String,
    /// Entra's SkipOutOfScopeDeletions: users leaving scope are left alone.
    #[arg(long)]
    pub skip_out_of_scope_deletions: bool,
    /// Entra's accidental-deletions threshold (default: scimsync's 500).
    #[arg(long)]
    pub deletion_threshold: Option<u32>,
    /// Users leaving scope: "disable" (Entra, for a custom SCIM app) or "delete".
    #[arg(long, default_value = "disable", value_parser = ["disable", "delete"])]
    pub deprovision: String,
    /// Approximate what has no exact equivalent (other flow types become "always"; experimental
    /// and empty filters and unknown mapping types are left out), with a warning for each.
    #[arg(long)]
    pub lenient: bool,
}

/// `scimsync export-entra`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub job: crate::jobref::JobArgs,
    /// Where to write the schema JSON (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Whether scimsync's Graph source reads a source attribute (the table `validate` checks). A
/// malformed `extension_…` name is not read: it is commented out with a warning at its JSON
/// path rather than written into a file `validate` would then refuse.
fn readable(kind: ObjectKind, name: &str) -> bool {
    match kind {
        ObjectKind::User => {
            scimsync_graph::graph_property(name).is_some()
                || scimsync_graph::is_computed_attribute(name)
                || scimsync_graph::is_reference_attribute(name)
        }
        ObjectKind::Group => scimsync_graph::graph_group_property(name).is_some(),
    }
}

/// The job id from `--out`'s file name: letters, digits, `_` and `-`.
fn name_from(out: Option<&Path>) -> String {
    let stem = out
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "entra-app".into()
    } else {
        name
    }
}

fn print_findings(file: &Path, findings: &[Finding]) {
    for f in findings {
        eprintln!("{}: {}: {f}", f.severity, file.display());
    }
}

/// Placeholders filled with valid values: the check that the written file will validate once
/// they are filled in.
fn with_dummies(text: &str) -> String {
    text.replace("{{TENANT_ID}}", "contoso.onmicrosoft.com")
        .replace("{{CLIENT_ID}}", "00000000-0000-0000-0000-000000000000")
        .replace(
            "{{SERVICE_PRINCIPAL_ID}}",
            "00000000-0000-0000-0000-000000000000",
        )
        .replace("{{TENANT_URL}}", "https://placeholder.example/scim")
}

/// `scimsync import-entra`.
pub fn import(args: &ImportArgs) -> u8 {
    let json = match std::fs::read_to_string(&args.schema) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.schema.display());
            return crate::EXIT_FAILED;
        }
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| name_from(args.out.as_deref()));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        eprintln!("error: --name {name:?}: letters, digits, `_` or `-` only (it is the job id)");
        return 2;
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    let mut opts = ImportOptions::new(name);
    opts.origin = args
        .schema
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_else(|| args.schema.display().to_string());
    opts.tenant_id = args.tenant_id.clone();
    opts.client_id = args.client_id.clone();
    opts.service_principal_id = args.service_principal_id.clone();
    opts.tenant_url = args.tenant_url.clone();
    opts.graph_url = args.graph_url.clone();
    opts.login_url = args.login_url.clone();
    opts.scope = if args.scope == "all" {
        ScopeSetting::All
    } else {
        ScopeSetting::Assigned
    };
    opts.skip_out_of_scope_deletions = args.skip_out_of_scope_deletions;
    opts.deletion_threshold = args.deletion_threshold;
    opts.deprovision = if args.deprovision == "delete" {
        Deprovision::Delete
    } else {
        Deprovision::Disable
    };
    opts.lenient = args.lenient;
    opts.readable = readable;

    let imported = match entra_schema::import(&json, &opts) {
        Ok(i) => i,
        Err(findings) => {
            print_findings(&args.schema, &findings);
            let errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            eprintln!(
                "error: {} cannot be imported ({errors} error{}); nothing was written",
                args.schema.display(),
                if errors == 1 { "" } else { "s" }
            );
            return 2;
        }
    };
    // The file must pass `validate` once its placeholders are filled: a flag's value that
    // does not (an http tenant URL, say) is reported now, and nothing is written.
    if let Err(errors) = scimsync_config::parse(&path, &with_dummies(&imported.text)) {
        print_findings(&args.schema, &imported.findings);
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!("error: the job would not be valid; nothing was written");
        return 2;
    }

    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let written = options
        .open(&path)
        .and_then(|mut f| f.write_all(imported.text.as_bytes()));
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            eprintln!(
                "error: {} already exists; not overwritten (use --force to replace it)",
                path.display()
            );
        } else {
            eprintln!("error: cannot write {}: {e}", path.display());
        }
        return crate::EXIT_FAILED;
    }
    print_findings(&args.schema, &imported.findings);
    out!("{}", next_steps(&args.schema, &path, &imported));
    0
}

fn next_steps(schema: &Path, path: &Path, i: &entra_schema::Imported) -> String {
    let mut s = format!(
        "wrote {} from {} ({} user mapping{}, {} group mapping{}, {} scoping filter{})\n",
        path.display(),
        schema.display(),
        i.user_mappings,
        plural(i.user_mappings),
        i.group_mappings,
        plural(i.group_mappings),
        i.scoping_filters,
        plural(i.scoping_filters),
    );
    let left_out = i
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if left_out > 0 {
        s.push_str(&format!(
            "{left_out} warning{} above: what differs from Entra or was left out (as a comment in the file)\n",
            plural(left_out)
        ));
    }
    if i.placeholders.is_empty() {
        s.push_str("\nEvery placeholder is filled in.\n");
    } else {
        s.push_str(
            "\nNot in the schema, still to fill in (edit the file, or run import-entra again with the flag):\n",
        );
        for (p, flag) in &i.placeholders {
            let what = match *p {
                "{{TENANT_ID}}" => "the Entra tenant (id or domain)",
                "{{CLIENT_ID}}" => "the app registration scimsync signs in with (client id)",
                "{{SERVICE_PRINCIPAL_ID}}" => "the enterprise app's object id (service principal)",
                _ => "the app's SCIM endpoint (Entra's \"Tenant URL\")",
            };
            s.push_str(&format!("  {p:26} {what} ({flag})\n"));
        }
    }
    s.push_str("\nSecrets are read from the environment; export before running:\n");
    s.push_str("  export GRAPH_CLIENT_SECRET=...    # the app registration's client secret\n");
    s.push_str(&format!(
        "  export {}=...    # the app's SCIM token (Entra's \"Secret Token\")\n",
        i.token_env
    ));
    s.push_str(&format!(
        "\nThen: scimsync validate --config {p}\n      scimsync preview --config {p}\n",
        p = path.display()
    ));
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `scimsync export-entra`.
pub fn export(args: &ExportArgs) -> u8 {
    let job = match args.job.load() {
        Ok(j) => j,
        Err(code) => return code,
    };
    let exported = entra_schema::export(&job);
    let json = exported.json();
    match &args.out {
        None => out!("{json}"),
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            if args.force {
                options.create(true).truncate(true);
            } else {
                options.create_new(true);
            }
            let written = options
                .open(path)
                .and_then(|mut f| f.write_all(json.as_bytes()));
            if let Err(e) = written {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    eprintln!(
                        "error: {} already exists; not overwritten (use --force to replace it)",
                        path.display()
                    );
                } else {
                    eprintln!("error: cannot write {}: {e}", path.display());
                }
                return crate::EXIT_FAILED;
            }
            eprintln!(
                "wrote {} (the schema of job {:?}: mappings, scoping filters, target object actions)",
                path.display(),
                job.name
            );
        }
    }
    eprintln!(
        "note: the Tenant URL, the Secret Token and the scope are set on Entra's provisioning page, not in the schema"
    );
    for n in &exported.notes {
        eprintln!("note: not in the schema: {n}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{InitValues, TEMPLATES, render};
    use scimsync_config::{Mapping, ScopingFilter};

    const CONTRACT_EXAMPLE: &str =
        include_str!("../../config/tests/fixtures/entra-contract-a4.json");

    fn args(schema: &Path, out: &Path) -> ImportArgs {
        ImportArgs {
            schema: schema.to_path_buf(),
            out: Some(out.to_path_buf()),
            name: None,
            force: false,
            tenant_id: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("00000000-0000-0000-0000-0000000000c1".into()),
            service_principal_id: Some("00000000-0000-0000-0000-0000000000a1".into()),
            tenant_url: Some("https://scim.example.com/scim/v2".into()),
            graph_url: None,
            login_url: None,
            scope: "assigned".into(),
            skip_out_of_scope_deletions: false,
            deletion_threshold: None,
            deprovision: "disable".into(),
            lenient: false,
        }
    }

    fn load(path: &Path) -> scimsync_config::JobConfig {
        let loaded = scimsync_config::load(path).unwrap_or_else(|e| {
            let errs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
            panic!("{}", errs.join("\n"))
        });
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        loaded.job
    }

    fn lines_cleared(m: &[Mapping]) -> Vec<Mapping> {
        m.iter()
            .cloned()
            .map(|m| Mapping { line: 0, ..m })
            .collect()
    }

    fn filters_cleared(f: &[ScopingFilter]) -> Vec<ScopingFilter> {
        f.iter()
            .map(|f| ScopingFilter {
                line: 0,
                clauses: f
                    .clauses
                    .iter()
                    .cloned()
                    .map(|c| scimsync_config::Clause { line: 0, ..c })
                    .collect(),
                ..f.clone()
            })
            .collect()
    }

    #[test]
    fn the_contract_example_becomes_a_valid_job() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema.json");
        std::fs::write(&schema, CONTRACT_EXAMPLE).unwrap();
        let out = dir.path().join("contoso.toml");
        assert_eq!(import(&args(&schema, &out)), 0);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("name = \"contoso\""), "{text}");
        assert!(
            text.contains("token = \"env:CONTOSO_SCIM_TOKEN\""),
            "{text}"
        );
        // manager is read (a reference the engine resolves): imported as a mapping.
        assert!(text.contains("\nsource = \"manager\""), "{text}");
        assert!(!text.contains("# source = \"manager\""), "{text}");
        let job = load(&out);
        // Offline: the secrets it names (env:CONTOSO_SCIM_TOKEN, …) are not set here.
        assert!(crate::commands::validate(&out, true) == 0);
        assert_eq!(job.users.mappings.len(), 11);
        assert_eq!(job.users.scoping.len(), 1);
        assert!(job.groups.enabled);

        // Never overwritten without --force.
        std::fs::write(&out, "keep me").unwrap();
        assert_eq!(import(&args(&schema, &out)), crate::EXIT_FAILED);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
        let mut forced = args(&schema, &out);
        forced.force = true;
        assert_eq!(import(&forced), 0);
        assert_ne!(std::fs::read_to_string(&out).unwrap(), "keep me");
    }

    #[test]
    fn an_untranslatable_schema_or_bad_flag_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let schema = dir.path().join("schema.json");
        let out = dir.path().join("job.toml");
        let bad = CONTRACT_EXAMPLE.replacen("\"EQUALS\"", "\"Present\"", 1);
        std::fs::write(&schema, bad).unwrap();
        assert_eq!(import(&args(&schema, &out)), 2);
        assert!(!out.exists());

        std::fs::write(&schema, CONTRACT_EXAMPLE).unwrap();
        let mut a = args(&schema, &out);
        a.tenant_url = Some("http://scim.example.com/scim".into());
        assert_eq!(
            import(&a),
            2,
            "plain http to a remote host does not validate"
        );
        assert!(!out.exists());
        a.tenant_url = None;
        a.name = Some("no spaces please".into());
        assert_eq!(import(&a), 2);
        assert!(!out.exists());

        // A malformed directory extension name (uppercase app id) is not read: the mapping is
        // kept as a comment with a warning, and the file validates.
        let odd = CONTRACT_EXAMPLE.replacen(
            "\"name\": \"mailNickname\", \"expression\": \"[mailNickname]\"",
            "\"name\": \"extension_B7D8E648520F41D3B9C0FDEB91768A0A_cc\", \"expression\": \"[extension_B7D8E648520F41D3B9C0FDEB91768A0A_cc]\"",
            1,
        );
        assert_ne!(odd, CONTRACT_EXAMPLE);
        std::fs::write(&schema, odd).unwrap();
        let out2 = dir.path().join("odd.toml");
        assert_eq!(import(&args(&schema, &out2)), 0);
        let text = std::fs::read_to_string(&out2).unwrap();
        assert!(
            text.contains("# source = \"extension_B7D8E648520F41D3B9C0FDEB91768A0A_cc\""),
            "{text}"
        );
        assert!(crate::commands::validate(&out2, true) == 0);

        assert_eq!(name_from(Some(Path::new("jobs/My App.toml"))), "My-App");
        assert_eq!(name_from(None), "entra-app");
    }

    #[test]
    fn every_template_survives_export_then_import_through_the_commands() {
        let values = InitValues {
            name: None,
            tenant_id: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("00000000-0000-0000-0000-0000000000c1".into()),
            service_principal_id: Some("00000000-0000-0000-0000-0000000000a1".into()),
            tenant_url: Some("https://scim.example.com/scim/v2".into()),
            graph_url: None,
            login_url: None,
        };
        for t in TEMPLATES {
            let dir = tempfile::tempdir().unwrap();
            let original = dir.path().join(format!("{}.toml", t.name));
            std::fs::write(&original, render(t, &values).unwrap().text).unwrap();
            let job = load(&original);
            let schema = dir.path().join("schema.json");
            let code = export(&ExportArgs {
                job: crate::jobref::JobArgs {
                    config: Some(original.clone()),
                    job: None,
                    config_dir: None,
                },
                out: Some(schema.clone()),
                force: false,
            });
            assert_eq!(code, 0, "{}", t.name);
            let back = dir.path().join("back.toml");
            let mut a = args(&schema, &back);
            a.name = Some(job.name.clone());
            assert_eq!(import(&a), 0, "{}", t.name);
            let again = load(&back);
            assert_eq!(crate::commands::validate(&back, true), 0, "{}", t.name);
            assert_eq!(
                lines_cleared(&again.users.mappings),
                lines_cleared(&job.users.mappings),
                "{}",
                t.name
            );
            assert_eq!(
                lines_cleared(&again.groups.mappings),
                lines_cleared(&job.groups.mappings),
                "{}",
                t.name
            );
            assert_eq!(
                filters_cleared(&again.users.scoping),
                filters_cleared(&job.users.scoping)
            );
            assert_eq!(again.groups.enabled, job.groups.enabled, "{}", t.name);
            assert_eq!(again.target.actions, job.target.actions, "{}", t.name);
        }
    }
}

//! Entra's exported synchronization schema: import (JSON → job file), export (job → JSON), the
//! round trip over every app template, the contract's example, and what cannot be translated
//! (each named by its JSON path).

use scimsync_config::entra_schema::{
    Finding, ImportOptions, Imported, ObjectKind, Severity, export, import,
};
use scimsync_config::{
    Apply, Clause, GroupsConfig, JobConfig, Mapping, MappingValue, Operator, ScopingFilter,
    TargetActions, UsersConfig, parse,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const CONTRACT_EXAMPLE: &str = include_str!("fixtures/entra-contract-a4.json");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text with every `{{PLACEHOLDER}}` filled with a valid value.
fn fill(text: &str) -> String {
    text.replace("{{TENANT_ID}}", "contoso.onmicrosoft.com")
        .replace("{{CLIENT_ID}}", "00000000-0000-0000-0000-0000000000c1")
        .replace(
            "{{SERVICE_PRINCIPAL_ID}}",
            "00000000-0000-0000-0000-0000000000a1",
        )
        .replace("{{TENANT_URL}}", "https://scim.example.com/scim/v2")
}

fn load(text: &str) -> JobConfig {
    match parse(Path::new("job.toml"), text) {
        Ok(l) => {
            assert!(l.warnings.is_empty(), "warnings: {:?}\n{text}", l.warnings);
            l.job
        }
        Err(e) => {
            let errs: Vec<String> = e.iter().map(ToString::to_string).collect();
            panic!("invalid job:\n{}\n---\n{text}", errs.join("\n"))
        }
    }
}

/// Options that fill the placeholders from a job, so the import is a complete job file.
fn options_for(job: &JobConfig) -> ImportOptions {
    let mut o = ImportOptions::new(job.name.clone());
    o.tenant_id = Some(job.source.tenant_id.clone());
    o.client_id = Some(job.source.client_id.clone());
    o.service_principal_id = job.source.service_principal_id.clone();
    o.tenant_url = Some(job.target.url.clone());
    o
}

fn imported(json: &str, opts: &ImportOptions) -> Imported {
    match import(json, opts) {
        Ok(i) => i,
        Err(findings) => panic!("import failed: {}", lines(&findings)),
    }
}

fn failed(json: &str, opts: &ImportOptions) -> Vec<Finding> {
    match import(json, opts) {
        Ok(i) => panic!("import succeeded:\n{}", i.text),
        Err(findings) => findings,
    }
}

fn lines(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}: {f}", f.severity))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the schema carries, with line numbers cleared: the part of a job a round trip keeps.
#[derive(Debug, PartialEq)]
struct Carried {
    users: Vec<Mapping>,
    user_scoping: Vec<ScopingFilter>,
    groups_enabled: bool,
    groups: Vec<Mapping>,
    group_scoping: Vec<ScopingFilter>,
    actions: TargetActions,
}

fn carried(job: &JobConfig) -> Carried {
    let mappings = |m: &[Mapping]| -> Vec<Mapping> {
        m.iter()
            .cloned()
            .map(|m| Mapping { line: 0, ..m })
            .collect()
    };
    let scoping = |f: &[ScopingFilter]| -> Vec<ScopingFilter> {
        f.iter()
            .map(|f| ScopingFilter {
                name: f.name.clone(),
                line: 0,
                clauses: f
                    .clauses
                    .iter()
                    .cloned()
                    .map(|c| Clause { line: 0, ..c })
                    .collect(),
            })
            .collect()
    };
    let UsersConfig {
        mappings: um,
        scoping: us,
        ..
    } = &job.users;
    let GroupsConfig {
        enabled,
        mappings: gm,
        scoping: gs,
        ..
    } = &job.groups;
    Carried {
        users: mappings(um),
        user_scoping: scoping(us),
        groups_enabled: *enabled,
        groups: mappings(gm),
        group_scoping: scoping(gs),
        actions: job.target.actions.clone(),
    }
}

/// export → JSON → import → parse, asserting the carried part is unchanged; gives the import.
fn round_trip(job: &JobConfig) -> Imported {
    let json = export(job).json();
    let back = imported(&json, &options_for(job));
    assert!(
        back.findings.iter().all(|f| f.severity == Severity::Note),
        "{}: an exported job imports without warnings:\n{}",
        job.name,
        lines(&back.findings)
    );
    assert!(back.placeholders.is_empty(), "{:?}", back.placeholders);
    let again = load(&back.text);
    assert_eq!(
        carried(&again),
        carried(job),
        "{}:\n{}",
        job.name,
        back.text
    );
    assert_eq!(again.name, job.name);
    assert_eq!(again.source.tenant_id, job.source.tenant_id);
    assert_eq!(again.target.url, job.target.url);
    back
}

#[test]
fn every_app_template_round_trips_through_the_entra_schema() {
    let dir = repo_root().join("config/apps");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let job = load(&fill(&text));
        let back = round_trip(&job);
        // The import of the export is itself stable: exporting it gives the same JSON.
        let again = load(&back.text);
        let (a, b) = (export(&again).json(), export(&job).json());
        let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        assert_eq!(
            first.map(|i| (a.lines().nth(i), b.lines().nth(i))),
            None,
            "{}",
            path.display()
        );
        assert_eq!(a, b);
        names.push(job.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "atmos", "chaos", "cybsafe", "klaxoon", "scim-app", "tribeloo"
        ],
        "a new template is covered automatically; this list only proves the loop ran"
    );
}

/// A job with every operator, every mapping type and option, actions partly off and a
/// disabled group mapping that keeps its mappings.
const EVERYTHING: &str = r#"name = "everything"
[source]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-0000000000c1"
client_secret = "env:GRAPH_CLIENT_SECRET"
service_principal_id = "00000000-0000-0000-0000-0000000000a1"
[target]
url = "https://scim.example.com/scim/v2"
token = "env:EVERYTHING_SCIM_TOKEN"
[target.actions]
delete = false
[[users.mappings]]
target = "userName"
expression = 'ToLower([userPrincipalName], )'
matching = 2
required = true
[[users.mappings]]
target = 'emails[type eq "work"].value'
source = "mail"
matching = 1
[[users.mappings]]
target = "nickName"
constant = 'a "quoted" \ value'
[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
source = "department"
apply = "create"
default = "Unknown"
[[users.mappings]]
target = "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:badge"
default = "none"
apply = "create"
[[users.mappings]]
target = "displayName"
expression = 'IIF([country] = "US", Join(" ", [givenName], [surname]), Switch([country], , "FR", "Bonjour", "DE", "Hallo"))'
[[users.mappings]]
target = "title"
expression = 'Replace([jobTitle], , "[()\\s-]+", , "", , )'
[[users.scoping]]
name = "one"
[[users.scoping.clauses]]
attribute = "department"
operator = "EQUALS"
value = "Sales"
[[users.scoping.clauses]]
attribute = "jobTitle"
operator = "NOT EQUALS"
value = "Intern"
[[users.scoping.clauses]]
attribute = "userPrincipalName"
operator = "ENDS_WITH"
value = "@contoso.com"
[[users.scoping.clauses]]
attribute = "displayName"
operator = "Includes"
value = "a"
[[users.scoping]]
[[users.scoping.clauses]]
attribute = "extensionAttribute1"
operator = "Greater_Than"
value = "10"
[[users.scoping.clauses]]
attribute = "extensionAttribute2"
operator = "Greater_Than_OR_EQUALS"
value = "-3"
[[users.scoping.clauses]]
attribute = "accountEnabled"
operator = "IS TRUE"
[[users.scoping.clauses]]
attribute = "showInAddressList"
operator = "IS FALSE"
[[users.scoping]]
name = "third"
[[users.scoping.clauses]]
attribute = "mail"
operator = "IS NULL"
[[users.scoping.clauses]]
attribute = "mobile"
operator = "IS NOT NULL"
[[users.scoping.clauses]]
attribute = "userPrincipalName"
operator = "REGEX MATCH"
value = '.*@contoso\.(com|fr)$'
[[users.scoping.clauses]]
attribute = "userPrincipalName"
operator = "NOT REGEX MATCH"
value = '^admin'
[[users.scoping.clauses]]
attribute = "country"
operator = "&"
value = "FR,DE, US"
[[users.scoping.clauses]]
attribute = "city"
operator = "!&"
value = "Paris"
[groups]
enabled = false
[[groups.mappings]]
target = "displayName"
source = "displayName"
matching = 1
[[groups.mappings]]
target = "externalId"
source = "objectId"
[[groups.scoping]]
[[groups.scoping.clauses]]
attribute = "displayName"
operator = "ENDS_WITH"
value = "-app"
"#;

#[test]
fn a_job_with_every_feature_round_trips() {
    let job = load(EVERYTHING);
    let seen: std::collections::HashSet<Operator> = job
        .users
        .scoping
        .iter()
        .flat_map(|f| &f.clauses)
        .map(|c| c.operator)
        .collect();
    assert_eq!(seen.len(), Operator::ALL.len(), "every operator is used");
    let back = round_trip(&job);
    assert!(back.text.contains("[target.actions]"), "{}", back.text);
    assert!(back.text.contains("delete = false"), "{}", back.text);
    assert!(back.text.contains("enabled = false"), "{}", back.text);

    // Actions all off, groups enabled: both survive.
    let mut job = job;
    job.target.actions = TargetActions {
        create: false,
        update: false,
        delete: false,
    };
    job.groups.enabled = true;
    round_trip(&job);
}

#[test]
fn the_export_has_entras_names_and_shapes() {
    let job = load(&fill(include_str!("../../../config/apps/klaxoon.toml")));
    let schema: Value = serde_json::from_str(&export(&job).json()).unwrap();
    assert_eq!(schema["directories"][0]["name"], "Microsoft Entra ID");
    assert_eq!(schema["directories"][1]["name"], "customappsso");
    let rule = &schema["synchronizationRules"][0];
    assert_eq!(rule["name"], "USERGROUP_OUTBOUND_USERGROUP");
    assert_eq!(rule["sourceDirectoryName"], "Microsoft Entra ID");
    assert_eq!(rule["targetDirectoryName"], "customappsso");
    let users = &rule["objectMappings"][0];
    assert_eq!(users["name"], "Provision Microsoft Entra ID Users");
    assert_eq!(users["flowTypes"], "Add, Update, Delete");
    assert_eq!(users["scope"], Value::Null);
    assert_eq!(
        users["targetObjectName"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    let active = users["attributeMappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["targetAttributeName"] == "active")
        .unwrap();
    // The Switch tree, keyed as in the contract's example: the empty default is left out.
    assert_eq!(active["source"]["type"], "Function");
    assert_eq!(active["source"]["name"], "Switch");
    let keys: Vec<&str> = active["source"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["source", "key", "value", "key", "value"]);
    assert_eq!(
        active["source"]["parameters"][1]["value"],
        json!({"type": "Constant", "name": "False", "expression": "\"False\"", "parameters": []})
    );
    let groups = &rule["objectMappings"][1];
    assert_eq!(groups["name"], "Provision Microsoft Entra ID Groups");
    assert_eq!(groups["enabled"], true);
    let group_targets: Vec<&str> = groups["attributeMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["targetAttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(
        group_targets,
        [
            "displayName",
            "externalId",
            "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group:license",
            "members"
        ]
    );
    let license = &groups["attributeMappings"][2];
    assert_eq!(license["source"], Value::Null, "a None mapping");
    assert_eq!(license["defaultValue"], "true");
    // `required` travels on the target directory's attribute definitions.
    let target_user = &schema["directories"][1]["objects"][0]["attributes"];
    let user_name = target_user
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["required"], true);
    assert_eq!(target_user[0]["name"], "id");
    assert_eq!(target_user[0]["anchor"], true);
}

/// Graph's source attribute table, approximated: `manager` is the one attribute scimsync
/// cannot read yet (the CLI passes the real table).
fn no_manager(_: ObjectKind, name: &str) -> bool {
    !name.eq_ignore_ascii_case("manager")
}

fn contract_options() -> ImportOptions {
    let mut o = ImportOptions::new("contoso-app");
    o.origin = "entra-contract-a4.json".into();
    o.readable = no_manager;
    o
}

#[test]
fn the_contract_example_imports_to_the_documented_job() {
    let out = imported(CONTRACT_EXAMPLE, &contract_options());
    let text = &out.text;
    // The blocks of the contract's A.5, verbatim; `required = true` is added where A.4's target
    // directory marks the attribute required (userName, the group's displayName): the
    // contract's own rule, which the example leaves out (see the module docs).
    for block in [
        "[[users.mappings]]\ntarget = \"userName\"\nsource = \"userPrincipalName\"\nmatching = 1\nrequired = true\n",
        "[[users.mappings]]\ntarget = \"active\"\nexpression = 'Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")'\n",
        "[[users.mappings]]\ntarget = \"preferredLanguage\"\nconstant = \"en-US\"\n",
        "[[users.mappings]]\ntarget = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"\nsource = \"department\"\napply = \"create\"\ndefault = \"Unknown\"\n",
        "[[users.scoping]]\nname = \"Sales staff at contoso.com\"\n[[users.scoping.clauses]]\nattribute = \"department\"\noperator = \"EQUALS\"\nvalue = \"Sales\"\n[[users.scoping.clauses]]\nattribute = \"userPrincipalName\"\noperator = \"REGEX MATCH\"\nvalue = '.*@contoso\\.com$'\n",
        "[groups]\nenabled = true\n",
        "[[groups.mappings]]\ntarget = \"displayName\"\nsource = \"displayName\"\nmatching = 1\nrequired = true\n",
        // The plain pairs the contract elides.
        "[[users.mappings]]\ntarget = 'emails[type eq \"work\"].value'\nsource = \"mail\"\n",
        "[[groups.mappings]]\ntarget = \"externalId\"\nsource = \"objectId\"\n",
    ] {
        assert!(text.contains(block), "missing:\n{block}\n--- in:\n{text}");
    }
    // manager cannot be read from Graph yet: commented out, with a warning at its path.
    assert!(
        text.contains(
            "# [[users.mappings]]\n# target = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager\"\n# source = \"manager\"\n"
        ),
        "{text}"
    );
    let manager = "synchronizationRules[0].objectMappings[0].attributeMappings[10]";
    assert!(
        out.findings
            .iter()
            .any(|f| f.severity == Severity::Warning && f.path == manager),
        "{}",
        lines(&out.findings)
    );
    // members is the engine's: a note and a comment, not a mapping.
    assert!(
        out.findings.iter().any(|f| f.severity == Severity::Note
            && f.path == "synchronizationRules[0].objectMappings[1].attributeMappings[2]"),
        "{}",
        lines(&out.findings)
    );
    assert!(text.contains("# members <- [members]"), "{text}");
    assert_eq!(
        out.findings.len(),
        2,
        "only manager and members: {}",
        lines(&out.findings)
    );
    // What the schema does not hold: placeholders, commented, as `init` leaves them.
    let left: Vec<&str> = out.placeholders.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        left,
        [
            "{{TENANT_ID}}",
            "{{CLIENT_ID}}",
            "{{SERVICE_PRINCIPAL_ID}}",
            "{{TENANT_URL}}"
        ]
    );
    assert!(
        text.contains(
            "tenant_id = \"{{TENANT_ID}}\"        # the Entra tenant id or domain (--tenant-id)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("token = \"env:CONTOSO_APP_SCIM_TOKEN\"\n"),
        "{text}"
    );
    assert_eq!(out.token_env, "CONTOSO_APP_SCIM_TOKEN");

    // Filled in, it is a valid job that does what the Entra mapping did.
    let job = load(&fill(text));
    assert_eq!(job.users.mappings.len(), 10);
    assert_eq!(job.groups.mappings.len(), 2);
    assert!(job.groups.enabled);
    assert_eq!(job.target.actions, TargetActions::default());
    let dept = &job.users.mappings[9];
    assert_eq!(dept.apply, Apply::CreateOnly);
    assert_eq!(dept.default.as_deref(), Some("Unknown"));
    assert_eq!(
        job.users.mappings[8].value,
        MappingValue::Constant {
            value: "en-US".into()
        }
    );
    assert_eq!(job.users.scoping.len(), 1);
    assert_eq!(
        job.users.scoping[0].clauses[1].operator,
        Operator::RegexMatch
    );
    assert_eq!(
        job.users.scoping[0].clauses[1].value.as_deref(),
        Some(r".*@contoso\.com$")
    );
    assert!(job.users.mappings[0].required && job.groups.mappings[0].required);
    assert!(!job.users.mappings[1].required);

    // Deterministic: the same schema gives the same bytes.
    assert_eq!(
        imported(CONTRACT_EXAMPLE, &contract_options()).text,
        out.text
    );
}

/// The contract example with one change at a JSON pointer.
fn edited(pointer: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match parent {
        Value::Object(o) => {
            o.insert(key.to_string(), value);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{pointer}: not in an object or array"),
    }
    v.to_string()
}

const USER_MAPPINGS: &str = "/synchronizationRules/0/objectMappings/0/attributeMappings";
const CLAUSES: &str = "/synchronizationRules/0/objectMappings/0/scope/groups/0/clauses";

fn assert_error(json: &str, path: &str, fragment: &str) {
    let findings = failed(json, &contract_options());
    assert!(
        findings.iter().any(|f| f.severity == Severity::Error
            && f.path == path
            && f.message.contains(fragment)),
        "no error at {path} containing {fragment:?}:\n{}",
        lines(&findings)
    );
}

#[test]
fn what_cannot_be_translated_is_an_error_at_its_json_path() {
    let m = "synchronizationRules[0].objectMappings[0].attributeMappings";
    let c = "synchronizationRules[0].objectMappings[0].scope.groups[0].clauses";
    assert_error(
        &edited(&format!("{USER_MAPPINGS}/4/source/type"), json!("Lcw")),
        &format!("{m}[4].source.type"),
        "unknown mapping source type \"Lcw\"",
    );
    assert_error(
        &edited(
            &format!("{USER_MAPPINGS}/2/flowType"),
            json!("MultiValueAddOnly"),
        ),
        &format!("{m}[2].flowType"),
        "MultiValueAddOnly",
    );
    assert_error(
        &edited(&format!("{CLAUSES}/0/operatorName"), json!("Present")),
        &format!("{c}[0].operatorName"),
        "unsupported operator \"Present\"",
    );
    assert_error(
        &edited(
            &format!("{CLAUSES}/0/targetOperand/values"),
            json!(["Sales", "Marketing"]),
        ),
        &format!("{c}[0].targetOperand.values"),
        "one value, found 2",
    );
    assert_error(
        &edited(&format!("{CLAUSES}/0/targetOperand/values"), json!([])),
        &format!("{c}[0].targetOperand.values"),
        "there is none",
    );
    assert_error(
        &edited(
            &format!("{CLAUSES}/1/targetOperand/values"),
            json!(["(?<=x)y"]),
        ),
        &format!("{c}[1].targetOperand.values"),
        "does not compile",
    );
    assert_error(
        &edited(
            "/synchronizationRules/0/objectMappings/0/scope/inputFilterGroups",
            json!([{"name": "x", "clauses": []}]),
        ),
        "synchronizationRules[0].objectMappings[0].scope.inputFilterGroups",
        "experimental",
    );
    assert_error(
        &edited(
            "/synchronizationRules/0/objectMappings/0/enabled",
            json!(false),
        ),
        "synchronizationRules[0].objectMappings[0].enabled",
        "always provisions users",
    );
    assert_error(
        &edited(&format!("{USER_MAPPINGS}/2/matchingPriority"), json!(1)),
        &format!("{m}[2].matchingPriority"),
        "already used by synchronizationRules[0].objectMappings[0].attributeMappings[0]",
    );
    assert_error(
        &edited(&format!("{USER_MAPPINGS}/8/matchingPriority"), json!(2)),
        &format!("{m}[8].matchingPriority"),
        "without a source",
    );
    assert_error(
        &edited(&format!("{USER_MAPPINGS}/0/matchingPriority"), json!(0)),
        m,
        "no attribute mapping has a matchingPriority",
    );
    assert_error(
        &edited(
            &format!("{USER_MAPPINGS}/3/targetAttributeName"),
            json!("USERNAME"),
        ),
        &format!("{m}[3].targetAttributeName"),
        "already mapped by synchronizationRules[0].objectMappings[0].attributeMappings[0]",
    );
    assert_error(
        &edited(
            &format!("{USER_MAPPINGS}/3/targetAttributeName"),
            json!("id"),
        ),
        &format!("{m}[3].targetAttributeName"),
        "assigned by the app",
    );
    assert_error(
        &edited(
            &format!("{USER_MAPPINGS}/1/source/expression"),
            json!("Switch([IsSoftDeleted], \"False\")"),
        ),
        &format!("{m}[1].source.expression"),
        "Switch expects",
    );
    assert_error(
        &edited(
            "/synchronizationRules/0/objectMappings/0/flowTypes",
            json!("Add, Upsert"),
        ),
        "synchronizationRules[0].objectMappings[0].flowTypes",
        "unknown flow type \"Upsert\"",
    );
    assert_error(
        &edited(&format!("{CLAUSES}/0/sourceOperandName"), json!("manager")),
        &format!("{c}[0].sourceOperandName"),
        "widen the scope",
    );
    assert_error(
        &edited(
            "/synchronizationRules/0/objectMappings/0/sourceObjectName",
            json!("Contact"),
        ),
        "synchronizationRules[0].objectMappings",
        "no object mapping with sourceObjectName \"User\"",
    );
    let findings = failed("{\"synchronizationRules\": [", &contract_options());
    assert!(
        findings[0].message.contains("line 1 column"),
        "{}",
        lines(&findings)
    );
    let findings = failed("{}", &contract_options());
    assert_eq!(findings[0].path, "synchronizationRules");
}

#[test]
fn lenient_imports_what_it_can_and_says_what_it_changed() {
    let mut v: Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
    let users = &mut v["synchronizationRules"][0]["objectMappings"][0];
    users["attributeMappings"][4]["source"]["type"] = json!("Lcw");
    users["attributeMappings"][2]["flowType"] = json!("ValueAddOnly");
    users["scope"]["inputFilterGroups"] = json!([{"name": "x", "clauses": []}]);
    users["scope"]["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "empty", "clauses": []}));
    let json = v.to_string();
    let mut opts = contract_options();
    opts.lenient = true;
    let out = imported(&json, &opts);
    let warned = |path: &str, fragment: &str| {
        assert!(
            out.findings.iter().any(|f| f.severity == Severity::Warning
                && f.path == path
                && f.message.contains(fragment)),
            "no warning at {path} with {fragment:?}:\n{}",
            lines(&out.findings)
        );
    };
    let m = "synchronizationRules[0].objectMappings[0]";
    warned(
        &format!("{m}.attributeMappings[4].source.type"),
        "the mapping is left out",
    );
    warned(
        &format!("{m}.attributeMappings[2].flowType"),
        "imported as apply = \"always\"",
    );
    warned(&format!("{m}.scope.inputFilterGroups"), "left out");
    warned(
        &format!("{m}.scope.groups[1].clauses"),
        "the filter is left out",
    );
    let job = load(&fill(&out.text));
    assert!(
        !job.users
            .mappings
            .iter()
            .any(|m| m.target == "emails[type eq \"work\"].value"),
        "the Lcw mapping is left out"
    );
    assert!(
        out.text.contains(
            "# Not imported (synchronizationRules[0].objectMappings[0].attributeMappings[4]):\n"
        ),
        "{}",
        out.text
    );
    assert_eq!(job.users.mappings[2].apply, Apply::Always);
    assert_eq!(job.users.scoping.len(), 1);
}

#[test]
fn warnings_for_what_differs_from_entra() {
    let mut v: Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
    let rule = &mut v["synchronizationRules"][0];
    rule["objectMappings"][0]["attributeMappings"][3]["flowBehavior"] = json!("FlowAlways");
    rule["objectMappings"][0]["attributeMappings"][8]["defaultValue"] = json!("fr-FR");
    rule["objectMappings"][0]["attributeMappings"][7]["source"] = Value::Null;
    rule["objectMappings"][0]["scope"]["groups"][0]["clauses"][0]["operatorName"] = json!("Equals");
    rule["objectMappings"][0]["scope"]["groups"][0]["clauses"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"operatorName": "IS NOT NULL", "sourceOperandName": "mail",
                   "targetOperand": {"values": [""]}}),
            json!({"operatorName": "IS TRUE", "sourceOperandName": "accountEnabled"}),
            json!({"operatorName": "&", "sourceOperandName": "country",
                   "targetOperand": {"values": ["FR", "DE"]}}),
            json!({"operatorName": "INCLUDES", "sourceOperandName": "mail",
                   "targetOperand": {"values": ["@"]}}),
        ]);
    rule["objectMappings"][0]["flowTypes"] = json!("Add,Update");
    rule["objectMappings"][1]["flowTypes"] = json!("Add, Update, Delete");
    rule["objectMappings"][1]["attributeMappings"]
        .as_array_mut()
        .unwrap()
        .pop();
    rule["objectMappings"][0]["attributeMappings"][4]["source"]["name"] =
        json!("extension_0123456789abcdef0123456789abcdef_costCenter");
    let out = imported(&v.to_string(), &contract_options());
    let m = "synchronizationRules[0].objectMappings[0]";
    let warned = |path: &str, fragment: &str| {
        assert!(
            out.findings.iter().any(|f| f.severity == Severity::Warning
                && f.path == path
                && f.message.contains(fragment)),
            "no warning at {path} with {fragment:?}:\n{}",
            lines(&out.findings)
        );
    };
    warned(
        &format!("{m}.attributeMappings[3].flowBehavior"),
        "FlowAlways",
    );
    warned(
        &format!("{m}.attributeMappings[8].defaultValue"),
        "never used",
    );
    warned(
        &format!("{m}.attributeMappings[7]"),
        "no source and no default value",
    );
    warned(
        &format!("{m}.scope.groups[0].clauses[0].operatorName"),
        "\"Equals\" read as Entra's \"EQUALS\"",
    );
    warned(
        &format!("{m}.scope.groups[0].clauses[5].operatorName"),
        "\"INCLUDES\" read as Entra's \"Includes\"",
    );
    warned(
        "synchronizationRules[0].objectMappings[1].flowTypes",
        "the users' are used",
    );
    warned(
        "synchronizationRules[0].objectMappings[1].attributeMappings",
        "no `members` mapping",
    );
    warned(&format!("{m}.attributeMappings[4]"), "directory extension");
    let job = load(&fill(&out.text));
    assert_eq!(
        job.target.actions,
        TargetActions {
            create: true,
            update: true,
            delete: false
        }
    );
    let clauses = &job.users.scoping[0].clauses;
    assert_eq!(clauses[0].operator, Operator::Equals);
    assert_eq!(clauses[2].operator, Operator::IsNotNull);
    assert_eq!(clauses[2].value, None);
    assert_eq!(clauses[3].value, None);
    assert_eq!(clauses[4].value.as_deref(), Some("FR,DE"));
    assert_eq!(clauses[5].operator, Operator::Includes);
    assert!(
        !job.users.mappings.iter().any(|m| m.target == "externalId"),
        "the None mapping without a default is left out"
    );
    assert!(
        job.users
            .mappings
            .iter()
            .find(|m| m.target == "preferredLanguage")
            .unwrap()
            .default
            .is_none()
    );
}

#[test]
fn an_expression_without_its_text_is_rebuilt_from_the_parameter_tree() {
    let json = edited(&format!("{USER_MAPPINGS}/1/source/expression"), Value::Null);
    let out = imported(&json, &contract_options());
    assert!(
        out.text.contains(
            "expression = 'Switch([IsSoftDeleted], , \"False\", \"True\", \"True\", \"False\")'"
        ),
        "{}",
        out.text
    );
    assert!(out.findings.iter().any(|f| f.severity == Severity::Note
        && f.path
            == "synchronizationRules[0].objectMappings[0].attributeMappings[1].source.expression"));

    // Every expression of a job survives export → strip the texts → import.
    let job = load(EVERYTHING);
    let mut schema: Value = serde_json::from_str(&export(&job).json()).unwrap();
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if o.get("type") == Some(&json!("Function")) {
                    o.remove("expression");
                }
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut schema);
    let out = imported(&schema.to_string(), &options_for(&job));
    let back = load(&out.text);
    for (a, b) in back.users.mappings.iter().zip(&job.users.mappings) {
        match (&a.value, &b.value) {
            (MappingValue::Expression { text: x }, MappingValue::Expression { text: y }) => {
                // Trailing empty arguments are not in the tree, and mean nothing.
                let (x, y) = (
                    trim_trailing(scimsync_expr::parse(x).unwrap()),
                    trim_trailing(scimsync_expr::parse(y).unwrap()),
                );
                assert!(x.eq_ignore_spans(&y), "{x} vs {y}");
            }
            (x, y) => assert_eq!(x, y),
        }
    }
}

/// The expression without trailing empty arguments, at every level.
fn trim_trailing(e: scimsync_expr::Expr) -> scimsync_expr::Expr {
    use scimsync_expr::Expr;
    match e {
        Expr::Call { name, args, span } => {
            let mut args: Vec<Option<Expr>> =
                args.into_iter().map(|a| a.map(trim_trailing)).collect();
            while matches!(args.last(), Some(None)) {
                args.pop();
            }
            Expr::Call { name, args, span }
        }
        Expr::Compare { op, lhs, rhs, span } => Expr::Compare {
            op,
            lhs: Box::new(trim_trailing(*lhs)),
            rhs: Box::new(trim_trailing(*rhs)),
            span,
        },
        other => other,
    }
}

#[test]
fn sparse_schemas_with_unknown_keys_and_old_names_import() {
    // As Microsoft's PUT samples write them: most keys absent, lower-case types, the old
    // directory name, nulls, and keys this version does not know.
    let json = r#"{
      "futureKey": {"x": 1},
      "directories": null,
      "synchronizationRules": [
        {"sourceDirectoryName": "Azure Active Directory", "targetDirectoryName": "customappsso",
         "objectMappings": [
           {"sourceObjectName": "User", "flowTypes": null, "scope": null, "newThing": [1, 2],
            "attributeMappings": [
              {"targetAttributeName": "userName", "matchingPriority": 1,
               "source": {"name": "userPrincipalName", "type": "attribute", "parameters": null}},
              {"targetAttributeName": "displayName", "defaultValue": "",
               "source": {"type": "Function", "name": "Join",
                          "parameters": [
                            {"key": "separator", "value": {"type": "Constant", "name": " "}},
                            {"key": "source", "value": {"type": "Attribute", "name": "givenName"}},
                            {"key": "source", "value": {"type": "Attribute", "name": "surname"}}]}},
              {"targetAttributeName": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
               "flowType": "ObjectAddOnly", "defaultValue": 42, "source": null}
            ]}
         ]}
      ]
    }"#;
    let out = imported(json, &ImportOptions::new("sparse"));
    let job = load(&fill(&out.text));
    assert_eq!(job.target.actions, TargetActions::default());
    assert!(!job.groups.enabled);
    assert_eq!(
        job.users.mappings[1].value,
        MappingValue::Expression {
            text: "Join(\" \", [givenName], [surname])".into()
        }
    );
    assert_eq!(job.users.mappings[1].default, None);
    assert_eq!(job.users.mappings[2].value, MappingValue::None);
    assert_eq!(job.users.mappings[2].default.as_deref(), Some("42"));
    assert!(
        out.text
            .contains("# The schema has no group mapping: groups are not provisioned."),
        "{}",
        out.text
    );
    assert!(
        out.findings.iter().any(|f| f.path == "directories"),
        "no target attributes, so nothing is required: {}",
        lines(&out.findings)
    );
}

#[test]
fn flags_fill_what_the_schema_does_not_hold() {
    let mut o = contract_options();
    o.tenant_id = Some("contoso.onmicrosoft.com".into());
    o.client_id = Some("c1".into());
    o.service_principal_id = Some("sp1".into());
    o.tenant_url = Some("https://app.example.com/scim".into());
    o.graph_url = Some("http://127.0.0.1:9/graph".into());
    o.login_url = Some("http://127.0.0.1:9/login".into());
    o.scope = scimsync_config::ScopeSetting::All;
    o.skip_out_of_scope_deletions = true;
    o.deletion_threshold = Some(25);
    o.deprovision = scimsync_config::Deprovision::Delete;
    let out = imported(CONTRACT_EXAMPLE, &o);
    assert!(out.placeholders.is_empty(), "{:?}", out.placeholders);
    let job = load(&out.text);
    assert_eq!(job.source.scope, scimsync_config::ScopeSetting::All);
    assert!(job.skip_out_of_scope_deletions);
    assert_eq!(job.deletion_threshold, 25);
    assert_eq!(job.users.deprovision, scimsync_config::Deprovision::Delete);
    assert_eq!(job.source.graph_url, "http://127.0.0.1:9/graph");
    assert_eq!(job.target.url, "https://app.example.com/scim");

    // And the export names the settings it cannot carry.
    let notes = export(&job).notes;
    for fragment in [
        "SyncAll",
        "SkipOutOfScopeDeletions",
        "deletion_threshold = 25",
        "deprovision",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(fragment)),
            "{fragment}: {notes:?}"
        );
    }
}

//! Job → schema: Entra's names for a custom SCIM app, the job's mappings, scoping filters and
//! actions, directory definitions of the attributes they use, and notes on the settings the
//! schema cannot carry.

use super::functions::{parameter_name, quote};
use super::*;
use crate::{Apply, Deprovision, JobConfig, Mapping, MappingValue, ScopeSetting, ScopingFilter};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A job's schema and what of the job it does not carry.
#[derive(Debug, Clone)]
pub struct Exported {
    pub schema: SynchronizationSchema,
    /// Job settings outside the schema that differ from Entra's defaults, each with where it
    /// lives in Entra (or that it has no equivalent there).
    pub notes: Vec<String>,
}

impl Exported {
    /// The schema as pretty JSON, newline-terminated.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.schema).unwrap_or_default();
        s.push('\n');
        s
    }
}

const SOURCE_DIRECTORY_ID: &str = "00000000-0000-0000-0000-00000000e1d0";
const TARGET_DIRECTORY_ID: &str = "00000000-0000-0000-0000-00000000a9b0";
const RULE_ID: &str = "00000000-0000-0000-0000-0000000051c0";

/// The schema of a job: Entra's names for a custom SCIM app, the job's mappings, scoping filters
/// and actions, and directory definitions of the attributes they use (the target's marked
/// `required` where the mapping is). Deterministic: the same job gives the same JSON.
pub fn export(job: &JobConfig) -> Exported {
    let flow_types = flow_types_text(&job.target.actions);
    let flow_types = if flow_types == "none" {
        String::new()
    } else {
        flow_types
    };
    let users = ObjectMapping {
        name: Some(USER_MAPPING_NAME.into()),
        enabled: Some(true),
        flow_types: Some(flow_types.clone()),
        source_object_name: Some("User".into()),
        target_object_name: Some(SCIM_USER_OBJECT.into()),
        metadata: vec![
            kv("IsCustomerDefined", "false"),
            kv("Disposition", "\"Normal\""),
            kv("EscrowBehavior", "\"Default\""),
            kv("Unsynchronized", "false"),
        ],
        scope: export_scope(&job.users.scoping),
        attribute_mappings: job.users.mappings.iter().map(export_mapping).collect(),
    };
    let mut group_mappings: Vec<AttributeMapping> =
        job.groups.mappings.iter().map(export_mapping).collect();
    let maps_members = job
        .groups
        .mappings
        .iter()
        .any(|m| m.target.eq_ignore_ascii_case("members"));
    if job.groups.enabled && !maps_members {
        // What the engine does: send each group's members.
        group_mappings.push(AttributeMapping {
            source: Some(attribute_source("members")),
            ..mapping_defaults("members")
        });
    }
    let groups = ObjectMapping {
        name: Some(GROUP_MAPPING_NAME.into()),
        enabled: Some(job.groups.enabled),
        flow_types: Some(flow_types),
        source_object_name: Some("Group".into()),
        target_object_name: Some(SCIM_GROUP_OBJECT.into()),
        metadata: Vec::new(),
        scope: export_scope(&job.groups.scoping),
        attribute_mappings: group_mappings,
    };

    let source = DirectoryDefinition {
        id: Some(Value::String(SOURCE_DIRECTORY_ID.into())),
        name: Some(ENTRA_DIRECTORY.into()),
        read_only: Some(Value::Bool(false)),
        version: None,
        discovery_date_time: None,
        discoverabilities: Some(Value::String("None".into())),
        metadata: Vec::new(),
        objects: vec![
            ObjectDefinition {
                name: Some("User".into()),
                supported_apis: Some(Value::Array(Vec::new())),
                metadata: vec![
                    kv("PropertyNameAccountEnabled", "accountEnabled"),
                    kv("PropertyNameSoftDeleted", "IsSoftDeleted"),
                    kv("IsSoftDeletionSupported", "true"),
                ],
                attributes: source_attributes(&job.users.mappings, &job.users.scoping),
            },
            ObjectDefinition {
                name: Some("Group".into()),
                supported_apis: Some(Value::Array(Vec::new())),
                metadata: Vec::new(),
                attributes: {
                    let mut a = source_attributes(&job.groups.mappings, &job.groups.scoping);
                    if job.groups.enabled && !a.iter().any(|d| d.name.as_deref() == Some("members"))
                    {
                        a.push(attribute_definition("members", false, "User"));
                    }
                    a
                },
            },
        ],
    };
    let target = DirectoryDefinition {
        id: Some(Value::String(TARGET_DIRECTORY_ID.into())),
        name: Some(SCIM_DIRECTORY.into()),
        read_only: Some(Value::Bool(false)),
        version: None,
        discovery_date_time: None,
        discoverabilities: Some(Value::String("None".into())),
        metadata: Vec::new(),
        objects: vec![
            ObjectDefinition {
                name: Some(SCIM_USER_OBJECT.into()),
                supported_apis: Some(Value::Array(Vec::new())),
                metadata: Vec::new(),
                attributes: target_attributes(&job.users.mappings, false, SCIM_USER_OBJECT),
            },
            ObjectDefinition {
                name: Some(SCIM_GROUP_OBJECT.into()),
                supported_apis: Some(Value::Array(Vec::new())),
                metadata: Vec::new(),
                attributes: target_attributes(
                    &job.groups.mappings,
                    job.groups.enabled,
                    SCIM_USER_OBJECT,
                ),
            },
        ],
    };
    let mut schema = SynchronizationSchema {
        id: Some(Value::String(format!("scimsync.{}", job.name))),
        version: None,
        directories: vec![source, target],
        synchronization_rules: vec![SynchronizationRule {
            id: Some(Value::String(RULE_ID.into())),
            name: Some(RULE_NAME.into()),
            editable: Some(Value::Bool(true)),
            priority: Some(Value::from(1)),
            source_directory_name: Some(ENTRA_DIRECTORY.into()),
            target_directory_name: Some(SCIM_DIRECTORY.into()),
            metadata: vec![kv("supportsProvisionOnDemand", "true")],
            object_mappings: vec![users, groups],
        }],
    };
    // Like Entra's, the version changes with every edit: here a hash of the content.
    let content = serde_json::to_vec(&schema).unwrap_or_default();
    let digest: String = Sha256::digest(&content)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    schema.version = Some(Value::String(format!("scimsync:{digest}")));
    Exported {
        schema,
        notes: outside_schema(job),
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: Some(key.into()),
        value: Some(Value::String(value.into())),
    }
}

fn mapping_defaults(target: &str) -> AttributeMapping {
    AttributeMapping {
        target_attribute_name: Some(target.into()),
        matching_priority: Some(0),
        flow_type: Some("Always".into()),
        flow_behavior: Some("FlowWhenChanged".into()),
        default_value: None,
        export_missing_references: Some(Value::Bool(false)),
        source: None,
    }
}

fn attribute_source(name: &str) -> AttributeMappingSource {
    AttributeMappingSource {
        kind: Some("Attribute".into()),
        name: Some(name.into()),
        expression: Some(format!("[{name}]")),
        parameters: Vec::new(),
    }
}

fn export_mapping(m: &Mapping) -> AttributeMapping {
    let source = match &m.value {
        MappingValue::Direct { source } => Some(attribute_source(source)),
        MappingValue::Constant { value } => Some(AttributeMappingSource {
            kind: Some("Constant".into()),
            name: Some(value.clone()),
            expression: Some(quote(value)),
            parameters: Vec::new(),
        }),
        MappingValue::Expression { text } => Some(function_source(text)),
        MappingValue::None => None,
    };
    AttributeMapping {
        matching_priority: Some(i64::from(m.matching.unwrap_or(0))),
        flow_type: Some(
            match m.apply {
                Apply::Always => "Always",
                Apply::CreateOnly => "ObjectAddOnly",
            }
            .into(),
        ),
        default_value: m.default.clone().map(Value::String),
        source,
        ..mapping_defaults(&m.target)
    }
}

/// A Function source: the expression text as written, the parameter tree from its parse.
fn function_source(text: &str) -> AttributeMappingSource {
    match scimsync_expr::parse(text) {
        Ok(expr) => {
            let mut s = expr_source(&expr);
            s.kind = Some("Function".into());
            s.expression = Some(text.to_string());
            s
        }
        Err(_) => AttributeMappingSource {
            kind: Some("Function".into()),
            name: Some(String::new()),
            expression: Some(text.to_string()),
            parameters: Vec::new(),
        },
    }
}

fn expr_source(e: &scimsync_expr::Expr) -> AttributeMappingSource {
    use scimsync_expr::Expr;
    let node = |kind: &str, name: String, params: Vec<SourceParameter>| AttributeMappingSource {
        kind: Some(kind.into()),
        name: Some(name),
        expression: Some(e.to_string()),
        parameters: params,
    };
    match e {
        Expr::Attr { name, .. } => node("Attribute", name.clone(), Vec::new()),
        Expr::Str { value, .. } => node("Constant", value.clone(), Vec::new()),
        Expr::Int { .. } | Expr::Word { .. } => node("Constant", e.to_string(), Vec::new()),
        Expr::Call { name, args, .. } => {
            let params = args
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    a.as_ref().map(|a| SourceParameter {
                        key: Some(
                            parameter_name(name, i)
                                .map(str::to_string)
                                .unwrap_or_else(|| format!("parameter{}", i + 1)),
                        ),
                        value: Some(expr_source(a)),
                    })
                })
                .collect();
            node("Function", name.clone(), params)
        }
        Expr::Compare { op, lhs, rhs, .. } => node(
            "Function",
            op.as_str().to_string(),
            vec![
                SourceParameter {
                    key: Some("left".into()),
                    value: Some(expr_source(lhs)),
                },
                SourceParameter {
                    key: Some("right".into()),
                    value: Some(expr_source(rhs)),
                },
            ],
        ),
    }
}

fn export_scope(filters: &[ScopingFilter]) -> Option<Filter> {
    if filters.is_empty() {
        return None;
    }
    Some(Filter {
        groups: filters
            .iter()
            .map(|f| FilterGroup {
                name: Some(f.name.clone().unwrap_or_default()),
                clauses: f
                    .clauses
                    .iter()
                    .map(|c| FilterClause {
                        operator_name: Some(c.operator.as_str().into()),
                        source_operand_name: Some(c.attribute.clone()),
                        target_operand: Some(FilterOperand {
                            values: c.value.iter().cloned().map(Value::String).collect(),
                        }),
                    })
                    .collect(),
            })
            .collect(),
        input_filter_groups: Vec::new(),
        category_filter_groups: Vec::new(),
    })
}

fn attribute_type(name: &str) -> &'static str {
    if ["IsSoftDeleted", "accountEnabled", "active"]
        .iter()
        .any(|b| b.eq_ignore_ascii_case(name))
    {
        "Boolean"
    } else if ["manager", "members"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name) || name.ends_with(&format!(":{r}")))
    {
        "Reference"
    } else {
        "String"
    }
}

/// A full attribute definition, as an export lists it.
fn attribute_definition(name: &str, required: bool, referenced: &str) -> AttributeDefinition {
    let kind = attribute_type(name);
    let references = if kind == "Reference" {
        serde_json::json!([{"referencedObjectName": referenced, "referencedProperty": null}])
    } else {
        serde_json::json!([])
    };
    AttributeDefinition {
        name: Some(name.into()),
        kind: Some(kind.into()),
        anchor: Some(Value::Bool(false)),
        case_exact: Some(Value::Bool(false)),
        default_value: None,
        flow_null_values: Some(false),
        multivalued: Some(Value::Bool(name.eq_ignore_ascii_case("members"))),
        mutability: Some(Value::String("ReadWrite".into())),
        required: Some(required),
        api_expressions: Some(Value::Array(Vec::new())),
        metadata: Vec::new(),
        referenced_objects: Some(references),
    }
}

fn anchor(name: &str) -> AttributeDefinition {
    AttributeDefinition {
        anchor: Some(Value::Bool(true)),
        ..attribute_definition(name, false, "")
    }
}

/// `objectId` (the anchor), then every source attribute the mappings and clauses read, in
/// order of first use.
fn source_attributes(mappings: &[Mapping], scoping: &[ScopingFilter]) -> Vec<AttributeDefinition> {
    let mut names: Vec<String> = vec!["objectId".into()];
    let mut add = |n: String| {
        if !names.iter().any(|k| k.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    };
    for m in mappings {
        match &m.value {
            MappingValue::Direct { source } => add(source.clone()),
            MappingValue::Expression { text } => {
                if let Ok(e) = scimsync_expr::parse(text) {
                    let mut found = Vec::new();
                    e.walk(&mut |n| {
                        if let scimsync_expr::Expr::Attr { name, .. } = n {
                            found.push(name.clone());
                        }
                    });
                    found.into_iter().for_each(&mut add);
                }
            }
            _ => {}
        }
    }
    for c in scoping.iter().flat_map(|f| &f.clauses) {
        add(c.attribute.clone());
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if i == 0 {
                anchor(n)
            } else {
                attribute_definition(n, false, "User")
            }
        })
        .collect()
}

/// `id` (the anchor), then each mapped target, `required` as the mapping says.
fn target_attributes(
    mappings: &[Mapping],
    members: bool,
    user_object: &str,
) -> Vec<AttributeDefinition> {
    let mut out = vec![anchor("id")];
    for m in mappings {
        if out.iter().any(|d| {
            d.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&m.target))
        }) {
            continue;
        }
        out.push(attribute_definition(&m.target, m.required, user_object));
    }
    if members && !out.iter().any(|d| d.name.as_deref() == Some("members")) {
        out.push(attribute_definition("members", false, user_object));
    }
    out
}

/// The job's settings that are not in the schema and differ from Entra's defaults.
fn outside_schema(job: &JobConfig) -> Vec<String> {
    use crate::{DialectSetting, GroupOutOfScope, Nested, Reconcile};
    let mut notes = Vec::new();
    if job.source.scope == ScopeSetting::All {
        notes.push("source.scope = \"all\": Entra's Scope \"Sync all users and groups\" (SyncAll) on the provisioning page".into());
    }
    if job.skip_out_of_scope_deletions {
        notes.push("skip_out_of_scope_deletions = true: Entra's SkipOutOfScopeDeletions, set through the job's secrets (Graph)".into());
    }
    if job.deletion_threshold != crate::DEFAULT_DELETION_THRESHOLD {
        notes.push(format!(
            "deletion_threshold = {}: Entra's \"Prevent accidental deletion\" threshold on the provisioning page",
            job.deletion_threshold
        ));
    }
    if job.users.deprovision == Deprovision::Delete {
        notes.push("users.deprovision = \"delete\": no schema setting; Entra disables users of a custom SCIM app that leave scope".into());
    }
    if job.source.exclude_default_access {
        notes.push("source.exclude_default_access = true: no schema setting; assign such users another role in Entra".into());
    }
    if job.target.dialect == DialectSetting::Rfc {
        notes.push("target.dialect = \"rfc\": Entra sends RFC 7644 PATCH with the aadOptscim062020 flag in the Tenant URL".into());
    }
    if job.target.clear_on_null {
        notes.push("target.clear_on_null = true: no Entra equivalent for outbound provisioning (Entra never sends nulls)".into());
    }
    if job.groups.nested == Nested::Include {
        notes.push("groups.nested = \"include\": no Entra equivalent (Entra provisions direct members only)".into());
    }
    if job.groups.out_of_scope == GroupOutOfScope::Skip {
        notes.push("groups.out_of_scope = \"skip\": no schema setting (Entra deletes groups that leave scope)".into());
    }
    if job.groups.reconcile != Reconcile::Off {
        notes.push("groups.reconcile: no Entra equivalent (Entra never reads groups back)".into());
    }
    notes
}

//! Schema → job: the rule and object mappings chosen, each attribute mapping, scoping filter
//! and flow type translated or reported at its JSON path.

use super::functions::{parameter_position, quote};
use super::text::render;
use super::*;
use crate::{Apply, Clause, Mapping, MappingValue, Operator, ScopingFilter, TargetActions};
use serde_json::Value;
use std::collections::HashMap;

/// Translate schema JSON to job file text. On failure, every finding (errors first is not
/// implied: they are in schema order) with at least one error.
pub fn import(json: &str, opts: &ImportOptions) -> Result<Imported, Vec<Finding>> {
    let schema = parse_schema(json).map_err(|f| vec![f])?;
    import_schema(&schema, opts)
}

/// [`import`] on a parsed schema.
pub fn import_schema(
    schema: &SynchronizationSchema,
    opts: &ImportOptions,
) -> Result<Imported, Vec<Finding>> {
    let mut cx = Cx {
        findings: Vec::new(),
        lenient: opts.lenient,
        readable: opts.readable,
    };
    let Some(ri) = cx.pick_rule(schema) else {
        return Err(cx.findings);
    };
    let rule = &schema.synchronization_rules[ri];
    let rpath = format!("synchronizationRules[{ri}]");
    let targets = TargetAttributes::new(schema, rule.target_directory_name.as_deref());
    if targets.is_empty() {
        cx.note(
            "directories",
            format!(
                "the schema lists no attributes of the target directory {:?}: no mapping is marked `required`",
                rule.target_directory_name.as_deref().unwrap_or("")
            ),
        );
    }
    let mut users: Option<ObjectOut> = None;
    let mut groups: Option<ObjectOut> = None;
    for (oi, om) in rule.object_mappings.iter().enumerate() {
        let path = format!("{rpath}.objectMappings[{oi}]");
        let source = om.source_object_name.as_deref().unwrap_or("").trim();
        let kind = if source.eq_ignore_ascii_case("User") {
            ObjectKind::User
        } else if source.eq_ignore_ascii_case("Group") {
            ObjectKind::Group
        } else {
            cx.warn(
                format!("{path}.sourceObjectName"),
                format!(
                    "object mapping {:?} provisions {source:?} objects; scimsync provisions users and groups only: left out",
                    om.name.as_deref().unwrap_or("")
                ),
            );
            continue;
        };
        let slot = match kind {
            ObjectKind::User => &mut users,
            ObjectKind::Group => &mut groups,
        };
        if let Some(first) = slot {
            cx.error(
                format!("{path}.sourceObjectName"),
                format!(
                    "a second {source} object mapping (the first is {}): a job has one",
                    first.path
                ),
            );
            continue;
        }
        if metadata_true(&om.metadata, "Unsynchronized") {
            cx.warn(
                format!("{path}.metadata"),
                format!(
                    "object mapping {:?} is marked Unsynchronized: left out",
                    om.name.as_deref().unwrap_or("")
                ),
            );
            continue;
        }
        *slot = Some(cx.object(om, kind, &path, &targets));
    }
    let Some(users) = users else {
        cx.error(
            format!("{rpath}.objectMappings"),
            "no object mapping with sourceObjectName \"User\": a job provisions users",
        );
        return Err(cx.findings);
    };
    let actions = users.actions.clone();
    if let Some(g) = &groups
        && g.enabled
        && g.actions != users.actions
    {
        cx.warn(
            format!("{}.flowTypes", g.path),
            format!(
                "the group mapping's target object actions ({}) differ from the users' ({}); a job has one set: the users' are used",
                flow_types_text(&g.actions),
                flow_types_text(&users.actions)
            ),
        );
    }
    if cx.findings.iter().any(|f| f.severity == Severity::Error) {
        return Err(cx.findings);
    }
    let text = render(opts, rule, &users, groups.as_ref(), &actions);
    let placeholders = PLACEHOLDERS
        .iter()
        .filter(|(p, _)| text.contains(p))
        .copied()
        .collect();
    Ok(Imported {
        placeholders,
        token_env: token_env(&opts.name),
        user_mappings: users.mappings().count(),
        group_mappings: groups.as_ref().map_or(0, |g| g.mappings().count()),
        scoping_filters: users.scoping.len() + groups.as_ref().map_or(0, |g| g.scoping.len()),
        findings: cx.findings,
        text,
    })
}

struct Cx {
    findings: Vec<Finding>,
    lenient: bool,
    readable: fn(ObjectKind, &str) -> bool,
}

/// One translated object mapping.
pub(super) struct ObjectOut {
    pub(super) path: String,
    pub(super) name: String,
    pub(super) enabled: bool,
    pub(super) actions: TargetActions,
    pub(super) items: Vec<Item>,
    pub(super) scoping: Vec<ScopingFilter>,
}

impl ObjectOut {
    pub(super) fn mappings(&self) -> impl Iterator<Item = &Mapping> {
        self.items.iter().filter_map(|i| match i {
            Item::Mapping(m) => Some(m),
            _ => None,
        })
    }
}

/// What an attribute mapping becomes in the file.
pub(super) enum Item {
    Mapping(Mapping),
    /// Left out, written as a comment: the reason and, when there is one, the mapping.
    Skipped {
        path: String,
        reason: String,
        mapping: Option<Mapping>,
    },
    /// A group's `members`: sent by the engine.
    Members {
        path: String,
    },
}

/// Required/flowNullValues of the target directory's attributes, by (object, attribute),
/// both lower-cased.
struct TargetAttributes(HashMap<(String, String), (bool, bool)>);

impl TargetAttributes {
    fn new(schema: &SynchronizationSchema, directory: Option<&str>) -> Self {
        let mut map = HashMap::new();
        let dir = schema.directories.iter().find(|d| {
            d.name
                .as_deref()
                .zip(directory)
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        });
        for object in dir.into_iter().flat_map(|d| &d.objects) {
            let oname = object.name.as_deref().unwrap_or("").to_ascii_lowercase();
            for a in &object.attributes {
                if let Some(name) = &a.name {
                    map.insert(
                        (oname.clone(), name.to_ascii_lowercase()),
                        (
                            a.required.unwrap_or(false),
                            a.flow_null_values.unwrap_or(false),
                        ),
                    );
                }
            }
        }
        TargetAttributes(map)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (required, flowNullValues).
    fn get(&self, object: &str, attribute: &str) -> (bool, bool) {
        self.0
            .get(&(object.to_ascii_lowercase(), attribute.to_ascii_lowercase()))
            .copied()
            .unwrap_or((false, false))
    }
}

fn metadata_true(metadata: &[KeyValue], key: &str) -> bool {
    metadata.iter().any(|kv| {
        kv.key
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(key))
            && match &kv.value {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.trim().trim_matches('"').eq_ignore_ascii_case("true"),
                _ => false,
            }
    })
}

/// A scalar JSON value as text; `None` for null, arrays and objects.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

fn is_entra_directory(name: &str) -> bool {
    ENTRA_DIRECTORY_NAMES
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name.trim()))
}

impl Cx {
    fn push(&mut self, severity: Severity, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            path: path.into(),
            message: message.into(),
        });
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path, message);
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path, message);
    }

    fn note(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Note, path, message);
    }

    /// Something only `--lenient` may approximate: an error, or a warning saying what was done.
    /// Returns whether to go on (lenient).
    fn unsupported(&mut self, path: String, problem: String, lenient_action: &str) -> bool {
        if self.lenient {
            self.warn(path, format!("{problem}; --lenient: {lenient_action}"));
            true
        } else {
            self.error(path, format!("{problem} (--lenient: {lenient_action})"));
            false
        }
    }

    /// The outbound rule from Entra to the app.
    fn pick_rule(&mut self, schema: &SynchronizationSchema) -> Option<usize> {
        let mut candidates = Vec::new();
        for (i, r) in schema.synchronization_rules.iter().enumerate() {
            let to_app = r
                .target_directory_name
                .as_deref()
                .is_none_or(|t| !is_entra_directory(t));
            let from_entra = r
                .source_directory_name
                .as_deref()
                .is_none_or(is_entra_directory);
            if to_app && from_entra {
                candidates.push(i);
            } else {
                self.warn(
                    format!("synchronizationRules[{i}]"),
                    format!(
                        "rule {:?} ({} -> {}) does not provision from Entra to an app: left out",
                        r.name.as_deref().unwrap_or(""),
                        r.source_directory_name.as_deref().unwrap_or("?"),
                        r.target_directory_name.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
        let priority = |i: &usize| {
            schema.synchronization_rules[*i]
                .priority
                .as_ref()
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX)
        };
        let chosen = candidates.iter().copied().min_by_key(|i| (priority(i), *i));
        match chosen {
            None => {
                self.error(
                    "synchronizationRules",
                    "no synchronization rule from Entra (\"Microsoft Entra ID\") to the app: nothing to import",
                );
                None
            }
            Some(c) => {
                for other in candidates.into_iter().filter(|i| *i != c) {
                    self.warn(
                        format!("synchronizationRules[{other}]"),
                        format!(
                            "a second outbound rule {:?}: only synchronizationRules[{c}] (the lowest priority) is imported",
                            schema.synchronization_rules[other]
                                .name
                                .as_deref()
                                .unwrap_or("")
                        ),
                    );
                }
                Some(c)
            }
        }
    }

    fn object(
        &mut self,
        om: &ObjectMapping,
        kind: ObjectKind,
        path: &str,
        targets: &TargetAttributes,
    ) -> ObjectOut {
        let enabled = om.enabled.unwrap_or(true);
        if kind == ObjectKind::User && !enabled {
            self.error(
                format!("{path}.enabled"),
                "the user mapping is disabled: a job always provisions users (Entra's portal cannot switch the user mapping off either)",
            );
        }
        let actions = self.flow_types(om.flow_types.as_deref(), &format!("{path}.flowTypes"));
        let target_object = om.target_object_name.clone().unwrap_or_default();
        let mut items = Vec::new();
        // Lower-cased target → path of the mapping; precedence → path.
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut precedences: HashMap<u32, String> = HashMap::new();
        let mut members = false;
        for (ai, am) in om.attribute_mappings.iter().enumerate() {
            let apath = format!("{path}.attributeMappings[{ai}]");
            let item = self.attribute_mapping(am, kind, &apath, &target_object, targets);
            if let Some(Item::Mapping(m)) = &item {
                let key = m.target.to_ascii_lowercase();
                if let Some(first) = seen.get(&key) {
                    self.error(
                        format!("{apath}.targetAttributeName"),
                        format!("`{}` is already mapped by {first}", m.target),
                    );
                    continue;
                }
                seen.insert(key, apath.clone());
                if let Some(p) = m.matching {
                    if let Some(first) = precedences.get(&p) {
                        self.error(
                            format!("{apath}.matchingPriority"),
                            format!("matching priority {p} is already used by {first}"),
                        );
                    } else {
                        precedences.insert(p, apath.clone());
                    }
                }
            }
            members |= matches!(item, Some(Item::Members { .. }));
            items.extend(item);
        }
        let needs_matching = kind == ObjectKind::User || enabled;
        if needs_matching && precedences.is_empty() {
            self.error(
                format!("{path}.attributeMappings"),
                "no attribute mapping has a matchingPriority above 0: at least one attribute must match objects in the app",
            );
        }
        if kind == ObjectKind::Group && enabled && !members {
            self.warn(
                format!("{path}.attributeMappings"),
                "the group mapping has no `members` mapping, so Entra provisions groups without their members; scimsync always sends each group's direct members",
            );
        }
        let scoping = self.scope(om.scope.as_ref(), kind, &format!("{path}.scope"));
        ObjectOut {
            path: path.to_string(),
            name: om.name.clone().unwrap_or_default(),
            enabled,
            actions,
            items,
            scoping,
        }
    }

    fn flow_types(&mut self, v: Option<&str>, path: &str) -> TargetActions {
        let Some(v) = v else {
            return TargetActions::default();
        };
        let mut actions = TargetActions {
            create: false,
            update: false,
            delete: false,
        };
        for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token.to_ascii_lowercase().as_str() {
                "add" => actions.create = true,
                "update" => actions.update = true,
                "delete" => actions.delete = true,
                _ => self.error(
                    path,
                    format!("unknown flow type {token:?} (expected Add, Update and/or Delete)"),
                ),
            }
        }
        actions
    }

    fn attribute_mapping(
        &mut self,
        am: &AttributeMapping,
        kind: ObjectKind,
        path: &str,
        target_object: &str,
        targets: &TargetAttributes,
    ) -> Option<Item> {
        let target = am
            .target_attribute_name
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_string();
        if target.is_empty() {
            self.error(
                format!("{path}.targetAttributeName"),
                "missing: the target attribute a mapping writes",
            );
            return None;
        }
        if target.eq_ignore_ascii_case("id") {
            self.error(
                format!("{path}.targetAttributeName"),
                "the target `id` is assigned by the app and cannot be mapped",
            );
            return None;
        }
        if kind == ObjectKind::Group && target.eq_ignore_ascii_case("members") {
            let from_members = am.source.as_ref().is_some_and(|s| {
                s.kind
                    .as_deref()
                    .is_none_or(|k| k.eq_ignore_ascii_case("Attribute"))
                    && s.name
                        .as_deref()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("members"))
            });
            if from_members {
                self.note(
                    path,
                    "members <- [members] is not a mapping in scimsync: the engine sends each group's direct members that are provisioned users",
                );
                return Some(Item::Members {
                    path: path.to_string(),
                });
            }
            self.warn(
                path,
                "`members` from anything but [members] cannot be imported: scimsync sends each group's direct members; left out",
            );
            return Some(Item::Skipped {
                path: path.to_string(),
                reason: "members from another source: scimsync sends each group's direct members"
                    .into(),
                mapping: None,
            });
        }

        let default = am
            .default_value
            .as_ref()
            .and_then(scalar_text)
            .filter(|d| !d.is_empty());
        let value = match &am.source {
            None => MappingValue::None,
            Some(src) => match self.source_value(src, &format!("{path}.source")) {
                Ok(v) => v,
                Err(reason) => {
                    return reason.map(|reason| Item::Skipped {
                        path: path.to_string(),
                        reason: format!("{target}: {reason}"),
                        mapping: None,
                    });
                }
            },
        };
        if matches!(value, MappingValue::None) && default.is_none() {
            self.warn(
                path,
                format!("`{target}` has no source and no default value, so it never writes anything: left out"),
            );
            return Some(Item::Skipped {
                path: path.to_string(),
                reason: format!("{target}: mapping type None without a default value"),
                mapping: None,
            });
        }
        let default = match (&value, default) {
            (MappingValue::Constant { .. }, Some(d)) => {
                self.warn(
                    format!("{path}.defaultValue"),
                    format!("{d:?} is never used: a constant always has a value; not imported"),
                );
                None
            }
            (_, d) => d,
        };

        let matching = match am.matching_priority {
            None | Some(0) => None,
            Some(n) if n < 0 || n > i64::from(u32::MAX) => {
                self.error(
                    format!("{path}.matchingPriority"),
                    format!("expected 0 (not matching) or 1 and above, found {n}"),
                );
                None
            }
            Some(n) if matches!(value, MappingValue::Constant { .. } | MappingValue::None) => {
                self.error(
                    format!("{path}.matchingPriority"),
                    format!(
                        "matching priority {n} on a mapping without a source: a constant would match every object to one"
                    ),
                );
                None
            }
            Some(n) => u32::try_from(n).ok(),
        };

        let apply = match am.flow_type.as_deref().map(str::trim) {
            None | Some("") => Apply::Always,
            Some(t) if t.eq_ignore_ascii_case("Always") => Apply::Always,
            Some(t) if t.eq_ignore_ascii_case("ObjectAddOnly") => Apply::CreateOnly,
            Some(t) => {
                let known = ["MultiValueAddOnly", "ValueAddOnly", "AttributeAddOnly"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(t));
                let problem = if known {
                    format!(
                        "flow type {t:?} of `{target}` has no scimsync equivalent (only Always and ObjectAddOnly)"
                    )
                } else {
                    format!(
                        "unknown flow type {t:?} of `{target}` (expected Always or ObjectAddOnly)"
                    )
                };
                if !self.unsupported(
                    format!("{path}.flowType"),
                    problem,
                    "imported as apply = \"always\"",
                ) {
                    return None;
                }
                Apply::Always
            }
        };
        match am.flow_behavior.as_deref().map(str::trim) {
            None | Some("") => {}
            Some(b) if b.eq_ignore_ascii_case("FlowWhenChanged") => {}
            Some(b) if b.eq_ignore_ascii_case("FlowAlways") => self.warn(
                format!("{path}.flowBehavior"),
                format!("FlowAlways on `{target}`: scimsync sends a value only when it changed (FlowWhenChanged)"),
            ),
            Some(b) => self.warn(
                format!("{path}.flowBehavior"),
                format!("unknown flow behavior {b:?} on `{target}`: ignored (scimsync sends changes only)"),
            ),
        }

        let (required, flow_nulls) = targets.get(target_object, &target);
        if flow_nulls {
            self.warn(
                path,
                format!(
                    "the target attribute `{target}` has flowNullValues: in scimsync a cleared source value clears the target only with [target] clear_on_null = true (for every attribute)"
                ),
            );
        }
        let mapping = Mapping {
            target: target.clone(),
            value,
            matching,
            apply,
            default,
            required,
            line: 0,
        };

        let sources = match &mapping.value {
            MappingValue::Direct { source } => vec![source.clone()],
            MappingValue::Expression { text } => scimsync_expr::parse(text)
                .map(|e| scimsync_expr::attributes(&e))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let unreadable: Vec<&String> = sources
            .iter()
            .filter(|n| !(self.readable)(kind, n))
            .collect();
        if !unreadable.is_empty() {
            let names = unreadable
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.warn(
                path,
                format!(
                    "`{target}` reads {names}, which scimsync's Graph source does not read: written commented out, so the value is not sent"
                ),
            );
            return Some(Item::Skipped {
                path: path.to_string(),
                reason: format!("reads {names}, which scimsync does not read from Graph yet"),
                mapping: Some(mapping),
            });
        }
        let extensions: Vec<&String> = sources
            .iter()
            .filter(|n| n.starts_with("extension_"))
            .collect();
        if !extensions.is_empty() {
            self.warn(
                path,
                format!(
                    "`{target}` reads the directory extension {}: check that Graph returns it for the {} (the app that owns it must be known to the tenant)",
                    extensions
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if kind == ObjectKind::User { "users" } else { "groups" }
                ),
            );
        }
        Some(Item::Mapping(mapping))
    }

    /// The value of a mapping source. `Err(None)`: an error was recorded; `Err(Some(reason))`:
    /// left out with a warning (lenient).
    fn source_value(
        &mut self,
        src: &AttributeMappingSource,
        path: &str,
    ) -> Result<MappingValue, Option<String>> {
        let kind = src.kind.as_deref().unwrap_or("Attribute").trim();
        let name = src.name.as_deref().unwrap_or("");
        if kind.eq_ignore_ascii_case("Attribute") {
            let name = match name.trim() {
                "" => match src.expression.as_deref().map(scimsync_expr::parse) {
                    Some(Ok(scimsync_expr::Expr::Attr { name, .. })) => name,
                    _ => {
                        self.error(
                            format!("{path}.name"),
                            "an Attribute source without an attribute name",
                        );
                        return Err(None);
                    }
                },
                n => n.to_string(),
            };
            Ok(MappingValue::Direct { source: name })
        } else if kind.eq_ignore_ascii_case("Constant") {
            let value = match &src.name {
                Some(n) => n.clone(),
                None => match src.expression.as_deref().map(scimsync_expr::parse) {
                    Some(Ok(scimsync_expr::Expr::Str { value, .. })) => value,
                    _ => String::new(),
                },
            };
            if value.is_empty() {
                // Empty values are never sent: this is a None mapping (default or nothing).
                return Ok(MappingValue::None);
            }
            Ok(MappingValue::Constant { value })
        } else if kind.eq_ignore_ascii_case("Function") {
            let text = match src.expression.as_deref().map(str::trim) {
                Some(t) if !t.is_empty() => t.to_string(),
                _ => match rebuild(src) {
                    Ok(t) => {
                        self.note(
                            format!("{path}.expression"),
                            format!("no expression text: rebuilt from the parameter tree as {t}"),
                        );
                        t
                    }
                    Err(e) => {
                        self.error(
                            format!("{path}.parameters"),
                            format!(
                                "no expression text, and the parameter tree cannot be read: {e}"
                            ),
                        );
                        return Err(None);
                    }
                },
            };
            let problems = match scimsync_expr::parse(&text) {
                Err(e) => vec![e],
                Ok(expr) => scimsync_expr::check(&expr, &|_| true),
            };
            if let Some(e) = problems.first() {
                self.error(
                    format!("{path}.expression"),
                    format!(
                        "{text:?} at {}:{}: {} (scimsync evaluates Entra's expression language)",
                        e.line, e.column, e.message
                    ),
                );
                return Err(None);
            }
            Ok(MappingValue::Expression { text })
        } else {
            let problem = format!(
                "unknown mapping source type {kind:?} (expected Attribute, Constant or Function)"
            );
            if self.unsupported(format!("{path}.type"), problem, "the mapping is left out") {
                Err(Some(format!("source type {kind:?}")))
            } else {
                Err(None)
            }
        }
    }

    fn scope(
        &mut self,
        filter: Option<&Filter>,
        kind: ObjectKind,
        path: &str,
    ) -> Vec<ScopingFilter> {
        let Some(filter) = filter else {
            return Vec::new();
        };
        for (key, groups) in [
            ("inputFilterGroups", &filter.input_filter_groups),
            ("categoryFilterGroups", &filter.category_filter_groups),
        ] {
            if !groups.is_empty() {
                self.unsupported(
                    format!("{path}.{key}"),
                    format!(
                        "{key} (Entra's experimental filters that drop objects on read without deprovisioning them) have no scimsync equivalent"
                    ),
                    "left out, so those objects are provisioned",
                );
            }
        }
        let mut out = Vec::new();
        for (gi, g) in filter.groups.iter().enumerate() {
            let gpath = format!("{path}.groups[{gi}]");
            if g.clauses.is_empty() {
                self.unsupported(
                    format!("{gpath}.clauses"),
                    "a scoping filter without clauses (scimsync needs at least one; what Entra makes of it is unconfirmed)".into(),
                    "the filter is left out",
                );
                continue;
            }
            let clauses: Vec<Clause> = g
                .clauses
                .iter()
                .enumerate()
                .filter_map(|(ci, c)| self.clause(c, kind, &format!("{gpath}.clauses[{ci}]")))
                .collect();
            if clauses.len() == g.clauses.len() {
                out.push(ScopingFilter {
                    name: g
                        .name
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                    clauses,
                    line: 0,
                });
            }
        }
        out
    }

    fn clause(&mut self, c: &FilterClause, kind: ObjectKind, path: &str) -> Option<Clause> {
        let attribute = c.source_operand_name.as_deref().unwrap_or("").trim();
        if attribute.is_empty() {
            self.error(
                format!("{path}.sourceOperandName"),
                "missing: the source attribute the clause tests",
            );
            return None;
        }
        if !(self.readable)(kind, attribute) {
            self.error(
                format!("{path}.sourceOperandName"),
                format!(
                    "scimsync's Graph source does not read {attribute:?}, and leaving the clause out would widen the scope"
                ),
            );
            return None;
        }
        let given = c.operator_name.as_deref().unwrap_or("");
        let op = match Operator::parse(given) {
            Ok(op) => op,
            Err(_) => {
                let norm = |s: &str| s.trim().to_ascii_uppercase().replace('_', " ");
                match Operator::ALL
                    .into_iter()
                    .find(|op| norm(op.as_str()) == norm(given))
                {
                    Some(op) if !given.trim().is_empty() => {
                        self.warn(
                            format!("{path}.operatorName"),
                            format!("{given:?} read as Entra's {:?}", op.as_str()),
                        );
                        op
                    }
                    _ => {
                        self.error(
                            format!("{path}.operatorName"),
                            format!(
                                "unsupported operator {given:?} (scimsync has Entra's 14: {})",
                                Operator::ALL
                                    .iter()
                                    .map(|o| o.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let vpath = format!("{path}.targetOperand.values");
        let mut values = Vec::new();
        for (i, v) in c
            .target_operand
            .as_ref()
            .map(|o| o.values.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match v {
                Value::Null => {}
                other => match scalar_text(other) {
                    Some(t) => values.push(t),
                    None => {
                        self.error(format!("{vpath}[{i}]"), "expected a string");
                        return None;
                    }
                },
            }
        }
        let value = if op.is_unary() {
            if values.iter().any(|v| !v.is_empty()) {
                self.warn(vpath, format!("`{op}` takes no value: {values:?} ignored"));
            }
            None
        } else {
            match values.as_slice() {
                [] => {
                    self.error(
                        vpath,
                        format!("`{op}` compares with a value, and there is none"),
                    );
                    return None;
                }
                [one] => Some(one.clone()),
                several if matches!(op, Operator::In | Operator::NotIn) => {
                    if several.iter().any(|v| v.contains(',')) {
                        self.warn(
                            vpath.clone(),
                            "a value contains a comma: scimsync reads the joined list split at every comma",
                        );
                    }
                    Some(several.join(","))
                }
                several => {
                    self.error(
                        vpath,
                        format!("`{op}` compares with one value, found {}", several.len()),
                    );
                    return None;
                }
            }
        };
        if let Some(v) = &value {
            let problem = match op {
                Operator::GreaterThan | Operator::GreaterThanOrEquals
                    if v.trim().parse::<i64>().is_err() =>
                {
                    Some(format!("`{op}` compares integers, found {v:?}"))
                }
                Operator::RegexMatch | Operator::NotRegexMatch => regex::Regex::new(v)
                    .err()
                    .map(|_| format!("the pattern {v:?} does not compile as a Rust regex (no lookaround or backreferences)")),
                Operator::In | Operator::NotIn if v.split(',').all(|i| i.trim().is_empty()) => {
                    Some(format!("`{op}` takes a list of values, found none"))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                self.error(format!("{path}.targetOperand.values"), problem);
                return None;
            }
        }
        Some(Clause {
            attribute: attribute.to_string(),
            operator: op,
            value,
            line: 0,
        })
    }
}

const COMPARE_OPS: [&str; 6] = ["=", "<>", ">", ">=", "<", "<="];

/// The expression text of a source tree without `expression` text.
fn rebuild(src: &AttributeMappingSource) -> Result<String, String> {
    let kind = src.kind.as_deref().unwrap_or("Attribute").trim();
    let name = src.name.as_deref().unwrap_or("").trim();
    if kind.eq_ignore_ascii_case("Attribute") {
        if name.is_empty() {
            return src
                .expression
                .clone()
                .ok_or_else(|| "an Attribute node without a name".to_string());
        }
        return Ok(format!("[{name}]"));
    }
    if kind.eq_ignore_ascii_case("Constant") {
        return Ok(match &src.expression {
            Some(e) if !e.trim().is_empty() => e.clone(),
            _ => quote(src.name.as_deref().unwrap_or("")),
        });
    }
    if !kind.eq_ignore_ascii_case("Function") {
        return Err(format!("unknown node type {kind:?}"));
    }
    if let Some(e) = src.expression.as_deref().filter(|e| !e.trim().is_empty()) {
        return Ok(e.to_string());
    }
    if name.is_empty() {
        return Err("a Function node without a name".into());
    }
    let args: Vec<String> = src
        .parameters
        .iter()
        .map(|p| {
            p.value
                .as_ref()
                .ok_or_else(|| format!("parameter {:?} of {name} has no value", p.key))
                .and_then(rebuild)
        })
        .collect::<Result<_, _>>()?;
    if COMPARE_OPS.contains(&name) {
        return match args.as_slice() {
            [l, r] => Ok(format!("{l} {name} {r}")),
            _ => Err(format!("comparison {name} needs two operands")),
        };
    }
    let mut slots: Vec<Option<String>> = Vec::new();
    let mut next = 0;
    for (p, text) in src.parameters.iter().zip(args) {
        let at = p
            .key
            .as_deref()
            .and_then(|k| parameter_position(name, k, next))
            .unwrap_or(next);
        if slots.len() <= at {
            slots.resize(at + 1, None);
        }
        slots[at] = Some(text);
        next = at + 1;
    }
    let joined: Vec<String> = slots.into_iter().map(Option::unwrap_or_default).collect();
    Ok(format!("{name}({})", joined.join(", ")))
}

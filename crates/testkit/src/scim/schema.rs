//! The SCIM schemas the target serves (RFC 7643 §4 and §8.7): core User, enterprise User
//! extension, core Group, plus the common attributes, and extension schemas registered at
//! start ([`catalog`]). One table drives input validation, filter/PATCH path resolution and the
//! `/Schemas` discovery document, so they cannot drift.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::error::ScimError;

pub(crate) const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE_USER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Entra lists this URN in `schemas` of every group it creates; it carries no attributes.
pub(crate) const MS_ADSCIM_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AttrType {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
    Binary,
    Integer,
    Decimal,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            AttrType::Integer => "integer",
            AttrType::Decimal => "decimal",
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
            AttrType::Binary => "binary",
        }
    }

    /// Types on which `co`/`sw`/`ew` make sense.
    pub(crate) fn is_textual(self) -> bool {
        matches!(
            self,
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Returned {
    Always,
    Never,
    Default,
}

#[derive(Debug)]
pub(crate) struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub unique_server: bool,
    pub sub: &'static [AttrDef],
    pub ref_types: &'static [&'static str],
}

const fn attr(name: &'static str, ty: AttrType) -> AttrDef {
    AttrDef {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique_server: false,
        sub: &[],
        ref_types: &[],
    }
}

const fn s(name: &'static str) -> AttrDef {
    attr(name, AttrType::String)
}

impl AttrDef {
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self.returned = Returned::Never;
        self
    }
    const fn always(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }
    const fn unique(mut self) -> Self {
        self.unique_server = true;
        self
    }
    const fn subs(mut self, sub: &'static [AttrDef]) -> Self {
        self.sub = sub;
        self
    }
    const fn refs(mut self, r: &'static [&'static str]) -> Self {
        self.ref_types = r;
        self
    }

    pub(crate) fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }

    pub(crate) fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.sub, name)
    }
}

/// Attribute names are case-insensitive (RFC 7643 §2.1).
pub(crate) fn find(attrs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

const C: AttrType = AttrType::Complex;
const B: AttrType = AttrType::Boolean;
const R: AttrType = AttrType::Reference;
const DT: AttrType = AttrType::DateTime;

const NAME_SUBS: &[AttrDef] = &[
    s("formatted"),
    s("familyName"),
    s("givenName"),
    s("middleName"),
    s("honorificPrefix"),
    s("honorificSuffix"),
];
const MULTI_SUBS: &[AttrDef] = &[s("value"), s("display"), s("type"), attr("primary", B)];
const PHOTO_SUBS: &[AttrDef] = &[
    attr("value", R).refs(&["external"]),
    s("display"),
    s("type"),
    attr("primary", B),
];
const CERT_SUBS: &[AttrDef] = &[
    attr("value", AttrType::Binary),
    s("display"),
    s("type"),
    attr("primary", B),
];
const ADDRESS_SUBS: &[AttrDef] = &[
    s("formatted"),
    s("streetAddress"),
    s("locality"),
    s("region"),
    s("postalCode"),
    s("country"),
    s("type"),
    attr("primary", B),
];
const USER_GROUP_SUBS: &[AttrDef] = &[
    s("value").exact().read_only(),
    attr("$ref", R).exact().read_only().refs(&["User", "Group"]),
    s("display").read_only(),
    s("type").read_only(),
];

const USER_ATTRS: &[AttrDef] = &[
    s("userName").required().unique(),
    attr("name", C).subs(NAME_SUBS),
    s("displayName"),
    s("nickName"),
    attr("profileUrl", R).refs(&["external"]),
    s("title"),
    s("userType"),
    s("preferredLanguage"),
    s("locale"),
    s("timezone"),
    attr("active", B),
    s("password").write_only(),
    attr("emails", C).multi().subs(MULTI_SUBS),
    attr("phoneNumbers", C).multi().subs(MULTI_SUBS),
    attr("ims", C).multi().subs(MULTI_SUBS),
    attr("photos", C).multi().subs(PHOTO_SUBS),
    attr("addresses", C).multi().subs(ADDRESS_SUBS),
    attr("groups", C).multi().read_only().subs(USER_GROUP_SUBS),
    attr("entitlements", C).multi().subs(MULTI_SUBS),
    attr("roles", C).multi().subs(MULTI_SUBS),
    attr("x509Certificates", C).multi().subs(CERT_SUBS),
];

/// `manager.value` is required: a manager without an id is meaningless.
const MANAGER_SUBS: &[AttrDef] = &[
    s("value").exact().required(),
    attr("$ref", R).exact().refs(&["User"]),
    s("displayName").read_only(),
];

const ENTERPRISE_ATTRS: &[AttrDef] = &[
    s("employeeNumber"),
    s("costCenter"),
    s("organization"),
    s("division"),
    s("department"),
    attr("manager", C).subs(MANAGER_SUBS),
];

/// `members.value` is required (our choice): a member without an id is a client bug.
const MEMBER_SUBS: &[AttrDef] = &[
    s("value").exact().immutable().required(),
    attr("$ref", R).exact().immutable().refs(&["User", "Group"]),
    s("type").immutable(),
    s("display"),
];

const GROUP_ATTRS: &[AttrDef] = &[
    s("displayName").required(),
    attr("members", C).multi().subs(MEMBER_SUBS),
];

const META_SUBS: &[AttrDef] = &[
    s("resourceType").exact().read_only(),
    attr("created", DT).read_only(),
    attr("lastModified", DT).read_only(),
    attr("location", R).exact().read_only().refs(&["uri"]),
    s("version").exact().read_only(),
];

/// Attributes every resource has (RFC 7643 §3.1); not part of any schema document.
pub(crate) const COMMON_ATTRS: &[AttrDef] = &[
    s("id").exact().read_only().always(),
    s("externalId").exact(),
    attr("meta", C).read_only().subs(META_SUBS),
];

#[derive(Debug)]
pub(crate) struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attrs: &'static [AttrDef],
}

pub(crate) static USER_SCHEMA: SchemaDef = SchemaDef {
    id: CORE_USER,
    name: "User",
    description: "User Account",
    attrs: USER_ATTRS,
};
pub(crate) static ENTERPRISE_SCHEMA: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attrs: ENTERPRISE_ATTRS,
};
pub(crate) static GROUP_SCHEMA: SchemaDef = SchemaDef {
    id: CORE_GROUP,
    name: "Group",
    description: "Group",
    attrs: GROUP_ATTRS,
};

#[derive(Debug)]
pub(crate) struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub core: &'static SchemaDef,
    pub extensions: &'static [&'static SchemaDef],
    /// URNs accepted in `schemas` without any attributes of their own.
    pub tolerated: &'static [&'static str],
}

pub(crate) static USER: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    core: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_SCHEMA],
    tolerated: &[],
};
pub(crate) static GROUP: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    core: &GROUP_SCHEMA,
    extensions: &[],
    tolerated: &[MS_ADSCIM_GROUP],
};

impl ResourceType {
    pub(crate) fn extension(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .copied()
            .find(|e| e.id.eq_ignore_ascii_case(urn))
    }

    /// A core or common attribute by name.
    pub(crate) fn core_attr(&self, name: &str) -> Option<&'static AttrDef> {
        find(self.core.attrs, name).or_else(|| find(COMMON_ATTRS, name))
    }
}

/// How lenient input validation is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    /// Reject `"True"`/`"False"` strings where a boolean is expected.
    pub strict_booleans: bool,
}

/// Validate a resource body against `rt` and return it with canonical attribute names, `null`s
/// and empty arrays dropped (RFC 7644 §3.5.2: all three mean "unassigned") and booleans sent as
/// strings turned into real booleans. `id`, `meta` and read-only attributes are ignored
/// (RFC 7643 §2.2); the caller adds `id` and `meta`. `schemas` is recomputed from the content;
/// with `check_schemas` the body's own `schemas` must name the core schema and nothing unknown.
pub(crate) fn normalize(
    rt: &ResourceType,
    input: &Value,
    rules: Rules,
    check_schemas: bool,
) -> Result<Map<String, Value>, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))?;
    if check_schemas {
        check_schemas_attr(rt, obj)?;
    }
    let mut core = Map::new();
    let mut exts: Vec<(&'static str, Map<String, Value>)> = Vec::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas")
            || key.eq_ignore_ascii_case("id")
            || key.eq_ignore_ascii_case("meta")
        {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            if value.is_null() {
                continue;
            }
            let inner = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "the extension '{}' must be a JSON object",
                    ext.id
                ))
            })?;
            let mut out = Map::new();
            for (k, v) in inner {
                let def = find(ext.attrs, k).ok_or_else(|| {
                    ScimError::invalid_syntax(format!(
                        "unknown attribute '{k}' in extension '{}'",
                        ext.id
                    ))
                })?;
                if def.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = normalize_value(def, v, rules, def.name)? {
                    out.insert(def.name.to_owned(), v);
                }
            }
            check_required(ext.attrs, &out, ext.id)?;
            if !out.is_empty() {
                exts.push((ext.id, out));
            }
            continue;
        }
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            return Err(ScimError::invalid_value(format!(
                "unknown schema extension '{key}': this service provider supports only {}",
                supported_schemas(rt)
            )));
        }
        let def = rt.core_attr(key).ok_or_else(|| {
            ScimError::invalid_syntax(format!("unknown attribute '{key}' for a {}", rt.name))
        })?;
        if def.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = normalize_value(def, value, rules, def.name)? {
            core.insert(def.name.to_owned(), v);
        }
    }
    check_required(rt.core.attrs, &core, rt.name)?;

    let mut schemas = vec![Value::String(rt.core.id.to_owned())];
    schemas.extend(exts.iter().map(|(id, _)| Value::String((*id).to_owned())));
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.extend(core);
    for (id, m) in exts {
        out.insert(id.to_owned(), Value::Object(m));
    }
    Ok(out)
}

fn supported_schemas(rt: &ResourceType) -> String {
    let mut all = vec![rt.core.id];
    all.extend(rt.extensions.iter().map(|e| e.id));
    all.join(", ")
}

fn check_schemas_attr(rt: &ResourceType, obj: &Map<String, Value>) -> Result<(), ScimError> {
    let schemas = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            ScimError::invalid_value(format!(
                "the 'schemas' attribute is required (include {})",
                rt.core.id
            ))
        })?;
    let list = schemas
        .as_array()
        .ok_or_else(|| ScimError::invalid_value("'schemas' must be an array of schema URNs"))?;
    let mut has_core = false;
    for urn in list {
        let urn = urn
            .as_str()
            .ok_or_else(|| ScimError::invalid_value("'schemas' must be an array of schema URNs"))?;
        if urn.eq_ignore_ascii_case(rt.core.id) {
            has_core = true;
        } else if rt.extension(urn).is_none()
            && !rt.tolerated.iter().any(|t| t.eq_ignore_ascii_case(urn))
        {
            return Err(ScimError::invalid_value(format!(
                "unknown schema '{urn}' in 'schemas': this service provider supports only {}",
                supported_schemas(rt)
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_value(format!(
            "'schemas' must include {}",
            rt.core.id
        )));
    }
    Ok(())
}

fn check_required(
    attrs: &'static [AttrDef],
    obj: &Map<String, Value>,
    owner: &str,
) -> Result<(), ScimError> {
    for def in attrs.iter().filter(|a| a.required) {
        if !obj.contains_key(def.name) {
            return Err(ScimError::invalid_value(format!(
                "the attribute '{}' of '{owner}' is required",
                def.name
            )));
        }
    }
    Ok(())
}

fn normalize_value(
    def: &AttrDef,
    value: &Value,
    rules: Rules,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if !def.multi {
        return normalize_single(def, value, rules, label);
    }
    let items = value.as_array().ok_or_else(|| {
        ScimError::invalid_value(format!(
            "'{label}' is multi-valued: its value must be a JSON array"
        ))
    })?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = normalize_single(def, item, rules, label)? {
            out.push(v);
        }
    }
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{label}' may have \"primary\": true (RFC 7643 §2.4)"
        )));
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(Value::Array(out))
    })
}

fn normalize_single(
    def: &AttrDef,
    value: &Value,
    rules: Rules,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let ok = |v: &Value| Ok(Some(v.clone()));
    match def.ty {
        AttrType::Complex => {
            let obj = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "'{label}' is a complex attribute: each value must be a JSON object such as {{\"value\": \"…\"}}"
                ))
            })?;
            let mut out = Map::new();
            for (k, v) in obj {
                let sub = def.sub_attr(k).ok_or_else(|| {
                    ScimError::invalid_syntax(format!("unknown sub-attribute '{k}' of '{label}'"))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = normalize_single(sub, v, rules, &format!("{label}.{}", sub.name))?
                {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            check_required(def.sub, &out, label)?;
            Ok(Some(Value::Object(out)))
        }
        AttrType::Boolean => match value {
            Value::Bool(_) => ok(value),
            Value::String(s) if !rules.strict_booleans && s.eq_ignore_ascii_case("true") => {
                Ok(Some(Value::Bool(true)))
            }
            Value::String(s) if !rules.strict_booleans && s.eq_ignore_ascii_case("false") => {
                Ok(Some(Value::Bool(false)))
            }
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a JSON boolean (true or false), got {value}"
            ))),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => ok(value),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a JSON string, got {value}"
            ))),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => ok(value),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a JSON integer, got {value}"
            ))),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => ok(value),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be a JSON number, got {value}"
            ))),
        },
        AttrType::DateTime => match value.as_str() {
            Some(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => ok(value),
            _ => Err(ScimError::invalid_value(format!(
                "'{label}' must be an xsd:dateTime string, got {value}"
            ))),
        },
    }
}

fn attr_json(def: &AttrDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(def.name));
    m.insert("type".into(), json!(def.ty.as_str()));
    m.insert("multiValued".into(), json!(def.multi));
    m.insert(
        "description".into(),
        json!(format!("The '{}' attribute.", def.name)),
    );
    m.insert("required".into(), json!(def.required));
    if def.ty != AttrType::Complex && def.ty != AttrType::Boolean {
        m.insert("caseExact".into(), json!(def.case_exact));
    }
    let mutability = match def.mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    };
    m.insert("mutability".into(), json!(mutability));
    let returned = match def.returned {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
    };
    m.insert("returned".into(), json!(returned));
    m.insert(
        "uniqueness".into(),
        json!(if def.unique_server { "server" } else { "none" }),
    );
    if def.ty == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(def.ref_types));
    }
    if def.ty == AttrType::Complex {
        m.insert(
            "subAttributes".into(),
            Value::Array(def.sub.iter().map(attr_json).collect()),
        );
    }
    Value::Object(m)
}

/// The schema resource for `/Schemas` (RFC 7643 §7).
pub(crate) fn schema_json(schema: &SchemaDef, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", schema.id)},
    })
}

/// What one server serves: its two resource types and every schema (for `/Schemas`).
#[derive(Debug)]
pub(crate) struct Catalog {
    pub user: &'static ResourceType,
    pub group: &'static ResourceType,
    pub schemas: Vec<&'static SchemaDef>,
}

static BUILTIN: OnceLock<&'static Catalog> = OnceLock::new();
/// Catalogs built from extra schemas, by their JSON text: the schema tables are `'static`
/// (they are mostly consts), so a registered schema is leaked once per distinct set, not once
/// per server start.
static EXTENDED: OnceLock<Mutex<HashMap<String, &'static Catalog>>> = OnceLock::new();

/// The catalog for these extra schema resources (RFC 7643 §7). Schemas with a built-in id
/// (core User/Group, enterprise User) are skipped, so a scim2-server `--schema` file that
/// repeats the defaults can be passed whole. An extension applies to Users or Groups by its
/// URN's last segment (`…:2.0:Group`).
pub(crate) fn catalog(extra: &[Value]) -> Result<&'static Catalog, String> {
    if extra.is_empty() {
        return Ok(BUILTIN.get_or_init(|| {
            Box::leak(Box::new(Catalog {
                user: &USER,
                group: &GROUP,
                schemas: vec![&USER_SCHEMA, &ENTERPRISE_SCHEMA, &GROUP_SCHEMA],
            }))
        }));
    }
    let key = serde_json::to_string(extra).map_err(|e| e.to_string())?;
    let mut cache = EXTENDED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.get(&key) {
        return Ok(c);
    }
    let built = build_catalog(extra)?;
    let leaked: &'static Catalog = Box::leak(Box::new(built));
    cache.insert(key, leaked);
    Ok(leaked)
}

fn build_catalog(extra: &[Value]) -> Result<Catalog, String> {
    let mut user_ext: Vec<&'static SchemaDef> = vec![&ENTERPRISE_SCHEMA];
    let mut group_ext: Vec<&'static SchemaDef> = Vec::new();
    let mut schemas: Vec<&'static SchemaDef> =
        vec![&USER_SCHEMA, &ENTERPRISE_SCHEMA, &GROUP_SCHEMA];
    for value in extra {
        let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
        if schemas.iter().any(|s| s.id.eq_ignore_ascii_case(id)) {
            if [CORE_USER, ENTERPRISE_USER, CORE_GROUP]
                .iter()
                .any(|b| b.eq_ignore_ascii_case(id))
            {
                continue;
            }
            return Err(format!("schema '{id}' is registered twice"));
        }
        let def: &'static SchemaDef = Box::leak(Box::new(parse_schema(value)?));
        let kind = def.id.rsplit(':').next().unwrap_or_default();
        if kind.eq_ignore_ascii_case("User") {
            user_ext.push(def);
        } else if kind.eq_ignore_ascii_case("Group") {
            group_ext.push(def);
        } else {
            return Err(format!(
                "cannot tell whether schema '{}' extends Users or Groups: its URN must end in \
                 ':User' or ':Group'",
                def.id
            ));
        }
        schemas.push(def);
    }
    let rt = |base: &ResourceType, exts: Vec<&'static SchemaDef>| -> &'static ResourceType {
        Box::leak(Box::new(ResourceType {
            name: base.name,
            endpoint: base.endpoint,
            core: base.core,
            extensions: Box::leak(exts.into_boxed_slice()),
            tolerated: base.tolerated,
        }))
    };
    Ok(Catalog {
        user: rt(&USER, user_ext),
        group: rt(&GROUP, group_ext),
        schemas,
    })
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// An RFC 7643 §7 schema resource as a [`SchemaDef`] (its strings leaked, see [`catalog`]).
fn parse_schema(v: &Value) -> Result<SchemaDef, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("a schema must be a JSON object, got {v}"))?;
    let id = o
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")))
        .ok_or("a schema needs an 'id' that is a URN")?;
    let attrs = o
        .get("attributes")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("schema '{id}' needs an 'attributes' array"))?;
    let parsed = attrs
        .iter()
        .map(|a| parse_attr(a, id))
        .collect::<Result<Vec<_>, _>>()?;
    let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
    Ok(SchemaDef {
        id: leak(id),
        name: leak(text("name")),
        description: leak(text("description")),
        attrs: Box::leak(parsed.into_boxed_slice()),
    })
}

fn parse_attr(v: &Value, owner: &str) -> Result<AttrDef, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("an attribute of '{owner}' is not a JSON object"))?;
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("an attribute of '{owner}' has no 'name'"))?;
    let label = format!("{owner}:{name}");
    let word = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let ty = match word("type").as_deref() {
        Some("string") => AttrType::String,
        Some("boolean") => AttrType::Boolean,
        Some("datetime") => AttrType::DateTime,
        Some("reference") => AttrType::Reference,
        Some("complex") => AttrType::Complex,
        Some("binary") => AttrType::Binary,
        Some("integer") => AttrType::Integer,
        Some("decimal") => AttrType::Decimal,
        other => return Err(format!("'{label}' has an unknown type {other:?}")),
    };
    let mutability = match word("mutability").as_deref() {
        None | Some("readwrite") => Mutability::ReadWrite,
        Some("readonly") => Mutability::ReadOnly,
        Some("immutable") => Mutability::Immutable,
        Some("writeonly") => Mutability::WriteOnly,
        Some(m) => return Err(format!("'{label}' has an unknown mutability '{m}'")),
    };
    let returned = match word("returned").as_deref() {
        None | Some("default") | Some("request") => Returned::Default,
        Some("always") => Returned::Always,
        Some("never") => Returned::Never,
        Some(r) => return Err(format!("'{label}' has an unknown 'returned' '{r}'")),
    };
    let sub = match (ty, o.get("subAttributes").and_then(Value::as_array)) {
        (AttrType::Complex, Some(subs)) => subs
            .iter()
            .map(|s| parse_attr(s, &label))
            .collect::<Result<Vec<_>, _>>()?,
        (AttrType::Complex, None) => {
            return Err(format!("complex attribute '{label}' needs 'subAttributes'"));
        }
        _ => Vec::new(),
    };
    let ref_types: Vec<&'static str> = o
        .get("referenceTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(leak)
        .collect();
    Ok(AttrDef {
        name: leak(name),
        ty,
        multi: flag("multiValued"),
        required: flag("required"),
        case_exact: flag("caseExact"),
        mutability,
        returned,
        unique_server: matches!(word("uniqueness").as_deref(), Some("server" | "global")),
        sub: Box::leak(sub.into_boxed_slice()),
        ref_types: Box::leak(ref_types.into_boxed_slice()),
    })
}

/// The resource type resource for `/ResourceTypes` (RFC 7643 §6).
pub(crate) fn resource_type_json(rt: &ResourceType, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.core.description,
        "schema": rt.core.id,
        "schemaExtensions": rt.extensions.iter().map(|e| json!({"schema": e.id, "required": false})).collect::<Vec<_>>(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{}", rt.name)},
    })
}

/// `/ServiceProviderConfig` (RFC 7643 §5).
pub(crate) fn service_provider_config(base_url: &str, max_results: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a static bearer token",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAX: Rules = Rules {
        strict_booleans: false,
    };

    #[test]
    fn canonicalises_names_and_coerces_string_booleans() {
        let out = normalize(
            &USER,
            &json!({"schemas": [CORE_USER], "UserName": "a", "Active": "False", "emails": [{"Value": "a@x", "Primary": "True"}]}),
            LAX,
            true,
        )
        .expect("valid");
        assert_eq!(out["userName"], "a");
        assert_eq!(out["active"], false);
        assert_eq!(out["emails"][0]["primary"], true);
    }

    #[test]
    fn strict_booleans_reject_strings() {
        let err = normalize(
            &USER,
            &json!({"schemas": [CORE_USER], "userName": "a", "active": "False"}),
            Rules {
                strict_booleans: true,
            },
            true,
        )
        .expect_err("string boolean");
        assert_eq!(err.status, 400);
    }

    #[test]
    fn rejects_unknown_extension_and_string_manager() {
        let unknown = normalize(
            &USER,
            &json!({"schemas": [CORE_USER], "userName": "a", "urn:example:custom:1.0:User": {"x": "y"}}),
            LAX,
            true,
        );
        assert!(unknown.is_err());
        let manager = normalize(
            &USER,
            &json!({"schemas": [CORE_USER, ENTERPRISE_USER], "userName": "a", ENTERPRISE_USER: {"manager": "id-1"}}),
            LAX,
            true,
        );
        assert!(
            manager
                .expect_err("string manager")
                .detail
                .contains("manager")
        );
    }

    #[test]
    fn drops_nulls_and_recomputes_schemas() {
        let out = normalize(
            &USER,
            &json!({"schemas": [CORE_USER, ENTERPRISE_USER], "userName": "a", "title": null, "addresses": null, ENTERPRISE_USER: {"manager": null}}),
            LAX,
            true,
        )
        .expect("valid");
        assert!(!out.contains_key("title"));
        assert_eq!(out["schemas"], json!([CORE_USER]));
    }
}

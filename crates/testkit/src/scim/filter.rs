//! SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): lexing, parsing against the
//! schema (so an unknown attribute is an error, not a silent miss) and evaluation on stored
//! resources, which always carry canonical attribute names.
//!
//! Comparison rules (RFC 7643 §2.3 defaults, kept simple): strings compare case-insensitively
//! unless the attribute is `caseExact` (`id`, `externalId`, `meta.*`, `$ref`, and the id-valued
//! `members.value` / `manager.value` / `groups.value`); so `userName eq` ignores case. Values of
//! different JSON types never match. `ne` is the negation of `eq` (true for an absent attribute);
//! `eq null` matches an absent attribute. String values must be quoted; bare words other than
//! `true`, `false`, `null` and numbers are an `invalidFilter` error.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{AttrDef, AttrType, ResourceType, SchemaDef};

/// A resolved attribute path: `[ext:]attr[.sub]`, or a whole extension object (`attr: None`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttrRef {
    pub ext: Option<&'static SchemaDef>,
    pub attr: Option<&'static AttrDef>,
    pub sub: Option<&'static AttrDef>,
}

impl AttrRef {
    /// The attribute whose values are compared (`sub`, else `attr`).
    fn leaf(&self) -> Option<&'static AttrDef> {
        self.sub.or(self.attr)
    }
}

/// Resolve `urn:…:User:manager.value`, `name.givenName`, `userName` or an extension URN.
pub(crate) fn resolve(rt: &ResourceType, raw: &str) -> Result<AttrRef, String> {
    let mut ext = None;
    let mut rest = raw;
    if raw.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        let schemas =
            std::iter::once((rt.core, false)).chain(rt.extensions.iter().map(|e| (*e, true)));
        let mut found = false;
        for (schema, is_ext) in schemas {
            let Some(prefix) = raw.get(..schema.id.len()) else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case(schema.id) {
                continue;
            }
            let tail = &raw[schema.id.len()..];
            if tail.is_empty() {
                if is_ext {
                    return Ok(AttrRef {
                        ext: Some(schema),
                        attr: None,
                        sub: None,
                    });
                }
                return Err(format!("'{raw}' names the core schema, not an attribute"));
            }
            if let Some(t) = tail.strip_prefix(':') {
                ext = is_ext.then_some(schema);
                rest = t;
                found = true;
                break;
            }
        }
        if !found {
            return Err(format!("unknown schema in attribute path '{raw}'"));
        }
    }
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub_name = parts.next();
    if parts.next().is_some() {
        return Err(format!("attribute path '{raw}' has too many levels"));
    }
    let attr = match ext {
        Some(e) => super::schema::find(e.attrs, name),
        None => rt.core_attr(name),
    }
    .ok_or_else(|| format!("unknown attribute '{name}' in '{raw}'"))?;
    let sub = match sub_name {
        None => None,
        Some(s) => Some(
            attr.sub_attr(s)
                .ok_or_else(|| format!("'{}' has no sub-attribute '{s}'", attr.name))?,
        ),
    };
    Ok(AttrRef {
        ext,
        attr: Some(attr),
        sub,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Where a filter's attribute lives: on the resource, or on one value of a multi-valued
/// attribute (inside `emails[...]`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Resource(AttrRef),
    Element(&'static AttrDef),
}

#[derive(Clone, Debug)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(Target),
    Cmp(Target, CmpOp, Value),
    /// `attr[filter]`: some value of `attr` satisfies `filter`.
    Any(AttrRef, Box<Filter>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

fn lex(input: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'[' => {
                out.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                out.push(Tok::RBracket);
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                let raw = input.get(start..i).ok_or("invalid string")?;
                let s: String =
                    serde_json::from_str(raw).map_err(|e| format!("invalid string {raw}: {e}"))?;
                out.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                out.push(Tok::Word(input[start..i].to_owned()));
            }
        }
    }
    Ok(out)
}

/// Where attribute names are looked up while parsing.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a ResourceType),
    Element(&'static AttrDef),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            Some(x) => Err(format!("expected {what}, found {x:?}")),
            None => Err(format!("expected {what}, found the end of the filter")),
        }
    }

    fn or(&mut self, scope: Scope<'_>) -> Result<Filter, String> {
        let mut left = self.and(scope)?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and(scope)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, scope: Scope<'_>) -> Result<Filter, String> {
        let mut left = self.unary(scope)?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary(scope)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, scope: Scope<'_>) -> Result<Filter, String> {
        if self.peek_word("not") && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
            self.pos += 2;
            let inner = self.or(scope)?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.or(scope)?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(inner);
        }
        self.attr_exp(scope)
    }

    fn attr_exp(&mut self, scope: Scope<'_>) -> Result<Filter, String> {
        let raw = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(t) => return Err(format!("expected an attribute path, found {t:?}")),
            None => return Err("expected an attribute path, found the end of the filter".into()),
        };
        if self.peek() == Some(&Tok::LBracket) {
            let Scope::Resource(rt) = scope else {
                return Err("value filters cannot be nested".into());
            };
            self.pos += 1;
            let r = resolve(rt, &raw)?;
            let attr = match (r.attr, r.sub) {
                (Some(a), None) if a.is_complex() => a,
                _ => return Err(format!("'{raw}[...]' needs a complex attribute")),
            };
            let inner = self.or(Scope::Element(attr))?;
            self.expect(Tok::RBracket, "']'")?;
            return Ok(Filter::Any(r, Box::new(inner)));
        }
        let target = match scope {
            Scope::Resource(rt) => {
                let r = resolve(rt, &raw)?;
                if r.attr.is_none() {
                    return Err(format!("'{raw}' is a schema, not an attribute"));
                }
                Target::Resource(r)
            }
            Scope::Element(parent) => Target::Element(
                parent
                    .sub_attr(&raw)
                    .ok_or_else(|| format!("'{}' has no sub-attribute '{raw}'", parent.name))?,
            ),
        };
        let op = match self.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(format!("expected an operator after '{raw}'")),
        };
        if op == "pr" {
            return Ok(Filter::Present(target));
        }
        let op = match op.as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "co" => CmpOp::Co,
            "sw" => CmpOp::Sw,
            "ew" => CmpOp::Ew,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            other => return Err(format!("unknown operator '{other}'")),
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Word(w)) => match w.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => match serde_json::from_str::<serde_json::Number>(&w) {
                    Ok(n) => Value::Number(n),
                    Err(_) => {
                        return Err(format!(
                            "the value {w} must be a quoted string (\"{w}\"), true, false, null or a number"
                        ));
                    }
                },
            },
            _ => return Err(format!("expected a value after '{raw} {op:?}'")),
        };
        check_operator(target, op, &value, &raw)?;
        Ok(Filter::Cmp(target, op, value))
    }
}

fn leaf_def(target: Target) -> Option<&'static AttrDef> {
    match target {
        Target::Element(d) => Some(d),
        Target::Resource(r) => {
            let leaf = r.leaf()?;
            if leaf.is_complex() {
                leaf.sub_attr("value")
            } else {
                Some(leaf)
            }
        }
    }
}

fn check_operator(target: Target, op: CmpOp, value: &Value, raw: &str) -> Result<(), String> {
    let def = leaf_def(target)
        .ok_or_else(|| format!("'{raw}' is complex: compare one of its sub-attributes"))?;
    match op {
        CmpOp::Co | CmpOp::Sw | CmpOp::Ew if !def.ty.is_textual() || !value.is_string() => Err(
            format!("'{raw}' cannot be compared with co/sw/ew to {value}"),
        ),
        CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le
            if matches!(def.ty, AttrType::Boolean | AttrType::Binary)
                || value.is_null()
                || value.is_boolean() =>
        {
            Err(format!("'{raw}' cannot be ordered with gt/ge/lt/le"))
        }
        _ => Ok(()),
    }
}

/// Parse a `filter` query parameter for resources of type `rt`.
pub(crate) fn parse(rt: &ResourceType, input: &str) -> Result<Filter, ScimError> {
    let inner = || -> Result<Filter, String> {
        let toks = lex(input)?;
        if toks.is_empty() {
            return Err("the filter is empty".into());
        }
        let mut p = Parser { toks, pos: 0 };
        let f = p.or(Scope::Resource(rt))?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {t:?} after a complete expression"));
        }
        Ok(f)
    };
    inner().map_err(|e| ScimError::invalid_filter(format!("invalid filter {input:?}: {e}")))
}

/// A PATCH `path` (RFC 7644 §3.5.2): `attrPath` or `valuePath[.subAttr]`.
#[derive(Clone, Debug)]
pub(crate) struct PatchPath {
    pub target: AttrRef,
    pub filter: Option<Filter>,
    /// The sub-attribute after `]`, as in `emails[type eq "work"].value`.
    pub filter_sub: Option<&'static AttrDef>,
}

pub(crate) fn parse_path(rt: &ResourceType, input: &str) -> Result<PatchPath, ScimError> {
    let inner = || -> Result<PatchPath, ScimError> {
        let toks = lex(input).map_err(ScimError::invalid_path)?;
        let mut p = Parser { toks, pos: 0 };
        let raw = match p.next() {
            Some(Tok::Word(w)) => w,
            _ => return Err(ScimError::invalid_path("expected an attribute path")),
        };
        let target = resolve(rt, &raw).map_err(ScimError::invalid_path)?;
        let mut out = PatchPath {
            target,
            filter: None,
            filter_sub: None,
        };
        if p.peek() == Some(&Tok::LBracket) {
            p.pos += 1;
            let attr = match (target.attr, target.sub) {
                (Some(a), None) if a.is_complex() && a.multi => a,
                _ => {
                    return Err(ScimError::invalid_path(format!(
                        "'{raw}' is not a multi-valued complex attribute"
                    )));
                }
            };
            let f = p
                .or(Scope::Element(attr))
                .map_err(ScimError::invalid_filter)?;
            p.expect(Tok::RBracket, "']'")
                .map_err(ScimError::invalid_filter)?;
            out.filter = Some(f);
            if let Some(Tok::Word(w)) = p.peek().cloned() {
                let sub = w
                    .strip_prefix('.')
                    .and_then(|s| attr.sub_attr(s))
                    .ok_or_else(|| {
                        ScimError::invalid_path(format!(
                            "'{w}' is not a sub-attribute of '{}'",
                            attr.name
                        ))
                    })?;
                out.filter_sub = Some(sub);
                p.pos += 1;
            }
        }
        if let Some(t) = p.peek() {
            return Err(ScimError::invalid_path(format!("unexpected {t:?}")));
        }
        Ok(out)
    };
    inner().map_err(|mut e| {
        e.detail = format!("invalid path {input:?}: {}", e.detail);
        e
    })
}

/// The values an attribute holds on `obj`, flattened, each with its definition. A complex
/// attribute compared without a sub-attribute contributes its `value` sub-attributes.
fn values(target: Target, obj: &Map<String, Value>) -> Vec<(&Value, &'static AttrDef)> {
    let mut out = Vec::new();
    match target {
        Target::Element(def) => {
            if let Some(v) = obj.get(def.name) {
                out.push((v, def));
            }
        }
        Target::Resource(r) => {
            let Some(attr) = r.attr else { return out };
            let container = match r.ext {
                Some(e) => obj.get(e.id).and_then(Value::as_object),
                None => Some(obj),
            };
            let Some(v) = container.and_then(|c| c.get(attr.name)) else {
                return out;
            };
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let sub = r.sub.or_else(|| {
                if attr.is_complex() {
                    attr.sub_attr("value")
                } else {
                    None
                }
            });
            for item in items {
                match sub {
                    Some(s) if attr.is_complex() => {
                        if let Some(x) = item.get(s.name) {
                            out.push((x, s));
                        }
                    }
                    _ => out.push((item, attr)),
                }
            }
        }
    }
    out
}

fn fold(s: &str, exact: bool) -> String {
    if exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

fn compare(def: &AttrDef, actual: &Value, op: CmpOp, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = (fold(a, def.case_exact), fold(e, def.case_exact));
            match op {
                CmpOp::Eq => a == e,
                CmpOp::Ne => a != e,
                CmpOp::Co => a.contains(&e),
                CmpOp::Sw => a.starts_with(&e),
                CmpOp::Ew => a.ends_with(&e),
                _ => {
                    let ord = if def.ty == AttrType::DateTime {
                        match (
                            chrono::DateTime::parse_from_rfc3339(&a),
                            chrono::DateTime::parse_from_rfc3339(&e),
                        ) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            _ => a.cmp(&e),
                        }
                    } else {
                        a.cmp(&e)
                    };
                    ordered(op, ord)
                }
            }
        }
        (Value::Bool(a), Value::Bool(e)) => match op {
            CmpOp::Eq => a == e,
            CmpOp::Ne => a != e,
            _ => false,
        },
        (Value::Number(a), Value::Number(e)) => match (a.as_f64(), e.as_f64()) {
            (Some(a), Some(e)) => match op {
                CmpOp::Eq => a == e,
                CmpOp::Ne => a != e,
                _ => a.partial_cmp(&e).is_some_and(|o| ordered(op, o)),
            },
            _ => false,
        },
        _ => false,
    }
}

fn ordered(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        _ => false,
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

impl Filter {
    /// Does the resource (or multi-valued element) `obj` satisfy this filter?
    pub(crate) fn matches(&self, obj: &Map<String, Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(obj) && b.matches(obj),
            Filter::Or(a, b) => a.matches(obj) || b.matches(obj),
            Filter::Not(a) => !a.matches(obj),
            Filter::Present(t) => values(*t, obj).into_iter().any(|(v, _)| present(v)),
            Filter::Cmp(t, op, expected) => {
                let vals = values(*t, obj);
                match (op, expected) {
                    (CmpOp::Eq, Value::Null) => !vals.iter().any(|(v, _)| present(v)),
                    (CmpOp::Ne, Value::Null) => vals.iter().any(|(v, _)| present(v)),
                    (CmpOp::Ne, _) => !vals.iter().any(|(v, d)| compare(d, v, CmpOp::Eq, expected)),
                    _ => vals.iter().any(|(v, d)| compare(d, v, *op, expected)),
                }
            }
            Filter::Any(r, inner) => {
                let Some(attr) = r.attr else { return false };
                let container = match r.ext {
                    Some(e) => obj.get(e.id).and_then(Value::as_object),
                    None => Some(obj),
                };
                match container.and_then(|c| c.get(attr.name)) {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_object)
                        .any(|o| inner.matches(o)),
                    Some(Value::Object(o)) => inner.matches(o),
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{GROUP, USER};
    use super::*;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "abc",
            "userName": "Alice@Example.com",
            "externalId": "ext-1",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"type": "work", "value": "alice@work.example"}, {"type": "home", "value": "a@home.example"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42", "manager": {"value": "m-1"}},
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn check(f: &str) -> bool {
        parse(&USER, f)
            .map_err(|e| e.detail)
            .expect("filter parses")
            .matches(&user())
    }

    #[test]
    fn evaluates_rfc_filters() {
        assert!(check(r#"userName eq "alice@example.com""#));
        assert!(check(r#"USERNAME Eq "ALICE@EXAMPLE.COM""#));
        assert!(
            !check(r#"externalId eq "EXT-1""#),
            "externalId is caseExact"
        );
        assert!(check(r#"externalId eq "ext-1" and active eq true"#));
        assert!(check(
            r#"emails[type eq "work" and value eq "alice@work.example"]"#
        ));
        assert!(!check(
            r#"emails[type eq "work" and value eq "a@home.example"]"#
        ));
        assert!(check(r#"emails.value eq "a@home.example""#));
        assert!(check(r#"emails eq "a@home.example""#));
        assert!(check(r#"name.familyName eq "smith""#));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42""#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1""#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "alice""#
        ));
        assert!(check(r#"userName co "@example" and not (title pr)"#));
        assert!(check(r#"title eq "x" or id eq "abc""#));
        assert!(check(r#"userName ew ".COM""#));
        assert!(check(r#"nickName eq null"#));
    }

    #[test]
    fn rejects_invalid_filters() {
        for bad in [
            "userName eq jyoung",
            "userName eq",
            "bogus eq \"x\"",
            "userName eq \"x",
            "(userName eq \"x\"",
            "active co \"t\"",
            "urn:example:foo:bar eq \"x\"",
            "userName eq \"x\" extra",
            "",
        ] {
            let err = parse(&USER, bad).expect_err(bad);
            assert_eq!(err.scim_type, Some("invalidFilter"), "{bad}");
        }
    }

    #[test]
    fn escaped_quotes_and_members() {
        let f = parse(&USER, r#"displayName eq "a \"b\"""#).expect("parses");
        let mut u = user();
        u.insert("displayName".into(), json!("A \"B\""));
        assert!(f.matches(&u));
        let g = json!({"displayName": "G", "members": [{"value": "u1"}]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            parse(&GROUP, r#"members eq "u1""#)
                .expect("parses")
                .matches(&g)
        );
        assert!(
            parse(&GROUP, r#"members[value eq "u1"]"#)
                .expect("parses")
                .matches(&g)
        );
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(&USER, r#"emails[type eq "work"].value"#).expect("path");
        assert!(p.filter.is_some());
        assert_eq!(p.filter_sub.map(|s| s.name), Some("value"));
        let p = parse_path(
            &USER,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        )
        .expect("ext");
        assert!(p.target.attr.is_none());
        assert!(
            parse_path(&USER, "name.givenName")
                .expect("sub")
                .target
                .sub
                .is_some()
        );
        assert_eq!(
            parse_path(&USER, "nope").expect_err("unknown").scim_type,
            Some("invalidPath")
        );
    }
}

//! Flat attribute paths (`Attrs` keys) parsed into the three shapes SCIM JSON needs, and the
//! `eq` filters Entra builds from them.

/// Core User schema URN.
pub const CORE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core Group schema URN.
pub const CORE_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// PatchOp message URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// ListResponse message URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Error message URN.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// One flat path, split the way the JSON resource nests it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttrPath<'a> {
    /// `userName`, or `name.givenName` (attr `name`, sub `givenName`).
    Core { attr: &'a str, sub: Option<&'a str> },
    /// `emails[type eq "work"].value`: one entry of a multi-valued attribute chosen by a
    /// sub-attribute's value. `selector_end` is the byte index of the closing `]`.
    Filtered {
        attr: &'a str,
        filter_attr: &'a str,
        filter_value: String,
        sub: Option<&'a str>,
        selector_end: usize,
    },
    /// `urn:…:User:department`: attribute `attr` (possibly `attr.sub`) under extension `urn`.
    Extension {
        urn: &'a str,
        attr: &'a str,
        sub: Option<&'a str>,
    },
}

impl<'a> AttrPath<'a> {
    pub(crate) fn parse(path: &'a str) -> AttrPath<'a> {
        if path.len() > 4 && path[..4].eq_ignore_ascii_case("urn:") {
            // Attribute names never contain ':', the URN always does: split at the last one.
            if let Some(i) = path.rfind(':') {
                let (urn, attr) = (&path[..i], &path[i + 1..]);
                if !attr.is_empty() {
                    let (attr, sub) = split_dot(attr);
                    return AttrPath::Extension { urn, attr, sub };
                }
            }
        }
        if let Some(p) = parse_filtered(path) {
            return p;
        }
        let (attr, sub) = split_dot(path);
        AttrPath::Core { attr, sub }
    }

    /// The `sub` of a filtered path, defaulting to `value` (`emails[type eq "work"]` means its
    /// value).
    pub(crate) fn filtered_sub(sub: Option<&str>) -> &str {
        sub.unwrap_or("value")
    }
}

fn split_dot(s: &str) -> (&str, Option<&str>) {
    match s.split_once('.') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => (a, Some(b)),
        _ => (s, None),
    }
}

/// `attr[filterAttr eq "value"].sub` (quotes optional, `\"` and `\\` escapes honoured).
fn parse_filtered(path: &str) -> Option<AttrPath<'_>> {
    let open = path.find('[')?;
    let attr = &path[..open];
    if attr.is_empty() {
        return None;
    }
    let inner_start = open + 1;
    let (filter_attr, rest) = path[inner_start..].split_once(' ')?;
    let rest = rest.trim_start();
    let (op, rest) = rest.split_once(' ')?;
    if !op.eq_ignore_ascii_case("eq") || filter_attr.is_empty() {
        return None;
    }
    let rest = rest.trim_start();
    let rest_start = path.len() - rest.len();
    let (filter_value, consumed) = parse_value(rest)?;
    let after = rest[consumed..].trim_start();
    if !after.starts_with(']') {
        return None;
    }
    let selector_end = rest_start + (rest.len() - after.len());
    let tail = &after[1..];
    let sub = match tail {
        "" => None,
        t => Some(
            t.strip_prefix('.')
                .filter(|s| !s.is_empty() && !s.contains(['.', '[']))?,
        ),
    };
    Some(AttrPath::Filtered {
        attr,
        filter_attr,
        filter_value,
        sub,
        selector_end,
    })
}

/// A quoted string with escapes, or a bare word up to `]`. Returns the value and bytes consumed.
fn parse_value(s: &str) -> Option<(String, usize)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, i + 2)),
                c => out.push(c),
            }
        }
        None
    } else {
        let end = s.find([']', ' ']).unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_string(), end))
    }
}

/// Escapes `\` and `"` for a SCIM filter string literal.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `filter` query value Entra sends to look a user up by a matching attribute.
///
/// `userName` → `userName eq "v"`; a typed path such as `emails[type eq "work"].value` becomes
/// the value filter `emails[type eq "work" and value eq "v"]` (RFC 7644 §3.4.2.2), because
/// `emails[type eq "work"].value eq "v"` is not valid filter grammar; URN paths are used as-is.
pub fn match_filter(path: &str, value: &str) -> String {
    if let AttrPath::Filtered {
        sub, selector_end, ..
    } = AttrPath::parse(path)
    {
        let sub = AttrPath::filtered_sub(sub);
        return format!(
            "{} and {sub} eq \"{}\"]",
            &path[..selector_end],
            escape(value)
        );
    }
    format!("{path} eq \"{}\"", escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_path_shape() {
        assert_eq!(
            AttrPath::parse("userName"),
            AttrPath::Core {
                attr: "userName",
                sub: None
            }
        );
        assert_eq!(
            AttrPath::parse("name.givenName"),
            AttrPath::Core {
                attr: "name",
                sub: Some("givenName")
            }
        );
        let p = r#"emails[type eq "work"].value"#;
        assert_eq!(
            AttrPath::parse(p),
            AttrPath::Filtered {
                attr: "emails",
                filter_attr: "type",
                filter_value: "work".into(),
                sub: Some("value"),
                selector_end: p.find(']').unwrap()
            }
        );
        assert!(matches!(
            AttrPath::parse(r#"roles[primary eq "True"].display"#),
            AttrPath::Filtered { filter_attr: "primary", ref filter_value, sub: Some("display"), .. } if filter_value == "True"
        ));
        assert_eq!(
            AttrPath::parse(&format!("{ENTERPRISE_USER_SCHEMA}:manager")),
            AttrPath::Extension {
                urn: ENTERPRISE_USER_SCHEMA,
                attr: "manager",
                sub: None
            }
        );
        assert_eq!(
            AttrPath::parse("urn:ietf:params:scim:schemas:extension:Klaxoon:2.0:User:license"),
            AttrPath::Extension {
                urn: "urn:ietf:params:scim:schemas:extension:Klaxoon:2.0:User",
                attr: "license",
                sub: None
            }
        );
    }

    #[test]
    fn malformed_filter_paths_fall_back_to_a_plain_attribute() {
        assert!(matches!(
            AttrPath::parse(r#"emails[type eq "work"#),
            AttrPath::Core { .. }
        ));
        assert!(matches!(
            AttrPath::parse("emails[type ne work].value"),
            AttrPath::Core { .. }
        ));
    }

    #[test]
    fn filters_escape_quotes_and_backslashes() {
        assert_eq!(match_filter("userName", "a\"b"), r#"userName eq "a\"b""#);
        assert_eq!(
            match_filter("userName", r"dom\user"),
            r#"userName eq "dom\\user""#
        );
        assert_eq!(
            match_filter(r#"emails[type eq "work"].value"#, "x@y.z"),
            r#"emails[type eq "work" and value eq "x@y.z"]"#
        );
        assert_eq!(
            match_filter(&format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber"), "42"),
            format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber eq \"42\"")
        );
    }

    #[test]
    fn quoted_filter_values_unescape() {
        match AttrPath::parse(r#"emails[type eq "we\"ird"].value"#) {
            AttrPath::Filtered { filter_value, .. } => assert_eq!(filter_value, "we\"ird"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

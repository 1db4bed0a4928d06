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
        // `get`: the fourth byte may fall inside a character (`"éé"`).
        if path.len() > 4
            && path
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
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
///
/// A quoted value is a JSON string (RFC 7644 §3.4.2.2), decoded as such (`\n`, `\u001b`, …),
/// so the value written into a resource is the one [`escape`] puts back into a filter; an
/// escape JSON does not know (`\x`) keeps the character after the backslash.
fn parse_value(s: &str) -> Option<(String, usize)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut lenient = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => lenient.push(chars.next()?.1),
                '"' => {
                    let consumed = i + 2;
                    let json = serde_json::from_str::<String>(&s[..consumed]).ok();
                    return Some((json.unwrap_or(lenient), consumed));
                }
                c => lenient.push(c),
            }
        }
        None
    } else {
        let end = s.find([']', ' ']).unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_string(), end))
    }
}

/// The body of a SCIM filter string literal for `value` (without the surrounding quotes).
///
/// RFC 7644 §3.4.2.2 makes filter comparison values JSON values, so a string is escaped as a
/// JSON string is (RFC 8259 §7): `"` and `\` get a backslash, `\n` `\r` `\t` `\b` `\f` use
/// their short forms, and every other control character (U+0000–U+001F, U+007F) is written
/// `\u00XX`. A raw control character inside the quotes is invalid JSON, and a strict server
/// answers 400 `invalidFilter`: a group named `Ops\u{1b}[31mRed` could never be matched.
pub(crate) fn escape(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
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
    fn paths_starting_with_multibyte_characters_parse() {
        // Found by the `scim_path` fuzz target: slicing the first four bytes panicked.
        assert_eq!(
            AttrPath::parse("dm!\u{7c8}i"),
            AttrPath::Core {
                attr: "dm!\u{7c8}i",
                sub: None
            }
        );
        assert!(matches!(
            AttrPath::parse("éé.x"),
            AttrPath::Core {
                attr: "éé",
                sub: Some("x")
            }
        ));
        assert_eq!(match_filter("éé", "v"), r#"éé eq "v""#);
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
    fn filters_escape_control_characters_as_json() {
        let value = "Ops\u{1b}[31mRed\u{7}\n\r\t\u{8}\u{c}\u{0}\u{7f}\"\\é";
        let filter = match_filter("displayName", value);
        assert_eq!(
            filter,
            r#"displayName eq "Ops\u001b[31mRed\u0007\n\r\t\b\f\u0000\u007f\"\\é""#
        );
        assert!(!filter.chars().any(|c| c.is_control()), "{filter:?}");
        // The literal is a JSON string that decodes to the value.
        let literal = filter.strip_prefix("displayName eq ").unwrap();
        assert_eq!(serde_json::from_str::<String>(literal).unwrap(), value);
        for c in (0u8..0x20).chain([0x7f]).map(char::from) {
            let lit = format!("\"{}\"", escape(&c.to_string()));
            assert!(!lit.chars().any(|c| c.is_control()), "{c:?} -> {lit:?}");
            assert_eq!(serde_json::from_str::<String>(&lit).unwrap(), c.to_string());
        }
    }

    #[test]
    fn quoted_path_values_decode_json_escapes() {
        match AttrPath::parse(r#"emails[type eq "a\u001bb\nc"].value"#) {
            AttrPath::Filtered { filter_value, .. } => assert_eq!(filter_value, "a\u{1b}b\nc"),
            other => panic!("unexpected {other:?}"),
        }
        match AttrPath::parse(r#"emails[type eq "a\xb"].value"#) {
            AttrPath::Filtered { filter_value, .. } => assert_eq!(filter_value, "axb"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn quoted_filter_values_unescape() {
        match AttrPath::parse(r#"emails[type eq "we\"ird"].value"#) {
            AttrPath::Filtered { filter_value, .. } => assert_eq!(filter_value, "we\"ird"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

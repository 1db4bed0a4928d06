//! Target attribute names: a mapping's `target` must name an attribute of the SCIM core User
//! (or Group) schema or of the enterprise extension (RFC 7643 §4); an app's own attributes go
//! under the app's extension URN (as the templates' do), which is not checked.

/// The core User schema's attributes, sub-attributes dotted (RFC 7643 §4.1).
const USER: &[&str] = &[
    "userName",
    "name",
    "name.formatted",
    "name.familyName",
    "name.givenName",
    "name.middleName",
    "name.honorificPrefix",
    "name.honorificSuffix",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "externalId",
    "addresses",
    "addresses.formatted",
    "addresses.streetAddress",
    "addresses.locality",
    "addresses.region",
    "addresses.postalCode",
    "addresses.country",
    "addresses.type",
    "addresses.primary",
];

/// Multi-valued attributes with `value`, `display`, `type` and `primary` (RFC 7643 §2.4).
const MULTI: &[&str] = &[
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "entitlements",
    "roles",
    "x509Certificates",
    "groups",
];

const SUB: &[&str] = &["value", "display", "type", "primary"];

/// The enterprise User extension (RFC 7643 §4.3).
const ENTERPRISE: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "manager.value",
    "manager.displayName",
];

const GROUP: &[&str] = &["displayName", "externalId", "members", "members.value"];

const CORE_USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User:";
const CORE_GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group:";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";

/// Check a mapping target of `object` ("users" or "groups"). The error says what the name
/// is not, with "did you mean" for a near miss.
pub(crate) fn check_target(object: &str, target: &str) -> Result<(), String> {
    let lower = target.to_ascii_lowercase();
    let (rest, known, schema): (&str, Vec<String>, &str) =
        if let Some(rest) = strip_prefix_ci(target, &lower, ENTERPRISE_URN) {
            (
                rest,
                ENTERPRISE.iter().map(|s| s.to_string()).collect(),
                "the enterprise User extension",
            )
        } else if let Some(rest) = strip_prefix_ci(target, &lower, CORE_USER_URN)
            .or_else(|| strip_prefix_ci(target, &lower, CORE_GROUP_URN))
        {
            (rest, core(object), core_name(object))
        } else if lower.starts_with("urn:") {
            // An app's own extension: its attributes are the app's to define.
            return Ok(());
        } else {
            (target, core(object), core_name(object))
        };
    let path = without_filters(rest);
    if known.iter().any(|k| k.eq_ignore_ascii_case(&path)) {
        return Ok(());
    }
    let best = known
        .iter()
        .map(|k| {
            let d =
                strsim::damerau_levenshtein(&k.to_ascii_lowercase(), &path.to_ascii_lowercase());
            (d, k)
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min_by_key(|(d, _)| *d);
    let base = format!("unknown SCIM attribute `{path}`: not in {schema}");
    Err(match best {
        Some((_, k)) => format!("{base} (did you mean `{}`?)", with_filters(rest, k)),
        None if object == "users" => format!(
            "{base}; an attribute of the app's own goes under its extension, e.g. \
             `urn:ietf:params:scim:schemas:extension:<app>:2.0:User:{path}`"
        ),
        None => format!("{base}; known: {}", GROUP.join(", ")),
    })
}

fn strip_prefix_ci<'a>(target: &'a str, lower: &str, urn: &str) -> Option<&'a str> {
    lower
        .starts_with(&urn.to_ascii_lowercase())
        .then(|| &target[urn.len()..])
}

fn core_name(object: &str) -> &'static str {
    if object == "groups" {
        "the SCIM core Group schema"
    } else {
        "the SCIM core User schema"
    }
}

fn core(object: &str) -> Vec<String> {
    if object == "groups" {
        return GROUP.iter().map(|s| s.to_string()).collect();
    }
    let mut all: Vec<String> = USER.iter().map(|s| s.to_string()).collect();
    for m in MULTI {
        all.push(m.to_string());
        all.extend(SUB.iter().map(|s| format!("{m}.{s}")));
    }
    all
}

/// `emails[type eq "work"].value` → `emails.value`.
fn without_filters(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The suggestion in the shape the admin wrote: the filter kept (`emails[type eq "work"].valeu`
/// → `emails[type eq "work"].value`).
fn with_filters(written: &str, known: &str) -> String {
    match (written.find('['), written.rfind(']')) {
        (Some(open), Some(close)) if close > open => {
            let (head, sub) = known.split_once('.').unwrap_or((known, ""));
            let filter = &written[open..=close];
            if sub.is_empty() {
                format!("{head}{filter}")
            } else {
                format!("{head}{filter}.{sub}")
            }
        }
        _ => known.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_pass_in_every_spelling_entra_writes() {
        for t in [
            "userName",
            "UserName",
            "name.familyName",
            r#"emails[type eq "work"].value"#,
            r#"addresses[type eq "work"].postalCode"#,
            r#"roles[primary eq "True"].value"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:core:2.0:User:title",
            "urn:ietf:params:scim:schemas:extension:klaxoon:2.0:Group:license",
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:badge",
        ] {
            assert_eq!(check_target("users", t), Ok(()), "{t}");
        }
        assert_eq!(check_target("groups", "displayName"), Ok(()));
    }

    #[test]
    fn typos_are_errors_with_a_suggestion() {
        let e = check_target("users", "name.familyNme").unwrap_err();
        assert!(e.contains("did you mean `name.familyName`?"), "{e}");
        let e = check_target("users", r#"emails[type eq "work"].valeu"#).unwrap_err();
        assert!(
            e.contains(r#"did you mean `emails[type eq "work"].value`?"#),
            "{e}"
        );
        let e = check_target(
            "users",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:departmnt",
        )
        .unwrap_err();
        assert!(e.contains("did you mean `department`?"), "{e}");
        let e = check_target("users", "badgeNumber").unwrap_err();
        assert!(e.contains("extension:<app>:2.0:User:badgeNumber"), "{e}");
        let e = check_target("groups", "dispalyName").unwrap_err();
        assert!(e.contains("did you mean `displayName`?"), "{e}");
    }
}

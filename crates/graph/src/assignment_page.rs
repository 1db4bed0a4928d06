//! An `appRoleAssignedTo` page parsed straight from Graph's answer into the three properties
//! the scope needs. Graph has no delta for assignments, so every cycle reads the whole list;
//! a JSON tree per assignment (a map, its keys, its values) was most of a quiet cycle's cost.
//!
//! Parsed as leniently as the tree was read: an item that is not an object, or a property
//! that is not a string, reads as missing (the reader then skips that item and logs it).

use crate::client::{GraphPage, Links, no_value_array};
use scimsync_core::SourceError;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use url::Url;

/// One assignment: whatever of its three properties were strings.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AssignmentItem {
    pub principal_id: Option<String>,
    pub principal_type: Option<String>,
    pub app_role_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AssignmentPage {
    value: Option<Vec<Lenient<AssignmentItem>>>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<Lenient<String>>,
}

impl GraphPage for AssignmentPage {
    type Items = Vec<AssignmentItem>;
    fn split(self, url: &Url) -> Result<(Vec<AssignmentItem>, Links), SourceError> {
        let Some(value) = self.value else {
            return Err(no_value_array(url));
        };
        let items = value
            .into_iter()
            .map(|item| item.0.unwrap_or_default())
            .collect();
        let links = Links {
            next: self.next.and_then(|l| l.0),
            delta: None,
        };
        Ok((items, links))
    }
}

/// `T` when the JSON has `T`'s shape (an object for an item, a string for a text), `None`
/// for anything else, which is read and dropped.
struct Lenient<T>(Option<T>);

impl<'de, T: Shape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor::<T>(std::marker::PhantomData))
    }
}

struct LenientVisitor<T>(std::marker::PhantomData<T>);

/// What a lenient value does with a string and with an object; every other shape is `None`.
trait Shape: Sized {
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_string(s: String) -> Option<Self> {
        Self::from_str(&s)
    }
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Shape for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn from_string(s: String) -> Option<Self> {
        Some(s)
    }
}

impl Shape for AssignmentItem {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut item = AssignmentItem::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::PrincipalId => &mut item.principal_id,
                Key::PrincipalType => &mut item.principal_type,
                Key::AppRoleId => &mut item.app_role_id,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // A repeated key: the last one counts, as in a JSON tree.
            *slot = map
                .next_value::<Option<Lenient<String>>>()?
                .and_then(|t| t.0);
        }
        Ok(Some(item))
    }
}

impl<'de, T: Shape> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_str(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lenient(T::from_string(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::from_map(map).map(Lenient)
    }
}

/// The keys an item is read for; any other key's value is skipped unparsed.
enum Key {
    PrincipalId,
    PrincipalType,
    AppRoleId,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "principalId" => Key::PrincipalId,
                    "principalType" => Key::PrincipalType,
                    "appRoleId" => Key::AppRoleId,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<(Vec<AssignmentItem>, Links), String> {
        let url = Url::parse("https://graph.example/v1.0/servicePrincipals/sp/appRoleAssignedTo")
            .unwrap();
        let page: AssignmentPage = serde_json::from_str(json).map_err(|e| e.to_string())?;
        page.split(&url).map_err(|e| e.message)
    }

    fn item(principal: &str, kind: &str, role: &str) -> AssignmentItem {
        AssignmentItem {
            principal_id: Some(principal.into()),
            principal_type: Some(kind.into()),
            app_role_id: Some(role.into()),
        }
    }

    #[test]
    fn reads_the_three_properties_and_the_next_link() {
        let (items, links) = parse(
            r#"{"@odata.context":"x","value":[
                {"id":"a1","principalId":"u1","principalType":"User","appRoleId":"r1",
                 "principalDisplayName":"Ann \"A\" \u00e9","createdDateTime":"2024-01-01T00:00:00Z"},
                {"appRoleId":"r2","principalType":"Group","principalId":"g1"}],
               "@odata.nextLink":"https://graph.example/v1.0/next?$skiptoken=x"}"#,
        )
        .unwrap();
        assert_eq!(
            items,
            vec![item("u1", "User", "r1"), item("g1", "Group", "r2")]
        );
        assert_eq!(
            links.next.as_deref(),
            Some("https://graph.example/v1.0/next?$skiptoken=x")
        );
        assert_eq!(links.delta, None);
    }

    #[test]
    fn odd_items_and_properties_read_as_missing_instead_of_failing_the_page() {
        let (items, links) = parse(
            r#"{"value":[
                7, "text", null, [1,2], true,
                {"principalId":5,"principalType":{"a":[1]},"appRoleId":null},
                {"principalId":"u2","principalType":"User","appRoleId":"r","principalId":"u3"},
                {"principalId":"u\u0000\n4","principalType":"User"}
               ],"@odata.nextLink":42}"#,
        )
        .unwrap();
        assert_eq!(items.len(), 8);
        assert!(items[..6].iter().all(|i| *i == AssignmentItem::default()));
        // A repeated key: the last value counts.
        assert_eq!(items[6], item("u3", "User", "r"));
        assert_eq!(items[7].principal_id.as_deref(), Some("u\u{0}\n4"));
        assert_eq!(items[7].app_role_id, None);
        assert_eq!(links.next, None);
    }

    #[test]
    fn a_page_without_a_value_array_or_not_an_object_is_an_error() {
        let err = parse(r#"{"@odata.nextLink":"https://graph.example/x"}"#).unwrap_err();
        assert!(err.contains("no \"value\" array"), "{err}");
        assert!(parse(r#"{"value":{"principalId":"u1"}}"#).is_err());
        assert!(parse(r#"[1,2]"#).is_err());
        assert!(parse(r#"{"value":[{"principalId":"u1""#).is_err());
    }

    #[test]
    fn an_empty_page_reads_as_no_items() {
        let (items, links) = parse(r#"{"value":[]}"#).unwrap();
        assert!(items.is_empty());
        assert_eq!(links.next, None);
    }
}

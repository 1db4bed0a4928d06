//! The JSON model of Entra's `synchronizationSchema`. Fields the translation reads are typed;
//! fields it only passes through or ignores are `serde_json::Value`, so an export with an odd
//! value there still parses. Absent keys and `null` read as their defaults; unknown keys are
//! ignored.

use super::{Finding, Severity};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `synchronizationSchema`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SynchronizationSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub directories: Vec<DirectoryDefinition>,
    #[serde(default, deserialize_with = "nullable")]
    pub synchronization_rules: Vec<SynchronizationRule>,
}

/// `directoryDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<Value>,
    #[serde(default)]
    pub version: Option<Value>,
    #[serde(default)]
    pub discovery_date_time: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discoverabilities: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Vec<KeyValue>,
    #[serde(default, deserialize_with = "nullable")]
    pub objects: Vec<ObjectDefinition>,
}

/// `objectDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_apis: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Vec<KeyValue>,
    #[serde(default, deserialize_with = "nullable")]
    pub attributes: Vec<AttributeDefinition>,
}

/// `attributeDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_exact: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_null_values: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivalued: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutability: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_expressions: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Vec<KeyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_objects: Option<Value>,
}

/// A `{key, value}` metadata entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

/// `synchronizationRule`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SynchronizationRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editable: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_directory_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_directory_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Vec<KeyValue>,
    #[serde(default, deserialize_with = "nullable")]
    pub object_mappings: Vec<ObjectMapping>,
}

/// `objectMapping`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_types: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_object_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Vec<KeyValue>,
    /// `null` when there are no scoping filters.
    #[serde(default)]
    pub scope: Option<Filter>,
    #[serde(default, deserialize_with = "nullable")]
    pub attribute_mappings: Vec<AttributeMapping>,
}

/// `attributeMapping`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_attribute_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_behavior: Option<String>,
    /// A string in practice; any scalar is accepted.
    #[serde(default)]
    pub default_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_missing_references: Option<Value>,
    /// `null`: mapping type None.
    #[serde(default)]
    pub source: Option<AttributeMappingSource>,
}

/// `attributeMappingSource`: an attribute, a constant or a function call (a tree).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeMappingSource {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub parameters: Vec<SourceParameter>,
}

/// One `{key, value}` parameter of a Function source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceParameter {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<AttributeMappingSource>,
}

/// `filter` (`objectMapping.scope`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "nullable")]
    pub groups: Vec<FilterGroup>,
    #[serde(default, deserialize_with = "nullable")]
    pub input_filter_groups: Vec<FilterGroup>,
    #[serde(default, deserialize_with = "nullable")]
    pub category_filter_groups: Vec<FilterGroup>,
}

/// `filterGroup`: one scoping filter, true when all its clauses are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub clauses: Vec<FilterClause>,
}

/// `filterClause`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterClause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_operand_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_operand: Option<FilterOperand>,
}

/// `filterOperand`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterOperand {
    /// Strings in practice; other scalars are read as their text.
    #[serde(default, deserialize_with = "nullable")]
    pub values: Vec<Value>,
}

/// Parse the schema JSON. The error says where (line and column) and what.
pub fn parse_schema(json: &str) -> Result<SynchronizationSchema, Finding> {
    serde_json::from_str(json).map_err(|e| Finding {
        severity: Severity::Error,
        path: String::new(),
        message: format!("not an Entra synchronization schema: {e}"),
    })
}

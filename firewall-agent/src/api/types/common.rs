//! Shapes every family shares: filters, tags and tag specifications, and the two bodiless
//! answers.

use serde::{Deserialize, Serialize};

/// `Filter`: a name and the values it accepts (with `*` and `?` wildcards).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Filter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// `Tag`: in requests the value may be absent (`delete-tags` then removes the key whatever its
/// value; a tag specification takes it as empty); answers always carry it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

/// `TagSpecification`: tags for the resource an operation creates.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagSpecification {
    pub resource_type: Option<String>,
    pub tags: Vec<Tag>,
}

/// The answer `{"Return": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReturnResponse {
    pub r#return: bool,
}

impl ReturnResponse {
    pub const TRUE: ReturnResponse = ReturnResponse { r#return: true };
}

/// An answer without members (`{}`; the CLI prints nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyResponse {}

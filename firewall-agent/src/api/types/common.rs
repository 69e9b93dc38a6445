//! Shapes every family shares: filters, tags and tag specifications, and the two bodiless
//! answers.

use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;

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

/// A number or boolean member of a request: JSON's own, or the text the Query protocol sends
/// (`FromPort=80`, `DryRun=true`). A wrong one fails as serde words it (`invalid type: string
/// "x", expected i64`). For `#[serde(deserialize_with = "scalar")]` on an `Option` member.
pub fn scalar<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + de::DeserializeOwned,
{
    let expected = match std::any::type_name::<T>() {
        "bool" => "a boolean",
        name => name,
    };
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| de::Error::invalid_type(de::Unexpected::Str(&text), &expected)),
        Some(other) => serde_json::from_value(other)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

//! Tags as the model keeps them, their checks, and the tags a `TagSpecification` gives the
//! resource an operation creates.

use serde::{Deserialize, Serialize};

use crate::api::{
    ApiError, ApiResult,
    types::common::{self, TagSpecification},
};

/// A tag on a resource (the store's form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Tags as answers carry them.
pub fn views(tags: &[Tag]) -> Vec<common::Tag> {
    tags.iter()
        .map(|t| common::Tag {
            key: t.key.clone(),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// A tag's key and value, as every operation that sets tags checks them (`create-tags` and the
/// tag specifications of the creating operations).
pub fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() || key.chars().count() > 127 {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!("Tag key '{key}' must be 1 to 127 characters."),
        ));
    }
    if key.starts_with("aws:") {
        return Err(ApiError::new(
            "InvalidParameterValue",
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    if value.chars().count() > 256 {
        return Err(ApiError::invalid_value(format!(
            "The value of tag '{key}' must be at most 256 characters."
        )));
    }
    Ok(())
}

/// The tags `specs` give the resource of type `resource_type` an operation creates; a
/// specification for another type is an error.
pub fn tags_for(specs: &[TagSpecification], resource_type: &str) -> ApiResult<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    for spec in specs {
        match spec.resource_type.as_deref() {
            Some(t) if t == resource_type => {}
            Some(t) => {
                return Err(ApiError::invalid_value(format!(
                    "'{t}' is not a valid taggable resource type for this operation."
                )));
            }
            None => return Err(ApiError::missing("TagSpecification.ResourceType")),
        }
        for tag in &spec.tags {
            let value = tag.value.clone().unwrap_or_default();
            check_tag(&tag.key, &value)?;
            tags.retain(|t| t.key != tag.key);
            tags.push(Tag {
                key: tag.key.clone(),
                value,
            });
        }
    }
    Ok(tags)
}

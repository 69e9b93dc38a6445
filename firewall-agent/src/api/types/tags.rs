//! Tags on any resource: create, delete, describe.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag};

/// `create-tags` / `delete-tags`: the resources and the tags (for delete, no tags means all).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangeTagsRequest {
    pub resources: Vec<String>,
    pub tags: Option<Vec<Tag>>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeTagsRequest {
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// One `TagDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagDescription {
    pub key: String,
    pub resource_id: String,
    pub resource_type: String,
    pub value: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeTagsResponse {
    pub tags: Vec<TagDescription>,
    pub next_token: Option<String>,
}

//! Customer-managed prefix lists: create, modify, describe, get entries, delete.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

/// `AddPrefixListEntry` / `RemovePrefixListEntry`, and an entry of `get-managed-prefix-list-entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateManagedPrefixListRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<PrefixListEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyManagedPrefixListRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_entries: Vec<PrefixListEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_entries: Vec<PrefixListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<i64>,
}

/// The answer of create, modify and delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListResponse {
    pub prefix_list: ManagedPrefixList,
}

/// A list as `describe-managed-prefix-lists` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManagedPrefixList {
    pub prefix_list_id: String,
    pub address_family: String,
    pub state: String,
    pub prefix_list_arn: String,
    pub prefix_list_name: String,
    pub max_entries: u32,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub owner_id: String,
}

/// `get-managed-prefix-list-entries` and `delete-managed-prefix-list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListIdRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetManagedPrefixListEntriesResponse {
    pub entries: Vec<PrefixListEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeManagedPrefixListsRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_list_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeManagedPrefixListsResponse {
    pub prefix_lists: Vec<ManagedPrefixList>,
}

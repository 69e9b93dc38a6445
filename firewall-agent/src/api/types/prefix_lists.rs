//! Customer-managed prefix lists: create, modify, describe, get entries, delete.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

/// `AddPrefixListEntry` / `RemovePrefixListEntry`, and an entry of `get-managed-prefix-list-entries`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListEntry {
    pub cidr: Option<String>,
    pub description: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateManagedPrefixListRequest {
    pub prefix_list_name: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_entries: Option<i64>,
    pub address_family: Option<String>,
    pub entries: Vec<PrefixListEntry>,
    pub tag_specifications: Vec<TagSpecification>,
    /// The idempotency token the SDKs fill in; accepted, not remembered.
    pub client_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyManagedPrefixListRequest {
    pub prefix_list_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub current_version: Option<u64>,
    pub prefix_list_name: Option<String>,
    pub add_entries: Vec<PrefixListEntry>,
    pub remove_entries: Vec<PrefixListEntry>,
    #[serde(deserialize_with = "super::common::scalar")]
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListIdRequest {
    pub prefix_list_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub target_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetManagedPrefixListEntriesResponse {
    pub entries: Vec<PrefixListEntry>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeManagedPrefixListsRequest {
    pub prefix_list_ids: Vec<String>,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeManagedPrefixListsResponse {
    pub prefix_lists: Vec<ManagedPrefixList>,
}

//! Security groups: create, copy (ours), delete, describe, and the grouped `IpPermission` view
//! `describe-security-groups` prints. Member order is the EC2 service model's, as the AWS CLI
//! prints it.

use serde::{Deserialize, Serialize};

use super::{
    common::{Filter, Tag, TagSpecification},
    rules::IpPermission,
};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSecurityGroupRequest {
    pub group_name: Option<String>,
    pub description: Option<String>,
    pub vpc_id: Option<String>,
    pub tag_specifications: Vec<TagSpecification>,
}

/// The answer of create and copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateSecurityGroupResponse {
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub security_group_arn: String,
}

/// Ours, the console's "Copy to new security group": the source group, the new name and
/// optionally another description and VPC.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CopySecurityGroupRequest {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub description: Option<String>,
    pub vpc_id: Option<String>,
    pub tag_specifications: Vec<TagSpecification>,
}

/// The group an operation acts on: `GroupId`, or `GroupName` in the default VPC.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSecurityGroupRequest {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteSecurityGroupResponse {
    pub r#return: bool,
    pub group_id: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupsRequest {
    pub group_ids: Vec<String>,
    pub group_names: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupsResponse {
    pub security_groups: Vec<SecurityGroup>,
    pub next_token: Option<String>,
}

/// A group as `describe-security-groups` prints it, rules grouped into one `IpPermission` per
/// protocol and port range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroup {
    pub group_id: String,
    pub ip_permissions_egress: Vec<IpPermission>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub vpc_id: String,
    pub security_group_arn: String,
    pub owner_id: String,
    pub group_name: String,
    pub description: String,
    pub ip_permissions: Vec<IpPermission>,
}

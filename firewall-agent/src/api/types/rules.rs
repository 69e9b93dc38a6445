//! Security-group rules: the `IpPermission` shape (requests and the grouped view), authorize,
//! revoke, modify, descriptions, the one-rule-per-peer `SecurityGroupRule` view, and references.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

/// `IpPermission`: one protocol and port range with its peers. In requests and in the grouped
/// `describe-security-groups` view; absent members are left out when echoed
/// (`UnknownIpPermissions`), as AWS does.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct IpPermission {
    pub ip_protocol: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub from_port: Option<i64>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub to_port: Option<i64>,
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    pub ip_ranges: Vec<IpRange>,
    pub ipv6_ranges: Vec<Ipv6Range>,
    pub prefix_list_ids: Vec<PrefixListId>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct IpRange {
    pub description: Option<String>,
    pub cidr_ip: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct Ipv6Range {
    pub description: Option<String>,
    pub cidr_ipv6: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListId {
    pub description: Option<String>,
    pub prefix_list_id: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct UserIdGroupPair {
    pub description: Option<String>,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub vpc_id: Option<String>,
}

/// `authorize-security-group-ingress` / `-egress`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub ip_permissions: Vec<IpPermission>,
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AuthorizeResponse {
    pub r#return: bool,
    pub security_group_rules: Vec<SecurityGroupRule>,
}

/// `revoke-security-group-ingress` / `-egress`: by exact permission or by rule ID.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct RevokeRequest {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub ip_permissions: Vec<IpPermission>,
    pub security_group_rule_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RevokeResponse {
    pub r#return: bool,
    /// Permissions that matched no rule (only in the default VPC; elsewhere that is an error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_ip_permissions: Vec<IpPermission>,
    pub revoked_security_group_rules: Vec<RevokedSecurityGroupRule>,
}

/// `ReferencedGroupInfo` of a rule view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReferencedGroup {
    pub group_id: String,
    pub user_id: String,
}

/// One `SecurityGroupRule` (one peer): `describe-security-group-rules` and authorize answers.
/// Exactly one of the four peer members is present.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroupRule {
    pub security_group_rule_id: String,
    pub group_id: String,
    pub group_owner_id: String,
    pub is_egress: bool,
    pub ip_protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub prefix_list_id: Option<String>,
    pub referenced_group_info: Option<ReferencedGroup>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub security_group_rule_arn: String,
}

/// One `RevokedSecurityGroupRule` (note `ReferencedGroupId`, not `ReferencedGroupInfo`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RevokedSecurityGroupRule {
    pub security_group_rule_id: String,
    pub group_id: String,
    pub is_egress: bool,
    pub ip_protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub prefix_list_id: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupRulesRequest {
    pub security_group_rule_ids: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupRulesResponse {
    pub security_group_rules: Vec<SecurityGroupRule>,
    pub next_token: Option<String>,
}

/// `SecurityGroupRuleRequest` of `modify-security-group-rules`: one peer member.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroupRuleRequest {
    pub ip_protocol: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub from_port: Option<i64>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub to_port: Option<i64>,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub prefix_list_id: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

/// `SecurityGroupRuleUpdate`: which rule, and what it becomes.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroupRuleUpdate {
    pub security_group_rule_id: Option<String>,
    pub security_group_rule: Option<SecurityGroupRuleRequest>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifySecurityGroupRulesRequest {
    pub group_id: Option<String>,
    pub security_group_rules: Vec<SecurityGroupRuleUpdate>,
}

/// `SecurityGroupRuleDescription`: a rule ID and its new description (none removes it).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroupRuleDescription {
    pub security_group_rule_id: Option<String>,
    pub description: Option<String>,
}

/// `update-security-group-rule-descriptions-ingress` / `-egress`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateDescriptionsRequest {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub ip_permissions: Vec<IpPermission>,
    pub security_group_rule_descriptions: Vec<SecurityGroupRuleDescription>,
}

/// `describe-security-group-references` (the member is `GroupId`, a list).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupReferencesRequest {
    pub group_id: Vec<String>,
}

/// One `SecurityGroupReference`: a group of a peered VPC that references ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SecurityGroupReference {
    pub group_id: String,
    pub referencing_vpc_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeSecurityGroupReferencesResponse {
    pub security_group_reference_set: Vec<SecurityGroupReference>,
}

/// Ours, the console's "Edit inbound/outbound rules" saved as one change: descriptions edited
/// in place, rules removed by ID, new rules added, all or none, in one direction
/// (`ingress` or `egress`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct EditSecurityGroupRulesRequest {
    pub group_id: Option<String>,
    pub direction: Option<String>,
    pub security_group_rule_descriptions: Vec<SecurityGroupRuleDescription>,
    pub revoke_security_group_rule_ids: Vec<String>,
    pub ip_permissions: Vec<IpPermission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct EditSecurityGroupRulesResponse {
    pub r#return: bool,
    pub revoked_security_group_rule_ids: Vec<String>,
    /// The rules added, with their new `sgr-` IDs.
    pub security_group_rules: Vec<SecurityGroupRule>,
}

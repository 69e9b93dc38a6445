//! VPCs: create, describe, delete; their DNS and metrics attributes.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateVpcRequest {
    pub cidr_block: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub amazon_provided_ipv6_cidr_block: Option<bool>,
    pub instance_tenancy: Option<String>,
    pub tag_specifications: Vec<TagSpecification>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateVpcResponse {
    pub vpc: Vpc,
}

/// A VPC as `describe-vpcs` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Vpc {
    pub cidr_block: String,
    pub dhcp_options_id: String,
    pub state: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub instance_tenancy: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_cidr_block_association_set: Vec<Ipv6CidrBlockAssociation>,
    pub cidr_block_association_set: Vec<CidrBlockAssociation>,
    pub is_default: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// `{"State": "associated"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CidrBlockState {
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Ipv6CidrBlockAssociation {
    pub association_id: String,
    pub ipv6_cidr_block: String,
    pub ipv6_cidr_block_state: CidrBlockState,
    pub network_border_group: String,
    pub ipv6_pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CidrBlockAssociation {
    pub association_id: String,
    pub cidr_block: String,
    pub cidr_block_state: CidrBlockState,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVpcsRequest {
    pub vpc_ids: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVpcsResponse {
    pub vpcs: Vec<Vpc>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteVpcRequest {
    pub vpc_id: Option<String>,
}

/// EC2's `AttributeBooleanValue`: `{"Value": true}` (`<value>true</value>`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttributeBooleanValue {
    #[serde(deserialize_with = "super::common::scalar")]
    pub value: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVpcAttributeRequest {
    pub vpc_id: Option<String>,
    /// `enableDnsSupport`, `enableDnsHostnames` or `enableNetworkAddressUsageMetrics`.
    pub attribute: Option<String>,
}

/// The VPC and the one attribute asked for.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVpcAttributeResponse {
    pub vpc_id: String,
    pub enable_dns_support: Option<AttributeBooleanValue>,
    pub enable_dns_hostnames: Option<AttributeBooleanValue>,
    pub enable_network_address_usage_metrics: Option<AttributeBooleanValue>,
}

/// One attribute per call, as on AWS.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyVpcAttributeRequest {
    pub vpc_id: Option<String>,
    pub enable_dns_support: Option<AttributeBooleanValue>,
    pub enable_dns_hostnames: Option<AttributeBooleanValue>,
    pub enable_network_address_usage_metrics: Option<AttributeBooleanValue>,
}

/// `describe-route-tables`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRouteTablesRequest {
    pub route_table_ids: Vec<String>,
    pub filters: Vec<super::common::Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRouteTablesResponse {
    pub route_tables: Vec<RouteTable>,
    pub next_token: Option<String>,
}

/// A VPC's main route table: its local routes, associated with the VPC as main.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RouteTable {
    pub associations: Vec<RouteTableAssociation>,
    pub propagating_vgws: Vec<super::common::Tag>,
    pub route_table_id: String,
    pub routes: Vec<Route>,
    pub tags: Vec<super::common::Tag>,
    pub vpc_id: String,
    pub owner_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RouteTableAssociation {
    pub main: bool,
    pub route_table_association_id: String,
    pub route_table_id: String,
    pub association_state: RouteTableAssociationState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RouteTableAssociationState {
    pub state: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Route {
    pub destination_cidr_block: Option<String>,
    pub destination_ipv6_cidr_block: Option<String>,
    pub gateway_id: String,
    pub origin: String,
    pub state: String,
}

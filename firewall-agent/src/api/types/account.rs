//! What SDK-based tools ask before their real work: regions, zones, account attributes, and
//! STS's caller identity.

use serde::{Deserialize, Serialize};

use super::common::Filter;

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRegionsRequest {
    pub region_names: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub all_regions: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRegionsResponse {
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Region {
    pub endpoint: String,
    pub region_name: String,
    pub opt_in_status: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeAvailabilityZonesRequest {
    pub zone_names: Vec<String>,
    pub zone_ids: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub all_availability_zones: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeAvailabilityZonesResponse {
    pub availability_zones: Vec<AvailabilityZone>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AvailabilityZone {
    pub state: String,
    pub opt_in_status: String,
    pub messages: Vec<String>,
    pub region_name: String,
    pub zone_name: String,
    pub zone_id: String,
    pub group_name: String,
    pub network_border_group: String,
    pub zone_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeAccountAttributesRequest {
    pub attribute_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeAccountAttributesResponse {
    pub account_attributes: Vec<AccountAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccountAttribute {
    pub attribute_name: String,
    pub attribute_values: Vec<AccountAttributeValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccountAttributeValue {
    pub attribute_value: String,
}

/// STS `GetCallerIdentity`: the account the request was signed for (its root user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetCallerIdentityResponse {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

//! Flow logs: create, describe, delete (EC2's shapes; the destination is ours: a file or stdout).

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateFlowLogsRequest {
    pub client_token: Option<String>,
    pub deliver_logs_permission_arn: Option<String>,
    pub deliver_cross_account_role: Option<String>,
    pub log_group_name: Option<String>,
    pub resource_ids: Vec<String>,
    pub resource_type: Option<String>,
    pub traffic_type: Option<String>,
    pub log_destination_type: Option<String>,
    pub log_destination: Option<String>,
    pub log_format: Option<String>,
    pub tag_specifications: Vec<TagSpecification>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_aggregation_interval: Option<i64>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateFlowLogsResponse {
    pub client_token: Option<String>,
    pub flow_log_ids: Vec<String>,
    pub unsuccessful: Vec<UnsuccessfulItem>,
}

/// A resource an action could not act on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UnsuccessfulItem {
    pub error: UnsuccessfulItemError,
    pub resource_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UnsuccessfulItemError {
    pub code: String,
    pub message: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeFlowLogsRequest {
    /// EC2 names this member `Filter` (the CLI's `--filter`).
    #[serde(rename = "Filter")]
    pub filters: Vec<Filter>,
    pub flow_log_ids: Vec<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeFlowLogsResponse {
    pub flow_logs: Vec<FlowLog>,
    pub next_token: Option<String>,
}

/// A flow log as `describe-flow-logs` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FlowLog {
    pub creation_time: String,
    pub deliver_logs_status: String,
    pub flow_log_id: String,
    pub flow_log_status: String,
    pub resource_id: String,
    pub traffic_type: String,
    pub log_destination_type: String,
    pub log_destination: String,
    pub log_format: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub max_aggregation_interval: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteFlowLogsRequest {
    pub flow_log_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteFlowLogsResponse {
    pub unsuccessful: Vec<UnsuccessfulItem>,
}

//! Instances (workloads): run, describe, stop, start, terminate, and group changes.

use serde::{Deserialize, Serialize};

use super::launch_templates::LaunchTemplateSpecification;

/// One entry of `Ipv6Addresses`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceIpv6Address {
    pub ipv6_address: String,
}

/// `run-instances`. `HostInterface` (an existing workload's host-side veth) is ours; without
/// it the agent launches local instances.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct RunInstancesRequest {
    pub security_group_ids: Vec<String>,
    pub private_ip_address: Option<String>,
    pub ipv6_addresses: Vec<InstanceIpv6Address>,
    pub subnet_id: Option<String>,
    /// Ours: the workload's host-side veth.
    pub host_interface: Option<String>,
    pub launch_template: Option<LaunchTemplateSpecification>,
    pub tag_specifications: Vec<super::common::TagSpecification>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub min_count: Option<u32>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_count: Option<u32>,
    /// The idempotency token the SDKs fill in; accepted, not remembered (a retried call runs
    /// again).
    pub client_token: Option<String>,
    /// An image of `describe-images` (default: the namespace-only one).
    pub image_id: Option<String>,
    /// A type of `describe-instance-types` (default `m1.small`, as on AWS).
    pub instance_type: Option<String>,
    /// Kept, and given back by `describe-instance-attribute` (base64, as sent).
    pub user_data: Option<String>,
    pub credit_specification: Option<super::instance_details::CreditSpecificationRequest>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub disable_api_termination: Option<bool>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub disable_api_stop: Option<bool>,
    /// `stop` (the default) or `terminate`.
    pub instance_initiated_shutdown_behavior: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub ebs_optimized: Option<bool>,
    pub monitoring: Option<super::instance_details::MonitoringRequest>,
    pub hibernation_options: Option<super::instance_details::HibernationOptionsRequest>,
    pub placement: Option<super::instance_details::Placement>,
}

/// A reservation: the answer of `run-instances`, an element of `describe-instances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Reservation {
    pub groups: Vec<GroupIdentifier>,
    pub instances: Vec<Instance>,
    pub owner_id: String,
    pub reservation_id: String,
}

/// An instance as `describe-instances` prints it; a terminated one keeps only its ID, type,
/// launch time and state.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Instance {
    pub ami_launch_index: Option<u32>,
    pub image_id: Option<String>,
    pub instance_id: String,
    pub instance_type: String,
    pub launch_time: String,
    pub monitoring: Option<Monitoring>,
    pub placement: Option<super::instance_details::Placement>,
    pub private_dns_name: Option<String>,
    pub private_ip_address: Option<String>,
    pub state: InstanceState,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub network_interfaces: Vec<NetworkInterface>,
    pub security_groups: Vec<GroupIdentifier>,
    pub architecture: Option<String>,
    pub ebs_optimized: Option<bool>,
    pub root_device_type: Option<String>,
    pub source_dest_check: Option<bool>,
    pub virtualization_type: Option<String>,
    pub hibernation_options: Option<HibernationOptions>,
    /// Why the instance is in its state, when something other than a request put it there:
    /// ours, `Server.HostLost` when its host's agent stopped renewing its lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<StateReason>,
    /// Absent when the instance has none, as on AWS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<super::common::Tag>,
}

/// EC2's `Monitoring` of an instance (detailed monitoring: always `disabled` here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Monitoring {
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HibernationOptions {
    pub configured: bool,
}

/// EC2's `StateReason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceState {
    pub code: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GroupIdentifier {
    pub group_id: String,
    pub group_name: String,
}

/// One of the instance's interfaces (EC2's `InstanceNetworkInterface`). `HostInterface` and
/// `Namespace` (a local instance's network namespace, for `ip netns exec`) are ours.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterface {
    pub attachment: InstanceNetworkInterfaceAttachment,
    pub description: String,
    pub groups: Vec<GroupIdentifier>,
    pub ipv6_addresses: Vec<InterfaceIpv6Address>,
    pub mac_address: String,
    pub network_interface_id: String,
    pub owner_id: String,
    pub private_ip_address: String,
    pub private_ip_addresses: Vec<PrivateIpAddress>,
    pub source_dest_check: bool,
    pub status: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub interface_type: String,
    pub host_interface: String,
    pub namespace: Option<String>,
}

/// EC2's `InstanceNetworkInterfaceAttachment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceNetworkInterfaceAttachment {
    pub attach_time: String,
    pub attachment_id: String,
    pub delete_on_termination: bool,
    pub device_index: u32,
    pub status: String,
    pub network_card_index: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InterfaceIpv6Address {
    pub ipv6_address: String,
    pub is_primary_ipv6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrivateIpAddress {
    pub primary: bool,
    pub private_ip_address: String,
}

/// `terminate-instances`, `stop-instances`, `start-instances`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceIdsRequest {
    pub instance_ids: Vec<String>,
}

/// `describe-instances`: by ID, by filter, in pages.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstancesRequest {
    pub instance_ids: Vec<String>,
    pub filters: Vec<super::common::Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstancesResponse {
    pub reservations: Vec<Reservation>,
    pub next_token: Option<String>,
}

/// One `InstanceStateChange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceStateChange {
    pub current_state: InstanceState,
    pub instance_id: String,
    pub previous_state: InstanceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TerminateInstancesResponse {
    pub terminating_instances: Vec<InstanceStateChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StopInstancesResponse {
    pub stopping_instances: Vec<InstanceStateChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StartInstancesResponse {
    pub starting_instances: Vec<InstanceStateChange>,
}

/// `modify-instance-attribute --groups`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyInstanceAttributeRequest {
    pub instance_id: Option<String>,
    pub groups: Vec<String>,
    pub disable_api_termination: Option<super::vpcs::AttributeBooleanValue>,
    pub disable_api_stop: Option<super::vpcs::AttributeBooleanValue>,
    pub instance_initiated_shutdown_behavior: Option<super::network_interfaces::AttributeValue>,
    pub source_dest_check: Option<super::vpcs::AttributeBooleanValue>,
    /// The older form: an attribute's name and its new value as text.
    pub attribute: Option<String>,
    pub value: Option<String>,
}

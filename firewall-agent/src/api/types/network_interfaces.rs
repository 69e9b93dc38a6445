//! Network interfaces: create, describe, delete, attach, detach, and their groups and
//! description.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};
use super::instances::{GroupIdentifier, InstanceIpv6Address};
use super::vpcs::AttributeBooleanValue;

/// `create-network-interface`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateNetworkInterfaceRequest {
    pub description: Option<String>,
    pub groups: Vec<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub ipv6_address_count: Option<u32>,
    pub ipv6_addresses: Vec<InstanceIpv6Address>,
    pub private_ip_address: Option<String>,
    pub subnet_id: Option<String>,
    pub tag_specifications: Vec<TagSpecification>,
    pub client_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateNetworkInterfaceResponse {
    pub network_interface: NetworkInterface,
    pub client_token: Option<String>,
}

/// A network interface as `describe-network-interfaces` prints it (members in the service
/// model's order; `TagSet` is the model's own name). `HostInterface` (the host-side veth the
/// data plane enforces on) and `Namespace` (a local instance's) are ours.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterface {
    pub attachment: Option<NetworkInterfaceAttachment>,
    pub availability_zone: String,
    pub description: String,
    pub groups: Vec<GroupIdentifier>,
    pub interface_type: String,
    pub ipv6_addresses: Vec<NetworkInterfaceIpv6Address>,
    pub mac_address: String,
    pub network_interface_id: String,
    pub owner_id: String,
    pub private_dns_name: String,
    pub private_ip_address: String,
    pub private_ip_addresses: Vec<NetworkInterfacePrivateIpAddress>,
    pub requester_managed: bool,
    pub source_dest_check: bool,
    pub status: String,
    pub subnet_id: String,
    pub tag_set: Vec<Tag>,
    pub vpc_id: String,
    pub host_interface: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterfaceAttachment {
    pub attach_time: String,
    pub attachment_id: String,
    pub delete_on_termination: bool,
    pub device_index: u32,
    pub network_card_index: u32,
    pub instance_id: String,
    pub instance_owner_id: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterfaceIpv6Address {
    pub ipv6_address: String,
    pub is_primary_ipv6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterfacePrivateIpAddress {
    pub primary: bool,
    pub private_dns_name: String,
    pub private_ip_address: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeNetworkInterfacesRequest {
    pub filters: Vec<Filter>,
    pub network_interface_ids: Vec<String>,
    pub next_token: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeNetworkInterfacesResponse {
    pub network_interfaces: Vec<NetworkInterface>,
    pub next_token: Option<String>,
}

/// `delete-network-interface`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInterfaceIdRequest {
    pub network_interface_id: Option<String>,
}

/// EC2's `AttributeValue`: `{"Value": "text"}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttributeValue {
    pub value: Option<String>,
}

/// `modify-network-interface-attribute`: one attribute per call, as on AWS (`--groups`,
/// `--description`, `--source-dest-check`, `--attachment`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyNetworkInterfaceAttributeRequest {
    pub network_interface_id: Option<String>,
    pub description: Option<AttributeValue>,
    pub groups: Option<Vec<String>>,
    pub source_dest_check: Option<AttributeBooleanValue>,
    pub attachment: Option<AttachmentChanges>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttachmentChanges {
    pub attachment_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub delete_on_termination: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttachNetworkInterfaceRequest {
    #[serde(deserialize_with = "super::common::scalar")]
    pub device_index: Option<u32>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub network_card_index: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttachNetworkInterfaceResponse {
    pub attachment_id: String,
    pub network_card_index: u32,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DetachNetworkInterfaceRequest {
    pub attachment_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub force: Option<bool>,
}

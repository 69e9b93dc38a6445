//! What an instance was launched with beyond its network (image, type, protection flags, user
//! data, CPU credits), the attributes that read and change it, and the catalogues behind it:
//! instance types, images, and volumes (instances here have none).

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag};
use super::instances::GroupIdentifier;
use super::network_interfaces::AttributeValue;
use super::vpcs::AttributeBooleanValue;

/// `RunInstances`' `CreditSpecification`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreditSpecificationRequest {
    pub cpu_credits: Option<String>,
}

/// `RunInstances`' `Monitoring` (detailed monitoring: accepted when off).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct MonitoringRequest {
    #[serde(deserialize_with = "super::common::scalar")]
    pub enabled: Option<bool>,
}

/// `RunInstances`' `HibernationOptions` (accepted when off).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct HibernationOptionsRequest {
    #[serde(deserialize_with = "super::common::scalar")]
    pub configured: Option<bool>,
}

/// `Placement`: in a request the zone (empty: any), in an answer the zone and tenancy.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct Placement {
    pub availability_zone: Option<String>,
    pub group_name: Option<String>,
    pub tenancy: Option<String>,
}

/// `describe-instance-attribute`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceAttributeRequest {
    pub attribute: Option<String>,
    pub instance_id: Option<String>,
}

/// The answer: the instance's ID and the one attribute asked for.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceAttribute {
    pub block_device_mappings: Option<Vec<Tag>>,
    pub disable_api_termination: Option<AttributeBooleanValue>,
    pub ebs_optimized: Option<AttributeBooleanValue>,
    pub instance_id: String,
    pub instance_initiated_shutdown_behavior: Option<AttributeValue>,
    pub instance_type: Option<AttributeValue>,
    pub root_device_name: Option<AttributeValue>,
    pub source_dest_check: Option<AttributeBooleanValue>,
    pub user_data: Option<AttributeValue>,
    pub disable_api_stop: Option<AttributeBooleanValue>,
    pub groups: Option<Vec<GroupIdentifier>>,
}

/// `describe-instance-types`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceTypesRequest {
    pub instance_types: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceTypesResponse {
    pub instance_types: Vec<InstanceTypeInfo>,
    pub next_token: Option<String>,
}

/// One instance type: what a workload of that type is sized as on AWS. Here every type is a
/// network namespace; the figures describe, they do not limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceTypeInfo {
    pub instance_type: String,
    pub current_generation: bool,
    pub free_tier_eligible: bool,
    pub supported_usage_classes: Vec<String>,
    pub supported_root_device_types: Vec<String>,
    pub supported_virtualization_types: Vec<String>,
    pub bare_metal: bool,
    pub hypervisor: String,
    pub processor_info: ProcessorInfo,
    pub v_cpu_info: VCpuInfo,
    pub memory_info: MemoryInfo,
    pub instance_storage_supported: bool,
    pub network_info: NetworkInfo,
    pub hibernation_supported: bool,
    pub burstable_performance_supported: bool,
    pub dedicated_hosts_supported: bool,
    pub auto_recovery_supported: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ProcessorInfo {
    pub supported_architectures: Vec<String>,
    pub sustained_clock_speed_in_ghz: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct VCpuInfo {
    pub default_v_cpus: u32,
    pub default_cores: u32,
    pub default_threads_per_core: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MemoryInfo {
    #[serde(rename = "SizeInMiB")]
    pub size_in_mib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NetworkInfo {
    pub network_performance: String,
    pub maximum_network_interfaces: u32,
    pub ipv4_addresses_per_interface: u32,
    pub ipv6_addresses_per_interface: u32,
    pub ipv6_supported: bool,
    pub ena_support: String,
}

/// `describe-images`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeImagesRequest {
    pub executable_users: Vec<String>,
    pub image_ids: Vec<String>,
    pub owners: Vec<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub include_deprecated: Option<bool>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub include_disabled: Option<bool>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub filters: Vec<Filter>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeImagesResponse {
    pub images: Vec<Image>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Image {
    pub platform_details: String,
    pub usage_operation: String,
    pub block_device_mappings: Vec<Tag>,
    pub description: String,
    pub ena_support: bool,
    pub hypervisor: String,
    pub image_owner_alias: String,
    pub name: String,
    pub root_device_type: String,
    pub virtualization_type: String,
    pub boot_mode: String,
    pub image_id: String,
    pub image_location: String,
    pub state: String,
    pub owner_id: String,
    pub creation_date: String,
    pub public: bool,
    pub architecture: String,
    pub image_type: String,
}

/// `describe-volumes`: instances here have no EBS volumes, so the answer is always empty; the
/// request is checked as AWS checks it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVolumesRequest {
    pub volume_ids: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeVolumesResponse {
    pub volumes: Vec<Tag>,
    pub next_token: Option<String>,
}

/// `describe-instance-credit-specifications`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceCreditSpecificationsRequest {
    pub instance_ids: Vec<String>,
    pub filters: Vec<Filter>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceCreditSpecificationsResponse {
    pub instance_credit_specifications: Vec<InstanceCreditSpecification>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InstanceCreditSpecification {
    pub instance_id: String,
    pub cpu_credits: String,
}

/// `get-console-output`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetConsoleOutputRequest {
    pub instance_id: Option<String>,
    #[serde(deserialize_with = "super::common::scalar")]
    pub latest: Option<bool>,
}

/// The instance's console output: with `serve --run-user-data`, what its user data printed
/// (the last 64 KB, base64), as of `Timestamp`; absent when it has none.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetConsoleOutputResponse {
    pub instance_id: String,
    pub timestamp: Option<String>,
    pub output: Option<String>,
}

//! The instance types and images `run-instances` accepts, as `describe-instance-types` and
//! `describe-images` list them. An instance here is a network namespace whatever its type and
//! image: the types carry AWS's figures so tools that size or check them (Terraform reads
//! `BurstablePerformanceSupported`) get real answers, and the one image says what it is.

use super::query::{invalid_filter, paginate};
use crate::api::{
    ApiError, ApiResult,
    types::instance_details::{
        DescribeImagesRequest, DescribeImagesResponse, DescribeInstanceTypesRequest,
        DescribeInstanceTypesResponse, Image, InstanceTypeInfo, MemoryInfo, NetworkInfo,
        ProcessorInfo, VCpuInfo,
    },
};

/// AWS's default when `RunInstances` names no type.
pub const DEFAULT_INSTANCE_TYPE: &str = "m1.small";
/// The namespace-only image: the ID AWS's documentation uses as its example AMI.
pub const DEFAULT_IMAGE: &str = "ami-0123456789abcdef0";

/// (type, vCPUs, cores, MiB, burstable, current generation, network performance, ENIs,
/// IPv4 addresses per ENI, clock GHz)
type TypeRow = (
    &'static str,
    u32,
    u32,
    u64,
    bool,
    bool,
    &'static str,
    u32,
    u32,
    f64,
);

/// A few of AWS's instance types, with AWS's published figures.
const TYPES: &[TypeRow] = &[
    (
        "c5.large",
        2,
        1,
        4096,
        false,
        true,
        "Up to 10 Gigabit",
        3,
        10,
        3.4,
    ),
    ("m1.small", 1, 1, 1740, false, false, "Low", 2, 4, 0.0),
    (
        "m5.large",
        2,
        1,
        8192,
        false,
        true,
        "Up to 10 Gigabit",
        3,
        10,
        3.1,
    ),
    (
        "r5.large",
        2,
        1,
        16384,
        false,
        true,
        "Up to 10 Gigabit",
        3,
        10,
        3.1,
    ),
    (
        "t2.micro",
        1,
        1,
        1024,
        true,
        true,
        "Low to Moderate",
        2,
        2,
        2.5,
    ),
    (
        "t3.large",
        2,
        1,
        8192,
        true,
        true,
        "Up to 5 Gigabit",
        3,
        12,
        2.5,
    ),
    (
        "t3.medium",
        2,
        1,
        4096,
        true,
        true,
        "Up to 5 Gigabit",
        3,
        6,
        2.5,
    ),
    (
        "t3.micro",
        2,
        1,
        1024,
        true,
        true,
        "Up to 5 Gigabit",
        2,
        2,
        2.5,
    ),
    (
        "t3.nano",
        2,
        1,
        512,
        true,
        true,
        "Up to 5 Gigabit",
        2,
        2,
        2.5,
    ),
    (
        "t3.small",
        2,
        1,
        2048,
        true,
        true,
        "Up to 5 Gigabit",
        3,
        4,
        2.5,
    ),
];

fn row(name: &str) -> Option<&'static TypeRow> {
    TYPES.iter().find(|t| t.0 == name)
}

/// Whether the type earns CPU credits (its launches take a credit specification).
pub fn burstable(instance_type: &str) -> bool {
    row(instance_type).is_some_and(|t| t.4)
}

/// The type `RunInstances` asked for, known here.
pub fn check_instance_type(name: &str) -> ApiResult<()> {
    match row(name) {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid_value(format!(
            "Invalid value '{name}' for InstanceType."
        ))),
    }
}

/// The image `RunInstances` asked for, known here.
pub fn check_image(id: &str) -> ApiResult<()> {
    let hex = id.strip_prefix("ami-").unwrap_or_default();
    if !matches!(hex.len(), 8 | 17) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ));
    }
    if id != DEFAULT_IMAGE {
        return Err(ApiError::new(
            "InvalidAMIID.NotFound",
            format!("The image id '[{id}]' does not exist"),
        ));
    }
    Ok(())
}

fn info(t: &TypeRow) -> InstanceTypeInfo {
    let &(name, vcpus, cores, mib, burstable, current, network, enis, ipv4, ghz) = t;
    InstanceTypeInfo {
        instance_type: name.into(),
        current_generation: current,
        free_tier_eligible: matches!(name, "t2.micro" | "t3.micro"),
        supported_usage_classes: vec!["on-demand".into(), "spot".into()],
        supported_root_device_types: vec!["ebs".into()],
        supported_virtualization_types: vec!["hvm".into()],
        bare_metal: false,
        hypervisor: if current && !name.starts_with("t2") {
            "nitro"
        } else {
            "xen"
        }
        .into(),
        processor_info: ProcessorInfo {
            supported_architectures: vec!["x86_64".into()],
            sustained_clock_speed_in_ghz: ghz,
        },
        v_cpu_info: VCpuInfo {
            default_v_cpus: vcpus,
            default_cores: cores,
            default_threads_per_core: vcpus / cores,
        },
        memory_info: MemoryInfo { size_in_mib: mib },
        instance_storage_supported: false,
        network_info: NetworkInfo {
            network_performance: network.into(),
            maximum_network_interfaces: enis,
            ipv4_addresses_per_interface: ipv4,
            ipv6_addresses_per_interface: ipv4,
            ipv6_supported: current,
            ena_support: if current && !name.starts_with("t2") {
                "required"
            } else {
                "unsupported"
            }
            .into(),
        },
        hibernation_supported: current,
        burstable_performance_supported: burstable,
        dedicated_hosts_supported: !burstable,
        auto_recovery_supported: true,
    }
}

pub fn describe_instance_types(
    req: DescribeInstanceTypesRequest,
) -> ApiResult<DescribeInstanceTypesResponse> {
    for name in &req.instance_types {
        if row(name).is_none() {
            return Err(ApiError::invalid_value(format!(
                "The following supplied instance types do not exist: [{name}]"
            )));
        }
    }
    let mut out = Vec::new();
    for t in TYPES {
        if !req.instance_types.is_empty() && !req.instance_types.iter().any(|n| n == t.0) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            let f = filter;
            keep &= match f.name.as_str() {
                "instance-type" => f.matches(t.0),
                "current-generation" => f.matches(&t.5.to_string()),
                "burstable-performance-supported" => f.matches(&t.4.to_string()),
                "vcpu-info.default-vcpus" => f.matches(&t.1.to_string()),
                "memory-info.size-in-mib" => f.matches(&t.3.to_string()),
                "processor-info.supported-architecture" => f.matches("x86_64"),
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push((t.0.to_string(), info(t)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeInstanceTypesResponse {
        instance_types: page.items,
        next_token: page.next_token,
    })
}

fn image() -> Image {
    Image {
        platform_details: "Linux/UNIX".into(),
        usage_operation: "RunInstances".into(),
        block_device_mappings: Vec::new(),
        description: "A network namespace with the instance's interfaces and nothing else: run \
                      commands in it with `ip netns exec <instance-id>`."
            .into(),
        ena_support: true,
        hypervisor: "xen".into(),
        image_owner_alias: "amazon".into(),
        name: "firewall-agent/netns".into(),
        root_device_type: "instance-store".into(),
        virtualization_type: "hvm".into(),
        boot_mode: "uefi-preferred".into(),
        image_id: DEFAULT_IMAGE.into(),
        image_location: "amazon/firewall-agent/netns".into(),
        state: "available".into(),
        owner_id: "137112412989".into(),
        creation_date: "2026-01-01T00:00:00.000Z".into(),
        public: true,
        architecture: "x86_64".into(),
        image_type: "machine".into(),
    }
}

pub fn describe_images(req: DescribeImagesRequest) -> ApiResult<DescribeImagesResponse> {
    for id in &req.image_ids {
        check_image(id)?;
    }
    let image = image();
    let mut keep = req.owners.is_empty()
        || req
            .owners
            .iter()
            .any(|o| o == "amazon" || *o == image.owner_id);
    for filter in &req.filters {
        keep &= match filter.name.as_str() {
            "image-id" => filter.matches(&image.image_id),
            "name" => filter.matches(&image.name),
            "owner-alias" => filter.matches(&image.image_owner_alias),
            "owner-id" => filter.matches(&image.owner_id),
            "architecture" => filter.matches(&image.architecture),
            "state" => filter.matches(&image.state),
            "is-public" => filter.matches("true"),
            "image-type" => filter.matches(&image.image_type),
            "root-device-type" => filter.matches(&image.root_device_type),
            "virtualization-type" => filter.matches(&image.virtualization_type),
            other => return Err(invalid_filter(other)),
        };
    }
    let items = if keep {
        vec![(image.image_id.clone(), image)]
    } else {
        Vec::new()
    };
    let page = paginate(items, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeImagesResponse {
        images: page.items,
        next_token: page.next_token,
    })
}

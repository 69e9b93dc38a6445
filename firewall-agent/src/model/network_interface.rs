//! Network interfaces: `create-network-interface`, `describe-network-interfaces`,
//! `delete-network-interface`, `attach-network-interface`, `detach-network-interface` and
//! `modify-network-interface-attribute` (`--groups`, `--description`, `--attachment`). An
//! interface attached to an instance is what the data plane enforces on: its groups are the
//! policy of its host-side veth, and its addresses are members of its groups.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    ids::{IdSource, check_group_id_format, check_id_format},
    local, lookup,
    network::{Attachment, NetworkInterface, Subnet, attachment_id},
    query::{invalid_filter, paginate},
    state::{InstanceState, State},
    subnet,
    tagging::{self, tags_for},
    views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::{EmptyResponse, Filter},
        instances::InstanceIpv6Address,
        network_interfaces::{
            self as types, AttachNetworkInterfaceRequest, AttachNetworkInterfaceResponse,
            CreateNetworkInterfaceRequest, CreateNetworkInterfaceResponse,
            DescribeNetworkInterfacesRequest, DescribeNetworkInterfacesResponse,
            DetachNetworkInterfaceRequest, ModifyNetworkInterfaceAttributeRequest,
            NetworkInterfaceIdRequest,
        },
    },
};

/// The most interfaces one instance has (device indexes 0 to 7).
pub const MAX_PER_INSTANCE: u32 = 8;

/// `InvalidNetworkInterfaceID.NotFound`.
pub fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidNetworkInterfaceID.NotFound",
        format!("The networkInterface ID '{id}' does not exist"),
    )
}

/// The interface `id` (well-formed, known).
pub fn lookup<'a>(state: &'a State, id: &str) -> ApiResult<&'a NetworkInterface> {
    check_id_format(
        id,
        "eni",
        "InvalidNetworkInterfaceID.Malformed",
        "network interface ID",
    )?;
    state
        .network_interfaces
        .get(id)
        .ok_or_else(|| not_found(id))
}

/// The groups of an interface in `vpc_id`: each known and in the VPC, without repeats, at
/// most the quota.
pub fn check_groups(state: &State, vpc_id: &str, requested: &[String]) -> ApiResult<Vec<String>> {
    let mut groups: Vec<String> = Vec::new();
    for group in requested {
        check_group_id_format(group)?;
        let known = lookup::group(state, group)?;
        if known.vpc_id != vpc_id {
            return Err(ApiError::new(
                "InvalidParameter",
                format!(
                    "Security group {group} and the network interface belong to different networks."
                ),
            ));
        }
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    if groups.len() > state.quotas.groups_per_instance {
        return Err(ApiError::new(
            "SecurityGroupsPerInterfaceLimitExceeded",
            format!(
                "The maximum number of security groups per interface ({}) has been reached.",
                state.quotas.groups_per_instance
            ),
        ));
    }
    Ok(groups)
}

/// `NetworkInterfaceLimitExceeded` when `more` interfaces would pass the region's quota.
pub fn check_quota(state: &State, more: usize) -> ApiResult<()> {
    if state.network_interfaces.len() + more > state.quotas.interfaces_per_region {
        return Err(ApiError::new(
            "NetworkInterfaceLimitExceeded",
            format!(
                "The maximum number of network interfaces ({}) has been reached.",
                state.quotas.interfaces_per_region
            ),
        ));
    }
    Ok(())
}

/// The addresses an interface gets in `subnet`: the given ones (checked), or the lowest free.
pub fn addresses(
    state: &State,
    subnet: &Subnet,
    private_ip: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
) -> ApiResult<(Ipv4Addr, Option<Ipv6Addr>)> {
    let v4 = match private_ip {
        Some(address) => {
            subnet::check_ipv4(state, subnet, address)?;
            address
        }
        None => subnet::free_ipv4(state, subnet)?,
    };
    let v6 = match ipv6 {
        Some(address) => {
            subnet::check_ipv6(state, subnet, address)?;
            Some(address)
        }
        None => subnet::free_ipv6(state, subnet),
    };
    Ok((v4, v6))
}

/// An IPv4 address as given, or `InvalidParameterValue`.
pub fn parse_ipv4(text: &str) -> ApiResult<Ipv4Addr> {
    text.parse().map_err(|_| {
        ApiError::invalid_value(format!("Invalid value '{text}' for PrivateIpAddress"))
    })
}

/// At most one IPv6 address, as given.
pub fn parse_ipv6(given: &[InstanceIpv6Address]) -> ApiResult<Option<Ipv6Addr>> {
    match given {
        [] => Ok(None),
        [one] => one.ipv6_address.parse().map(Some).map_err(|_| {
            ApiError::invalid_value(format!(
                "Invalid value '{}' for Ipv6Address",
                one.ipv6_address
            ))
        }),
        _ => Err(ApiError::invalid_value(
            "At most one IPv6 address per network interface is supported.",
        )),
    }
}

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateNetworkInterfaceRequest,
) -> ApiResult<CreateNetworkInterfaceResponse> {
    let subnet_id = req
        .subnet_id
        .as_deref()
        .ok_or_else(|| ApiError::missing("SubnetId"))?;
    let subnet = subnet::lookup(state, subnet_id)?.clone();
    let private_ip = req
        .private_ip_address
        .as_deref()
        .map(parse_ipv4)
        .transpose()?;
    let ipv6 = parse_ipv6(&req.ipv6_addresses)?;
    if req.ipv6_address_count.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid_value(
            "At most one IPv6 address per network interface is supported.",
        ));
    }
    let requested = if req.groups.is_empty() {
        vec![default_group(state, &subnet.vpc_id)?]
    } else {
        req.groups.clone()
    };
    let group_ids = check_groups(state, &subnet.vpc_id, &requested)?;
    check_quota(state, 1)?;
    let (private_ip, ipv6) = addresses(state, &subnet, private_ip, ipv6)?;
    let tags = tags_for(&req.tag_specifications, "network-interface")?;
    if let Some(description) = &req.description {
        check_description(description)?;
    }
    let id = ids.next_id("eni");
    let interface = NetworkInterface {
        host_interface: local::extra_veth_name(&id),
        id: id.clone(),
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        description: req.description.unwrap_or_default(),
        private_ip,
        ipv6,
        group_ids,
        attachment: None,
        tags,
    };
    state.network_interfaces.insert(id.clone(), interface);
    Ok(CreateNetworkInterfaceResponse {
        network_interface: view(state, &state.network_interfaces[&id]),
        client_token: req.client_token,
    })
}

/// The `default` group of `vpc_id`.
pub fn default_group(state: &State, vpc_id: &str) -> ApiResult<String> {
    state
        .groups
        .values()
        .find(|g| g.vpc_id == vpc_id && g.name == "default")
        .map(|g| g.id.clone())
        .ok_or_else(|| lookup::group_not_found("default"))
}

fn check_description(text: &str) -> ApiResult<()> {
    if text.chars().count() > 255 {
        return Err(ApiError::invalid_value(
            "The description of a network interface must be at most 255 characters.",
        ));
    }
    Ok(())
}

/// A network interface as `describe-network-interfaces` prints it.
pub fn view(state: &State, eni: &NetworkInterface) -> types::NetworkInterface {
    let instance = eni.instance_id().and_then(|id| state.instances.get(id));
    let private_ip = eni.private_ip.to_string();
    let dns = private_dns_name(state, eni.private_ip);
    let zone = state
        .subnets
        .get(&eni.subnet_id)
        .map(|s| s.availability_zone.clone())
        .unwrap_or_default();
    types::NetworkInterface {
        attachment: eni.attachment.as_ref().map(|a| attachment_view(state, a)),
        availability_zone: zone,
        description: eni.description.clone(),
        groups: views::group_identifiers(state, &eni.group_ids),
        interface_type: "interface".into(),
        ipv6_addresses: eni
            .ipv6
            .iter()
            .map(|a| types::NetworkInterfaceIpv6Address {
                ipv6_address: a.to_string(),
                is_primary_ipv6: false,
            })
            .collect(),
        mac_address: eni.mac(),
        network_interface_id: eni.id.clone(),
        owner_id: state.account_id.clone(),
        private_dns_name: dns.clone(),
        private_ip_address: private_ip.clone(),
        private_ip_addresses: vec![types::NetworkInterfacePrivateIpAddress {
            primary: true,
            private_dns_name: dns,
            private_ip_address: private_ip,
        }],
        requester_managed: false,
        source_dest_check: true,
        status: eni.status().into(),
        subnet_id: eni.subnet_id.clone(),
        tag_set: tagging::views(&eni.tags),
        vpc_id: eni.vpc_id.clone(),
        host_interface: eni.attachment.as_ref().map(|_| eni.host_interface.clone()),
        namespace: instance.and_then(|i| i.netns.clone()),
    }
}

/// An attachment as answers print it.
pub fn attachment_view(state: &State, a: &Attachment) -> types::NetworkInterfaceAttachment {
    types::NetworkInterfaceAttachment {
        attach_time: a.attach_time.clone(),
        attachment_id: a.id.clone(),
        delete_on_termination: a.delete_on_termination,
        device_index: a.device_index,
        network_card_index: 0,
        instance_id: a.instance_id.clone(),
        instance_owner_id: state.account_id.clone(),
        status: "attached".into(),
    }
}

/// `ip-10-0-0-4.<region>.compute.internal` (`ec2.internal` in us-east-1), as AWS names it.
pub fn private_dns_name(state: &State, address: Ipv4Addr) -> String {
    let host = format!("ip-{}", address.to_string().replace('.', "-"));
    match state.region.as_str() {
        "us-east-1" => format!("{host}.ec2.internal"),
        region => format!("{host}.{region}.compute.internal"),
    }
}

/// One describe-network-interfaces filter.
fn matches(state: &State, eni: &NetworkInterface, filter: &Filter) -> ApiResult<bool> {
    if let Some(hit) = filter.matches_tags(&eni.tags) {
        return Ok(hit);
    }
    let any = |values: Vec<String>| values.iter().any(|v| filter.matches(v));
    let attachment = eni.attachment.as_ref();
    let zone = state
        .subnets
        .get(&eni.subnet_id)
        .map(|s| s.availability_zone.clone());
    Ok(match filter.name.as_str() {
        "network-interface-id" => filter.matches(&eni.id),
        "group-id" => any(eni.group_ids.clone()),
        "group-name" => any(eni
            .group_ids
            .iter()
            .filter_map(|g| state.groups.get(g).map(|g| g.name.clone()))
            .collect()),
        "attachment.instance-id" => any(attachment
            .map(|a| a.instance_id.clone())
            .into_iter()
            .collect()),
        "attachment.attachment-id" => any(attachment.map(|a| a.id.clone()).into_iter().collect()),
        "attachment.device-index" => any(attachment
            .map(|a| a.device_index.to_string())
            .into_iter()
            .collect()),
        "attachment.status" => any(attachment
            .map(|_| "attached".to_string())
            .into_iter()
            .collect()),
        "attachment.delete-on-termination" => any(attachment
            .map(|a| a.delete_on_termination.to_string())
            .into_iter()
            .collect()),
        "attachment.instance-owner-id" | "owner-id" => filter.matches(&state.account_id),
        "subnet-id" => filter.matches(&eni.subnet_id),
        "vpc-id" => filter.matches(&eni.vpc_id),
        "availability-zone" => any(zone.into_iter().collect()),
        "status" => filter.matches(eni.status()),
        "description" => filter.matches(&eni.description),
        "mac-address" => filter.matches(&eni.mac()),
        "interface-type" => filter.matches("interface"),
        "requester-managed" => filter.matches("false"),
        "source-dest-check" => filter.matches("true"),
        "private-ip-address" | "addresses.private-ip-address" => {
            filter.matches(&eni.private_ip.to_string())
        }
        "addresses.primary" => filter.matches("true"),
        "private-dns-name" => filter.matches(&private_dns_name(state, eni.private_ip)),
        "ipv6-addresses.ipv6-address" | "ipv6-address" => {
            any(eni.ipv6.iter().map(|a| a.to_string()).collect())
        }
        other => return Err(invalid_filter(other)),
    })
}

pub fn describe(
    state: &State,
    req: DescribeNetworkInterfacesRequest,
) -> ApiResult<DescribeNetworkInterfacesResponse> {
    if req.max_results.is_some() && !req.network_interface_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults",
        ));
    }
    for id in &req.network_interface_ids {
        lookup(state, id)?;
    }
    let mut out = Vec::new();
    for eni in state.network_interfaces.values() {
        if !req.network_interface_ids.is_empty() && !req.network_interface_ids.contains(&eni.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= matches(state, eni, filter)?;
        }
        if keep {
            out.push((eni.id.clone(), view(state, eni)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeNetworkInterfacesResponse {
        network_interfaces: page.items,
        next_token: page.next_token,
    })
}

/// Deletes an interface that is not attached.
pub fn delete(state: &mut State, req: NetworkInterfaceIdRequest) -> ApiResult<EmptyResponse> {
    let id = req
        .network_interface_id
        .ok_or_else(|| ApiError::missing("NetworkInterfaceId"))?;
    if lookup(state, &id)?.attachment.is_some() {
        return Err(in_use(&id));
    }
    state.network_interfaces.remove(&id);
    Ok(EmptyResponse {})
}

fn in_use(id: &str) -> ApiError {
    ApiError::new(
        "InvalidNetworkInterface.InUse",
        format!("The network interface '{id}' is currently in use."),
    )
}

/// Attaches an available interface to a local instance of its VPC at a free device index
/// (≥ 1): the agent builds another veth into the instance's namespace for it.
pub fn attach(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: AttachNetworkInterfaceRequest,
) -> ApiResult<AttachNetworkInterfaceResponse> {
    let eni_id = req
        .network_interface_id
        .ok_or_else(|| ApiError::missing("NetworkInterfaceId"))?;
    let instance_id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    let device_index = req
        .device_index
        .ok_or_else(|| ApiError::missing("DeviceIndex"))?;
    if req.network_card_index.is_some_and(|n| n != 0) {
        return Err(ApiError::invalid_value(
            "Network card index 0 is the only one an instance has here.",
        ));
    }
    let eni = lookup(state, &eni_id)?;
    lookup::check_instances_exist(state, std::slice::from_ref(&instance_id))?;
    let instance = &state.instances[&instance_id];
    if eni.attachment.is_some() {
        return Err(in_use(&eni_id));
    }
    if !matches!(
        instance.state,
        InstanceState::Running | InstanceState::Stopped
    ) {
        return Err(ApiError::new(
            "IncorrectInstanceState",
            format!("The instance '{instance_id}' is not in the 'running' or 'stopped' state."),
        ));
    }
    if eni.vpc_id != instance.vpc_id {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The network interface and the instance must be in the same VPC.",
        ));
    }
    if instance.netns.is_none() || instance.remote {
        return Err(ApiError::new(
            "UnsupportedOperation",
            format!(
                "The instance '{instance_id}' is a registered workload (or another host's): only a local instance this agent launched can have more network interfaces attached."
            ),
        ));
    }
    if device_index == 0 || device_index >= MAX_PER_INSTANCE {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{device_index}' for deviceIndex: an attached interface takes a device index from 1 to {}.",
            MAX_PER_INSTANCE - 1
        )));
    }
    if state.interfaces_of(&instance_id).iter().any(|other| {
        other
            .attachment
            .as_ref()
            .is_some_and(|a| a.device_index == device_index)
    }) {
        return Err(ApiError::invalid_value(format!(
            "Instance '{instance_id}' already has an interface attached at device index '{device_index}'."
        )));
    }
    let attachment = Attachment {
        id: attachment_id(&eni_id),
        instance_id,
        device_index,
        attach_time: ids.now(),
        delete_on_termination: false,
    };
    let id = attachment.id.clone();
    state
        .network_interfaces
        .get_mut(&eni_id)
        .expect("looked up")
        .attachment = Some(attachment);
    Ok(AttachNetworkInterfaceResponse {
        attachment_id: id,
        network_card_index: 0,
    })
}

/// Detaches an interface by its attachment (not the primary one: an instance keeps it).
pub fn detach(state: &mut State, req: DetachNetworkInterfaceRequest) -> ApiResult<EmptyResponse> {
    let id = req
        .attachment_id
        .ok_or_else(|| ApiError::missing("AttachmentId"))?;
    let eni_id = state
        .network_interfaces
        .iter()
        .find(|(_, eni)| eni.attachment.as_ref().is_some_and(|a| a.id == id))
        .map(|(eni_id, _)| eni_id.clone())
        .ok_or_else(|| {
            ApiError::new(
                "InvalidAttachmentID.NotFound",
                format!("The attachment ID '{id}' does not exist"),
            )
        })?;
    let eni = state.network_interfaces.get_mut(&eni_id).expect("found");
    if eni.attachment.as_ref().is_some_and(|a| a.device_index == 0) {
        return Err(ApiError::new(
            "OperationNotPermitted",
            "The network interface at device index 0 cannot be detached.",
        ));
    }
    eni.attachment = None;
    Ok(EmptyResponse {})
}

/// One attribute per call: `Groups` (the whole new set, in force in the kernel at once),
/// `Description`, `SourceDestCheck` (only `true`: nothing here routes for others) or
/// `Attachment.DeleteOnTermination`.
pub fn modify_attribute(
    state: &mut State,
    req: ModifyNetworkInterfaceAttributeRequest,
) -> ApiResult<EmptyResponse> {
    let id = req
        .network_interface_id
        .clone()
        .ok_or_else(|| ApiError::missing("NetworkInterfaceId"))?;
    let eni = lookup(state, &id)?.clone();
    let given = [
        req.groups.is_some(),
        req.description.is_some(),
        req.source_dest_check.is_some(),
        req.attachment.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => {
            return Err(ApiError::missing(
                "an attribute (Groups, Description, SourceDestCheck or Attachment)",
            ));
        }
        1 => {}
        _ => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Fields for multiple attribute types specified: only one attribute can be modified per call.",
            ));
        }
    }
    let mut next = eni.clone();
    if let Some(groups) = &req.groups {
        if groups.is_empty() {
            return Err(ApiError::missing("SecurityGroupId"));
        }
        next.group_ids = check_groups(state, &eni.vpc_id, groups)?;
    }
    if let Some(description) = &req.description {
        let text = description.value.clone().unwrap_or_default();
        check_description(&text)?;
        next.description = text;
    }
    if let Some(check) = &req.source_dest_check
        && check.value == Some(false)
    {
        return Err(ApiError::new(
            "UnsupportedOperation",
            "Source/destination checking cannot be turned off here: no interface forwards for others.",
        ));
    }
    if let Some(changes) = &req.attachment {
        let attachment = next.attachment.as_mut().ok_or_else(|| {
            ApiError::new(
                "InvalidAttachmentID.NotFound",
                format!(
                    "The attachment ID '{}' does not exist",
                    changes.attachment_id.as_deref().unwrap_or("")
                ),
            )
        })?;
        if changes.attachment_id.as_deref() != Some(attachment.id.as_str()) {
            return Err(ApiError::new(
                "InvalidAttachmentID.NotFound",
                format!(
                    "The attachment ID '{}' does not exist",
                    changes.attachment_id.as_deref().unwrap_or("")
                ),
            ));
        }
        if let Some(delete) = changes.delete_on_termination {
            attachment.delete_on_termination = delete;
        }
    }
    state.network_interfaces.insert(id, next);
    Ok(EmptyResponse {})
}

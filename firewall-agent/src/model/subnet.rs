//! Subnets: `create-subnet`, `describe-subnets`, `delete-subnet`; a default VPC's default
//! subnets; and the addresses an interface gets in its subnet.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr},
};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    ids::{IdSource, check_id_format},
    lookup,
    network::Subnet,
    query::{invalid_filter, paginate},
    regions,
    state::{State, Vpc},
    tagging::{self, tags_for},
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::EmptyResponse,
        subnets::{
            self, CreateSubnetRequest, CreateSubnetResponse, DeleteSubnetRequest,
            DescribeSubnetsRequest, DescribeSubnetsResponse, PrivateDnsNameOptionsOnLaunch,
            SubnetIpv6CidrBlockAssociation,
        },
        vpcs::CidrBlockState,
    },
};

/// AWS keeps the first four addresses of a subnet (network, router, DNS, future) and the last.
pub const RESERVED_LOW: u32 = 4;

/// The hex part of an ID.
fn suffix(id: &str) -> &str {
    id.split_once('-').map(|(_, s)| s).unwrap_or(id)
}

/// A default VPC's default subnets, one per availability zone of the region, laid out as AWS
/// does: consecutive /20s from the start of the block (with the VPC's first /64s, when it has an
/// IPv6 block). Their IDs derive from the VPC's, so making them draws no new ID.
pub fn default_subnets(region: &str, vpc: &Vpc) -> Vec<Subnet> {
    regions::zones(region)
        .into_iter()
        .enumerate()
        .filter_map(|(n, (zone, _))| {
            let base = u32::from(vpc.cidr.network()) + ((n as u32) << 12);
            let cidr = Ipv4Net::new(Ipv4Addr::from(base), 20.max(vpc.cidr.prefix_len())).ok()?;
            vpc.cidr.contains(&cidr.network()).then(|| Subnet {
                id: default_subnet_id(&vpc.id, n),
                vpc_id: vpc.id.clone(),
                cidr,
                ipv6_cidr: vpc.ipv6_cidr.and_then(|block| nth_64(block, n as u128)),
                availability_zone: zone,
                default_for_az: true,
                tags: Vec::new(),
            })
        })
        .collect()
}

/// `subnet-` and the VPC's hex digits (the last one replaced by the zone's number after the
/// first zone).
fn default_subnet_id(vpc_id: &str, n: usize) -> String {
    let hex = suffix(vpc_id);
    match n {
        0 => format!("subnet-{hex}"),
        n => format!("subnet-{}{:x}", &hex[..hex.len().saturating_sub(1)], n % 16),
    }
}

/// The `n`th /64 of an IPv6 block.
fn nth_64(block: Ipv6Net, n: u128) -> Option<Ipv6Net> {
    let net = Ipv6Net::new(
        Ipv6Addr::from(u128::from(block.network()) + (n << 64)),
        64.max(block.prefix_len()),
    )
    .ok()?;
    block.contains(&net.network()).then_some(net)
}

/// `InvalidSubnetID.NotFound`.
pub fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

/// The subnet `id` (well-formed, known).
pub fn lookup<'a>(state: &'a State, id: &str) -> ApiResult<&'a Subnet> {
    check_id_format(id, "subnet", "InvalidSubnetID.Malformed", "subnet ID")?;
    state.subnets.get(id).ok_or_else(|| not_found(id))
}

/// Addresses of the interfaces in `subnet`, both families.
fn in_use(state: &State, subnet: &Subnet) -> (BTreeSet<Ipv4Addr>, BTreeSet<Ipv6Addr>) {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    for eni in state.network_interfaces.values() {
        if eni.vpc_id == subnet.vpc_id {
            v4.insert(eni.private_ip);
            v6.extend(eni.ipv6);
        }
    }
    (v4, v6)
}

/// How many of the subnet's IPv4 addresses no interface has, AWS's five excluded.
fn available(state: &State, subnet: &Subnet) -> u32 {
    let size = 1u64 << (32 - subnet.cidr.prefix_len());
    let used = in_use(state, subnet)
        .0
        .iter()
        .filter(|a| subnet.cidr.contains(*a))
        .count() as u64;
    size.saturating_sub(u64::from(RESERVED_LOW) + 1 + used) as u32
}

/// The lowest address of the subnet that is neither reserved nor in use.
pub fn free_ipv4(state: &State, subnet: &Subnet) -> ApiResult<Ipv4Addr> {
    let (used, _) = in_use(state, subnet);
    let network = u32::from(subnet.cidr.network());
    let last = u32::from(subnet.cidr.broadcast());
    (network + RESERVED_LOW..last)
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
        .ok_or_else(|| {
            ApiError::new(
                "InsufficientFreeAddressesInSubnet",
                format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    subnet.id
                ),
            )
        })
}

/// The lowest address of the subnet's IPv6 block past the reserved ones that is not in use (a
/// bounded search: a /64 has far more addresses than a host has interfaces).
pub fn free_ipv6(state: &State, subnet: &Subnet) -> Option<Ipv6Addr> {
    let block = subnet.ipv6_cidr?;
    let (_, used) = in_use(state, subnet);
    let network = u128::from(block.network());
    (u128::from(RESERVED_LOW)..u128::from(RESERVED_LOW) + 1 + used.len() as u128)
        .map(|offset| Ipv6Addr::from(network + offset))
        .find(|a| block.contains(a) && !used.contains(a))
}

/// A given IPv4 address must be in the subnet, not one AWS keeps there, and free.
pub fn check_ipv4(state: &State, subnet: &Subnet, address: Ipv4Addr) -> ApiResult<()> {
    if !subnet.cidr.contains(&address) {
        return Err(ApiError::invalid_value(format!(
            "Address {address} does not fall within the subnet's address range"
        )));
    }
    let offset = u32::from(address) - u32::from(subnet.cidr.network());
    if offset < RESERVED_LOW || address == subnet.cidr.broadcast() {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is in subnet's reserved address range"
        )));
    }
    if in_use(state, subnet).0.contains(&address) {
        return Err(ApiError::new(
            "InvalidIPAddress.InUse",
            format!("Address {address} is in use."),
        ));
    }
    Ok(())
}

/// A given IPv6 address must be in the subnet's IPv6 block, not one AWS keeps, and free.
pub fn check_ipv6(state: &State, subnet: &Subnet, address: Ipv6Addr) -> ApiResult<()> {
    let Some(block) = subnet.ipv6_cidr else {
        return Err(ApiError::invalid_value(format!(
            "Subnet {} has no IPv6 CIDR block; cannot assign {address}.",
            subnet.id
        )));
    };
    if !block.contains(&address) {
        return Err(ApiError::invalid_value(format!(
            "Address {address} does not fall within the subnet's IPv6 range {block}."
        )));
    }
    let offset = u128::from(address) - u128::from(block.network());
    if offset < u128::from(RESERVED_LOW) || address == block.broadcast() {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is in subnet's reserved address range"
        )));
    }
    if in_use(state, subnet).1.contains(&address) {
        return Err(ApiError::new(
            "InvalidIPAddress.InUse",
            format!("Address {address} is in use."),
        ));
    }
    Ok(())
}

/// A subnet as `describe-subnets` prints it.
pub fn view(state: &State, subnet: &Subnet) -> subnets::Subnet {
    subnets::Subnet {
        availability_zone: subnet.availability_zone.clone(),
        availability_zone_id: regions::zone_id(&state.region, &subnet.availability_zone),
        available_ip_address_count: available(state, subnet),
        cidr_block: subnet.cidr.to_string(),
        default_for_az: subnet.default_for_az,
        map_public_ip_on_launch: false,
        map_customer_owned_ip_on_launch: false,
        state: "available".into(),
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        owner_id: state.account_id.clone(),
        assign_ipv6_address_on_creation: false,
        ipv6_cidr_block_association_set: subnet
            .ipv6_cidr
            .iter()
            .map(|block| SubnetIpv6CidrBlockAssociation {
                association_id: format!("subnet-cidr-assoc-{}", suffix(&subnet.id)),
                ipv6_cidr_block: block.to_string(),
                ipv6_cidr_block_state: CidrBlockState {
                    state: "associated".into(),
                },
            })
            .collect(),
        tags: tagging::views(&subnet.tags),
        subnet_arn: format!(
            "arn:aws:ec2:{}:{}:subnet/{}",
            state.region, state.account_id, subnet.id
        ),
        enable_dns64: false,
        ipv6_native: false,
        private_dns_name_options_on_launch: PrivateDnsNameOptionsOnLaunch {
            hostname_type: "ip-name".into(),
            enable_resource_name_dns_a_record: false,
            enable_resource_name_dns_aaaa_record: false,
        },
    }
}

fn invalid_cidr(text: &str) -> ApiError {
    ApiError::new(
        "InvalidSubnet.Range",
        format!("The CIDR '{text}' is invalid."),
    )
}

fn conflict(text: &str) -> ApiError {
    ApiError::new(
        "InvalidSubnet.Conflict",
        format!("The CIDR '{text}' conflicts with another subnet"),
    )
}

/// The availability zone a request names (by name or ID), or the region's first.
fn zone_of(state: &State, req: &CreateSubnetRequest) -> ApiResult<String> {
    let zones = regions::zones(&state.region);
    let names: Vec<&str> = zones.iter().map(|(name, _)| name.as_str()).collect();
    let unknown = |value: &str, parameter: &str| {
        ApiError::invalid_value(format!(
            "Value ({value}) for parameter {parameter} is invalid. Subnets can currently only be created in the following availability zones: {}.",
            names.join(", ")
        ))
    };
    match (&req.availability_zone, &req.availability_zone_id) {
        (Some(name), _) => zones
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| unknown(name, "availabilityZone")),
        (None, Some(id)) => zones
            .iter()
            .find(|(_, i)| i == id)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| unknown(id, "availabilityZoneId")),
        (None, None) => Ok(zones[0].0.clone()),
    }
}

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateSubnetRequest,
) -> ApiResult<CreateSubnetResponse> {
    let vpc_id = req
        .vpc_id
        .clone()
        .ok_or_else(|| ApiError::missing("VpcId"))?;
    let vpc = state
        .vpcs
        .get(&vpc_id)
        .ok_or_else(|| lookup::vpc_not_found(&vpc_id))?
        .clone();
    let text = req
        .cidr_block
        .as_deref()
        .ok_or_else(|| ApiError::missing("CidrBlock"))?;
    let cidr = match text.parse::<IpNet>() {
        Ok(IpNet::V4(net)) if net == net.trunc() => net,
        _ => {
            return Err(ApiError::invalid_value(format!(
                "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )));
        }
    };
    if !(16..=28).contains(&cidr.prefix_len()) || !vpc.cidr.contains(&cidr) {
        return Err(invalid_cidr(text));
    }
    let overlaps = |a: IpNet, b: IpNet| a.contains(&b.network()) || b.contains(&a.network());
    if state
        .subnets
        .values()
        .any(|s| s.vpc_id == vpc_id && overlaps(IpNet::V4(s.cidr), IpNet::V4(cidr)))
    {
        return Err(conflict(text));
    }
    let ipv6_cidr = match req.ipv6_cidr_block.as_deref() {
        None => None,
        Some(text6) => {
            let block = match (text6.parse::<IpNet>(), vpc.ipv6_cidr) {
                (Ok(IpNet::V6(net)), Some(vpc6))
                    if net == net.trunc() && net.prefix_len() == 64 && vpc6.contains(&net) =>
                {
                    net
                }
                _ => return Err(invalid_cidr(text6)),
            };
            if state.subnets.values().any(|s| {
                s.vpc_id == vpc_id
                    && s.ipv6_cidr
                        .is_some_and(|b| overlaps(IpNet::V6(b), IpNet::V6(block)))
            }) {
                return Err(conflict(text6));
            }
            Some(block)
        }
    };
    let availability_zone = zone_of(state, &req)?;
    let tags = tags_for(&req.tag_specifications, "subnet")?;
    let subnet = Subnet {
        id: ids.next_id("subnet"),
        vpc_id,
        cidr,
        ipv6_cidr,
        availability_zone,
        default_for_az: false,
        tags,
    };
    let view = view(state, &subnet);
    state.subnets.insert(subnet.id.clone(), subnet);
    Ok(CreateSubnetResponse { subnet: view })
}

/// One describe-subnets filter (with the older camelCase spellings AWS still takes, which
/// Terraform's `aws_subnet` sends).
fn matches(
    state: &State,
    subnet: &Subnet,
    filter: &crate::api::types::common::Filter,
) -> ApiResult<bool> {
    if let Some(hit) = filter.matches_tags(&subnet.tags) {
        return Ok(hit);
    }
    let yes_no = |b: bool| if b { "true" } else { "false" };
    Ok(match filter.name.as_str() {
        "subnet-id" => filter.matches(&subnet.id),
        "vpc-id" | "vpcId" => filter.matches(&subnet.vpc_id),
        "cidr-block" | "cidr" | "cidrBlock" => filter.matches(&subnet.cidr.to_string()),
        "availability-zone" | "availabilityZone" => filter.matches(&subnet.availability_zone),
        "availability-zone-id" | "availabilityZoneId" => {
            filter.matches(&regions::zone_id(&state.region, &subnet.availability_zone))
        }
        "default-for-az" | "defaultForAz" => filter.matches(yes_no(subnet.default_for_az)),
        "state" => filter.matches("available"),
        "owner-id" => filter.matches(&state.account_id),
        "available-ip-address-count" => filter.matches(&available(state, subnet).to_string()),
        "ipv6-cidr-block-association.ipv6-cidr-block" => {
            filter.matches(&subnet.ipv6_cidr.map(|b| b.to_string()).unwrap_or_default())
        }
        "map-public-ip-on-launch" | "ipv6-native" => filter.matches("false"),
        "subnet-arn" => filter.matches(&format!(
            "arn:aws:ec2:{}:{}:subnet/{}",
            state.region, state.account_id, subnet.id
        )),
        other => return Err(invalid_filter(other)),
    })
}

pub fn describe(state: &State, req: DescribeSubnetsRequest) -> ApiResult<DescribeSubnetsResponse> {
    if req.max_results.is_some() && !req.subnet_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter subnetIds cannot be used with the parameter maxResults",
        ));
    }
    for id in &req.subnet_ids {
        lookup(state, id)?;
    }
    let mut out = Vec::new();
    for subnet in state.subnets.values() {
        if !req.subnet_ids.is_empty() && !req.subnet_ids.contains(&subnet.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= matches(state, subnet, filter)?;
        }
        if keep {
            out.push((subnet.id.clone(), view(state, subnet)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeSubnetsResponse {
        subnets: page.items,
        next_token: page.next_token,
    })
}

/// Deletes a subnet no network interface is in.
pub fn delete(state: &mut State, req: DeleteSubnetRequest) -> ApiResult<EmptyResponse> {
    let id = req.subnet_id.ok_or_else(|| ApiError::missing("SubnetId"))?;
    lookup(state, &id)?;
    if state
        .network_interfaces
        .values()
        .any(|eni| eni.subnet_id == id)
    {
        return Err(ApiError::new(
            "DependencyViolation",
            format!("The subnet '{id}' has dependencies and cannot be deleted."),
        ));
    }
    state.subnets.remove(&id);
    Ok(EmptyResponse {})
}

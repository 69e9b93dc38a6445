//! VPCs: `create-vpc` (with an optional IPv6 block), `describe-vpcs`, `delete-vpc`. Each VPC gets
//! its `default` security group; the default VPC exists from the first start.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    ids::IdSource,
    lookup,
    query::{invalid_filter, paginate},
    state::{InstanceState, State, Vpc},
    tagging::{self, tags_for},
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::EmptyResponse,
        vpcs::{
            self, CidrBlockAssociation, CidrBlockState, CreateVpcRequest, CreateVpcResponse,
            DeleteVpcRequest, DescribeVpcsRequest, DescribeVpcsResponse, Ipv6CidrBlockAssociation,
        },
    },
};

/// The hex part of an ID, for derived IDs such as CIDR association IDs.
fn suffix(id: &str) -> &str {
    id.split_once('-').map(|(_, s)| s).unwrap_or(id)
}

/// A VPC as `describe-vpcs` prints it.
pub fn view(state: &State, vpc: &Vpc) -> vpcs::Vpc {
    let associated = || CidrBlockState {
        state: "associated".into(),
    };
    vpcs::Vpc {
        cidr_block: vpc.cidr.to_string(),
        dhcp_options_id: "default".into(),
        state: "available".into(),
        vpc_id: vpc.id.clone(),
        owner_id: state.account_id.clone(),
        instance_tenancy: "default".into(),
        ipv6_cidr_block_association_set: vpc
            .ipv6_cidr
            .iter()
            .map(|block| Ipv6CidrBlockAssociation {
                association_id: format!("vpc-cidr-assoc-6{}", suffix(&vpc.id)),
                ipv6_cidr_block: block.to_string(),
                ipv6_cidr_block_state: associated(),
                network_border_group: state.region.clone(),
                ipv6_pool: "Amazon".into(),
            })
            .collect(),
        cidr_block_association_set: vec![CidrBlockAssociation {
            association_id: format!("vpc-cidr-assoc-{}", suffix(&vpc.id)),
            cidr_block: vpc.cidr.to_string(),
            cidr_block_state: associated(),
        }],
        is_default: vpc.is_default,
        tags: tagging::views(&vpc.tags),
    }
}

/// A /56 from our ULA pool (`fd00:ec2::/48`) that no VPC uses yet.
fn free_ipv6_block(state: &State) -> ApiResult<Ipv6Net> {
    (0u16..256)
        .map(|n| {
            format!("fd00:ec2:0:{n:x}00::/56")
                .parse::<Ipv6Net>()
                .expect("valid block")
        })
        .find(|block| !state.vpcs.values().any(|v| v.ipv6_cidr == Some(*block)))
        .ok_or_else(|| {
            ApiError::new(
                "InsufficientCidrBlocks",
                "No IPv6 CIDR block is left in the pool.",
            )
        })
}

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateVpcRequest,
) -> ApiResult<CreateVpcResponse> {
    let text = req
        .cidr_block
        .as_deref()
        .ok_or_else(|| ApiError::missing("CidrBlock"))?;
    let cidr: Ipv4Net = match text.parse::<IpNet>() {
        Ok(IpNet::V4(net)) if net == net.trunc() => net,
        _ => {
            return Err(ApiError::invalid_value(format!(
                "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            )));
        }
    };
    if !(16..=28).contains(&cidr.prefix_len()) {
        return Err(ApiError::new(
            "InvalidVpc.Range",
            format!("The CIDR '{text}' is invalid."),
        ));
    }
    if state.vpcs.len() >= state.quotas.vpcs_per_region {
        return Err(ApiError::new(
            "VpcLimitExceeded",
            "The maximum number of VPCs has been reached.",
        ));
    }
    if let Some(tenancy) = req.instance_tenancy.as_deref()
        && tenancy != "default"
    {
        return Err(ApiError::invalid_value(format!(
            "Value ({tenancy}) for parameter instanceTenancy is invalid. Only 'default' is supported here."
        )));
    }
    let ipv6_cidr = match req.amazon_provided_ipv6_cidr_block {
        Some(true) => Some(free_ipv6_block(state)?),
        _ => None,
    };
    let tags = tags_for(&req.tag_specifications, "vpc")?;
    let vpc = Vpc {
        id: ids.next_id("vpc"),
        cidr,
        ipv6_cidr,
        is_default: false,
        tags,
        enable_dns_support: None,
        enable_dns_hostnames: None,
        usage_metrics: false,
    };
    let id = vpc.id.clone();
    state.add_vpc(vpc, ids);
    Ok(CreateVpcResponse {
        vpc: view(state, &state.vpcs[&id]),
    })
}

pub fn describe(state: &State, req: DescribeVpcsRequest) -> ApiResult<DescribeVpcsResponse> {
    if req.max_results.is_some() && !req.vpc_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter vpcIds cannot be used with the parameter maxResults",
        ));
    }
    for id in &req.vpc_ids {
        state
            .vpcs
            .get(id)
            .ok_or_else(|| lookup::vpc_not_found(id))?;
    }
    let mut out = Vec::new();
    for vpc in state.vpcs.values() {
        if !req.vpc_ids.is_empty() && !req.vpc_ids.contains(&vpc.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            if let Some(hit) = filter.matches_tags(&vpc.tags) {
                keep &= hit;
                continue;
            }
            let v6 = vpc.ipv6_cidr.map(|b| b.to_string()).unwrap_or_default();
            keep &= match filter.name.as_str() {
                "vpc-id" => filter.matches(&vpc.id),
                "cidr" | "cidr-block-association.cidr-block" => {
                    filter.matches(&vpc.cidr.to_string())
                }
                "ipv6-cidr-block-association.ipv6-cidr-block" => filter.matches(&v6),
                // `isDefault`: the older spelling AWS still takes (Terraform's `aws_vpc` sends it).
                "is-default" | "isDefault" => {
                    filter.matches(if vpc.is_default { "true" } else { "false" })
                }
                "state" => filter.matches("available"),
                "owner-id" => filter.matches(&state.account_id),
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push((vpc.id.clone(), view(state, vpc)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeVpcsResponse {
        vpcs: page.items,
        next_token: page.next_token,
    })
}

/// Deletes a VPC with its default group; anything else still in it is a dependency.
pub fn delete(state: &mut State, req: DeleteVpcRequest) -> ApiResult<EmptyResponse> {
    let id = req.vpc_id.ok_or_else(|| ApiError::missing("VpcId"))?;
    state
        .vpcs
        .get(&id)
        .ok_or_else(|| lookup::vpc_not_found(&id))?;
    let has_groups = state
        .groups
        .values()
        .any(|g| g.vpc_id == id && g.name != "default");
    let has_instances = state
        .instances
        .values()
        .any(|i| i.vpc_id == id && i.state != InstanceState::Terminated);
    // Subnets (a default VPC's default ones included, as on AWS) and network interfaces.
    let has_subnets = state.subnets.values().any(|s| s.vpc_id == id);
    let has_interfaces = state.network_interfaces.values().any(|n| n.vpc_id == id);
    if has_groups || has_instances || has_subnets || has_interfaces {
        return Err(ApiError::new(
            "DependencyViolation",
            format!("The vpc '{id}' has dependencies and cannot be deleted."),
        ));
    }
    super::TableExt::retain(&mut state.groups, |_, g| g.vpc_id != id);
    state.vpcs.remove(&id);
    Ok(EmptyResponse {})
}

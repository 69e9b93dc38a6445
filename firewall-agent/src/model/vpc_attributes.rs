//! A VPC's attributes as `DescribeVpcAttribute` and `ModifyVpcAttribute` read and set them:
//! `enableDnsSupport` (true unless turned off), `enableDnsHostnames` (true for a default VPC,
//! false for one you create, as on AWS) and `enableNetworkAddressUsageMetrics` (false). They are
//! kept and answered as AWS does; nothing on the host depends on them (there is no VPC resolver
//! here), which is what the tools that read them (Terraform's `aws_vpc`, Ansible's
//! `ec2_vpc_net`) need.

use super::{lookup, state::State};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::EmptyResponse,
        vpcs::{
            AttributeBooleanValue, DescribeVpcAttributeRequest, DescribeVpcAttributeResponse,
            ModifyVpcAttributeRequest,
        },
    },
};

const DNS_SUPPORT: &str = "enableDnsSupport";
const DNS_HOSTNAMES: &str = "enableDnsHostnames";
const USAGE_METRICS: &str = "enableNetworkAddressUsageMetrics";

fn value(value: bool) -> Option<AttributeBooleanValue> {
    Some(AttributeBooleanValue { value: Some(value) })
}

pub fn describe(
    state: &State,
    req: DescribeVpcAttributeRequest,
) -> ApiResult<DescribeVpcAttributeResponse> {
    let id = req.vpc_id.ok_or_else(|| ApiError::missing("VpcId"))?;
    let attribute = req
        .attribute
        .ok_or_else(|| ApiError::missing("Attribute"))?;
    let vpc = state
        .vpcs
        .get(&id)
        .ok_or_else(|| lookup::vpc_not_found(&id))?;
    let mut answer = DescribeVpcAttributeResponse {
        vpc_id: id,
        ..Default::default()
    };
    match attribute.as_str() {
        DNS_SUPPORT => answer.enable_dns_support = value(vpc.dns_support()),
        DNS_HOSTNAMES => answer.enable_dns_hostnames = value(vpc.dns_hostnames()),
        USAGE_METRICS => answer.enable_network_address_usage_metrics = value(vpc.usage_metrics),
        other => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )));
        }
    }
    Ok(answer)
}

pub fn modify(state: &mut State, req: ModifyVpcAttributeRequest) -> ApiResult<EmptyResponse> {
    let id = req.vpc_id.ok_or_else(|| ApiError::missing("VpcId"))?;
    let given = [
        (DNS_SUPPORT, &req.enable_dns_support),
        (DNS_HOSTNAMES, &req.enable_dns_hostnames),
        (USAGE_METRICS, &req.enable_network_address_usage_metrics),
    ];
    let set: Vec<(&str, bool)> = given
        .iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (*name, v.value)))
        .map(|(name, v)| {
            v.map(|v| (name, v))
                .ok_or_else(|| ApiError::missing(&format!("{name}.Value")))
        })
        .collect::<ApiResult<_>>()?;
    let (attribute, on) = match set[..] {
        [one] => one,
        [] => {
            return Err(ApiError::missing(
                "EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics",
            ));
        }
        _ => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Fields for multiple attribute types specified: only one attribute can be modified per call.",
            ));
        }
    };
    let vpc = state
        .vpcs
        .get_mut(&id)
        .ok_or_else(|| lookup::vpc_not_found(&id))?;
    match attribute {
        DNS_SUPPORT => vpc.enable_dns_support = Some(on),
        DNS_HOSTNAMES => vpc.enable_dns_hostnames = Some(on),
        _ => vpc.usage_metrics = on,
    }
    Ok(EmptyResponse {})
}

//! The account-level reads SDK-based tools make first: `describe-regions`,
//! `describe-availability-zones` (one zone per region, `<region>a`), `describe-account-attributes`
//! and STS `get-caller-identity`.

use super::{query::invalid_filter, regions::REGIONS, state::State};
use crate::api::{
    ApiError, ApiResult,
    types::{
        account::{
            AccountAttribute, AccountAttributeValue, AvailabilityZone,
            DescribeAccountAttributesRequest, DescribeAccountAttributesResponse,
            DescribeAvailabilityZonesRequest, DescribeAvailabilityZonesResponse,
            DescribeRegionsRequest, DescribeRegionsResponse, GetCallerIdentityResponse, Region,
        },
        common::Filter,
    },
};

/// Whether every filter keeps an item whose filterable fields are `fields`.
fn keep(filters: &[Filter], fields: &[(&str, &str)]) -> ApiResult<bool> {
    for filter in filters {
        let (_, value) = fields
            .iter()
            .find(|(name, _)| *name == filter.name)
            .ok_or_else(|| invalid_filter(&filter.name))?;
        if !filter.matches(value) {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn describe_regions(req: DescribeRegionsRequest) -> ApiResult<DescribeRegionsResponse> {
    for name in &req.region_names {
        if !REGIONS.contains(&name.as_str()) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("Invalid region: {name}"),
            ));
        }
    }
    let mut regions = Vec::new();
    for name in REGIONS {
        let endpoint = format!("ec2.{name}.amazonaws.com");
        let fields = [
            ("region-name", *name),
            ("endpoint", endpoint.as_str()),
            ("opt-in-status", "opt-in-not-required"),
        ];
        let named = req.region_names.is_empty() || req.region_names.iter().any(|n| n == name);
        if named && keep(&req.filters, &fields)? {
            regions.push(Region {
                endpoint,
                region_name: name.to_string(),
                opt_in_status: "opt-in-not-required".into(),
            });
        }
    }
    Ok(DescribeRegionsResponse { regions })
}

pub fn describe_availability_zones(
    state: &State,
    req: DescribeAvailabilityZonesRequest,
) -> ApiResult<DescribeAvailabilityZonesResponse> {
    let (zone_name, zone_id) = super::regions::zones(&state.region).remove(0);
    let zone = AvailabilityZone {
        state: "available".into(),
        opt_in_status: "opt-in-not-required".into(),
        messages: Vec::new(),
        region_name: state.region.clone(),
        zone_name,
        zone_id,
        group_name: state.region.clone(),
        network_border_group: state.region.clone(),
        zone_type: "availability-zone".into(),
    };
    for name in &req.zone_names {
        if *name != zone.zone_name {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("Invalid availability zone: [{name}]"),
            ));
        }
    }
    for id in &req.zone_ids {
        if *id != zone.zone_id {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("Invalid availability zone ID: [{id}]"),
            ));
        }
    }
    let fields = [
        ("zone-name", zone.zone_name.as_str()),
        ("zone-id", zone.zone_id.as_str()),
        ("region-name", zone.region_name.as_str()),
        ("state", zone.state.as_str()),
        ("zone-type", zone.zone_type.as_str()),
        ("group-name", zone.group_name.as_str()),
        ("opt-in-status", zone.opt_in_status.as_str()),
    ];
    let availability_zones = if keep(&req.filters, &fields)? {
        vec![zone]
    } else {
        Vec::new()
    };
    Ok(DescribeAvailabilityZonesResponse { availability_zones })
}

pub fn describe_account_attributes(
    state: &State,
    req: DescribeAccountAttributesRequest,
) -> ApiResult<DescribeAccountAttributesResponse> {
    let default_vpc = state
        .default_vpc()
        .map(|v| v.id.clone())
        .unwrap_or_else(|| "none".into());
    let all: [(&str, Vec<String>); 6] = [
        ("supported-platforms", vec!["VPC".into()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec!["65535".into()]),
        (
            "vpc-max-security-groups-per-interface",
            vec![state.quotas.groups_per_instance.to_string()],
        ),
        ("max-elastic-ips", vec!["0".into()]),
        ("vpc-max-elastic-ips", vec!["0".into()]),
    ];
    for name in &req.attribute_names {
        if !all.iter().any(|(n, _)| n == name) {
            return Err(ApiError::invalid_value(format!(
                "Invalid account attribute name: {name}"
            )));
        }
    }
    let account_attributes = all
        .into_iter()
        .filter(|(n, _)| {
            req.attribute_names.is_empty() || req.attribute_names.iter().any(|a| a == n)
        })
        .map(|(name, values)| AccountAttribute {
            attribute_name: name.into(),
            attribute_values: values
                .into_iter()
                .map(|attribute_value| AccountAttributeValue { attribute_value })
                .collect(),
        })
        .collect();
    Ok(DescribeAccountAttributesResponse { account_attributes })
}

/// The account's root user: the account the request was signed for.
pub fn caller_identity(state: &State) -> GetCallerIdentityResponse {
    GetCallerIdentityResponse {
        user_id: state.account_id.clone(),
        account: state.account_id.clone(),
        arn: format!("arn:aws:iam::{}:root", state.account_id),
    }
}

//! VPCs: `create-vpc` (with an optional IPv6 block), `describe-vpcs`, `delete-vpc`. Each VPC gets
//! its `default` security group; the default VPC exists from the first start.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, IdSource, InstanceState, State, Vpc,
    ops::{Filter, TagSpecification, tags_for},
    views,
};

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

/// The hex part of an ID, for derived IDs such as CIDR association IDs.
fn suffix(id: &str) -> &str {
    id.split_once('-').map(|(_, s)| s).unwrap_or(id)
}

pub fn view(state: &State, vpc: &Vpc) -> Value {
    let mut out = Map::new();
    out.insert("CidrBlock".into(), json!(vpc.cidr.to_string()));
    out.insert("DhcpOptionsId".into(), json!("default"));
    out.insert("State".into(), json!("available"));
    out.insert("VpcId".into(), json!(vpc.id));
    out.insert("OwnerId".into(), json!(state.account_id));
    out.insert("InstanceTenancy".into(), json!("default"));
    if let Some(block) = vpc.ipv6_cidr {
        out.insert(
            "Ipv6CidrBlockAssociationSet".into(),
            json!([{
                "AssociationId": format!("vpc-cidr-assoc-6{}", suffix(&vpc.id)),
                "Ipv6CidrBlock": block.to_string(),
                "Ipv6CidrBlockState": {"State": "associated"},
                "NetworkBorderGroup": state.region,
                "Ipv6Pool": "Amazon",
            }]),
        );
    }
    out.insert(
        "CidrBlockAssociationSet".into(),
        json!([{
            "AssociationId": format!("vpc-cidr-assoc-{}", suffix(&vpc.id)),
            "CidrBlock": vpc.cidr.to_string(),
            "CidrBlockState": {"State": "associated"},
        }]),
    );
    out.insert("IsDefault".into(), json!(vpc.is_default));
    if !vpc.tags.is_empty() {
        out.insert("Tags".into(), views::tags(&vpc.tags));
    }
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateRequest {
    cidr_block: Option<String>,
    amazon_provided_ipv6_cidr_block: Option<bool>,
    instance_tenancy: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
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

pub fn create(state: &mut State, ids: &mut dyn IdSource, req: CreateRequest) -> ApiResult<Value> {
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
    };
    let id = vpc.id.clone();
    state.add_vpc(vpc, ids);
    Ok(json!({ "Vpc": view(state, &state.vpcs[&id]) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRequest {
    #[serde(default)]
    vpc_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

pub fn describe(state: &State, req: DescribeRequest) -> ApiResult<Value> {
    for id in &req.vpc_ids {
        state.vpcs.get(id).ok_or_else(|| not_found(id))?;
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
                "is-default" => filter.matches(if vpc.is_default { "true" } else { "false" }),
                "state" => filter.matches("available"),
                "owner-id" => filter.matches(&state.account_id),
                other => {
                    return Err(ApiError::invalid_value(format!(
                        "The filter '{other}' is invalid"
                    )));
                }
            };
        }
        if keep {
            out.push(view(state, vpc));
        }
    }
    Ok(json!({ "Vpcs": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteRequest {
    vpc_id: Option<String>,
}

/// Deletes a VPC with its default group; anything else still in it is a dependency.
pub fn delete(state: &mut State, req: DeleteRequest) -> ApiResult<Value> {
    let id = req.vpc_id.ok_or_else(|| ApiError::missing("VpcId"))?;
    state.vpcs.get(&id).ok_or_else(|| not_found(&id))?;
    let has_groups = state
        .groups
        .values()
        .any(|g| g.vpc_id == id && g.name != "default");
    let has_instances = state
        .instances
        .values()
        .any(|i| i.vpc_id == id && i.state != InstanceState::Terminated);
    if has_groups || has_instances {
        return Err(ApiError::new(
            "DependencyViolation",
            format!("The vpc '{id}' has dependencies and cannot be deleted."),
        ));
    }
    state.groups.retain(|_, g| g.vpc_id != id);
    state.vpcs.remove(&id);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ops::dispatch, testing::SeqIds};

    #[test]
    fn a_new_vpc_has_its_default_group_an_ipv6_block_on_request_and_deletes_cleanly() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let out = dispatch(
            &mut state,
            &mut ids,
            "CreateVpc",
            json!({"CidrBlock": "10.0.0.0/16", "AmazonProvidedIpv6CidrBlock": true}),
        )
        .unwrap();
        let vpc = out["Vpc"]["VpcId"].as_str().unwrap().to_string();
        assert_eq!(
            out["Vpc"]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"],
            "fd00:ec2:0:100::/56"
        );
        assert_eq!(out["Vpc"]["IsDefault"], false);
        let default = state.groups.values().find(|g| g.vpc_id == vpc).unwrap();
        assert_eq!(
            (default.name.as_str(), default.egress.len()),
            ("default", 2)
        );
        for (cidr, code) in [
            ("10.0.0.0/8", "InvalidVpc.Range"),
            ("10.0.0.1/16", "InvalidParameterValue"),
            ("::/0", "InvalidParameterValue"),
        ] {
            let err = dispatch(
                &mut state,
                &mut ids,
                "CreateVpc",
                json!({"CidrBlock": cidr}),
            )
            .unwrap_err();
            assert_eq!(err.code, code, "{cidr}");
        }
        let g = dispatch(
            &mut state,
            &mut ids,
            "CreateSecurityGroup",
            json!({"GroupName": "x", "Description": "x", "VpcId": vpc}),
        )
        .unwrap();
        let err = dispatch(&mut state, &mut ids, "DeleteVpc", json!({"VpcId": vpc})).unwrap_err();
        assert_eq!(err.code, "DependencyViolation");
        dispatch(
            &mut state,
            &mut ids,
            "DeleteSecurityGroup",
            json!({"GroupId": g["GroupId"]}),
        )
        .unwrap();
        dispatch(&mut state, &mut ids, "DeleteVpc", json!({"VpcId": vpc})).unwrap();
        assert!(
            state.groups.values().all(|g| g.vpc_id != vpc),
            "its default group went with it"
        );
        let out = dispatch(
            &mut state,
            &mut ids,
            "DescribeVpcs",
            json!({"Filters": [{"Name": "is-default", "Values": ["true"]}]}),
        )
        .unwrap();
        assert_eq!(out["Vpcs"].as_array().unwrap().len(), 1);
    }
}

//! VPCs: create with an IPv6 block, ranges, dependencies on delete.

#[allow(unused_imports)]
use serde_json::{Value, json};

use crate::{
    api::catalogue::call_json as dispatch,
    model::{State, testing::SeqIds},
};

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

#[test]
fn a_sixth_vpc_in_a_region_is_refused_with_vpc_limit_exceeded_and_nothing_changes() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    for n in 1..=4 {
        let cidr = format!("10.{n}.0.0/16");
        dispatch(
            &mut state,
            &mut ids,
            "CreateVpc",
            json!({"CidrBlock": cidr}),
        )
        .unwrap();
    }
    let before = state.clone();
    let refused = dispatch(
        &mut state,
        &mut ids,
        "CreateVpc",
        json!({"CidrBlock": "10.9.0.0/16"}),
    )
    .unwrap_err();
    assert_eq!(
        refused.code, "VpcLimitExceeded",
        "the default VPC counts: 5 in all"
    );
    assert_eq!(state, before);
}

#[test]
fn vpcs_and_tags_page_with_max_results() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    state.quotas.vpcs_per_region = 7;
    for n in 1..=6 {
        dispatch(
            &mut state,
            &mut ids,
            "CreateVpc",
            json!({"CidrBlock": format!("10.{n}.0.0/16"),
                   "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "n", "Value": n.to_string()}]}]}),
        )
        .unwrap();
    }
    let first = dispatch(
        &mut state,
        &mut ids,
        "DescribeVpcs",
        json!({"MaxResults": 5}),
    )
    .unwrap();
    assert_eq!(first["Vpcs"].as_array().unwrap().len(), 5);
    let token = first["NextToken"].clone();
    let rest = dispatch(
        &mut state,
        &mut ids,
        "DescribeVpcs",
        json!({"MaxResults": 5, "NextToken": token}),
    )
    .unwrap();
    assert_eq!(
        rest["Vpcs"].as_array().unwrap().len(),
        2,
        "7 VPCs with the default"
    );
    assert!(rest.get("NextToken").is_none());
    let tags = dispatch(
        &mut state,
        &mut ids,
        "DescribeTags",
        json!({"MaxResults": 5}),
    )
    .unwrap();
    assert_eq!(tags["Tags"].as_array().unwrap().len(), 5);
    let rest = dispatch(
        &mut state,
        &mut ids,
        "DescribeTags",
        json!({"MaxResults": 5, "NextToken": tags["NextToken"]}),
    )
    .unwrap();
    assert_eq!(rest["Tags"].as_array().unwrap().len(), 1);
    let all = dispatch(&mut state, &mut ids, "DescribeTags", json!({})).unwrap();
    assert!(
        all.get("NextToken").is_none(),
        "no token without MaxResults"
    );
    let err = dispatch(
        &mut state,
        &mut ids,
        "DescribeVpcs",
        json!({"MaxResults": 4}),
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
}

#[test]
fn vpc_attributes_have_awss_defaults_and_change_one_per_call() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let default = state.default_vpc().expect("default VPC").id.clone();
    let made = dispatch(
        &mut state,
        &mut ids,
        "CreateVpc",
        json!({"CidrBlock": "10.3.0.0/16"}),
    )
    .unwrap();
    let vpc = made["Vpc"]["VpcId"].as_str().unwrap().to_string();
    let mut get = |state: &mut State, id: &str, attribute: &str| {
        dispatch(
            state,
            &mut ids,
            "DescribeVpcAttribute",
            json!({"VpcId": id, "Attribute": attribute}),
        )
    };
    let hostnames = |answer: serde_json::Value| answer["EnableDnsHostnames"]["Value"].clone();
    assert_eq!(
        hostnames(get(&mut state, &default, "enableDnsHostnames").unwrap()),
        json!(true)
    );
    assert_eq!(
        hostnames(get(&mut state, &vpc, "enableDnsHostnames").unwrap()),
        json!(false)
    );
    let support = get(&mut state, &vpc, "enableDnsSupport").unwrap();
    assert_eq!(
        support,
        json!({"VpcId": vpc, "EnableDnsSupport": {"Value": true}})
    );
    assert_eq!(
        get(&mut state, &vpc, "enableClassicLink").unwrap_err().code,
        "InvalidParameterValue"
    );
    let mut ids = SeqIds::default();
    let before = state.clone();
    let both = json!({"VpcId": vpc, "EnableDnsSupport": {"Value": true}, "EnableDnsHostnames": {"Value": true}});
    let refused = dispatch(&mut state, &mut ids, "ModifyVpcAttribute", both).unwrap_err();
    assert_eq!(refused.code, "InvalidParameterCombination");
    assert_eq!(state, before, "a refused change changes nothing");
    let on = json!({"VpcId": vpc, "EnableDnsHostnames": {"Value": "true"}});
    dispatch(&mut state, &mut ids, "ModifyVpcAttribute", on).unwrap();
    assert!(state.vpcs[&vpc].dns_hostnames());
}

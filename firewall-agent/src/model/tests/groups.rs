//! Security groups: create, copy, delete, describe and its filters.

use serde_json::json;

use super::{Fixture, tcp};
use crate::model::Peer;

#[test]
fn a_new_group_has_the_default_outbound_rules_and_no_inbound() {
    let mut f = Fixture::new();
    let id = f.group("web");
    let out = f.ok("DescribeSecurityGroups", json!({"GroupIds": [id]}));
    let group = &out["SecurityGroups"][0];
    assert_eq!(group["IpPermissions"], json!([]));
    assert_eq!(
        group["IpPermissionsEgress"],
        json!([{"IpProtocol": "-1", "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": []}])
    );
}

#[test]
fn group_names_are_validated_and_unique_per_vpc_case_insensitively() {
    let mut f = Fixture::new();
    f.group("Web");
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "web", "Description": "d"}),
        "InvalidGroup.Duplicate",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "sg-x", "Description": "d"}),
        "InvalidParameterValue",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "default", "Description": "d"}),
        "InvalidGroup.Reserved",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"Description": "d"}),
        "MissingParameter",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "x", "Description": "é"}),
        "InvalidParameterValue",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "x".repeat(256), "Description": "d"}),
        "InvalidParameterValue",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": "x", "Description": "d", "VpcId": "vpc-1"}),
        "InvalidVpcID.NotFound",
    );
}

#[test]
fn copy_security_group_copies_rules_under_new_ids_and_maps_self_references() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let lb = f.group("lb");
    f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [
        tcp(80, "10.0.0.0/8"),
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}, {"GroupId": lb}]}]}),
    );
    let out = f.ok(
        "CopySecurityGroup",
        json!({"GroupId": web, "GroupName": "web-copy"}),
    );
    let copy = out["GroupId"].as_str().unwrap().to_string();
    let (a, b) = (&f.state.groups[&web], &f.state.groups[&copy]);
    assert_eq!(b.description, a.description);
    assert_eq!(b.ingress.len(), 3);
    assert!(
        b.ingress
            .iter()
            .all(|r| !a.ingress.iter().any(|o| o.id == r.id)),
        "new sgr- IDs"
    );
    assert!(
        b.ingress
            .iter()
            .any(|r| r.peer == Peer::Group(copy.clone())),
        "self-reference follows the copy"
    );
    assert!(
        b.ingress.iter().any(|r| r.peer == Peer::Group(lb.clone())),
        "other references stay"
    );
    assert_eq!(b.egress.len(), a.egress.len());
    f.fails(
        "CopySecurityGroup",
        json!({"GroupId": web, "GroupName": "web"}),
        "InvalidGroup.Duplicate",
    );
    let vpc = f.ok("CreateVpc", json!({"CidrBlock": "10.9.0.0/16"}))["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    f.fails(
        "CopySecurityGroup",
        json!({"GroupId": web, "GroupName": "x", "VpcId": vpc}),
        "InvalidGroup.NotFound",
    );
}

#[test]
fn a_group_referenced_only_by_its_own_rules_deletes_as_on_aws_but_not_one_another_group_references()
{
    // AWS deletes it (moto's AWS-verified tests, Terraform's `self = true` acceptance test),
    // although the user guide says the rule must go first.
    let mut f = Fixture::new();
    let [web, db] = [f.group("web"), f.group("db")];
    let own = json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}]}]});
    f.ok("AuthorizeSecurityGroupIngress", own);
    let from_db = json!({"GroupId": db, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": web}]}]});
    f.ok("AuthorizeSecurityGroupEgress", from_db.clone());
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": web}),
        "DependencyViolation",
    );
    f.ok("RevokeSecurityGroupEgress", from_db);
    f.ok("DeleteSecurityGroup", json!({"GroupId": web}));
}

#[test]
fn with_the_user_guides_rule_a_group_referenced_by_its_own_rule_is_deleted_only_after_the_rule_and_bad_requests_get_ec2_codes()
 {
    // "If your security group is referenced by one of its own rules, you must delete the rule
    // before you can delete the security group" (AWS user guide; `serve
    // --refuse-deleting-self-referenced-groups`).
    let mut f = Fixture::new();
    f.state.refuse_deleting_self_referenced = true;
    let web = f.group("web");
    let own = json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}]}]});
    f.ok("AuthorizeSecurityGroupIngress", own.clone());
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": web}),
        "DependencyViolation",
    );
    f.ok("RevokeSecurityGroupIngress", own);
    f.ok("DeleteSecurityGroup", json!({"GroupId": web}));
    f.fails(
        "DescribeSecurityGroups",
        json!({"GroupIdz": ["sg-1"]}),
        "UnknownParameter",
    );
    f.fails(
        "CreateSecurityGroup",
        json!({"GroupName": 5, "Description": "d"}),
        "InvalidParameterValue",
    );
    f.fails("Frobnicate", json!({}), "InvalidAction");
}

#[test]
fn the_default_group_cannot_be_deleted() {
    let mut f = Fixture::new();
    let default = f.state.groups.keys().next().unwrap().clone();
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": default}),
        "CannotDelete",
    );
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": "sg-zz"}),
        "InvalidGroupId.Malformed",
    );
}

#[test]
fn describe_filters_select_groups() {
    let mut f = Fixture::new();
    let tagged = f.ok("CreateSecurityGroup", json!({"GroupName": "tagged", "Description": "d",
        "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "blue"}]}]}));
    let by_tag = f.ok(
        "DescribeSecurityGroups",
        json!({"Filters": [{"Name": "tag:team", "Values": ["bl*"]}]}),
    );
    assert_eq!(by_tag["SecurityGroups"][0]["GroupId"], tagged["GroupId"]);
    let by_key = f.ok(
        "DescribeSecurityGroups",
        json!({"Filters": [{"Name": "tag-key", "Values": ["team"]}]}),
    );
    assert_eq!(by_key["SecurityGroups"].as_array().unwrap().len(), 1);
    f.ok("DeleteSecurityGroup", json!({"GroupId": tagged["GroupId"]}));
    f.group("web");
    f.group("db");
    let out = f.ok(
        "DescribeSecurityGroups",
        json!({"Filters": [{"Name": "group-name", "Values": ["w*"]}]}),
    );
    assert_eq!(out["SecurityGroups"].as_array().unwrap().len(), 1);
    f.fails(
        "DescribeSecurityGroups",
        json!({"Filters": [{"Name": "nope", "Values": ["x"]}]}),
        "InvalidParameterValue",
    );
}

#[test]
fn tag_specifications_check_keys_and_values_as_create_tags_does() {
    let mut f = Fixture::new();
    for tag in [
        json!({"Key": "aws:owner", "Value": "x"}),
        json!({"Key": "", "Value": "x"}),
        json!({"Key": "k", "Value": "v".repeat(257)}),
    ] {
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "d",
                   "TagSpecifications": [{"ResourceType": "security-group", "Tags": [tag]}]}),
            "InvalidParameterValue",
        );
    }
}

//! Rules: authorize, revoke, modify, descriptions, quotas, rule filters and pages.

use serde_json::{Value, json};

use super::{Fixture, tcp};

#[test]
fn authorize_normalises_protocols_and_cidrs_before_detecting_duplicates() {
    let mut f = Fixture::new();
    let id = f.group("web");
    let out = f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.7/8")]}),
    );
    assert_eq!(out["SecurityGroupRules"][0]["CidrIpv4"], "10.0.0.0/8");
    assert_eq!(out["SecurityGroupRules"][0]["IpProtocol"], "tcp");
    let same = json!({"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.2.3/8", "Description": "x"}]});
    f.fails(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [same]}),
        "InvalidPermission.Duplicate",
    );
    let err = f
        .call(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "the specified rule \"peer: 10.0.0.0/8, TCP, from port: 80, to port: 80, ALLOW\" already exists"
    );
}

#[test]
fn a_request_with_several_rules_is_all_or_nothing() {
    let mut f = Fixture::new();
    let id = f.group("web");
    let bad =
        json!({"GroupId": id, "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(23, "10.0.0.0/33")]});
    f.fails(
        "AuthorizeSecurityGroupIngress",
        bad,
        "InvalidParameterValue",
    );
    let dup_inside =
        json!({"GroupId": id, "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(22, "10.0.0.0/8")]});
    f.fails(
        "AuthorizeSecurityGroupIngress",
        dup_inside,
        "InvalidPermission.Duplicate",
    );
}

#[test]
fn referenced_groups_must_exist_in_the_same_vpc() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let lb = f.group("lb");
    let from_lb = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb}]});
    let out = f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [from_lb]}),
    );
    assert_eq!(
        out["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"],
        lb.as_str()
    );
    let ghost = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-00000000000000fff"}]});
    f.fails(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [ghost]}),
        "InvalidGroup.NotFound",
    );
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": lb}),
        "DependencyViolation",
    );
}

#[test]
fn rule_quota_counts_each_family_separately() {
    let mut f = Fixture::new();
    f.state.quotas.rules_per_group = 2;
    let id = f.group("web");
    f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(1, "10.0.0.0/8"), tcp(2, "10.0.0.0/8")]}),
    );
    let v6 = json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]});
    f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [v6]}),
    );
    f.fails(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(3, "10.0.0.0/8")]}),
        "RulesPerSecurityGroupLimitExceeded",
    );
}

#[test]
fn revoke_by_permission_must_match_exactly_outside_the_default_vpc_semantics() {
    let mut f = Fixture::new();
    let id = f.group("web");
    f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
    );
    // The default VPC answers unknown permissions instead of failing, and revokes nothing.
    let out = f.ok(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
    );
    assert_eq!(out["RevokedSecurityGroupRules"], json!([]));
    assert_eq!(out["UnknownIpPermissions"][0]["FromPort"], 81);
    let out = f.ok(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(80, "10.9.9.9/8")]}),
    );
    assert_eq!(
        out["RevokedSecurityGroupRules"][0]["CidrIpv4"],
        "10.0.0.0/8"
    );
    f.fails(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": id, "SecurityGroupRuleIds": ["sgr-00000000000000fff"]}),
        "InvalidSecurityGroupRuleId.NotFound",
    );
    // Outside the default VPC a non-matching permission is an error.
    f.state.vpcs.values_mut().for_each(|v| v.is_default = false);
    f.fails(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": id, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
        "InvalidPermission.NotFound",
    );
}

/// A group `web` with two inbound rules, tcp/80 and tcp/81 from 10.0.0.0/8; their IDs in order.
fn web_with_tcp_80_and_81(f: &mut Fixture) -> (String, Vec<String>) {
    let web = f.group("web");
    let out = f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8"), tcp(81, "10.0.0.0/8")]}),
    );
    let ids = (0..2)
        .map(|i| {
            out["SecurityGroupRules"][i]["SecurityGroupRuleId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (web, ids)
}

#[test]
fn modify_security_group_rules_keeps_the_rule_id_and_the_peer_kind() {
    let mut f = Fixture::new();
    let (web, ids) = web_with_tcp_80_and_81(&mut f);
    let id = ids[0].clone();
    let modify = |rule: Value| json!({"GroupId": web, "SecurityGroupRules": [{"SecurityGroupRuleId": id, "SecurityGroupRule": rule}]});
    assert_eq!(f.ok("ModifySecurityGroupRules", modify(json!({"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "CidrIpv4": "192.168.0.0/16", "Description": "dns"}))), json!({"Return": true}));
    let rule = f.state.groups[&web]
        .ingress
        .iter()
        .find(|r| r.id == id)
        .unwrap();
    assert_eq!(
        (
            rule.protocol.api_name(),
            rule.ports,
            rule.description.as_deref()
        ),
        ("udp".into(), Some((53, 53)), Some("dns"))
    );
    for (rule, code) in [
        (
            json!({"FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}),
            "InvalidParameterValue",
        ),
        (
            json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1}),
            "MissingParameter",
        ),
        (
            json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8", "CidrIpv6": "::/0"}),
            "InvalidParameterCombination",
        ),
        (
            json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv6": "::/0"}),
            "InvalidParameterValue",
        ),
        (
            json!({"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "CidrIpv4": "10.0.0.0/8"}),
            "InvalidPermission.Duplicate",
        ),
    ] {
        f.fails("ModifySecurityGroupRules", modify(rule), code);
    }
    f.fails("ModifySecurityGroupRules", json!({"GroupId": web, "SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-00000000000000fff", "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}]}), "InvalidSecurityGroupRuleId.NotFound");
}

#[test]
fn two_rules_may_swap_in_one_modify_and_each_is_then_found_by_its_new_permission() {
    let mut f = Fixture::new();
    let (web, ids) = web_with_tcp_80_and_81(&mut f);
    let to = |port: u16| json!({"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIpv4": "10.0.0.0/8"});
    f.ok(
        "ModifySecurityGroupRules",
        json!({"GroupId": web, "SecurityGroupRules": [
            {"SecurityGroupRuleId": ids[0], "SecurityGroupRule": to(81)},
            {"SecurityGroupRuleId": ids[1], "SecurityGroupRule": to(80)}]}),
    );
    // The same two ports, not a duplicate; two rules to one port in one request are.
    f.fails(
        "ModifySecurityGroupRules",
        json!({"GroupId": web, "SecurityGroupRules": [
            {"SecurityGroupRuleId": ids[0], "SecurityGroupRule": to(82)},
            {"SecurityGroupRuleId": ids[1], "SecurityGroupRule": to(82)}]}),
        "InvalidPermission.Duplicate",
    );
    f.fails(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
        "InvalidPermission.Duplicate",
    );
    let revoked = f.ok(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
    );
    assert_eq!(
        revoked["RevokedSecurityGroupRules"][0]["SecurityGroupRuleId"],
        json!(ids[1]),
        "port 80 is the second rule now"
    );
    assert_eq!(f.state.groups[&web].ingress.len(), 1);
}

#[test]
fn rule_descriptions_are_updated_by_id_or_by_matching_permission() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let out = f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
    );
    let id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    f.ok("UpdateSecurityGroupRuleDescriptionsIngress", json!({"GroupId": web, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": id, "Description": "web"}]}));
    let description = |f: &Fixture| {
        f.state.groups[&web]
            .ingress
            .first()
            .unwrap()
            .description
            .clone()
    };
    assert_eq!(description(&f).as_deref(), Some("web"));
    let described = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "http"}]});
    f.ok(
        "UpdateSecurityGroupRuleDescriptionsIngress",
        json!({"GroupId": web, "IpPermissions": [described]}),
    );
    assert_eq!(description(&f).as_deref(), Some("http"));
    f.ok(
        "UpdateSecurityGroupRuleDescriptionsIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
    );
    assert_eq!(
        f.state.groups[&web].ingress.first().unwrap().description,
        None,
        "omitted description removes it"
    );
    f.fails(
        "UpdateSecurityGroupRuleDescriptionsIngress",
        json!({"GroupId": web, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
        "InvalidPermission.NotFound",
    );
    f.fails(
        "UpdateSecurityGroupRuleDescriptionsEgress",
        json!({"GroupId": web, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": id}]}),
        "InvalidSecurityGroupRuleId.NotFound",
    );
    assert_eq!(
        f.ok("DescribeSecurityGroupReferences", json!({"GroupId": [web]})),
        json!({"SecurityGroupReferenceSet": []})
    );
    f.fails(
        "DescribeSecurityGroupReferences",
        json!({"GroupId": ["sg-00000000000000fff"]}),
        "InvalidGroup.NotFound",
    );
}

#[test]
fn rule_filters_match_any_rule_of_the_direction_and_pages_follow_next_token() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let db = f.group("db");
    f.ok("AuthorizeSecurityGroupIngress", json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8"), {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [{"GroupId": db}]}]}));
    let names = |out: Value| -> Vec<String> {
        out["SecurityGroups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["GroupName"].as_str().unwrap().to_string())
            .collect()
    };
    let filter = |name: &str, value: &str| json!({"Filters": [{"Name": name, "Values": [value]}]});
    assert_eq!(
        names(f.ok(
            "DescribeSecurityGroups",
            filter("ip-permission.from-port", "80")
        )),
        ["web"]
    );
    assert_eq!(
        names(f.ok(
            "DescribeSecurityGroups",
            filter("ip-permission.protocol", "6")
        )),
        ["web"],
        "6 is tcp"
    );
    assert_eq!(
        names(f.ok(
            "DescribeSecurityGroups",
            filter("ip-permission.group-name", "db")
        )),
        ["web"]
    );
    assert_eq!(
        names(f.ok(
            "DescribeSecurityGroups",
            filter("ip-permission.cidr", "10.0.0.0/8")
        )),
        ["web"]
    );
    // Two filters matched by two different rules of the same group.
    let both = json!({"Filters": [{"Name": "ip-permission.cidr", "Values": ["10.0.0.0/8"]}, {"Name": "ip-permission.protocol", "Values": ["udp"]}]});
    assert_eq!(names(f.ok("DescribeSecurityGroups", both)), ["web"]);
    assert_eq!(
        names(f.ok(
            "DescribeSecurityGroups",
            filter("egress.ip-permission.cidr", "0.0.0.0/0")
        ))
        .len(),
        3
    );

    for i in 0..6 {
        f.group(&format!("g{i}"));
    }
    let first = f.ok("DescribeSecurityGroups", json!({"MaxResults": 5}));
    assert_eq!(first["SecurityGroups"].as_array().unwrap().len(), 5);
    let token = first["NextToken"].as_str().unwrap().to_string();
    let second = f.ok(
        "DescribeSecurityGroups",
        json!({"MaxResults": 5, "NextToken": token}),
    );
    assert_eq!(
        second["SecurityGroups"].as_array().unwrap().len(),
        4,
        "9 groups in all"
    );
    assert!(second.get("NextToken").is_none());
    assert!(
        f.ok("DescribeSecurityGroups", json!({}))
            .get("NextToken")
            .is_none(),
        "no pagination without MaxResults"
    );
    f.fails(
        "DescribeSecurityGroups",
        json!({"MaxResults": 4}),
        "InvalidParameterValue",
    );
    f.fails(
        "DescribeSecurityGroups",
        json!({"MaxResults": 5, "GroupIds": [web]}),
        "InvalidParameterCombination",
    );
}

#[test]
fn the_console_edit_revokes_adds_and_describes_in_one_change_or_not_at_all() {
    let mut f = Fixture::new();
    let g = f.group("edited");
    let added = f.ok(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": g, "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(80, "10.0.0.0/8")]}),
    );
    let ssh = added["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    let http = added["SecurityGroupRules"][1]["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    // A bad new rule refuses the whole edit: the revoke and the description stay undone.
    f.fails(
        "EditSecurityGroupRules",
        json!({"GroupId": g, "Direction": "ingress",
               "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": http, "Description": "web"}],
               "RevokeSecurityGroupRuleIds": [ssh],
               "IpPermissions": [tcp(443, "10.0.0.300/8")]}),
        "InvalidParameterValue",
    );
    f.fails(
        "EditSecurityGroupRules",
        json!({"GroupId": g, "Direction": "sideways", "RevokeSecurityGroupRuleIds": [ssh]}),
        "InvalidParameterValue",
    );
    // Re-adding the rule being revoked is no duplicate: the revoke comes first.
    let out = f.ok(
        "EditSecurityGroupRules",
        json!({"GroupId": g, "Direction": "ingress",
               "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": http, "Description": "web"}],
               "RevokeSecurityGroupRuleIds": [ssh],
               "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(443, "10.0.0.0/8")]}),
    );
    assert_eq!(out["RevokedSecurityGroupRuleIds"], json!([ssh]));
    assert_eq!(out["SecurityGroupRules"].as_array().unwrap().len(), 2);
    let rules = f.ok(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": [g]}]}),
    );
    let inbound: Vec<&Value> = rules["SecurityGroupRules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["IsEgress"] == false)
        .collect();
    assert_eq!(inbound.len(), 3);
    assert!(
        inbound
            .iter()
            .all(|r| r["SecurityGroupRuleId"] != ssh.as_str())
    );
    let kept = inbound
        .iter()
        .find(|r| r["SecurityGroupRuleId"] == http.as_str())
        .unwrap();
    assert_eq!(kept["Description"], "web", "described in place, same ID");
}

#[test]
fn a_malformed_group_id_filter_of_describe_rules_is_refused_as_aws_refuses_it() {
    let mut f = Fixture::new();
    let web = f.group("web");
    f.fails(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": ["foobar"]}]}),
        "InvalidGroupId.Malformed",
    );
    let listed = f.ok(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": [web]}]}),
    );
    assert_eq!(listed["SecurityGroupRules"].as_array().unwrap().len(), 2);
    f.ok(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": ["sg-*"]}]}),
    );
}

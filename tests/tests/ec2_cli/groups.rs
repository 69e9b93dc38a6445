//! Security groups and their rules: create and describe (with --query and the output formats),
//! authorize in every input form, pages, revoke and modify.

use super::*;

#[test]
fn groups_are_created_and_described_with_query_text_and_table_output() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let vpc = default_vpc(&aws);
    let web = create_group(&aws, "web");

    let out = aws.json(&["ec2", "describe-security-groups", "--group-ids", &web]);
    let group = &out["SecurityGroups"][0];
    assert_eq!(group["GroupId"], web.as_str());
    assert_eq!(group["GroupName"], "web");
    assert_eq!(group["Description"], "web tier");
    assert_eq!(group["VpcId"], vpc.as_str());
    assert_eq!(group["OwnerId"], ACCOUNT_ID);
    assert_eq!(group["IpPermissions"], json!([]));
    assert_eq!(
        group["IpPermissionsEgress"],
        json!([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": [], "UserIdGroupPairs": []}]),
        "a new group allows all outbound traffic (the default VPC has an IPv6 block)"
    );

    let name = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--group-ids",
        &web,
        "--query",
        "SecurityGroups[0].GroupName",
        "--output",
        "text",
    ]);
    assert_eq!(name, "web\n");
    let ids = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web",
        "--query",
        "SecurityGroups[].GroupId",
        "--output",
        "text",
    ]);
    assert_eq!(ids.trim(), web);
    let names = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--query",
        "sort(SecurityGroups[].GroupName)",
        "--output",
        "text",
    ]);
    assert_eq!(
        names.split_whitespace().collect::<Vec<_>>(),
        ["default", "web"]
    );

    let table = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--group-ids",
        &web,
        "--output",
        "table",
    ]);
    for needle in [
        "DescribeSecurityGroups",
        "SecurityGroups",
        "web tier",
        &web,
        &vpc,
    ] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    assert!(
        table
            .lines()
            .all(|l| l.starts_with(['|', '+', '-']) || l.trim().is_empty()),
        "{table}"
    );

    // By name in the default VPC, and the group's own default egress rule.
    let by_name = aws.json(&["ec2", "describe-security-groups", "--group-names", "web"]);
    assert_eq!(by_name["SecurityGroups"][0]["GroupId"], web.as_str());
    let deleted = aws.json(&["ec2", "delete-security-group", "--group-id", &web]);
    assert_eq!(deleted["Return"], true, "{deleted}");
    aws.fails(
        "InvalidGroup.NotFound",
        &["ec2", "describe-security-groups", "--group-ids", &web],
    );
}

#[test]
fn ingress_rules_from_shorthand_json_and_the_legacy_options() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let web = create_group(&aws, "web");
    let lb = create_group(&aws, "lb");

    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=10.0.0.0/8}]",
    ]);
    assert_eq!(out["Return"], true, "{out}");
    let rule = &out["SecurityGroupRules"][0];
    assert!(
        rule["SecurityGroupRuleId"]
            .as_str()
            .is_some_and(|id| id.starts_with("sgr-")),
        "{out}"
    );
    assert_eq!(rule["GroupId"], web.as_str());
    assert_eq!(rule["IsEgress"], false);
    assert_eq!(rule["IpProtocol"], "tcp");
    assert_eq!(
        (rule["FromPort"].as_i64(), rule["ToPort"].as_i64()),
        (Some(80), Some(80))
    );
    assert_eq!(rule["CidrIpv4"], "10.0.0.0/8");

    // JSON, with a description and IPv6.
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        r#"[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,
             "IpRanges":[{"CidrIp":"192.168.0.0/16","Description":"https & more"}],
             "Ipv6Ranges":[{"CidrIpv6":"2001:db8::/32"}]}]"#,
    ]);
    assert_eq!(
        out["SecurityGroupRules"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );

    // The legacy options: a single port, a range, a referenced group.
    aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "udp",
        "--port",
        "53",
        "--cidr",
        "172.16.0.0/12",
    ]);
    aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "8000-8010",
        "--cidr",
        "172.16.0.0/12",
    ]);
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        &format!("IpProtocol=tcp,FromPort=9000,ToPort=9000,UserIdGroupPairs=[{{GroupId={lb}}}]"),
    ]);
    assert_eq!(
        out["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"],
        lb.as_str(),
        "{out}"
    );

    let described = aws.json(&["ec2", "describe-security-groups", "--group-ids", &web]);
    let perms = described["SecurityGroups"][0]["IpPermissions"]
        .as_array()
        .expect("IpPermissions")
        .clone();
    let find = |proto: &str, from: i64| {
        perms
            .iter()
            .find(|p| p["IpProtocol"] == proto && p["FromPort"] == from)
            .unwrap_or_else(|| panic!("no {proto} {from} in {perms:?}"))
            .clone()
    };
    assert_eq!(
        find("tcp", 80)["IpRanges"],
        json!([{"CidrIp": "10.0.0.0/8"}])
    );
    let https = find("tcp", 443);
    assert_eq!(
        https["IpRanges"],
        json!([{"CidrIp": "192.168.0.0/16", "Description": "https & more"}])
    );
    assert_eq!(https["Ipv6Ranges"], json!([{"CidrIpv6": "2001:db8::/32"}]));
    assert_eq!(find("udp", 53)["ToPort"], 53);
    assert_eq!(find("tcp", 8000)["ToPort"], 8010);
    let pairs = find("tcp", 9000)["UserIdGroupPairs"].clone();
    assert_eq!(pairs[0]["GroupId"], lb.as_str(), "{pairs}");
    assert_eq!(pairs[0]["UserId"], ACCOUNT_ID, "{pairs}");

    // The same rule again.
    let dup = aws.fails(
        "InvalidPermission.Duplicate",
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &web,
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "10.0.0.0/8",
        ],
    );
    assert_eq!(dup.status, CLI_ERROR_STATUS);
    // Unknown group.
    aws.fails(
        "InvalidGroup.NotFound",
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            "sg-0123456789abcdef0",
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "10.0.0.0/8",
        ],
    );
}

#[test]
fn describe_security_group_rules_and_groups_follow_next_token_with_page_size() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let web = create_group(&aws, "web");
    // 12 CIDRs → 12 ingress rules, plus the default egress rules (IPv4 and IPv6).
    let ranges: Vec<String> = (1..=12)
        .map(|i| format!(r#"{{"CidrIp":"10.{i}.0.0/16"}}"#))
        .collect();
    let perms = format!(
        r#"[{{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{}]}}]"#,
        ranges.join(",")
    );
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        &perms,
    ]);
    assert_eq!(out["SecurityGroupRules"].as_array().map(Vec::len), Some(12));

    let filter = format!("Name=group-id,Values={web}");
    // The CLI follows NextToken by itself: every rule, once.
    let all = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--page-size",
        "5",
    ]);
    let mut ids: Vec<&str> = all["SecurityGroupRules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["SecurityGroupRuleId"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 14, "{all}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 14, "no rule twice: {all}");
    assert!(all.get("NextToken").is_none(), "{all}");

    // One page by hand: 5 rules and a token; the token gives the rest.
    let page = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--no-paginate",
        "--max-results",
        "5",
    ]);
    assert_eq!(page["SecurityGroupRules"].as_array().map(Vec::len), Some(5));
    let token = page["NextToken"].as_str().expect("NextToken").to_string();
    let rest = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--next-token",
        &token,
        "--max-results",
        "1000",
        "--no-paginate",
    ]);
    assert_eq!(
        rest["SecurityGroupRules"].as_array().map(Vec::len),
        Some(9),
        "{rest}"
    );

    // --max-items: the CLI's own token.
    let first = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--page-size",
        "5",
        "--max-items",
        "7",
    ]);
    assert_eq!(
        first["SecurityGroupRules"].as_array().map(Vec::len),
        Some(7)
    );
    let token = first["NextToken"].as_str().expect("NextToken").to_string();
    let second = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--page-size",
        "5",
        "--starting-token",
        &token,
    ]);
    assert_eq!(
        second["SecurityGroupRules"].as_array().map(Vec::len),
        Some(7)
    );

    // Without MaxResults: everything in one answer, no token.
    let plain = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &filter,
        "--no-paginate",
    ]);
    assert_eq!(
        plain["SecurityGroupRules"].as_array().map(Vec::len),
        Some(14)
    );
    assert!(plain.get("NextToken").is_none(), "{plain}");

    // Groups: 7 more, paged by 5.
    for i in 0..7 {
        create_group(&aws, &format!("g{i}"));
    }
    let groups = aws.json(&["ec2", "describe-security-groups", "--page-size", "5"]);
    assert_eq!(
        groups["SecurityGroups"].as_array().map(Vec::len),
        Some(9),
        "default, web and g0..g6: {groups}"
    );
}

#[test]
fn rules_are_revoked_and_modified() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let web = create_group(&aws, "web");
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.1.0.0/16}]",
        "IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=10.3.0.0/16},{CidrIp=10.4.0.0/16}]",
    ]);
    let ssh = out["SecurityGroupRules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["FromPort"] == 22)
        .expect("ssh rule")["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();

    // Modify in place: same ID, new port and CIDR.
    let out = aws.json(&[
        "ec2",
        "modify-security-group-rules",
        "--group-id",
        &web,
        "--security-group-rules",
        &format!(
            "SecurityGroupRuleId={ssh},SecurityGroupRule={{IpProtocol=tcp,FromPort=2222,ToPort=2222,CidrIpv4=10.2.0.0/16,Description=ssh}}"
        ),
    ]);
    assert_eq!(out["Return"], true, "{out}");
    let out = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--security-group-rule-ids",
        &ssh,
    ]);
    let rule = &out["SecurityGroupRules"][0];
    assert_eq!(rule["FromPort"], 2222, "{out}");
    assert_eq!(rule["CidrIpv4"], "10.2.0.0/16");
    assert_eq!(rule["Description"], "ssh");

    // Revoke by rule ID, then by permission (shorthand), then by the legacy options.
    let out = aws.json(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &web,
        "--security-group-rule-ids",
        &ssh,
    ]);
    assert_eq!(out["Return"], true, "{out}");
    assert_eq!(ingress_cidrs(&aws, &web), ["10.3.0.0/16", "10.4.0.0/16"]);
    aws.json(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=10.3.0.0/16}]",
    ]);
    assert_eq!(ingress_cidrs(&aws, &web), ["10.4.0.0/16"]);
    aws.json(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "80",
        "--cidr",
        "10.4.0.0/16",
    ]);
    assert!(ingress_cidrs(&aws, &web).is_empty());

    // Egress: the default allow-all rules revoked, one added.
    aws.json(&[
        "ec2",
        "revoke-security-group-egress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}],Ipv6Ranges=[{CidrIpv6=::/0}]",
    ]);
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-egress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=172.31.0.2/32}]",
    ]);
    assert_eq!(out["SecurityGroupRules"][0]["IsEgress"], true, "{out}");
    let described = aws.json(&["ec2", "describe-security-groups", "--group-ids", &web]);
    let egress = &described["SecurityGroups"][0]["IpPermissionsEgress"];
    assert_eq!(egress.as_array().map(Vec::len), Some(1), "{described}");
    assert_eq!(egress[0]["IpProtocol"], "udp");

    // Descriptions only.
    aws.json(&[
        "ec2",
        "update-security-group-rule-descriptions-egress",
        "--group-id",
        &web,
        "--ip-permissions",
        "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=172.31.0.2/32,Description=dns}]",
    ]);
    let rules = rules_of(&aws, &web);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["Description"], "dns");
}

//! The real AWS CLI (v1, from `target/venv`) against the agent's EC2 Query endpoint, run inside
//! the agent's namespace: STS, groups, rules (shorthand, JSON, the legacy options), pagination,
//! revoke and modify, tags, VPCs, prefix lists, errors and exit statuses, dry runs, signatures,
//! regions, and a rule opened and closed on real traffic.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    aws::{self, ACCOUNT_ID, Aws, REGION, UNKNOWN_KEY_PROFILE, WRONG_SECRET_PROFILE, start_agent},
    netns::Netns,
    topology::Topology,
    traffic::{EchoServer, echoes, eventually, tcp_connect, tcp_round_trip},
};
use serde_json::{Value, json};

/// The AWS CLI v1's exit status for a service error (v2 uses 254).
const CLI_ERROR_STATUS: i32 = 255;
const SHORT: Duration = Duration::from_millis(700);

/// An agent whose EC2 key acts in the default account: the local CLI, which registers the
/// workloads (the AWS CLI cannot send our `HostInterface`), acts in it too.
fn start_in_default_account(ns: &Netns) -> (Agent, Aws) {
    let identity = aws::Identity {
        account_id: None,
        ..aws::Identity::test()
    };
    let aws = Aws::with_identity(ns, aws::free_port(), identity);
    let options = aws.agent_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let agent = Agent::start_with(ns, &options);
    assert!(
        aws.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    (agent, aws)
}

fn create_group(aws: &Aws, name: &str) -> String {
    let out = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        name,
        "--description",
        &format!("{name} tier"),
    ]);
    let id = out["GroupId"].as_str().expect("GroupId").to_string();
    assert!(id.starts_with("sg-"), "{out}");
    id
}

fn rules_of(aws: &Aws, group: &str) -> Vec<Value> {
    let out = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &format!("Name=group-id,Values={group}"),
    ]);
    out["SecurityGroupRules"]
        .as_array()
        .expect("SecurityGroupRules")
        .clone()
}

fn ingress_cidrs(aws: &Aws, group: &str) -> Vec<String> {
    let mut cidrs: Vec<String> = rules_of(aws, group)
        .iter()
        .filter(|r| r["IsEgress"] == false)
        .filter_map(|r| r["CidrIpv4"].as_str().map(str::to_string))
        .collect();
    cidrs.sort();
    cidrs
}

fn default_vpc(aws: &Aws) -> String {
    let out = aws.json(&[
        "ec2",
        "describe-vpcs",
        "--filters",
        "Name=is-default,Values=true",
    ]);
    let vpcs = out["Vpcs"].as_array().expect("Vpcs");
    assert_eq!(vpcs.len(), 1, "one default VPC: {out}");
    assert_eq!(vpcs[0]["CidrBlock"], "172.31.0.0/16");
    vpcs[0]["VpcId"].as_str().unwrap().to_string()
}

#[test]
fn harness_runs_the_pinned_clients_inside_the_namespace_with_only_its_own_env() {
    let ns = Netns::new("fwa");
    let aws = Aws::new(&ns, aws::free_port());
    let version = aws.run("aws", &["--version"], &[]);
    assert!(version.success(), "{version}");
    // awscli v1 prints its version on stdout or stderr depending on the release.
    let shown = format!("{}{}", version.stdout, version.stderr);
    assert!(shown.starts_with("aws-cli/1.46.3 "), "{shown}");
    let boto3 = aws.run(
        "python",
        &[
            "-c",
            "import boto3, botocore; print(boto3.__version__, botocore.__version__)",
        ],
        &[],
    );
    assert_eq!(boto3.stdout.trim(), "1.44.8 1.44.8", "{boto3}");
    let env = aws.run(
        "python",
        &[
            "-c",
            "import os; print(' '.join(sorted(k for k in os.environ if k.startswith('AWS_'))))",
        ],
        &[],
    );
    assert_eq!(
        env.stdout.trim(),
        "AWS_CONFIG_FILE AWS_EC2_METADATA_DISABLED AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE",
        "{env}"
    );
    // Inside the test's namespace: only its loopback.
    let links = aws.run("ip", &["-o", "link"], &[]);
    assert_eq!(links.stdout.lines().count(), 1, "{links}");
    // The profile resolves to our endpoint and region.
    let endpoint = aws.cli(&["configure", "get", "endpoint_url"]);
    assert_eq!(endpoint.stdout.trim(), aws.endpoint_url(), "{endpoint}");
    let region = aws.cli(&["configure", "get", "region"]);
    assert_eq!(region.stdout.trim(), REGION, "{region}");
    // Nothing listens yet: the CLI reports it could not connect, nothing is sent elsewhere.
    let refused = aws.cli(&[
        "--cli-connect-timeout",
        "1",
        "ec2",
        "describe-security-groups",
    ]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused
            .stderr
            .contains("Could not connect to the endpoint URL")
            && refused.stderr.contains(&aws.endpoint_url()),
        "{refused}"
    );
}

#[test]
fn sts_get_caller_identity_and_an_explicit_endpoint_url() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let me = aws.json(&["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], ACCOUNT_ID, "{me}");
    assert!(
        me["Arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:") && arn.contains(ACCOUNT_ID)),
        "{me}"
    );
    assert!(me["UserId"].as_str().is_some_and(|u| !u.is_empty()), "{me}");

    // --endpoint-url on the command line, with the profile's endpoint switched off.
    let url = aws.endpoint_url();
    let out = aws.run(
        "aws",
        &[
            "--endpoint-url",
            &url,
            "--region",
            REGION,
            "--output",
            "json",
            "ec2",
            "describe-security-groups",
            "--group-names",
            "default",
        ],
        &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")],
    );
    assert!(out.success(), "{out}");
    assert_eq!(out.json()["SecurityGroups"][0]["GroupName"], "default");
}

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

#[test]
fn tags_are_created_filtered_and_deleted() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let web = create_group(&aws, "web");
    let db = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "db",
        "--description",
        "db tier",
        "--tag-specifications",
        "ResourceType=security-group,Tags=[{Key=team,Value=data}]",
    ]);
    assert_eq!(
        db["Tags"],
        json!([{"Key": "team", "Value": "data"}]),
        "{db}"
    );
    let db = db["GroupId"].as_str().unwrap().to_string();

    let out = aws.cli(&[
        "ec2",
        "create-tags",
        "--resources",
        &web,
        "--tags",
        "Key=team,Value=web",
        "Key=env,Value=prod",
    ]);
    assert!(out.success() && out.stdout.trim().is_empty(), "{out}");

    let tags = aws.json(&[
        "ec2",
        "describe-tags",
        "--filters",
        &format!("Name=resource-id,Values={web}"),
        "Name=key,Values=team",
    ]);
    assert_eq!(
        tags["Tags"],
        json!([{"Key": "team", "ResourceId": web, "ResourceType": "security-group", "Value": "web"}]),
        "{tags}"
    );
    let teams = aws.text(&[
        "ec2",
        "describe-tags",
        "--filters",
        "Name=key,Values=team",
        "--query",
        "sort(Tags[].Value)",
        "--output",
        "text",
    ]);
    assert_eq!(
        teams.split_whitespace().collect::<Vec<_>>(),
        ["data", "web"]
    );

    let tagged = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=tag:team,Values=web",
    ]);
    let groups = tagged["SecurityGroups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{tagged}");
    assert_eq!(groups[0]["GroupId"], web.as_str());
    let keyed = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=tag-key,Values=team",
        "--query",
        "SecurityGroups[].GroupId",
    ]);
    let mut keyed: Vec<&str> = keyed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    keyed.sort();
    let mut expected = vec![web.as_str(), db.as_str()];
    expected.sort();
    assert_eq!(keyed, expected);

    aws.cli(&[
        "ec2",
        "delete-tags",
        "--resources",
        &web,
        "--tags",
        "Key=env",
    ]);
    let left = aws.json(&[
        "ec2",
        "describe-tags",
        "--filters",
        &format!("Name=resource-id,Values={web}"),
    ]);
    assert_eq!(
        left["Tags"],
        json!([{"Key": "team", "ResourceId": web, "ResourceType": "security-group", "Value": "web"}]),
        "{left}"
    );
}

#[test]
fn vpcs_are_created_described_and_deleted() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let default = default_vpc(&aws);
    let out = aws.json(&["ec2", "create-vpc", "--cidr-block", "10.20.0.0/16"]);
    let vpc = out["Vpc"]["VpcId"].as_str().expect("VpcId").to_string();
    assert!(vpc.starts_with("vpc-") && vpc != default, "{out}");
    assert_eq!(out["Vpc"]["CidrBlock"], "10.20.0.0/16");

    let out = aws.json(&["ec2", "describe-vpcs", "--vpc-ids", &vpc]);
    assert_eq!(out["Vpcs"][0]["CidrBlock"], "10.20.0.0/16", "{out}");
    assert_eq!(out["Vpcs"][0]["IsDefault"], false);
    assert_eq!(out["Vpcs"][0]["State"], "available");
    let all = aws.text(&[
        "ec2",
        "describe-vpcs",
        "--query",
        "length(Vpcs)",
        "--output",
        "text",
    ]);
    assert_eq!(all.trim(), "2");

    // Its own default group; a group of ours in it.
    let groups = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
    ]);
    assert_eq!(
        groups["SecurityGroups"][0]["GroupName"], "default",
        "{groups}"
    );
    let app = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "app",
        "--description",
        "app",
        "--vpc-id",
        &vpc,
    ]);
    let app = app["GroupId"].as_str().unwrap().to_string();
    aws.fails(
        "DependencyViolation",
        &["ec2", "delete-vpc", "--vpc-id", &vpc],
    );
    aws.json(&["ec2", "delete-security-group", "--group-id", &app]);

    let out = aws.cli(&["ec2", "delete-vpc", "--vpc-id", &vpc]);
    assert!(out.success(), "{out}");
    aws.fails(
        "InvalidVpcID.NotFound",
        &["ec2", "describe-vpcs", "--vpc-ids", &vpc],
    );
    aws.fails(
        "InvalidVpc.Range",
        &["ec2", "create-vpc", "--cidr-block", "10.0.0.0/8"],
    );
}

#[test]
fn managed_prefix_lists_are_created_modified_and_referenced() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let out = aws.json(&[
        "ec2",
        "create-managed-prefix-list",
        "--prefix-list-name",
        "office",
        "--max-entries",
        "5",
        "--address-family",
        "IPv4",
        "--entries",
        "Cidr=10.9.0.0/16,Description=hq",
    ]);
    let list = &out["PrefixList"];
    let pl = list["PrefixListId"]
        .as_str()
        .expect("PrefixListId")
        .to_string();
    assert!(pl.starts_with("pl-"), "{out}");
    assert_eq!(list["PrefixListName"], "office");
    assert_eq!(list["MaxEntries"], 5);
    assert_eq!(list["OwnerId"], ACCOUNT_ID);

    let out = aws.json(&[
        "ec2",
        "modify-managed-prefix-list",
        "--prefix-list-id",
        &pl,
        "--current-version",
        "1",
        "--add-entries",
        "Cidr=10.8.0.0/16",
    ]);
    assert_eq!(out["PrefixList"]["PrefixListId"], pl.as_str(), "{out}");
    let entries = aws.text(&[
        "ec2",
        "get-managed-prefix-list-entries",
        "--prefix-list-id",
        &pl,
        "--query",
        "sort(Entries[].Cidr)",
        "--output",
        "text",
    ]);
    assert_eq!(
        entries.split_whitespace().collect::<Vec<_>>(),
        ["10.8.0.0/16", "10.9.0.0/16"]
    );
    let described = aws.json(&[
        "ec2",
        "describe-managed-prefix-lists",
        "--prefix-list-ids",
        &pl,
    ]);
    assert_eq!(described["PrefixLists"][0]["Version"], 2, "{described}");

    let web = create_group(&aws, "web");
    let out = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        &format!("IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{{PrefixListId={pl}}}]"),
    ]);
    assert_eq!(
        out["SecurityGroupRules"][0]["PrefixListId"],
        pl.as_str(),
        "{out}"
    );
    let referenced = aws.json(&["ec2", "describe-security-groups", "--group-ids", &web]);
    assert_eq!(
        referenced["SecurityGroups"][0]["IpPermissions"][0]["PrefixListIds"],
        json!([{"PrefixListId": pl}]),
        "{referenced}"
    );

    aws.json(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &web,
        "--ip-permissions",
        &format!("IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{{PrefixListId={pl}}}]"),
    ]);
    aws.json(&["ec2", "delete-managed-prefix-list", "--prefix-list-id", &pl]);
    aws.fails(
        "InvalidPrefixListID.NotFound",
        &[
            "ec2",
            "get-managed-prefix-list-entries",
            "--prefix-list-id",
            &pl,
        ],
    );
}

#[test]
fn errors_print_like_the_aws_cli_and_dry_runs_change_nothing() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let vpc = default_vpc(&aws);
    create_group(&aws, "web");
    let dup = aws.fails(
        "InvalidGroup.Duplicate",
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "again",
        ],
    );
    assert_eq!(dup.status, CLI_ERROR_STATUS, "{dup}");
    assert_eq!(
        dup.stderr.trim(),
        format!(
            "An error occurred (InvalidGroup.Duplicate) when calling the CreateSecurityGroup \
             operation: The security group 'web' already exists for VPC '{vpc}'"
        )
    );
    assert!(dup.stdout.is_empty(), "{dup}");

    let missing = aws.fails(
        "InvalidGroup.NotFound",
        &[
            "ec2",
            "describe-security-groups",
            "--group-ids",
            "sg-0123456789abcdef0",
        ],
    );
    assert_eq!(
        missing.stderr.trim(),
        "An error occurred (InvalidGroup.NotFound) when calling the DescribeSecurityGroups \
         operation: The security group 'sg-0123456789abcdef0' does not exist"
    );

    // Dry runs: the would-be success as an error, and nothing created or changed.
    let dry = aws.fails(
        "DryRunOperation",
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "dry",
            "--description",
            "dry",
            "--dry-run",
        ],
    );
    assert_eq!(dry.status, CLI_ERROR_STATUS);
    assert_eq!(
        dry.stderr.trim(),
        "An error occurred (DryRunOperation) when calling the CreateSecurityGroup operation: \
         Request would have succeeded, but DryRun flag is set."
    );
    let none = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=dry",
    ]);
    assert_eq!(none["SecurityGroups"], json!([]), "{none}");
    let web = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--group-names",
        "web",
        "--query",
        "SecurityGroups[0].GroupId",
        "--output",
        "text",
    ]);
    let web = web.trim();
    aws.fails(
        "DryRunOperation",
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            web,
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "10.0.0.0/8",
            "--dry-run",
        ],
    );
    assert!(ingress_cidrs(&aws, web).is_empty());
    // A dry run that would not succeed reports the real error.
    aws.fails(
        "InvalidGroup.NotFound",
        &[
            "ec2",
            "delete-security-group",
            "--group-id",
            "sg-0123456789abcdef0",
            "--dry-run",
        ],
    );
}

#[test]
fn unsigned_and_badly_signed_requests_are_refused() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let create = [
        "ec2",
        "create-security-group",
        "--group-name",
        "intruder",
        "--description",
        "x",
    ];

    let unsigned = aws.cli(&[&["--no-sign-request"], &create[..]].concat());
    assert_eq!(unsigned.status, CLI_ERROR_STATUS, "{unsigned}");
    assert!(
        matches!(
            unsigned.code(),
            "AuthFailure" | "MissingAuthenticationToken"
        ),
        "{unsigned}"
    );
    let wrong = aws.cli_as(WRONG_SECRET_PROFILE, &create);
    assert_eq!(wrong.status, CLI_ERROR_STATUS, "{wrong}");
    assert!(
        matches!(wrong.code(), "AuthFailure" | "SignatureDoesNotMatch"),
        "{wrong}"
    );
    let unknown = aws.cli_as(UNKNOWN_KEY_PROFILE, &create);
    assert_eq!(unknown.status, CLI_ERROR_STATUS, "{unknown}");
    assert!(
        matches!(unknown.code(), "AuthFailure" | "InvalidClientTokenId"),
        "{unknown}"
    );
    let sts = aws.cli_as(WRONG_SECRET_PROFILE, &["sts", "get-caller-identity"]);
    assert!(
        matches!(sts.code(), "SignatureDoesNotMatch" | "AuthFailure"),
        "{sts}"
    );

    let none = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=intruder",
    ]);
    assert_eq!(none["SecurityGroups"], json!([]), "nothing created: {none}");
}

#[test]
fn regions_availability_zones_and_account_attributes_answer() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let regions = aws.json(&["ec2", "describe-regions"]);
    let names: Vec<&str> = regions["Regions"]
        .as_array()
        .expect("Regions")
        .iter()
        .filter_map(|r| r["RegionName"].as_str())
        .collect();
    assert!(names.contains(&REGION), "{regions}");
    let zones = aws.json(&["ec2", "describe-availability-zones"]);
    let zones = zones["AvailabilityZones"]
        .as_array()
        .expect("AvailabilityZones")
        .clone();
    assert!(!zones.is_empty());
    for zone in &zones {
        assert_eq!(zone["RegionName"], REGION, "{zone}");
        assert_eq!(zone["State"], "available", "{zone}");
        assert!(
            zone["ZoneName"]
                .as_str()
                .is_some_and(|z| z.starts_with(REGION)),
            "{zone}"
        );
    }

    let vpc = default_vpc(&aws);
    let attributes = aws.json(&["ec2", "describe-account-attributes"]);
    let value = |name: &str| -> Vec<String> {
        attributes["AccountAttributes"]
            .as_array()
            .expect("AccountAttributes")
            .iter()
            .find(|a| a["AttributeName"] == name)
            .unwrap_or_else(|| panic!("no {name} in {attributes}"))["AttributeValues"]
            .as_array()
            .expect("AttributeValues")
            .iter()
            .filter_map(|v| v["AttributeValue"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(value("supported-platforms"), ["VPC"]);
    assert_eq!(value("default-vpc"), [vpc]);
}

#[test]
fn generated_credentials_are_private_and_accepted() {
    use std::os::unix::fs::PermissionsExt as _;
    let ns = Netns::new("fwa");
    let port = aws::free_port();
    let listen = format!("127.0.0.1:{port}");
    let agent = Agent::start_with(&ns, &["--ec2-listen", &listen]);
    let file = agent.dir.join("state/credentials");
    let probe = Aws::new(&ns, port);
    assert!(
        probe.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    let mode = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), agent.log()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let id = aws::read_credentials(&file);
    let aws = Aws::with_identity(&ns, port, id.clone());
    let me = aws.json(&["sts", "get-caller-identity"]);
    if let Some(account) = &id.account_id {
        assert_eq!(me["Account"], account.as_str(), "{me}");
    }
    // The kit's fixed test pair is not accepted by this agent.
    let other = probe.cli(&["ec2", "describe-security-groups"]);
    assert!(
        matches!(other.code(), "AuthFailure" | "InvalidClientTokenId"),
        "{other}"
    );
}

#[test]
fn a_rule_authorized_with_the_aws_cli_opens_real_traffic_and_revoking_it_closes_it() {
    let topo = Topology::new(&["172.31.60.10", "172.31.61.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let (agent, aws) = start_in_default_account(&topo.host);
    let client = create_group(&aws, "client");
    let server = create_group(&aws, "server");
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    let _echo = EchoServer::tcp(&b.ns, b.ip, 8080);

    assert!(!tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "no rule yet");
    let cidr = format!("{}/32", a.ip);
    aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &server,
        "--ip-permissions",
        &format!("IpProtocol=tcp,FromPort=8080,ToPort=8080,IpRanges=[{{CidrIp={cidr}}}]"),
    ]);
    assert!(
        eventually(Duration::from_secs(5), || tcp_round_trip(
            &a.ns, b.ip, 8080, SHORT
        ))
        .is_some(),
        "the rule opens 8080 from A\n{}",
        agent.log()
    );
    assert!(
        !tcp_round_trip(&b.ns, a.ip, 8080, SHORT),
        "nothing opened towards A"
    );
    let mut established = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("connect");
    assert!(echoes(&mut established, "before\n"));

    aws.json(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &server,
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        &cidr,
    ]);
    assert!(
        eventually(Duration::from_secs(5), || !tcp_round_trip(
            &a.ns, b.ip, 8080, SHORT
        ))
        .is_some(),
        "revoked: new connections refused"
    );
    assert!(
        echoes(&mut established, "after\n"),
        "a tracked flow outlives the revoke, as on AWS"
    );
}

#[test]
fn instances_templates_references_and_rule_descriptions_through_the_aws_cli() {
    let topo = Topology::new(&["172.31.62.10"]);
    let w = &topo.workloads[0];
    let (agent, aws) = start_in_default_account(&topo.host);
    let web = create_group(&aws, "web");
    let db = create_group(&aws, "db");
    let instance = agent.run_instance(w, &[&web]);

    let query = |query: &str| {
        aws.text(&[
            "ec2",
            "describe-instances",
            "--instance-ids",
            &instance,
            "--query",
            query,
            "--output",
            "text",
        ])
    };
    assert_eq!(
        query("Reservations[0].Instances[0].State.Name").trim(),
        "running"
    );
    let running = aws.json(&[
        "ec2",
        "describe-instances",
        "--filters",
        "Name=instance-state-name,Values=running",
        "--page-size",
        "5",
    ]);
    assert_eq!(running["Reservations"].as_array().map(Vec::len), Some(1));
    let out = aws.json(&["ec2", "stop-instances", "--instance-ids", &instance]);
    assert_eq!(
        out["StoppingInstances"][0]["CurrentState"]["Name"],
        "stopped"
    );
    aws.text(&[
        "ec2",
        "wait",
        "instance-stopped",
        "--instance-ids",
        &instance,
    ]);
    aws.json(&["ec2", "start-instances", "--instance-ids", &instance]);
    assert_eq!(
        query("Reservations[0].Instances[0].State.Name").trim(),
        "running"
    );
    let out = aws.cli(&[
        "ec2",
        "modify-instance-attribute",
        "--instance-id",
        &instance,
        "--groups",
        &web,
        &db,
    ]);
    assert!(out.success(), "{out}");
    let groups = query("Reservations[0].Instances[0].SecurityGroups[].GroupName");
    assert_eq!(groups.split_whitespace().collect::<Vec<_>>(), ["web", "db"]);

    let template = aws.json(&[
        "ec2",
        "create-launch-template",
        "--launch-template-name",
        "web-template",
        "--launch-template-data",
        &format!(r#"{{"SecurityGroupIds":["{web}"]}}"#),
    ]);
    let template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        .as_str()
        .expect("LaunchTemplateId")
        .to_string();
    let listed = aws.json(&["ec2", "describe-launch-templates"]);
    assert_eq!(
        listed["LaunchTemplates"][0]["LaunchTemplateId"],
        template_id.as_str()
    );
    aws.json(&[
        "ec2",
        "delete-launch-template",
        "--launch-template-id",
        &template_id,
    ]);

    let refs = aws.json(&[
        "ec2",
        "describe-security-group-references",
        "--group-id",
        &web,
    ]);
    assert_eq!(refs["SecurityGroupReferenceSet"], json!([]));
    let rule = aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "443",
        "--cidr",
        "10.0.0.0/8",
    ])["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .expect("rule ID")
        .to_string();
    aws.json(&[
        "ec2",
        "update-security-group-rule-descriptions-ingress",
        "--group-id",
        &web,
        "--security-group-rule-descriptions",
        &format!("SecurityGroupRuleId={rule},Description=https from the office"),
    ]);
    let described = aws.text(&[
        "ec2",
        "describe-security-group-rules",
        "--security-group-rule-ids",
        &rule,
        "--query",
        "SecurityGroupRules[0].Description",
        "--output",
        "text",
    ]);
    assert_eq!(described.trim(), "https from the office");

    let out = aws.json(&["ec2", "terminate-instances", "--instance-ids", &instance]);
    assert_eq!(
        out["TerminatingInstances"][0]["CurrentState"]["Name"],
        "terminated"
    );
    aws.fails(
        "IncorrectInstanceState",
        &["ec2", "start-instances", "--instance-ids", &instance],
    );
}

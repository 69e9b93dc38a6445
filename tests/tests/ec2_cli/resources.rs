//! Tags, VPCs, prefix lists, instances, launch templates, references, and real traffic opened and
//! closed through the AWS CLI.

use super::*;

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
fn vpc_attributes_read_and_set_as_terraform_and_ansible_use_them() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    // `data "aws_vpc" { default = true }` asks with the older filter spelling.
    let default = aws.json(&[
        "ec2",
        "describe-vpcs",
        "--filters",
        "Name=isDefault,Values=true",
    ]);
    let default = default["Vpcs"][0]["VpcId"]
        .as_str()
        .expect("the default VPC");
    let attribute = |vpc: &str, name: &str| {
        aws.json(&[
            "ec2",
            "describe-vpc-attribute",
            "--vpc-id",
            vpc,
            "--attribute",
            name,
        ])
    };
    assert_eq!(
        attribute(default, "enableDnsSupport"),
        json!({"VpcId": default, "EnableDnsSupport": {"Value": true}})
    );
    assert_eq!(
        attribute(default, "enableDnsHostnames")["EnableDnsHostnames"],
        json!({"Value": true}),
        "a default VPC has DNS hostnames"
    );
    let created = aws.json(&["ec2", "create-vpc", "--cidr-block", "10.21.0.0/16"]);
    let vpc = created["Vpc"]["VpcId"].as_str().expect("VpcId");
    assert_eq!(
        attribute(vpc, "enableDnsHostnames")["EnableDnsHostnames"],
        json!({"Value": false}),
        "a VPC you create has none"
    );
    assert_eq!(
        attribute(vpc, "enableNetworkAddressUsageMetrics")["EnableNetworkAddressUsageMetrics"],
        json!({"Value": false})
    );
    let out = aws.cli(&[
        "ec2",
        "modify-vpc-attribute",
        "--vpc-id",
        vpc,
        "--enable-dns-hostnames",
    ]);
    assert!(out.success(), "{out}");
    assert_eq!(
        attribute(vpc, "enableDnsHostnames")["EnableDnsHostnames"],
        json!({"Value": true})
    );
    aws.json(&[
        "ec2",
        "modify-vpc-attribute",
        "--vpc-id",
        vpc,
        "--no-enable-dns-support",
    ]);
    assert_eq!(
        attribute(vpc, "enableDnsSupport")["EnableDnsSupport"],
        json!({"Value": false})
    );
    aws.fails(
        "InvalidParameterCombination",
        &[
            "ec2",
            "modify-vpc-attribute",
            "--vpc-id",
            vpc,
            "--enable-dns-support",
            "--enable-dns-hostnames",
        ],
    );
    aws.fails(
        "InvalidParameterValue",
        &[
            "ec2",
            "describe-vpc-attribute",
            "--vpc-id",
            vpc,
            "--attribute",
            "enableClassicLink",
        ],
    );
    aws.fails(
        "InvalidVpcID.NotFound",
        &[
            "ec2",
            "describe-vpc-attribute",
            "--vpc-id",
            "vpc-00000000000000000",
            "--attribute",
            "enableDnsSupport",
        ],
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

#[test]
fn the_local_cli_reaches_the_account_and_region_of_an_ec2_key() {
    let ns = Netns::new("fwa");
    let (agent, aws) = start_agent(&ns);
    let web = create_group(&aws, "web");
    let found = agent.cli(&[
        "--account-id",
        ACCOUNT_ID,
        "--region",
        REGION,
        "describe-security-groups",
        "--group-ids",
        &web,
    ]);
    assert_eq!(found["SecurityGroups"][0]["OwnerId"], ACCOUNT_ID);
    let elsewhere = agent
        .try_cli(&["describe-security-groups", "--group-ids", &web])
        .expect_err("the default account does not have it");
    assert_eq!(elsewhere.code(), "InvalidGroup.NotFound");
    let bad = agent
        .try_cli(&["--account-id", "12", "describe-security-groups"])
        .expect_err("not an account ID");
    assert_eq!(bad.code(), "InvalidParameterValue");
}

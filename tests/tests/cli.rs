//! The CLI against a running agent: AWS verbs, options, exit codes, error codes and JSON, and
//! durability (kill -9, then byte-identical describes).

use firewall_testkit::{agent::Agent, topology::Topology};
use serde_json::json;

#[test]
fn vpcs_tags_launch_templates_and_group_operations_behave_like_aws() {
    let topo = Topology::new(&["172.31.40.10"]);
    let w = &topo.workloads[0];
    let agent = Agent::start(&topo.host);

    // VPCs.
    let vpc = agent.cli(&[
        "create-vpc",
        "--cidr-block",
        "10.20.0.0/16",
        "--amazon-provided-ipv6-cidr-block",
    ]);
    let vpc_id = vpc["Vpc"]["VpcId"].as_str().unwrap().to_string();
    assert_eq!(vpc["Vpc"]["CidrBlock"], "10.20.0.0/16");
    assert_eq!(
        vpc["Vpc"]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"],
        "associated"
    );
    let err = agent
        .try_cli(&["create-vpc", "--cidr-block", "10.0.0.0/8"])
        .unwrap_err();
    assert_eq!((err.status, err.code()), (254, "InvalidVpc.Range"));
    let defaults = agent.cli(&[
        "describe-security-groups",
        "--filters",
        &format!("Name=vpc-id,Values={vpc_id}"),
    ]);
    assert_eq!(defaults["SecurityGroups"][0]["GroupName"], "default");

    // Groups, rules with tags, copy, modify, descriptions.
    let web = agent.cli(&[
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "web tier",
        "--tag-specifications",
        r#"[{"ResourceType":"security-group","Tags":[{"Key":"team","Value":"a"}]}]"#,
    ]);
    assert_eq!(web["Tags"], json!([{"Key": "team", "Value": "a"}]));
    let web = web["GroupId"].as_str().unwrap().to_string();
    let out = agent.cli(&["authorize-security-group-ingress", "--group-id", &web, "--ip-permissions",
        r#"[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"10.0.0.0/8","Description":"https"}]}]"#,
        "--tag-specifications", r#"[{"ResourceType":"security-group-rule","Tags":[{"Key":"why","Value":"lb"}]}]"#]);
    assert_eq!(out["Return"], true);
    let rule = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        out["SecurityGroupRules"][0]["Tags"],
        json!([{"Key": "why", "Value": "lb"}])
    );
    let tagged = agent.cli(&[
        "describe-security-group-rules",
        "--filters",
        "Name=tag:why,Values=lb",
    ]);
    assert_eq!(
        tagged["SecurityGroupRules"][0]["SecurityGroupRuleId"],
        rule.as_str()
    );

    let modify = format!(
        r#"[{{"SecurityGroupRuleId":"{rule}","SecurityGroupRule":{{"IpProtocol":"tcp","FromPort":8443,"ToPort":8443,"CidrIpv4":"10.0.0.0/8"}}}}]"#
    );
    assert_eq!(
        agent.cli(&[
            "modify-security-group-rules",
            "--group-id",
            &web,
            "--security-group-rules",
            &modify
        ]),
        json!({"Return": true})
    );
    let after = agent.cli(&[
        "describe-security-group-rules",
        "--security-group-rule-ids",
        &rule,
    ]);
    assert_eq!(
        (
            after["SecurityGroupRules"][0]["FromPort"].clone(),
            after["SecurityGroupRules"][0]["Tags"][0]["Key"].clone()
        ),
        (json!(8443), json!("why"))
    );
    let bad = format!(
        r#"[{{"SecurityGroupRuleId":"{rule}","SecurityGroupRule":{{"IpProtocol":"tcp","FromPort":1,"ToPort":1,"CidrIpv6":"::/0"}}}}]"#
    );
    let err = agent
        .try_cli(&[
            "modify-security-group-rules",
            "--group-id",
            &web,
            "--security-group-rules",
            &bad,
        ])
        .unwrap_err();
    assert_eq!(
        err.code(),
        "InvalidParameterValue",
        "cannot change the peer type"
    );
    agent.cli(&[
        "update-security-group-rule-descriptions-ingress",
        "--group-id",
        &web,
        "--security-group-rule-descriptions",
        &format!("SecurityGroupRuleId={rule},Description=alt https"),
    ]);
    let described = agent.cli(&["describe-security-groups", "--group-ids", &web]);
    assert_eq!(
        described["SecurityGroups"][0]["IpPermissions"][0]["IpRanges"][0],
        json!({"Description": "alt https", "CidrIp": "10.0.0.0/8"})
    );
    let copy = agent.cli(&[
        "copy-security-group",
        "--group-id",
        &web,
        "--group-name",
        "web-copy",
    ]);
    let copy = copy["GroupId"].as_str().unwrap().to_string();
    let copied = agent.cli(&["describe-security-groups", "--group-ids", &copy]);
    assert_eq!(
        copied["SecurityGroups"][0]["IpPermissions"],
        described["SecurityGroups"][0]["IpPermissions"]
    );
    assert_eq!(
        agent.cli(&["describe-security-group-references", "--group-id", &web]),
        json!({"SecurityGroupReferenceSet": []})
    );
    let by_port = agent.cli(&[
        "describe-security-groups",
        "--filters",
        "Name=ip-permission.to-port,Values=8443",
    ]);
    assert_eq!(
        by_port["SecurityGroups"].as_array().unwrap().len(),
        2,
        "web and its copy"
    );

    // Tags on anything.
    assert!(
        agent
            .try_cli(&[
                "create-tags",
                "--resources",
                &vpc_id,
                &rule,
                "--tags",
                "Key=env,Value=test"
            ])
            .unwrap()
            .is_null()
    );
    let tags = agent.cli(&["describe-tags", "--filters", "Name=key,Values=env"]);
    assert_eq!(tags["Tags"].as_array().unwrap().len(), 2);
    let err = agent
        .try_cli(&[
            "create-tags",
            "--resources",
            "sg-00000000000000fff",
            "--tags",
            "Key=a,Value=b",
        ])
        .unwrap_err();
    assert_eq!(err.code(), "InvalidGroup.NotFound");
    agent.cli_raw(&["delete-tags", "--resources", &vpc_id, "--tags", "Key=env"]);
    assert_eq!(
        agent.cli(&["describe-tags", "--filters", "Name=key,Values=env"])["Tags"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Launch templates carry the groups into run-instances.
    let lt = agent.cli(&[
        "create-launch-template",
        "--launch-template-name",
        "web-tier",
        "--launch-template-data",
        &format!(r#"{{"SecurityGroupIds":["{web}"]}}"#),
    ]);
    let lt = lt["LaunchTemplate"]["LaunchTemplateId"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = w.ip.to_string();
    let run = agent.cli(&[
        "run-instances",
        "--launch-template",
        &format!("LaunchTemplateId={lt},Version=1"),
        "--private-ip-address",
        &ip,
        "--interface",
        &w.host_if,
    ]);
    assert_eq!(
        run["Instances"][0]["SecurityGroups"][0]["GroupId"],
        web.as_str()
    );
    let err = agent.try_cli(&["delete-vpc", "--vpc-id", &vpc_id]);
    assert!(err.is_ok(), "only its default group is in it: {err:?}");
    let err = agent
        .try_cli(&["describe-vpcs", "--vpc-ids", &vpc_id])
        .unwrap_err();
    assert_eq!(err.code(), "InvalidVpcID.NotFound");

    // Pagination only on request.
    for i in 0..5 {
        agent.create_group(&format!("page{i}"));
    }
    let page = agent.cli(&["describe-security-groups", "--max-results", "5"]);
    let token = page["NextToken"]
        .as_str()
        .expect("more than 5 groups")
        .to_string();
    let rest = agent.cli(&[
        "describe-security-groups",
        "--max-results",
        "5",
        "--next-token",
        &token,
    ]);
    let all = agent.cli(&["describe-security-groups"]);
    assert!(all.get("NextToken").is_none());
    assert_eq!(
        page["SecurityGroups"].as_array().unwrap().len()
            + rest["SecurityGroups"].as_array().unwrap().len(),
        all["SecurityGroups"].as_array().unwrap().len()
    );
}

#[test]
fn every_acknowledged_change_survives_kill_9_and_describes_stay_byte_identical() {
    let topo = Topology::new(&["172.31.41.10"]);
    let w = &topo.workloads[0];
    let agent = Agent::start(&topo.host);
    let web = agent.create_group("web");
    agent.authorize_ingress(&web, "tcp", "80", "10.0.0.0/8");
    agent.cli(&["create-vpc", "--cidr-block", "10.30.0.0/16"]);
    agent.cli(&[
        "create-managed-prefix-list",
        "--prefix-list-name",
        "pl",
        "--max-entries",
        "3",
        "--address-family",
        "IPv6",
        "--entries",
        "Cidr=2001:db8::/32",
    ]);
    agent.cli(&[
        "create-launch-template",
        "--launch-template-name",
        "lt-one",
        "--launch-template-data",
        "{}",
    ]);
    agent.run_instance(w, &[&web]);
    agent.cli_raw(&[
        "create-tags",
        "--resources",
        &web,
        "--tags",
        "Key=k,Value=v",
    ]);
    let describes: &[&[&str]] = &[
        &["describe-security-groups"],
        &["describe-security-group-rules"],
        &["describe-vpcs"],
        &["describe-instances"],
        &["describe-managed-prefix-lists"],
        &["describe-launch-templates"],
        &["describe-tags"],
    ];
    let before: Vec<String> = describes.iter().map(|args| agent.cli_raw(args)).collect();

    let dir = agent.kill9();
    let agent = Agent::start_in(&topo.host, dir);
    for (args, expected) in describes.iter().zip(&before) {
        assert_eq!(
            &agent.cli_raw(args),
            expected,
            "{args:?} changed across kill -9"
        );
    }
}

#[test]
fn quotas_come_from_the_agent_configuration() {
    let topo = Topology::new(&["172.31.42.10"]);
    let agent = Agent::start_with(
        &topo.host,
        &["--rules-per-group", "2", "--groups-per-instance", "1"],
    );
    let [web, db] = agent.create_groups(["web", "db"]);
    agent.authorize_ingress(&web, "tcp", "1", "10.0.0.0/8");
    agent.authorize_ingress(&web, "tcp", "2", "10.0.0.0/8");
    let err = agent
        .try_authorize_ingress(&web, "tcp", "3", "10.0.0.0/8")
        .unwrap_err();
    assert_eq!(err.code(), "RulesPerSecurityGroupLimitExceeded");
    let w = &topo.workloads[0];
    let ip = w.ip.to_string();
    let err = agent
        .try_cli(&[
            "run-instances",
            "--security-group-ids",
            &web,
            &db,
            "--private-ip-address",
            &ip,
            "--interface",
            &w.host_if,
        ])
        .unwrap_err();
    assert_eq!(err.code(), "SecurityGroupsPerInstanceLimitExceeded");
}

#[test]
fn a_verb_gives_up_after_the_read_timeout_when_the_agent_never_answers() {
    // A socket that accepts and never answers (an agent stopped in the middle of a request).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let holder = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let mut verb = std::process::Command::new(firewall_testkit::agent::agent_binary())
        .arg("--socket")
        .arg(&path)
        .args(["--cli-read-timeout", "1", "describe-vpcs"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let held = holder.join().unwrap();
    assert!(held.is_ok(), "the verb connected");
    // Bounded: a verb that waits for ever is killed and fails the test.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while verb.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let finished = verb.try_wait().unwrap().is_some();
    if !finished {
        let _ = verb.kill();
    }
    let out = verb.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(finished, "the verb waits for ever: {stderr}");
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("Read timeout on endpoint URL"), "{stderr}");
}

//! The walking skeleton end to end: two workloads behind the agent, real TCP/UDP between their
//! namespaces, rules changed while traffic flows.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    topology::Topology,
    traffic::{EchoServer, echoes, eventually, tcp_connect, tcp_round_trip, udp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

#[test]
fn b_allows_tcp_8080_from_a_only_and_rule_changes_apply_live_without_cutting_tracked_flows() {
    let topo = Topology::new(&["172.31.1.10", "172.31.2.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);

    let [group_a, group_b] = agent.create_groups(["group-a", "group-b"]);
    agent.authorize_ingress(&group_b, "tcp", "8080", &a.cidr());
    // A accepts tcp/7070 from B, so B can open a connection to A.
    agent.authorize_ingress(&group_a, "tcp", "7070", &b.cidr());
    agent.run_instance(a, &[&group_a]);
    agent.run_instance(b, &[&group_b]);

    let _b_8080 = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _b_9090 = EchoServer::tcp(&b.ns, b.ip, 9090);
    let _a_7070 = EchoServer::tcp(&a.ns, a.ip, 7070);

    assert!(
        tcp_round_trip(&a.ns, b.ip, 8080, SHORT),
        "A→B:8080 is allowed"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 9090, SHORT),
        "A→B:9090 has no rule"
    );
    // B's outbound default rule lets it open the connection; A's replies reach B through
    // conntrack although B has no inbound rule for them.
    assert!(
        tcp_round_trip(&b.ns, a.ip, 7070, SHORT),
        "B→A:7070 and its replies"
    );

    let mut established = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("A→B:8080 connects");
    assert!(echoes(&mut established, "before\n"));

    agent.authorize_ingress(&group_b, "tcp", "9090", &a.cidr());
    let took = eventually(Duration::from_secs(1), || {
        tcp_round_trip(&a.ns, b.ip, 9090, Duration::from_millis(300))
    });
    assert!(
        took.is_some(),
        "authorizing 9090 takes effect within a second"
    );

    agent.revoke_ingress(&group_b, "tcp", "8080", &a.cidr());
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 8080, SHORT),
        "no new 8080 connections after revoke"
    );
    assert!(
        echoes(&mut established, "after revoke\n"),
        "the tracked 8080 connection keeps working"
    );

    let stats = agent.cli(&["get-dataplane-statistics"]);
    assert!(stats["Drops"]["no-rule"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        stats["Passes"]["conntrack"].as_u64().unwrap() > 0,
        "{stats}"
    );
}

#[test]
fn udp_replies_come_back_through_conntrack_and_unlisted_ports_stay_closed() {
    let topo = Topology::new(&["172.31.3.10", "172.31.4.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [group_a, group_b] = agent.create_groups(["client", "dns"]);
    agent.authorize_ingress(&group_b, "udp", "5353", &a.cidr());
    agent.run_instance(a, &[&group_a]);
    agent.run_instance(b, &[&group_b]);
    let _dns = EchoServer::udp(&b.ns, b.ip, 5353);
    let _other = EchoServer::udp(&b.ns, b.ip, 5354);

    assert!(
        udp_round_trip(&a.ns, b.ip, 5353, SHORT),
        "udp/5353 allowed, reply tracked"
    );
    assert!(
        !udp_round_trip(&a.ns, b.ip, 5354, SHORT),
        "udp/5354 has no rule"
    );
}

#[test]
fn removing_the_default_outbound_rule_blocks_new_outbound_flows_and_terminate_detaches() {
    let topo = Topology::new(&["172.31.5.10", "172.31.6.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [group_a, group_b] = agent.create_groups(["no-egress", "open"]);
    agent.authorize_ingress(&group_b, "tcp", "80", "172.31.0.0/16");
    agent.run_instance(a, &[&group_a]);
    let b_instance = agent.run_instance(b, &[&group_b]);
    let _web = EchoServer::tcp(&b.ns, b.ip, 80);
    let _other = EchoServer::tcp(&b.ns, b.ip, 81);

    assert!(tcp_round_trip(&a.ns, b.ip, 80, SHORT));
    agent.cli(&[
        "revoke-security-group-egress",
        "--group-id",
        &group_a,
        "--protocol",
        "all",
        "--cidr",
        "0.0.0.0/0",
    ]);
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "A has no outbound rule left"
    );
    agent.authorize_egress(&group_a, "tcp", "80", "172.31.0.0/16");
    assert!(
        tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "outbound tcp/80 allowed again"
    );

    assert!(
        !tcp_round_trip(&a.ns, b.ip, 81, SHORT),
        "B allows only tcp/80"
    );
    agent.authorize_egress(&group_a, "tcp", "81", "172.31.0.0/16");
    let out = agent.cli(&["terminate-instances", "--instance-ids", &b_instance]);
    assert_eq!(
        out["TerminatingInstances"][0]["CurrentState"]["Name"],
        "terminated"
    );
    assert!(
        tcp_round_trip(&a.ns, b.ip, 81, SHORT),
        "B's interface is no longer filtered"
    );
}

#[test]
fn cli_errors_look_like_the_aws_cli_and_change_nothing() {
    let topo = Topology::new(&["172.31.7.10"]);
    let agent = Agent::start(&topo.host);
    let before = agent.cli(&["describe-security-groups"]);

    let err = agent
        .try_authorize_ingress("sg-0123456789abcdef0", "tcp", "22", "10.0.0.0/8")
        .unwrap_err();
    assert_eq!(err.status, 254);
    assert_eq!(err.code(), "InvalidGroup.NotFound");
    assert!(err.stderr.contains("when calling the AuthorizeSecurityGroupIngress operation: The security group 'sg-0123456789abcdef0' does not exist"), "{}", err.stderr);

    let group = agent.create_group("web");
    let err = agent
        .try_cli(&["authorize-security-group-ingress", "--group-id", &group, "--ip-permissions",
            r#"[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"10.0.0.0/8"}]},{"IpProtocol":"tcp","FromPort":23,"ToPort":23,"IpRanges":[{"CidrIp":"10.0.0.0/33"}]}]"#])
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
    let rules = agent.cli(&[
        "describe-security-group-rules",
        "--filters",
        &format!("Name=group-id,Values={group}"),
    ]);
    assert_eq!(
        rules["SecurityGroupRules"].as_array().unwrap().len(),
        2,
        "only the two default egress rules: {rules}"
    );

    let err = agent
        .try_cli(&[
            "run-instances",
            "--security-group-ids",
            &group,
            "--private-ip-address",
            "172.31.7.99",
            "--interface",
            "does-not-exist",
        ])
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
    assert_eq!(
        agent.cli(&["describe-instances"])["Reservations"],
        serde_json::json!([])
    );

    let after = agent.cli(&[
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=default",
    ]);
    assert_eq!(after["SecurityGroups"], before["SecurityGroups"]);
}

#[test]
fn an_agent_restart_neither_detaches_nor_forgets_and_established_flows_never_blink() {
    let topo = Topology::new(&["172.31.8.10", "172.31.9.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let group = agent.create_group("persisted");
    agent.authorize_ingress(&group, "tcp", "443", "172.31.8.0/24");
    agent.run_instance(a, &[&group]);
    agent.run_instance(b, &[&group]);
    let groups = agent.cli(&["describe-security-groups"]);
    let instances = agent.cli(&["describe-instances"]);
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    let mut established = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443");
    assert!(echoes(&mut established, "before\n"));
    let before = agent.cli(&["get-dataplane-statistics"]);

    let dir = agent.stop();
    // No agent runs: the pinned programs keep enforcing the last policy.
    assert!(
        echoes(&mut established, "while stopped\n"),
        "tracked flow continues"
    );
    assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT), "still allowed");
    assert!(!tcp_round_trip(&a.ns, b.ip, 444, SHORT), "still denied");

    let agent = Agent::start_in(&topo.host, dir);
    assert_eq!(agent.cli(&["describe-security-groups"]), groups);
    assert_eq!(agent.cli(&["describe-instances"]), instances);
    assert!(
        echoes(&mut established, "after restart\n"),
        "the flow never blinked"
    );
    assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT));
    assert!(!tcp_round_trip(&a.ns, b.ip, 444, SHORT));
    let after = agent.cli(&["get-dataplane-statistics"]);
    for (kind, name) in [("Passes", "conntrack"), ("Drops", "no-rule")] {
        assert!(
            after[kind][name].as_u64() > before[kind][name].as_u64(),
            "{kind}.{name} kept counting: {before} → {after}"
        );
    }
    let rule_hits = |s: &serde_json::Value| {
        s["RuleHits"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(
        rule_hits(&after) > rule_hits(&before),
        "rule counters survive the restart"
    );

    // Changes after the restart still apply, and terminate detaches what the old agent attached.
    agent.authorize_ingress(&group, "tcp", "444", "172.31.8.0/24");
    assert!(tcp_round_trip(&a.ns, b.ip, 444, SHORT));
}

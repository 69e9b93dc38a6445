//! Observability on real traffic: `/metrics` counts what the kernel judged, `explain-verdict`
//! agrees with what real packets meet, and a `--dry-run`'s preview lists exactly the flows that
//! the same change with `--flush-flows` then cuts.

use std::{net::TcpStream, time::Duration};

use firewall_testkit::{
    agent::Agent,
    metrics::{self, DEFAULT_ADDRESS},
    topology::{Topology, Workload},
    traffic::{EchoServer, echoes, ping, tcp_connect, tcp_round_trip},
};
use serde_json::Value;

const SHORT: Duration = Duration::from_millis(700);

/// The `sgr-` ID of the only rule an authorize answer created.
fn rule_id(authorized: &Value) -> String {
    authorized["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .expect("a rule ID")
        .to_string()
}

fn local_port(stream: &TcpStream) -> u16 {
    stream.local_addr().expect("local address").port()
}

#[test]
fn metrics_count_drops_passes_and_hits_by_interface_rule_and_group_and_api_calls() {
    let topo = Topology::new(&["172.31.40.10", "172.31.41.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["client", "server"]);
    let rule = rule_id(&agent.authorize_ingress(&server, "tcp", "8080", &a.cidr()));
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    let _allowed = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _denied = EchoServer::tcp(&b.ns, b.ip, 8081);
    assert!(
        agent
            .try_cli(&[
                "describe-security-groups",
                "--group-ids",
                "sg-00000000000000000"
            ])
            .is_err()
    );
    let before = metrics::scrape(&topo.host, DEFAULT_ADDRESS);

    assert!(tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "8080 is allowed");
    assert!(!tcp_round_trip(&a.ns, b.ip, 8081, SHORT), "8081 is not");
    let after = metrics::scrape(&topo.host, DEFAULT_ADDRESS);
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);

    let on_b = |reason| [("interface", b.host_if.as_str()), ("reason", reason)];
    let on_a = |reason| [("interface", a.host_if.as_str()), ("reason", reason)];
    assert!(moved("firewall_interface_drops_total", &on_b("no-rule")) >= 1.0);
    assert_eq!(
        moved("firewall_interface_drops_total", &on_a("no-rule")),
        0.0
    );
    assert!(moved("firewall_interface_passes_total", &on_b("rule")) >= 1.0);
    assert!(moved("firewall_interface_passes_total", &on_b("conntrack")) >= 1.0);
    assert!(moved("firewall_drops_total", &[("reason", "no-rule")]) >= 1.0);
    assert!(
        moved(
            "firewall_rule_hits_total",
            &[("rule", &rule), ("group", &server)]
        ) >= 1.0
    );
    assert!(moved("firewall_group_hits_total", &[("group", &server)]) >= 1.0);
    assert!(after.sum("firewall_tracked_flows", &[]) >= 1.0);
    assert!(after.sum("firewall_conntrack_capacity", &[]) > 0.0);
    assert!(after.has("firewall_conntrack_fill_ratio"));

    let call = |action, code| [("front", "socket"), ("action", action), ("code", code)];
    assert_eq!(
        after.sum(
            "firewall_api_requests_total",
            &call("AuthorizeSecurityGroupIngress", "OK")
        ),
        1.0
    );
    assert_eq!(
        after.sum(
            "firewall_api_requests_total",
            &call("DescribeSecurityGroups", "InvalidGroup.NotFound")
        ),
        1.0
    );
    let latency = [("front", "socket"), ("action", "RunInstances")];
    assert_eq!(
        after.sum("firewall_api_request_duration_seconds_count", &latency),
        2.0
    );
    // Two groups, a rule and two instances: five changes enforced.
    assert_eq!(
        after.sum("firewall_change_enforced_seconds_count", &[]),
        5.0
    );
}

/// One explained packet and what real traffic does with the same packet.
struct Case<'a> {
    what: &'a str,
    args: Vec<String>,
    verdict: &'a str,
    reason: &'a str,
    traffic: bool,
}

fn explain(agent: &Agent, instance: &str, case: &Case) -> Value {
    let mut args = vec!["explain-verdict", "--instance-id", instance];
    args.extend(case.args.iter().map(String::as_str));
    agent.cli(&args)
}

fn tcp_in(peer: &Workload, port: u16) -> Vec<String> {
    let port = port.to_string();
    let peer = peer.ip.to_string();
    [
        "--direction",
        "ingress",
        "--protocol",
        "tcp",
        "--port",
        &port,
        "--peer",
        &peer,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn explain_verdict_agrees_with_real_traffic() {
    let topo = Topology::new(&["172.31.42.10", "172.31.43.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["client", "server"]);
    let rule = rule_id(&agent.authorize_ingress(&server, "tcp", "8080", &a.cidr()));
    let a_id = agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let _s8080 = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _s8081 = EchoServer::tcp(&b.ns, b.ip, 8081);
    let _s9000 = EchoServer::tcp(&a.ns, a.ip, 9000);

    let icmp_in = vec![
        "--direction".into(),
        "ingress".into(),
        "--protocol".into(),
        "icmp".into(),
        "--peer".into(),
        a.ip.to_string(),
    ];
    let cases = [
        (
            &b_id,
            Case {
                what: "a → b tcp/8080",
                args: tcp_in(a, 8080),
                verdict: "allowed",
                reason: "rule",
                traffic: true,
            },
        ),
        (
            &b_id,
            Case {
                what: "a → b tcp/8081",
                args: tcp_in(a, 8081),
                verdict: "denied",
                reason: "no-rule",
                traffic: false,
            },
        ),
        (
            &a_id,
            Case {
                what: "b → a tcp/9000",
                args: tcp_in(b, 9000),
                verdict: "denied",
                reason: "no-rule",
                traffic: false,
            },
        ),
        (
            &b_id,
            Case {
                what: "a → b ping",
                args: icmp_in,
                verdict: "denied",
                reason: "no-rule",
                traffic: false,
            },
        ),
    ];
    for (instance, case) in &cases {
        let answer = explain(&agent, instance, case);
        assert_eq!(answer["Verdict"], case.verdict, "{}: {answer}", case.what);
        assert_eq!(answer["Reason"], case.reason, "{}: {answer}", case.what);
        let real = match case.what {
            "a → b tcp/8080" => tcp_round_trip(&a.ns, b.ip, 8080, SHORT),
            "a → b tcp/8081" => tcp_round_trip(&a.ns, b.ip, 8081, SHORT),
            "b → a tcp/9000" => tcp_round_trip(&b.ns, a.ip, 9000, SHORT),
            _ => ping(&a.ns, b.ip, SHORT),
        };
        assert_eq!(
            real, case.traffic,
            "{}: traffic disagrees with {answer}",
            case.what
        );
    }
    let allowed = explain(&agent, &b_id, &cases[0].1);
    assert_eq!(
        allowed["SecurityGroupRule"]["SecurityGroupRuleId"],
        rule.as_str()
    );
    assert_eq!(allowed["SecurityGroupRule"]["GroupId"], server.as_str());

    // A flow opened while the rule existed passes by conntrack after the rule is revoked; a new
    // flow of the same ports is denied.
    let mut held = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("8080 connects");
    assert!(echoes(&mut held, "one\n"));
    agent.revoke_ingress(&server, "tcp", "8080", &a.cidr());
    let mut tracked_args = tcp_in(a, 8080);
    tracked_args.extend(["--peer-port".to_string(), local_port(&held).to_string()]);
    let tracked = Case {
        what: "held flow",
        args: tracked_args,
        verdict: "allowed",
        reason: "conntrack",
        traffic: true,
    };
    let answer = explain(&agent, &b_id, &tracked);
    assert_eq!(
        (&answer["Verdict"], &answer["Reason"]),
        (&Value::from("allowed"), &Value::from("conntrack")),
        "{answer}"
    );
    assert_eq!(answer["TrackedFlow"]["SourcePort"], local_port(&held));
    assert_eq!(answer["TrackedFlow"]["DestinationPort"], 8080);
    assert!(echoes(&mut held, "two\n"), "the tracked flow passes");
    let answer = explain(&agent, &b_id, &cases[0].1);
    assert_eq!(answer["Reason"], "no-rule", "{answer}");
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 8080, SHORT),
        "a new flow is denied"
    );

    let err = agent
        .try_cli(&[
            "explain-verdict",
            "--instance-id",
            &b_id,
            "--direction",
            "ingress",
            "--protocol",
            "tcp",
            "--peer",
            "10.0.0.1",
        ])
        .unwrap_err();
    assert_eq!(err.code(), "MissingParameter", "{}", err.stderr);
}

/// The flows of a preview as (destination port, source port) pairs.
fn previewed(preview: &Value) -> Vec<(u64, u64)> {
    let mut flows: Vec<(u64, u64)> = preview["FlowsNoLongerAllowed"]
        .as_array()
        .expect("a list of flows")
        .iter()
        .map(|f| {
            (
                f["DestinationPort"].as_u64().unwrap(),
                f["SourcePort"].as_u64().unwrap(),
            )
        })
        .collect();
    flows.sort();
    flows
}

fn tracked_flows(agent: &Agent) -> u64 {
    agent.cli(&["get-dataplane-statistics"])["TrackedFlows"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_dry_run_previews_exactly_the_flows_a_flush_then_cuts() {
    let topo = Topology::new(&["172.31.44.10", "172.31.45.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["client", "server"]);
    let rule_8080 = rule_id(&agent.authorize_ingress(&server, "tcp", "8080", &a.cidr()));
    agent.authorize_ingress(&server, "tcp", "8081", &a.cidr());
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let _s8080 = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _s8081 = EchoServer::tcp(&b.ns, b.ip, 8081);
    let mut cut: Vec<TcpStream> = (0..2)
        .map(|_| tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("8080 connects"))
        .collect();
    let mut kept = tcp_connect(&a.ns, b.ip, 8081, SHORT).expect("8081 connects");
    for stream in cut.iter_mut().chain([&mut kept]) {
        assert!(echoes(stream, "one\n"));
    }

    let revoke = [
        "revoke-security-group-ingress",
        "--group-id",
        &server,
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        &a.cidr(),
    ];
    let preview = agent.dry_run(&revoke);
    let mut expected: Vec<(u64, u64)> = cut
        .iter()
        .map(|s| (8080, u64::from(local_port(s))))
        .collect();
    expected.sort();
    assert_eq!(previewed(&preview), expected, "{preview}");
    assert_eq!(
        preview["RulesRemoved"][0]["SecurityGroupRule"]["SecurityGroupRuleId"],
        rule_8080.as_str()
    );
    assert_eq!(preview["RulesRemoved"][0]["InstanceIds"][0], b_id.as_str());
    assert_eq!(preview["RulesAdded"], Value::Array(vec![]));
    for stream in cut.iter_mut().chain([&mut kept]) {
        assert!(echoes(stream, "two\n"), "a dry run changes nothing");
    }

    let moving = [
        "modify-instance-attribute",
        "--instance-id",
        &b_id,
        "--groups",
        &client,
    ];
    let preview_move = agent.dry_run(&moving);
    let mut every_inbound = expected.clone();
    every_inbound.push((8081, u64::from(local_port(&kept))));
    every_inbound.sort();
    assert_eq!(previewed(&preview_move), every_inbound, "{preview_move}");

    let flows_before = tracked_flows(&agent);
    let mut flushing = revoke.to_vec();
    flushing.push("--flush-flows");
    agent.cli(&flushing);
    assert_eq!(
        flows_before - tracked_flows(&agent),
        expected.len() as u64,
        "the flush cut as many flows as previewed"
    );
    for stream in &mut cut {
        assert!(!echoes(stream, "three\n"), "a previewed flow is cut");
    }
    assert!(
        echoes(&mut kept, "three\n"),
        "the flow not previewed is kept"
    );
}

//! Connection tracking on real traffic: what survives a rule change, and what `--flush-flows` cuts.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    topology::Topology,
    traffic::{EchoServer, echoes, tcp_connect},
};

const SHORT: Duration = Duration::from_millis(700);

#[test]
fn flush_flows_cuts_the_flows_a_revoke_no_longer_allows_and_keeps_the_others() {
    let topo = Topology::new(&["172.31.10.10", "172.31.11.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["client", "server"]);
    for port in ["8080", "8081"] {
        agent.authorize_ingress(&server, "tcp", port, &a.cidr());
    }
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    let _s1 = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _s2 = EchoServer::tcp(&b.ns, b.ip, 8081);
    let mut revoked = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("8080 connects");
    let mut kept = tcp_connect(&a.ns, b.ip, 8081, SHORT).expect("8081 connects");
    assert!(echoes(&mut revoked, "one\n") && echoes(&mut kept, "one\n"));

    // Without the option, AWS semantics: the tracked flow survives its rule.
    agent.revoke_ingress(&server, "tcp", "8080", &a.cidr());
    assert!(
        echoes(&mut revoked, "two\n"),
        "tracked flow survives a plain revoke"
    );

    // Revoking something else with --flush-flows cuts every flow the rules no longer allow.
    agent.authorize_ingress(&server, "udp", "9", &a.cidr());
    agent.revoke_ingress_flushing_flows(&server, "udp", "9", &a.cidr());
    assert!(!echoes(&mut revoked, "three\n"), "the 8080 flow is cut");
    assert!(
        echoes(&mut kept, "three\n"),
        "the 8081 flow is still allowed and kept"
    );

    let err = agent
        .try_cli(&[
            "authorize-security-group-ingress",
            "--group-id",
            &server,
            "--protocol",
            "tcp",
            "--port",
            "1",
            "--cidr",
            &a.cidr(),
            "--flush-flows",
        ])
        .unwrap_err();
    assert_eq!(
        err.status, 252,
        "--flush-flows is a revoke option: {}",
        err.stderr
    );
}

/// AWS's untracked flows on real traffic: open to 0.0.0.0/0 inbound while the default outbound
/// rule allows all traffic back, the connection costs no conntrack entry and a plain revoke cuts
/// it at once; the same port from one address is tracked and survives its revoke.
#[test]
fn a_flow_open_to_the_world_both_ways_is_untracked_and_a_plain_revoke_cuts_it() {
    let topo = Topology::new(&["172.31.12.10", "172.31.13.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["client", "server"]);
    agent.authorize_ingress(&server, "tcp", "8080", "0.0.0.0/0");
    agent.authorize_ingress(&server, "tcp", "8081", &a.cidr());
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    let _s1 = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _s2 = EchoServer::tcp(&b.ns, b.ip, 8081);
    let flows = || agent.cli(&["get-dataplane-statistics"])["TrackedFlows"].as_u64();
    assert_eq!(flows(), Some(0));
    let mut open = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("8080 connects");
    assert!(echoes(&mut open, "one\n"));
    // A's group has no rule open to the world inbound: A's interface tracks its side.
    assert_eq!(flows(), Some(1), "tracked on A's interface only");
    let mut narrow = tcp_connect(&a.ns, b.ip, 8081, SHORT).expect("8081 connects");
    assert!(echoes(&mut narrow, "one\n"));
    assert_eq!(
        flows(),
        Some(3),
        "the narrow flow is tracked on both interfaces"
    );

    agent.revoke_ingress(&server, "tcp", "8080", "0.0.0.0/0");
    agent.revoke_ingress(&server, "tcp", "8081", &a.cidr());
    assert!(
        !echoes(&mut open, "two\n"),
        "the untracked flow is cut at once"
    );
    assert!(echoes(&mut narrow, "two\n"), "the tracked flow survives");
}

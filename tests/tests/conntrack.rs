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

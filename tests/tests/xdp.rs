//! `serve --attach xdp`: what a workload sends is judged at its host-side veth's native XDP hook
//! (what is delivered to it stays at tc egress), with real traffic; a veth that refuses XDP keeps
//! tc ingress; and an agent of the other `--attach` mode taking over the pinned links switches
//! the hook make-before-break, keeping the policy and the tracked flows.

use std::{path::PathBuf, time::Duration};

use firewall_testkit::{
    agent::Agent,
    shell::sh,
    topology::{Topology, Workload},
    traffic::{EchoServer, echoes, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

/// The hooks the agent has pinned for `workload`'s veth (`ingress`, `egress`, `xdp`).
fn pinned_hooks(agent: &Agent, workload: &Workload) -> Vec<String> {
    let links = agent.bpffs().join("firewall-agent/v5/links");
    let mut hooks: Vec<String> = std::fs::read_dir(&links)
        .unwrap_or_else(|e| panic!("{}: {e}", links.display()))
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let (interface, hook) = name.rsplit_once('@')?;
            (interface == workload.host_if).then(|| hook.to_string())
        })
        .collect();
    hooks.sort();
    hooks
}

/// Whether the kernel reports a native XDP program on `workload`'s host-side veth.
fn has_native_xdp(topo: &Topology, workload: &Workload) -> bool {
    let out = sh(&[
        "ip",
        "-netns",
        &topo.host.name,
        "-d",
        "link",
        "show",
        "dev",
        &workload.host_if,
    ]);
    out.contains("xdp ") || out.contains("xdp/id:") || out.contains("prog/xdp")
}

/// `group` keeps only `tcp/port` to `peer` as its outbound rule.
fn egress_only(agent: &Agent, group: &str, port: &str, peer: &str) {
    agent.cli(&[
        "revoke-security-group-egress",
        "--group-id",
        group,
        "--protocol",
        "all",
        "--cidr",
        "0.0.0.0/0",
    ]);
    agent.authorize_egress(group, "tcp", port, peer);
}

#[test]
fn with_attach_xdp_outbound_rules_are_enforced_at_xdp_replies_pass_by_conntrack_and_changes_apply_live()
 {
    let topo = Topology::new(&["172.31.90.10", "172.31.91.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_with(&topo.host, &["--attach", "xdp"]);
    let [client, server] = agent.create_groups(["xdp-client", "xdp-server"]);
    // A may only send to B:443; B accepts 443 and 444 from A and sends nothing of its own, so
    // its replies pass only as tracked flows, at B's XDP hook.
    egress_only(&agent, &client, "443", &b.cidr());
    agent.cli(&[
        "revoke-security-group-egress",
        "--group-id",
        &server,
        "--protocol",
        "all",
        "--cidr",
        "0.0.0.0/0",
    ]);
    agent.authorize_ingress(&server, "tcp", "443-444", &a.cidr());
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    for w in [a, b] {
        assert_eq!(
            pinned_hooks(&agent, w),
            ["egress", "xdp"],
            "{}",
            agent.log()
        );
        assert!(has_native_xdp(&topo, w), "native XDP on {}", w.host_if);
    }
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);

    let mut established = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443 allowed");
    assert!(
        echoes(&mut established, "hello\n"),
        "B's replies pass as a tracked flow"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "A's outbound rules refuse 444 (dropped at A's XDP hook)"
    );
    let stats = agent.cli(&["get-dataplane-statistics"]);
    assert!(stats["Drops"]["no-rule"].as_u64().unwrap() >= 1, "{stats}");
    assert!(
        stats["Passes"]["conntrack"].as_u64().unwrap() >= 1,
        "{stats}"
    );

    agent.authorize_egress(&client, "tcp", "444", &b.cidr());
    assert!(
        tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "a new outbound rule applies at once"
    );
    agent.cli(&[
        "revoke-security-group-egress",
        "--group-id",
        &client,
        "--protocol",
        "tcp",
        "--port",
        "444",
        "--cidr",
        &b.cidr(),
    ]);
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "and so does its revocation"
    );
    assert!(
        echoes(&mut established, "still\n"),
        "the tracked flow stays"
    );
}

#[test]
fn an_agent_of_the_other_attach_mode_switches_the_pinned_hook_keeping_policy_and_flows() {
    let topo = Topology::new(&["172.31.92.10", "172.31.93.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["switch-client", "switch-server"]);
    egress_only(&agent, &client, "443", &b.cidr());
    agent.authorize_ingress(&server, "tcp", "443-444", &a.cidr());
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    assert_eq!(pinned_hooks(&agent, a), ["egress", "ingress"]);
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    let mut established = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443");
    assert!(echoes(&mut established, "tc\n"));

    let check = |agent: &Agent, mode: &str, established: &mut std::net::TcpStream| {
        let log = agent.log();
        assert!(log.contains("took over pinned maps and links"), "{log}");
        assert!(
            echoes(established, &format!("after switching to {mode}\n")),
            "the established flow goes on"
        );
        assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT), "{mode}: allowed");
        assert!(!tcp_round_trip(&a.ns, b.ip, 444, SHORT), "{mode}: denied");
    };
    let dir: PathBuf = agent.kill9();
    let agent = Agent::start_in_with(&topo.host, dir, &["--attach", "xdp"]);
    assert!(agent.log().contains("switched the hook"), "{}", agent.log());
    for w in [a, b] {
        assert_eq!(
            pinned_hooks(&agent, w),
            ["egress", "xdp"],
            "{}",
            agent.log()
        );
        assert!(has_native_xdp(&topo, w));
    }
    check(&agent, "xdp", &mut established);

    let dir = agent.kill9();
    let agent = Agent::start_in_with(&topo.host, dir, &["--attach", "tc"]);
    for w in [a, b] {
        assert_eq!(
            pinned_hooks(&agent, w),
            ["egress", "ingress"],
            "{}",
            agent.log()
        );
        assert!(!has_native_xdp(&topo, w), "the XDP link is gone");
    }
    check(&agent, "tc", &mut established);
}

#[test]
fn a_veth_whose_peer_mtu_is_too_large_for_xdp_keeps_tc_ingress_and_stays_enforced_across_restarts()
{
    let topo = Topology::new(&["172.31.94.10", "172.31.95.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    // A jumbo MTU on A's side: veth refuses a program without xdp.frags on A's host side.
    sh(&[
        "ip", "-netns", &a.ns.name, "link", "set", "dev", "eth0", "mtu", "9000",
    ]);
    let agent = Agent::start_with(&topo.host, &["--attach", "xdp"]);
    let [client, server] = agent.create_groups(["jumbo-client", "jumbo-server"]);
    egress_only(&agent, &client, "443", &b.cidr());
    agent.authorize_ingress(&server, "tcp", "443-444", &a.cidr());
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);
    assert!(
        agent.log().contains("native XDP refused"),
        "{}",
        agent.log()
    );
    assert_eq!(pinned_hooks(&agent, a), ["egress", "ingress"]);
    assert!(!has_native_xdp(&topo, a));
    assert_eq!(pinned_hooks(&agent, b), ["egress", "xdp"]);
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT), "allowed");
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "A's outbound rules still apply, at tc ingress"
    );

    // The next agent of the same mode tries XDP again and keeps the pinned tc ingress link.
    let dir = agent.kill9();
    let agent = Agent::start_in_with(&topo.host, dir, &["--attach", "xdp"]);
    assert!(
        agent
            .log()
            .contains("native XDP refused; keeping tc ingress"),
        "{}",
        agent.log()
    );
    assert_eq!(pinned_hooks(&agent, a), ["egress", "ingress"]);
    assert_eq!(pinned_hooks(&agent, b), ["egress", "xdp"]);
    assert!(
        tcp_round_trip(&a.ns, b.ip, 443, SHORT),
        "allowed after the restart"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "denied after the restart"
    );
}

//! Enforcement outlives the agent in each way users run it, and a kill -9 shows it: the last
//! policy stays enforced and the tracked flows alive, and the next agent takes over without
//! attaching again.
//!
//! - under `ip netns exec` without `--bpffs`, the pins go to the host's bpffs (a bpffs the agent
//!   mounted in its private mount namespace would die with it);
//! - in the root mount namespace (a service on the host; here entered into the test's host
//!   network namespace only, with `nsenter --net`), the pins go to the real bpffs.

use std::{path::PathBuf, time::Duration};

use firewall_testkit::{
    agent::{Agent, BpffsDir},
    netns::Netns,
    topology::Topology,
    traffic::{EchoServer, echoes, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

#[test]
fn under_ip_netns_exec_a_kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over() {
    let topo = Topology::new(&["172.31.12.10", "172.31.13.10"]);
    kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over(
        &topo,
        Agent::start_host_pinned,
        |agent| {
            assert!(
                agent.log().contains("pinning in the host's bpffs"),
                "{}",
                agent.log()
            )
        },
        Agent::restart_host_pinned,
    );
}

#[test]
fn in_the_root_mount_namespace_a_kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over()
 {
    let bpffs = BpffsDir::new();
    let topo = Topology::new(&["172.31.14.10", "172.31.15.10"]);
    let pins = bpffs.path.join("firewall-agent");
    kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over(
        &topo,
        |ns| Agent::start_root_pinned(ns, &bpffs),
        |agent| {
            assert!(
                !agent.log().contains("pinning in the host's bpffs"),
                "the agent shares our mount namespace: {}",
                agent.log()
            );
            let conntrack_pinned = std::fs::read_dir(&pins)
                .into_iter()
                .flatten()
                .flatten()
                .any(|layout| layout.path().join("maps/CONNTRACK").exists());
            assert!(
                conntrack_pinned,
                "pinned in the real bpffs, seen from the test: {}",
                pins.display()
            );
        },
        |ns, dir| Agent::restart_root_pinned(ns, &bpffs, dir),
    );
}

/// A allowed to B:443 only; an established flow A→B:443. With the agent killed, that flow goes
/// on, a new one to 443 works and one to 444 is refused; the restarted agent adopts the pinned
/// links (attaching nothing) and the conntrack table it left.
fn kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over(
    topo: &Topology,
    start: impl FnOnce(&Netns) -> Agent,
    check_pins: impl FnOnce(&Agent),
    restart: impl FnOnce(&Netns, PathBuf) -> Agent,
) {
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = start(&topo.host);
    let [web] = agent.create_groups(["web"]);
    agent.authorize_ingress(&web, "tcp", "443", &a.cidr());
    agent.run_instance(a, &[&web]);
    agent.run_instance(b, &[&web]);
    check_pins(&agent);
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    let mut established = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443");
    assert!(echoes(&mut established, "before\n"));
    let tracked = agent.cli(&["get-dataplane-statistics"])["TrackedFlows"]
        .as_u64()
        .expect("TrackedFlows");
    assert!(tracked > 0);
    let attached_before = agent.log().matches(" attached").count();

    let dir = agent.kill9();
    // No agent: the pinned programs and maps go on.
    assert!(
        echoes(&mut established, "during the outage\n"),
        "the established flow keeps going"
    );
    assert!(
        tcp_round_trip(&a.ns, b.ip, 443, SHORT),
        "an allowed new flow works"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "denied stays denied"
    );

    let agent = restart(&topo.host, dir);
    let log = agent.log();
    assert!(log.contains("took over pinned maps and links"), "{log}");
    assert_eq!(
        log.matches(" attached").count(),
        attached_before,
        "the new agent attached nothing again: {log}"
    );
    assert!(
        agent.cli(&["get-dataplane-statistics"])["TrackedFlows"]
            .as_u64()
            .is_some_and(|n| n >= tracked),
        "the conntrack table is the one it left"
    );
    assert!(echoes(&mut established, "after the restart\n"));
    assert!(!tcp_round_trip(&a.ns, b.ip, 444, SHORT));
}

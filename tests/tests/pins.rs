//! Enforcement outlives the agent in each way users run it, and a kill -9 shows it: the last
//! policy stays enforced and the tracked flows alive, and the next agent takes over without
//! attaching again.
//!
//! - under `ip netns exec` without `--bpffs`, the pins go to the host's bpffs (a bpffs the agent
//!   mounted in its private mount namespace would die with it);
//! - in the root mount namespace (a service on the host; here entered into the test's host
//!   network namespace only, with `nsenter --net`), the pins go to the real bpffs;
//! - in a container (podman, privileged, in the test's host network namespace) with the host's
//!   bpffs mounted at its `/sys/fs/bpf`, the pins go there; without it, the agent refuses to
//!   start (a bpffs it mounted would die with the container) and says how to fix it.

use std::{path::PathBuf, sync::Arc, time::Duration};

use firewall_testkit::{
    agent::{Agent, BpffsDir, agent_binary},
    netns::Netns,
    podman::Podman,
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
    kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over(
        &topo,
        |ns| Agent::start_root_pinned(ns, &bpffs),
        |agent| {
            assert!(
                !agent.log().contains("pinning in the host's bpffs"),
                "the agent shares our mount namespace: {}",
                agent.log()
            );
            assert_pinned_in(&bpffs);
        },
        |ns, dir| Agent::restart_root_pinned(ns, &bpffs, dir),
    );
}

#[test]
fn in_a_container_with_the_hosts_bpffs_a_kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over()
 {
    let bpffs = BpffsDir::new();
    let topo = Topology::new(&["172.31.16.10", "172.31.17.10"]);
    let podman = Arc::new(Podman::new(&topo.host));
    kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over(
        &topo,
        |ns| Agent::start_in_container(ns, &podman, &bpffs),
        |_| assert_pinned_in(&bpffs),
        |ns, dir| Agent::restart_in_container(ns, &podman, &bpffs, dir),
    );
}

#[test]
fn in_a_container_without_the_hosts_bpffs_the_agent_refuses_to_start_and_says_how_to_fix_it() {
    let topo = Topology::new(&["172.31.18.10"]);
    let podman = Podman::new(&topo.host);
    let dir = podman.dir().join("agent");
    std::fs::create_dir_all(&dir).expect("state dir");
    let binary = agent_binary();
    let out = podman
        .agent_container("fw-refusing", &binary, &dir, None)
        .arg(&binary)
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["serve", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .expect("podman run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it refused: {stderr}");
    assert!(
        stderr.contains("no bpffs from the host at this path in a container")
            && stderr.contains("--bpffs"),
        "it says why and how to fix it: {stderr}"
    );
    assert!(!dir.join("agent.sock").exists(), "it never served");
}

/// The test sees the agent's CONNTRACK pinned in `bpffs`, a directory of the real bpffs.
fn assert_pinned_in(bpffs: &BpffsDir) {
    let pins = bpffs.path.join("firewall-agent");
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

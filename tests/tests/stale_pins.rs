//! Pins of a namespace that is gone never stop an agent, and are never taken over: an agent that
//! enforced in a namespace, then stopped (or was killed), then the namespace deleted and made
//! again under the same name with the same veths (as every test harness does), starts in the
//! new one, enforces, and holds none of the old one's maps or tracked flows. In each way users
//! run it: under `ip netns exec` (pins in the host's bpffs, by namespace name), in the root mount
//! namespace with `--bpffs`, and in a container with the host's bpffs mounted.
//!
//! And an interface whose veth was deleted and made again while the agent was away has its
//! severed links forgotten, not adopted: the next agent reports it and attaches afresh. Pins of
//! another namespace that is still enforced through them are refused, not taken.

use std::{path::PathBuf, sync::Arc, time::Duration};

use firewall_testkit::{
    agent::{Agent, BpffsDir, agent_binary},
    netns::Netns,
    podman::Podman,
    shell::unique,
    topology::{Topology, Workload},
    traffic::{EchoServer, echoes, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

/// How the first agent ends.
#[derive(Clone, Copy)]
enum End {
    Stop,
    Kill9,
}

/// Which state directory the next agent starts on.
#[derive(Clone, Copy)]
enum State {
    /// The first agent's: it enforces the stored policy on the new namespace's veths.
    Kept,
    /// A fresh one (the reported failure): the policy is made again through the CLI.
    Fresh,
}

#[test]
fn under_ip_netns_exec_a_stopped_agents_pins_in_a_deleted_namespace_do_not_stop_the_next_one() {
    reused_namespace(
        &["172.31.40.10", "172.31.41.10"],
        End::Stop,
        State::Fresh,
        &|ns, dir| Agent::restart_host_pinned(ns, dir),
    );
}

#[test]
fn under_ip_netns_exec_a_killed_agents_pins_in_a_deleted_namespace_do_not_stop_the_next_one() {
    reused_namespace(
        &["172.31.42.10", "172.31.43.10"],
        End::Kill9,
        State::Kept,
        &|ns, dir| Agent::restart_host_pinned(ns, dir),
    );
}

#[test]
fn in_the_root_mount_namespace_a_stopped_agents_pins_of_a_deleted_namespace_are_not_taken_over() {
    let bpffs = BpffsDir::new();
    // What an agent under `ip netns exec` pins inside the root agent's directory is not the
    // root agent's to remove.
    let bystander = bpffs.path.join("firewall-agent/netns-bystander/v5/links");
    reused_namespace(
        &["172.31.44.10", "172.31.45.10"],
        End::Stop,
        State::Kept,
        &|ns, dir| {
            std::fs::create_dir_all(&bystander).expect("a bystander's directory");
            Agent::restart_root_pinned(ns, &bpffs, dir)
        },
    );
    assert!(bystander.exists(), "another agent's pins are left alone");
}

#[test]
fn in_the_root_mount_namespace_a_killed_agents_pins_of_a_deleted_namespace_are_not_taken_over() {
    let bpffs = BpffsDir::new();
    reused_namespace(
        &["172.31.46.10", "172.31.47.10"],
        End::Kill9,
        State::Fresh,
        &|ns, dir| Agent::restart_root_pinned(ns, &bpffs, dir),
    );
}

#[test]
fn in_a_container_a_stopped_agents_pins_of_a_deleted_namespace_are_not_taken_over() {
    let bpffs = BpffsDir::new();
    let podman = PodmanSlot::default();
    reused_namespace(
        &["172.31.48.10", "172.31.49.10"],
        End::Stop,
        State::Kept,
        &|ns, dir| Agent::restart_in_container(ns, &podman.for_host(ns), &bpffs, dir),
    );
}

#[test]
fn in_a_container_a_killed_agents_pins_of_a_deleted_namespace_are_not_taken_over() {
    let bpffs = BpffsDir::new();
    let podman = PodmanSlot::default();
    reused_namespace(
        &["172.31.50.10", "172.31.51.10"],
        End::Kill9,
        State::Fresh,
        &|ns, dir| Agent::restart_in_container(ns, &podman.for_host(ns), &bpffs, dir),
    );
}

#[test]
fn a_veth_deleted_and_made_again_while_the_agent_was_away_is_reported_forgotten_and_enforced_afresh()
 {
    let topo = Topology::new(&["172.31.52.10", "172.31.53.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_host_pinned(&topo.host);
    enforce(&agent, a, b);
    let dir = agent.stop();
    topo.remake_veth(1);

    let agent = Agent::restart_host_pinned(&topo.host, dir);
    let log = agent.log();
    assert!(log.contains("were severed"), "reported: {log}");
    assert!(
        log.contains("took over pinned maps and links"),
        "the same namespace's pins are still taken over: {log}"
    );
    assert_enforced(&agent, a, b);
}

#[test]
fn an_agent_refuses_the_pins_of_another_live_namespace_which_stays_enforced() {
    let bpffs = BpffsDir::new();
    let first = Topology::new(&["172.31.54.10", "172.31.55.10"]);
    let agent = Agent::start_root_pinned(&first.host, &bpffs);
    let (a, b) = (&first.workloads[0], &first.workloads[1]);
    enforce(&agent, a, b);
    let first_dir = agent.stop();

    let second = Topology::new(&["172.31.56.10"]);
    let dir = std::env::temp_dir().join(unique("fw-agent-"));
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", second.host.name))
        .arg(agent_binary())
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["serve", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--bpffs")
        .arg(&bpffs.path)
        .output()
        .expect("the second agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it refused: {stderr}");
    assert!(
        stderr.contains("another network namespace") && stderr.contains("--bpffs"),
        "it says why and how to fix it: {stderr}"
    );
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT), "first: A→B:443");
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "the first namespace's workloads are still enforced"
    );
    let agent = Agent::restart_root_pinned(&first.host, &bpffs, first_dir);
    assert!(agent.log().contains("took over pinned maps and links"));
    let _ = std::fs::remove_dir_all(dir);
}

/// The podman of the current host namespace: made for the first, kept while the name is the
/// same (its commands enter the namespace by name).
#[derive(Default)]
struct PodmanSlot(std::sync::Mutex<Option<Arc<Podman>>>);

impl PodmanSlot {
    fn for_host(&self, ns: &Netns) -> Arc<Podman> {
        self.0
            .lock()
            .expect("podman slot")
            .get_or_insert_with(|| Arc::new(Podman::new(ns)))
            .clone()
    }
}

/// A allowed to B:443 only, both instances of the same group.
fn enforce(agent: &Agent, a: &Workload, b: &Workload) {
    let [web] = agent.create_groups(["web"]);
    agent.authorize_ingress(&web, "tcp", "443", &a.cidr());
    agent.run_instance(a, &[&web]);
    agent.run_instance(b, &[&web]);
}

/// A reaches B:443 and not B:444, and what the kernel holds is what the state compiles to.
fn assert_enforced(agent: &Agent, a: &Workload, b: &Workload) {
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _other = EchoServer::tcp(&b.ns, b.ip, 444);
    assert!(tcp_round_trip(&a.ns, b.ip, 443, SHORT), "A→B:443 allowed");
    assert!(!tcp_round_trip(&a.ns, b.ip, 444, SHORT), "A→B:444 denied");
    let verified = agent.cli(&["verify-dataplane"]);
    assert_eq!(verified["InSync"], true, "{verified}");
}

/// The scenario of the module's doc: `restart` starts the next agent in the namespace made again
/// under the same name, on the state directory given.
fn reused_namespace(
    addresses: &[&str],
    end: End,
    state: State,
    restart: &dyn Fn(&Netns, PathBuf) -> Agent,
) {
    let topo = Topology::new(addresses);
    let dir = std::env::temp_dir().join(unique("fw-agent-"));
    let agent = restart(&topo.host, dir);
    {
        let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
        enforce(&agent, a, b);
        let _https = EchoServer::tcp(&b.ns, b.ip, 443);
        let mut flow = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443");
        assert!(echoes(&mut flow, "tracked\n"));
        let tracked = &agent.cli(&["get-dataplane-statistics"])["TrackedFlows"];
        assert!(tracked.as_u64().is_some_and(|n| n > 0), "{tracked}");
    }
    let dir = match end {
        End::Stop => agent.stop(),
        End::Kill9 => agent.kill9(),
    };
    let names = topo.names();
    drop(topo);
    let topo = Topology::named(&names);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);

    let agent = match state {
        State::Kept => restart(&topo.host, dir),
        State::Fresh => {
            let _ = std::fs::remove_dir_all(&dir);
            restart(&topo.host, std::env::temp_dir().join(unique("fw-agent-")))
        }
    };
    let log = agent.log();
    assert!(
        log.contains("removed the pins of a network namespace that is gone"),
        "it says what it did: {log}"
    );
    assert!(
        !log.contains("took over pinned maps and links"),
        "nothing of the old namespace is taken over: {log}"
    );
    let tracked = &agent.cli(&["get-dataplane-statistics"])["TrackedFlows"];
    assert_eq!(tracked, 0, "no tracked flow of the old namespace");
    if let State::Fresh = state {
        enforce(&agent, a, b);
    }
    assert_enforced(&agent, a, b);
}

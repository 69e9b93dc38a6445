//! Enforcement outlives the agent as users run it: under `ip netns exec` without `--bpffs`, the
//! pins go to the host's bpffs (a bpffs the agent mounted in its private mount namespace would
//! die with it), so a kill -9 leaves the last policy enforced and the tracked flows alive, and the
//! next agent takes over without attaching again.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    topology::Topology,
    traffic::{EchoServer, echoes, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

#[test]
fn under_ip_netns_exec_a_kill_9_leaves_the_policy_and_the_flows_and_the_next_agent_takes_over() {
    let topo = Topology::new(&["172.31.12.10", "172.31.13.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_host_pinned(&topo.host);
    assert!(
        agent.log().contains("pinning in the host's bpffs"),
        "{}",
        agent.log()
    );
    let [web] = agent.create_groups(["web"]);
    agent.authorize_ingress(&web, "tcp", "443", &a.cidr());
    agent.run_instance(a, &[&web]);
    agent.run_instance(b, &[&web]);
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

    let agent = Agent::restart_host_pinned(&topo.host, dir);
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

//! `run-instances` without `--interface`: the agent launches each instance in a namespace of its
//! own, with a veth on its VPC's bridge and addresses from the VPC's blocks; instances of one VPC
//! talk over that bridge as their groups allow. Stop and start keep them, terminate removes
//! them, an agent restart leaves them as they were.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    local::{self, LocalInstance},
    netns::Netns,
    shell::ns_sh,
    traffic::{EchoServer, eventually, ping, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

/// Whether the agent's namespace `host` has the interface `name`.
fn has_link(host: &Netns, name: &str) -> bool {
    ns_sh(&host.name, &["ip", "-o", "link", "show"]).contains(&format!(": {name}"))
}

/// The VPC bridge the host-side veth is a port of.
fn bridge_of(host: &Netns, veth: &str) -> String {
    let line = ns_sh(&host.name, &["ip", "-o", "link", "show", "dev", veth]);
    let (_, rest) = line.split_once(" master ").expect("a bridge port");
    rest.split_whitespace().next().expect("bridge name").into()
}

/// A web group that lets the VPC in on tcp/80, and two instances launched in it.
fn two_web_instances(agent: &Agent) -> (String, LocalInstance, LocalInstance) {
    let web = agent.create_group("web");
    agent.authorize_ingress(&web, "tcp", "80", "172.31.0.0/16");
    let mut launched = local::launch(agent, &["--count", "2", "--security-group-ids", &web]);
    assert_eq!(launched.len(), 2, "--count 2 launches two");
    let b = launched.pop().expect("two");
    let a = launched.pop().expect("two");
    (web, a, b)
}

#[test]
fn local_instances_get_vpc_addresses_and_reach_each_other_over_the_bridge_as_groups_allow() {
    let host = Netns::new("fwlh");
    let agent = Agent::start(&host);
    let (_web, a, b) = two_web_instances(&agent);

    assert_eq!(
        a.ip.to_string(),
        "172.31.0.4",
        "the VPC's first free address"
    );
    assert_eq!(b.ip.to_string(), "172.31.0.5");
    assert!(
        a.ip6.is_some() && b.ip6.is_some(),
        "the default VPC has an IPv6 block"
    );
    assert!(a.ns.exists() && b.ns.exists(), "each has its namespace");
    let inside = ns_sh(&a.ns.name, &["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(inside.contains("172.31.0.4/20"), "{inside}");
    let routes = ns_sh(&a.ns.name, &["ip", "route", "show", "default"]);
    assert!(
        routes.contains("via 172.31.0.1"),
        "default route via the bridge: {routes}"
    );
    assert_eq!(bridge_of(&host, &a.host_if), bridge_of(&host, &b.host_if));

    let described = agent.cli(&["describe-instances", "--instance-ids", &a.id]);
    let interface = &described["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0];
    assert_eq!(interface["Namespace"], a.ns.name.as_str());

    let _b80 = EchoServer::tcp(&b.ns, b.ip, 80);
    let _b81 = EchoServer::tcp(&b.ns, b.ip, 81);
    assert!(
        tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "web lets the VPC in on 80"
    );
    assert!(!tcp_round_trip(&a.ns, b.ip, 81, SHORT), "81 has no rule");
    assert!(!ping(&a.ns, b.ip, SHORT), "ICMP has no rule");

    agent.cli(&["stop-instances", "--instance-ids", &b.id]);
    assert!(b.ns.exists(), "a stopped instance keeps its namespace");
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "a stopped instance gets nothing"
    );
    agent.cli(&["start-instances", "--instance-ids", &b.id]);
    assert!(
        eventually(Duration::from_secs(2), || tcp_round_trip(
            &a.ns, b.ip, 80, SHORT
        ))
        .is_some(),
        "started again, it is reached again"
    );

    let bridge = bridge_of(&host, &a.host_if);
    agent.cli(&["terminate-instances", "--instance-ids", &b.id]);
    assert!(!b.ns.exists(), "terminate removes the namespace");
    assert!(!has_link(&host, &b.host_if), "and the veth");
    assert!(
        has_link(&host, &bridge),
        "the bridge stays while an instance uses it"
    );
    agent.cli(&["terminate-instances", "--instance-ids", &a.id]);
    assert!(
        !a.ns.exists() && !has_link(&host, &bridge),
        "the last one takes the bridge"
    );
}

#[test]
fn an_agent_restart_leaves_local_instances_running_and_enforced() {
    let host = Netns::new("fwlh");
    let agent = Agent::start(&host);
    let (_web, a, b) = two_web_instances(&agent);
    let _b80 = EchoServer::tcp(&b.ns, b.ip, 80);
    let _b81 = EchoServer::tcp(&b.ns, b.ip, 81);
    assert!(tcp_round_trip(&a.ns, b.ip, 80, SHORT));

    let dir = agent.stop();
    let agent = Agent::start_in(&host, dir);
    assert!(a.ns.exists() && b.ns.exists());
    assert!(
        tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "still reached on 80"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 81, SHORT),
        "still refused on 81"
    );
    let out = agent.cli(&["describe-instances", "--instance-ids", &a.id, &b.id]);
    let states: Vec<&str> = out["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["Instances"].as_array().unwrap())
        .map(|i| i["State"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running", "running"]);
}

#[test]
fn bad_launches_answer_aws_errors_and_build_nothing() {
    let host = Netns::new("fwlh");
    let agent = Agent::start(&host);
    let reserved = agent
        .try_cli(&["run-instances", "--private-ip-address", "172.31.0.1"])
        .expect_err("the bridge's address is reserved");
    assert_eq!(reserved.code(), "InvalidParameterValue");
    let outside = agent
        .try_cli(&["run-instances", "--private-ip-address", "10.9.0.4"])
        .expect_err("outside the VPC");
    assert_eq!(outside.code(), "InvalidParameterValue");
    let counted = agent
        .try_cli(&[
            "run-instances",
            "--count",
            "2",
            "--private-ip-address",
            "172.31.0.9",
        ])
        .expect_err("one address for two instances");
    assert_eq!(counted.code(), "InvalidParameterCombination");
    let out = agent.cli(&["describe-instances"]);
    assert_eq!(
        out["Reservations"],
        serde_json::json!([]),
        "nothing launched"
    );
    let links = ns_sh(&host.name, &["ip", "-o", "link", "show"]);
    assert!(!links.contains("fwbr"), "no bridge built: {links}");

    // A host that cannot build the instance: an interface that is not a bridge (a veth) has
    // the VPC bridge's name, so the instance cannot join it. The launch is refused and undone.
    let vpcs = agent.cli(&["describe-vpcs"]);
    let vpc = vpcs["Vpcs"][0]["VpcId"].as_str().expect("the default VPC");
    let bridge = format!("fwbr{}", &vpc[vpc.len() - 11..]);
    ns_sh(
        &host.name,
        &[
            "ip",
            "link",
            "add",
            &bridge,
            "type",
            "veth",
            "peer",
            "name",
            "notabridge",
        ],
    );
    let refused = agent
        .try_cli(&["run-instances"])
        .expect_err("no bridge to join");
    assert_eq!(
        refused.code(),
        "InsufficientInstanceCapacity",
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(&bridge), "{}", refused.stderr);
    let links = ns_sh(&host.name, &["ip", "-o", "link", "show"]);
    assert!(!links.contains("fwi"), "no veth left: {links}");
    let out = agent.cli(&["describe-instances"]);
    assert_eq!(
        out["Reservations"],
        serde_json::json!([]),
        "no instance recorded"
    );
    ns_sh(&host.name, &["ip", "link", "del", &bridge]);
    let launched = local::launch(&agent, &[]);
    assert_eq!(
        launched.len(),
        1,
        "the same launch works once the host can build it"
    );
}

//! The host stays the operator's: what a caller of the agent's API can do never reaches the
//! host beyond the workloads the agent made.
//!
//! - Registering an existing interface is for the root-only socket, and even there only a
//!   workload's veth: never `lo`, a bridge, or the interface holding the default route, unless
//!   `serve --allow-interface` names it.
//! - Local instances never change the host's routing: a VPC whose block is the host's own subnet
//!   leaves the host's routes and addresses as they were and its traffic flowing; with
//!   `serve --host-routes` such a VPC is refused.
//! - `serve --max-local-instances` and the VPC quota bound what a caller can make.
//!
//! The "host" is the test's namespace, with an uplink to a namespace standing for its network.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    local::{self, LocalInstance},
    netns::Netns,
    shell::{ns_sh, unique},
    topology::Topology,
    traffic::{EchoServer, ping, tcp_round_trip},
    uplink::{NETWORK, Uplink, routing},
};

const SHORT: Duration = Duration::from_millis(700);

/// A new VPC of `cidr` and a group `web` in it: their IDs.
/// A VPC of `cidr` with one subnet spanning it and a group: (the subnet, the group).
fn vpc_with_group(agent: &Agent, cidr: &str) -> (String, String) {
    let id = |out: serde_json::Value, path: [&str; 2]| {
        let value = if path[1].is_empty() {
            &out[path[0]]
        } else {
            &out[path[0]][path[1]]
        };
        value.as_str().expect("an ID").to_string()
    };
    let vpc = id(
        agent.cli(&["create-vpc", "--cidr-block", cidr]),
        ["Vpc", "VpcId"],
    );
    let group = agent.cli(&[
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "web",
        "--vpc-id",
        &vpc,
    ]);
    let subnet = id(
        agent.cli(&["create-subnet", "--vpc-id", &vpc, "--cidr-block", cidr]),
        ["Subnet", "SubnetId"],
    );
    (subnet, id(group, ["GroupId", ""]))
}

#[test]
fn the_socket_registers_a_workloads_veth_but_not_lo_a_bridge_or_the_uplink_unless_allowed() {
    let topo = Topology::new(&["172.31.60.10"]);
    let uplink = Uplink::new(&topo.host);
    let bridge = unique("fwtb");
    ns_sh(
        &topo.host.name,
        &["ip", "link", "add", &bridge, "type", "bridge"],
    );
    let agent = Agent::start(&topo.host);
    for (interface, says) in [
        ("lo", "loopback"),
        (bridge.as_str(), "bridge"),
        (uplink.name.as_str(), "default route"),
    ] {
        let refused = agent
            .try_cli(&[
                "run-instances",
                "--private-ip-address",
                "172.31.60.20",
                "--interface",
                interface,
            ])
            .expect_err(interface);
        assert_eq!(
            refused.code(),
            "InvalidParameterValue",
            "{}",
            refused.stderr
        );
        assert!(refused.stderr.contains(says), "{}", refused.stderr);
    }
    let described = agent.cli(&["describe-instances"]);
    assert_eq!(
        described["Reservations"],
        serde_json::json!([]),
        "nothing registered"
    );
    assert!(
        ping(&topo.host, NETWORK, SHORT),
        "the host still reaches its network"
    );
    let w = &topo.workloads[0];
    agent.run_instance(w, &[]);

    let dir = agent.stop();
    let agent = Agent::start_in_with(&topo.host, dir, &["--allow-interface", "fwtb*"]);
    agent.cli(&[
        "run-instances",
        "--private-ip-address",
        "172.31.60.21",
        "--interface",
        &bridge,
    ]);
    let refused = agent
        .try_cli(&[
            "run-instances",
            "--private-ip-address",
            "172.31.60.22",
            "--interface",
            "lo",
        ])
        .expect_err("lo is not allowed");
    assert_eq!(refused.code(), "InvalidParameterValue");
}

#[test]
fn instances_of_a_vpc_whose_block_is_the_hosts_own_subnet_leave_its_routes_and_traffic_alone() {
    let host = Netns::new("fwsh");
    let uplink = Uplink::new(&host);
    let before = routing(&host);
    let agent = Agent::start(&host);
    let (subnet, group) = vpc_with_group(&agent, "10.66.0.0/24");
    agent.authorize_ingress(&group, "tcp", "80", "10.66.0.0/24");
    let launched = local::launch(
        &agent,
        &[
            "--count",
            "2",
            "--security-group-ids",
            &group,
            "--subnet-id",
            &subnet,
        ],
    );
    let [a, b]: [LocalInstance; 2] = launched.try_into().ok().expect("two instances");
    assert_eq!(a.ip.to_string(), "10.66.0.4");
    let _b80 = EchoServer::tcp(&b.ns, b.ip, 80);
    assert!(
        tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "instances talk as their group allows"
    );
    assert!(!tcp_round_trip(&a.ns, b.ip, 81, SHORT));
    assert!(
        ping(
            &a.ns,
            "10.66.0.1".parse::<std::net::Ipv4Addr>().unwrap(),
            SHORT
        ),
        "the VPC's router answers at the block's first address, in its own namespace"
    );
    assert!(a.router.exists(), "the router namespace {}", a.router.name);

    assert_eq!(
        routing(&host),
        before,
        "the host's routes and addresses are unchanged"
    );
    assert!(
        ping(&host, NETWORK, SHORT),
        "the host's own traffic still reaches its network, not the VPC"
    );
    assert!(
        !ping(
            &uplink.network,
            "10.66.0.4".parse::<std::net::Ipv4Addr>().unwrap(),
            SHORT
        ),
        "and nothing of the host leads to the instances"
    );
    agent.cli(&["terminate-instances", "--instance-ids", &a.id, &b.id]);
    assert!(!a.router.exists(), "the last instance takes the router");
    assert_eq!(routing(&host), before);
}

#[test]
fn with_host_routes_a_vpc_overlapping_the_hosts_subnet_is_refused_and_others_are_reached() {
    let host = Netns::new("fwsr");
    let _uplink = Uplink::new(&host);
    let agent = Agent::start_with(&host, &["--host-routes"]);
    let (subnet, group) = vpc_with_group(&agent, "10.66.0.0/16");
    let refused = agent
        .try_cli(&[
            "run-instances",
            "--security-group-ids",
            &group,
            "--subnet-id",
            &subnet,
        ])
        .expect_err("overlaps the uplink's subnet");
    assert_eq!(refused.code(), "InvalidVpc.Range", "{}", refused.stderr);
    assert!(
        refused.stderr.contains("10.66.0.0/24"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        agent.cli(&["describe-instances"])["Reservations"],
        serde_json::json!([]),
        "nothing launched"
    );

    let web = agent.create_group("web");
    agent.authorize_ingress(&web, "tcp", "80", "172.31.0.0/16");
    let launched = local::launch(&agent, &["--security-group-ids", &web]);
    let routes = ns_sh(&host.name, &["ip", "route", "show"]);
    assert!(
        routes.contains("172.31.0.0/16"),
        "a connected route: {routes}"
    );
    let a = &launched[0];
    let _a80 = EchoServer::tcp(&a.ns, a.ip, 80);
    assert!(
        tcp_round_trip(&host, a.ip, 80, SHORT),
        "the host reaches its instance"
    );
}

#[test]
fn local_instances_and_vpcs_are_bounded_by_their_quotas() {
    let host = Netns::new("fwsq");
    let agent = Agent::start_with(&host, &["--max-local-instances", "2"]);
    let launched = local::launch(&agent, &["--count", "2"]);
    let refused = agent
        .try_cli(&["run-instances"])
        .expect_err("a third local instance");
    assert_eq!(
        refused.code(),
        "InstanceLimitExceeded",
        "{}",
        refused.stderr
    );
    let count = |out: serde_json::Value| {
        out["Reservations"].as_array().map_or(0, |r| {
            r.iter()
                .map(|r| r["Instances"].as_array().unwrap().len())
                .sum()
        })
    };
    assert_eq!(count(agent.cli(&["describe-instances"])), 2);
    let ids: Vec<&str> = launched.iter().map(|i| i.id.as_str()).collect();
    let mut terminate = vec!["terminate-instances", "--instance-ids"];
    terminate.extend(&ids);
    agent.cli(&terminate);
    local::launch(&agent, &["--count", "2"]);

    for n in 1..=4 {
        agent.cli(&["create-vpc", "--cidr-block", &format!("10.{n}.0.0/16")]);
    }
    let refused = agent
        .try_cli(&["create-vpc", "--cidr-block", "10.9.0.0/16"])
        .expect_err("a sixth VPC");
    assert_eq!(refused.code(), "VpcLimitExceeded");
}

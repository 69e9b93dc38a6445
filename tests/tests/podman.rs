//! Real podman containers (Debian's podman, CNI backend) on a network that chains `firewall-sg`
//! after `bridge`: the network's groups let one container reach the other's port and not the
//! reverse, `modify-instance-attribute` changes that while they run, and removing a container
//! removes its instance. Everything runs in the test's host namespace.

use std::time::Duration;

use firewall_testkit::{agent::Agent, netns::Netns, podman::Podman, traffic::eventually};
use serde_json::{Value, json};

/// Inside the default VPC (172.31.0.0/16), so containers get VPC addresses.
const SUBNET: &str = "172.31.210.0/24";

/// The live instance tagged with the container's ID, as describe-instances shows it.
fn instance_of(agent: &Agent, container_id: &str) -> Option<Value> {
    let filter = format!("Name=tag:cni:container-id,Values={container_id}");
    let out = agent.cli(&[
        "describe-instances",
        "--filters",
        &filter,
        "Name=instance-state-name,Values=running",
    ]);
    out["Reservations"][0]["Instances"].get(0).cloned()
}

#[test]
fn containers_on_a_security_group_network_follow_their_groups_while_they_run() {
    let host = Netns::new("fwph");
    let agent = Agent::start(&host);
    let [web, admin] = agent.create_groups(["web", "admin"]);
    agent.authorize_ingress(&web, "tcp", "80", "172.31.0.0/16");
    agent.authorize_ingress(&admin, "tcp", "8080", "172.31.0.0/16");
    let podman = Podman::new(&host);
    let network = podman.network(
        SUBNET,
        Some(
            json!({"type": "firewall-sg", "securityGroupIds": [web], "agentSocket": agent.socket}),
        ),
    );

    let admin_box = podman.serve(&network, 8080);
    let web_box = podman.serve(&network, 80);
    let (admin_ip, web_ip) = (
        podman.address(&admin_box, &network),
        podman.address(&web_box, &network),
    );
    let admin_instance = instance_of(&agent, &admin_box).expect("ADD registered the container");
    assert_eq!(admin_instance["PrivateIpAddress"], admin_ip.to_string());
    assert!(instance_of(&agent, &web_box).is_some());

    assert!(
        podman.fetches(&admin_box, web_ip, 80),
        "web lets the VPC in on 80"
    );
    assert!(
        !podman.fetches(&web_box, admin_ip, 8080),
        "and nothing else"
    );

    let id = admin_instance["InstanceId"].as_str().unwrap();
    agent.modify_instance_groups(id, &[&web, &admin]);
    assert!(
        eventually(Duration::from_secs(3), || podman
            .fetches(&web_box, admin_ip, 8080))
        .is_some(),
        "admin's rule applies to the running container"
    );

    podman.run(&["rm", "-f", "-t", "0", &web_box]);
    assert!(
        instance_of(&agent, &web_box).is_none(),
        "removing a container removes its instance"
    );
    assert!(instance_of(&agent, &admin_box).is_some());
}

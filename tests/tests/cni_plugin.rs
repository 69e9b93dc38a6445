//! The `firewall-sg` CNI plugin invoked exactly as a runtime invokes it (`CNI_*` variables, the
//! configuration on stdin), chained after Debian's real `bridge` plugin, against a real agent:
//! containers get registered as instances with their groups and tags, traffic between them
//! follows the groups, CHECK sees enforcement, DEL is idempotent, errors are CNI error objects.

use std::{net::Ipv4Addr, time::Duration};

use firewall_testkit::{
    agent::Agent,
    cni::{Chain, invoke},
    netns::Netns,
    traffic::{EchoServer, tcp_round_trip},
};
use serde_json::{Value, json};

const SHORT: Duration = Duration::from_millis(700);
/// Inside the default VPC (172.31.0.0/16), so the containers' addresses are the VPC's.
const SUBNET: &str = "172.31.200.0/24";

/// The container's IPv4 address in a bridge plugin's result.
fn address(result: &Value) -> Ipv4Addr {
    result["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .filter_map(|ip| ip["address"].as_str()?.split('/').next()?.parse().ok())
        .next()
        .expect("an IPv4 address")
}

/// The host-side veth in a bridge plugin's result (no sandbox, not the bridge).
fn host_veth(result: &Value, bridge: &str) -> String {
    result["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter(|i| i.get("sandbox").is_none() && i["name"] != bridge)
        .map(|i| i["name"].as_str().expect("name").to_string())
        .next()
        .expect("a host-side veth")
}

/// The one live instance tagged with `container_id`.
fn instance_of(agent: &Agent, container_id: &str) -> Option<Value> {
    let filter = format!("Name=tag:cni:container-id,Values={container_id}");
    let out = agent.cli(&[
        "describe-instances",
        "--filters",
        &filter,
        "Name=instance-state-name,Values=running",
    ]);
    let instances: Vec<Value> = out["Reservations"]
        .as_array()
        .expect("Reservations")
        .iter()
        .flat_map(|r| r["Instances"].as_array().expect("Instances").clone())
        .collect();
    assert!(instances.len() <= 1, "{instances:?}");
    instances.into_iter().next()
}

fn tag(instance: &Value, key: &str) -> String {
    instance["Tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["Key"] == key))
        .and_then(|t| t["Value"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn add_registers_containers_with_their_groups_check_sees_enforcement_and_del_is_idempotent() {
    let host = Netns::new("fwch");
    let agent = Agent::start(&host);
    let [client, server] = agent.create_groups(["client", "server"]);
    agent.authorize_ingress(&server, "tcp", "80", &client);
    let chain = Chain::new(
        &host,
        "1.0.0",
        SUBNET,
        json!({"securityGroupIds": [client], "agentSocket": agent.socket}),
    );
    let (ca, cb) = (Netns::new("fwct"), Netns::new("fwct"));

    let (prev_a, added_a) = chain.add("ctr-a", &ca, "");
    assert!(added_a.success, "{}", added_a.stdout);
    assert_eq!(
        added_a.stdout, prev_a,
        "ADD passes the previous result through"
    );
    let override_b = format!("IgnoreUnknown=1;SECURITY_GROUP_IDS={server}");
    let (prev_b, added_b) = chain.add("ctr-b", &cb, &override_b);
    assert!(added_b.success, "{}", added_b.stdout);

    let a = instance_of(&agent, "ctr-a").expect("A is an instance");
    let b = instance_of(&agent, "ctr-b").expect("B is an instance");
    assert_eq!(
        a["SecurityGroups"][0]["GroupId"],
        client.as_str(),
        "the network's groups"
    );
    assert_eq!(
        b["SecurityGroups"][0]["GroupId"],
        server.as_str(),
        "CNI_ARGS override them"
    );
    assert_eq!(tag(&b, "cni:network"), chain.name);
    assert_eq!(tag(&b, "cni:ifname"), "eth0");
    let b_interface = &b["NetworkInterfaces"][0]["HostInterface"];
    assert_eq!(b_interface, host_veth(&prev_b, &chain.bridge).as_str());
    assert_eq!(b["PrivateIpAddress"], address(&prev_b).to_string());
    let listed = agent.cli(&[
        "describe-network-interfaces",
        "--filters",
        &format!("Name=group-id,Values={server}"),
    ]);
    let listed = &listed["NetworkInterfaces"];
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "a container's interface is a network interface: {listed}"
    );
    assert_eq!(listed[0]["PrivateIpAddress"], address(&prev_b).to_string());
    assert_eq!(listed[0]["Attachment"]["InstanceId"], b["InstanceId"]);

    let (ip_a, ip_b) = (address(&prev_a), address(&prev_b));
    let _b80 = EchoServer::tcp(&cb, ip_b, 80);
    let _a80 = EchoServer::tcp(&ca, ip_a, 80);
    assert!(
        tcp_round_trip(&ca, ip_b, 80, SHORT),
        "server lets client in on 80"
    );
    assert!(
        !tcp_round_trip(&cb, ip_a, 80, SHORT),
        "client lets nobody in"
    );

    let checked = chain.firewall("CHECK", "ctr-a", Some(&ca), "", Some(&prev_a));
    assert!(checked.success, "{}", checked.stdout);
    let a_id = a["InstanceId"].as_str().unwrap();
    agent.cli(&["terminate-instances", "--instance-ids", a_id]);
    let checked = chain.firewall("CHECK", "ctr-a", Some(&ca), "", Some(&prev_a));
    assert!(!checked.success, "CHECK fails once A is not enforced");
    assert_eq!(checked.stdout["code"], 101, "{}", checked.stdout);

    let deleted = chain.del("ctr-b", &cb, &prev_b);
    assert!(deleted.success, "{}", deleted.stdout);
    assert!(
        instance_of(&agent, "ctr-b").is_none(),
        "DEL terminates B's instance"
    );
    let again = chain.firewall("DEL", "ctr-b", Some(&cb), "", None);
    assert!(again.success, "DEL again is fine: {}", again.stdout);
    assert!(chain.del("ctr-a", &ca, &prev_a).success);
}

#[test]
fn version_0_4_0_and_runtime_config_groups_are_honoured() {
    let host = Netns::new("fwch");
    let agent = Agent::start(&host);
    let [web] = agent.create_groups(["web"]);
    let chain = Chain::new(
        &host,
        "0.4.0",
        SUBNET,
        json!({"agentSocket": agent.socket, "runtimeConfig": {"securityGroupIds": [web]}}),
    );
    let container = Netns::new("fwct");
    let (prev, added) = chain.add("ctr-old", &container, "");
    assert!(added.success, "{}", added.stdout);
    assert_eq!(added.stdout["cniVersion"], "0.4.0");
    assert_eq!(
        added.stdout["ips"], prev["ips"],
        "0.4.0's ips pass through as they came"
    );
    let instance = instance_of(&agent, "ctr-old").expect("an instance");
    assert_eq!(instance["SecurityGroups"][0]["GroupId"], web.as_str());
    assert!(
        chain
            .firewall("CHECK", "ctr-old", Some(&container), "", Some(&prev))
            .success
    );
    assert!(chain.del("ctr-old", &container, &prev).success);
    assert!(instance_of(&agent, "ctr-old").is_none());
}

#[test]
fn failures_are_cni_error_objects_with_clear_messages() {
    let host = Netns::new("fwch");
    let agent = Agent::start(&host);
    let plugin = firewall_testkit::cni::firewall_sg_binary();
    let version = invoke(
        &host.name,
        &plugin,
        "VERSION",
        "",
        None,
        "",
        &json!({"cniVersion": "1.0.0"}),
    );
    assert!(version.success);
    assert_eq!(
        version.stdout["supportedVersions"],
        json!(["0.4.0", "1.0.0"])
    );

    let chain = Chain::new(
        &host,
        "1.0.0",
        SUBNET,
        json!({"securityGroupIds": ["sg-00000000000000fff"], "agentSocket": agent.socket}),
    );
    let container = Netns::new("fwct");
    let (prev, refused) = chain.add("ctr-x", &container, "");
    assert!(!refused.success);
    assert_eq!(refused.stdout["code"], 100);
    let message = refused.stdout["msg"].as_str().unwrap();
    assert!(message.contains("InvalidGroup.NotFound"), "{message}");
    assert!(instance_of(&agent, "ctr-x").is_none(), "nothing registered");

    let unchained = chain.firewall("ADD", "ctr-x", Some(&container), "", None);
    assert_eq!(
        unchained.stdout["code"], 7,
        "no prevResult: {}",
        unchained.stdout
    );
    let bad_args = chain.firewall("ADD", "ctr-x", Some(&container), "NOEQUALS", Some(&prev));
    assert_eq!(bad_args.stdout["code"], 4, "{}", bad_args.stdout);

    let old =
        json!({"cniVersion": "0.3.1", "name": "n", "type": "firewall-sg", "prevResult": prev});
    let outdated = invoke(
        &host.name,
        &plugin,
        "ADD",
        "ctr-x",
        Some(&container),
        "",
        &old,
    );
    assert_eq!(outdated.stdout["code"], 1, "{}", outdated.stdout);

    let mut elsewhere = chain.firewall_conf.clone();
    elsewhere["agentSocket"] = "/nonexistent/agent.sock".into();
    elsewhere["cniVersion"] = "1.0.0".into();
    elsewhere["name"] = "n".into();
    elsewhere["prevResult"] = prev.clone();
    let away = invoke(
        &host.name,
        &plugin,
        "ADD",
        "ctr-x",
        Some(&container),
        "",
        &elsewhere,
    );
    assert_eq!(away.stdout["code"], 11, "{}", away.stdout);
    assert!(
        away.stdout["msg"]
            .as_str()
            .unwrap()
            .contains("not reachable")
    );
    assert!(
        chain.del("ctr-x", &container, &prev).success,
        "DEL of what never registered"
    );
}

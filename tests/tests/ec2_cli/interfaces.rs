//! Subnets and network interfaces through the real AWS CLI, checked with traffic: an instance
//! with two interfaces in two subnets, each address judged by its own interface's groups;
//! `modify-network-interface-attribute --groups` changes one interface's traffic only, and the
//! other's tracked flows live on; a rule referencing a group admits every interface carrying it.

use std::{process::Command, time::Duration};

use firewall_testkit::{
    aws::Aws,
    local::{self, LocalInstance},
    netns::Netns,
    shell::ns_sh,
    traffic::{EchoServer, echoes, eventually, tcp_connect, tcp_round_trip},
};
use serde_json::Value;

use super::{SHORT, create_group, start_in_default_account};

/// Whether a TCP echo to `to:port` from the address `from` (inside `ns`) comes back.
fn echo_from(ns: &Netns, from: &str, to: &str, port: u16) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sh", "-c"])
        .arg(format!(
            "echo hello | timeout 3 socat -T1 - TCP:{to}:{port},bind={from},connect-timeout=1"
        ))
        .output()
        .expect("socat");
    String::from_utf8_lossy(&out.stdout).contains("hello")
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

/// `create-network-interface` in `subnet` with `group`, attached to `instance` at `index`:
/// the interface's ID and address.
fn second_interface(
    aws: &Aws,
    subnet: &str,
    group: &str,
    instance: &str,
    index: &str,
) -> (String, String) {
    let created = aws.json(&[
        "ec2",
        "create-network-interface",
        "--subnet-id",
        subnet,
        "--groups",
        group,
        "--description",
        "second",
    ]);
    let eni = text(&created, "/NetworkInterface/NetworkInterfaceId").to_string();
    let address = text(&created, "/NetworkInterface/PrivateIpAddress").to_string();
    assert_eq!(text(&created, "/NetworkInterface/Status"), "available");
    let attached = aws.json(&[
        "ec2",
        "attach-network-interface",
        "--network-interface-id",
        &eni,
        "--instance-id",
        instance,
        "--device-index",
        index,
    ]);
    assert!(
        text(&attached, "/AttachmentId").starts_with("eni-attach-"),
        "{attached}"
    );
    (eni, address)
}

#[test]
fn each_interface_of_an_instance_is_judged_by_its_own_groups_and_changed_alone() {
    let ns = Netns::new("fwni");
    let (agent, aws) = start_in_default_account(&ns);
    // The default VPC's default subnet (172.31.0.0/20) and a second one.
    let subnets = aws.json(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=default-for-az,Values=true",
    ]);
    assert_eq!(
        text(&subnets, "/Subnets/0/CidrBlock"),
        "172.31.0.0/20",
        "{subnets}"
    );
    assert_eq!(subnets["Subnets"][0]["AvailableIpAddressCount"], 4091);
    let created = aws.json(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        text(&subnets, "/Subnets/0/VpcId"),
        "--cidr-block",
        "172.31.16.0/20",
    ]);
    let subnet_b = text(&created, "/Subnet/SubnetId").to_string();

    let web = create_group(&aws, "web");
    let db = create_group(&aws, "db");
    let client = create_group(&aws, "client");
    for (group, port) in [(&web, "80"), (&db, "5432")] {
        aws.json(&[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            group,
            "--protocol",
            "tcp",
            "--port",
            port,
            "--cidr",
            "172.31.0.0/16",
        ]);
    }
    let server: LocalInstance = local::launch(&agent, &["--security-group-ids", &web]).remove(0);
    let probe: LocalInstance = local::launch(&agent, &["--security-group-ids", &client]).remove(0);
    assert_eq!(
        server.ip.to_string(),
        "172.31.0.4",
        "the default subnet's first free address"
    );
    let (second, second_ip) = second_interface(&aws, &subnet_b, &db, &server.id, "1");
    assert_eq!(second_ip, "172.31.16.4", "subnet b's first free address");
    let inside = ns_sh(
        &server.ns.name,
        &["ip", "-o", "addr", "show", "dev", "eth1"],
    );
    assert!(inside.contains("172.31.16.4/20"), "{inside}");

    let primary_ip = server.ip.to_string();
    let servers: Vec<EchoServer> = [
        (&primary_ip, 80),
        (&primary_ip, 5432),
        (&second_ip, 80),
        (&second_ip, 5432),
    ]
    .iter()
    .map(|(ip, port)| EchoServer::tcp(&server.ns, ip.parse::<std::net::IpAddr>().unwrap(), *port))
    .collect();
    let reach = |ip: &str, port: u16| {
        tcp_round_trip(
            &probe.ns,
            ip.parse::<std::net::IpAddr>().unwrap(),
            port,
            SHORT,
        )
    };
    assert!(
        reach(&primary_ip, 80),
        "the primary interface's web group: 80"
    );
    assert!(
        !reach(&primary_ip, 5432),
        "the primary interface has no db rule"
    );
    assert!(
        reach(&second_ip, 5432),
        "the second interface's db group: 5432, across subnets through the VPC's router"
    );
    assert!(
        !reach(&second_ip, 80),
        "the second interface has no web rule"
    );
    // explain-verdict agrees, asked per interface.
    let verdict = |eni: &str, port: &str| {
        let explained = agent.cli(&[
            "explain-verdict",
            "--network-interface-id",
            eni,
            "--direction",
            "ingress",
            "--protocol",
            "tcp",
            "--port",
            port,
            "--peer",
            &probe.ip.to_string(),
        ]);
        explained["Verdict"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{explained}"))
    };
    let described = aws.json(&["ec2", "describe-instances", "--instance-ids", &server.id]);
    let primary = described["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        .as_array()
        .expect("NetworkInterfaces")
        .iter()
        .find(|eni| eni["Attachment"]["DeviceIndex"] == 0)
        .map(|eni| text(eni, "/NetworkInterfaceId").to_string())
        .unwrap_or_else(|| panic!("a primary interface: {described}"));
    assert_eq!(verdict(&second, "5432"), "allowed");
    assert_eq!(verdict(&second, "80"), "denied");
    assert_eq!(verdict(&primary, "80"), "allowed");
    assert_eq!(verdict(&primary, "5432"), "denied");

    // The interfaces the db group is attached to, as Terraform asks before deleting it.
    let using = aws.json(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=group-id,Values={db}"),
    ]);
    let ids: Vec<&str> = using["NetworkInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["NetworkInterfaceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str()], "{using}");
    assert_eq!(
        text(&using, "/NetworkInterfaces/0/Attachment/InstanceId"),
        server.id
    );
    let refused = aws.fails(
        "DependencyViolation",
        &["ec2", "delete-security-group", "--group-id", &db],
    );
    assert!(!refused.success());
    let refused = aws.fails(
        "InvalidInstanceID",
        &[
            "ec2",
            "modify-instance-attribute",
            "--instance-id",
            &server.id,
            "--groups",
            &db,
        ],
    );
    assert!(!refused.success());

    // A flow through the primary interface, then the second interface's groups change.
    let mut held = tcp_connect(&probe.ns, server.ip, 80, SHORT).expect("a flow to the primary");
    assert!(echoes(&mut held, "before\n"));
    aws.json(&[
        "ec2",
        "modify-network-interface-attribute",
        "--network-interface-id",
        &second,
        "--groups",
        &web,
    ]);
    assert!(
        eventually(Duration::from_secs(2), || reach(&second_ip, 80)).is_some(),
        "the second interface is now web"
    );
    assert!(!reach(&second_ip, 5432), "and no longer db");
    assert!(
        reach(&primary_ip, 80) && !reach(&primary_ip, 5432),
        "the primary is unchanged"
    );
    assert!(
        echoes(&mut held, "after\n"),
        "the primary's tracked flow lives on"
    );

    // A rule referencing a group admits every interface carrying it: the probe's own second
    // interface joins db, and only from that address may it reach the server's 81.
    aws.json(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &web,
        "--protocol",
        "tcp",
        "--port",
        "81",
        "--source-group",
        &db,
    ]);
    let _s81 = EchoServer::tcp(&server.ns, server.ip, 81);
    let (_, probe_second) = second_interface(&aws, &subnet_b, &db, &probe.id, "1");
    assert!(
        eventually(Duration::from_secs(2), || echo_from(
            &probe.ns,
            &probe_second,
            &primary_ip,
            81
        ))
        .is_some(),
        "from the interface carrying db"
    );
    assert!(
        !echo_from(&probe.ns, &probe.ip.to_string(), &primary_ip, 81),
        "not from the probe's primary interface, which does not carry db"
    );
    drop(servers);
    agent.cli(&[
        "terminate-instances",
        "--instance-ids",
        &server.id,
        &probe.id,
    ]);
}

//! Hostile callers with an EC2 key against the host: registering the loopback or the uplink,
//! flow-log files outside the account's directory, a VPC on the host's own subnet, and the
//! quotas run out. Each is refused or harmless, and after it the host namespace's interfaces,
//! routes, addresses and files are as they were.

use std::path::Path;

use firewall_testkit::{
    aws::start_agent_with,
    netns::Netns,
    shell::unique,
    traffic::ping,
    uplink::{NETWORK, SUBNET, Uplink, interfaces, routing},
};

use super::wire::{self, Request, xml_error_code};

/// A RunInstances with our `HostInterface` member, signed with the EC2 key.
fn run_instances_on(port: u16, interface: &str) -> Option<String> {
    let mut request = Request::post(
        "/",
        format!(
            "Action=RunInstances&Version=2016-11-15&MinCount=1&MaxCount=1&HostInterface={interface}"
        )
        .into_bytes(),
    )
    .header(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    );
    wire::sign(&mut request, port, "ec2");
    xml_error_code(&wire::tcp(port, &request).body)
}

#[test]
fn hostile_callers_leave_the_hosts_interfaces_routes_and_files_as_they_were() {
    let host = Netns::new("fwhh");
    let uplink = Uplink::new(&host);
    let outside = std::env::temp_dir().join(unique("fw-hostile-outside-"));
    std::fs::create_dir_all(&outside).expect("outside dir");
    let (agent, aws) = start_agent_with(&host, &["--max-local-instances", "2"]);
    let (links, routes) = (interfaces(&host), routing(&host));

    // Registering the agent's loopback or the host's uplink over the network.
    let port = aws.port;
    let uplink_name = uplink.name.clone();
    let codes = host.run(move || {
        [
            run_instances_on(port, "lo"),
            run_instances_on(port, &uplink_name),
        ]
    });
    assert_eq!(
        codes,
        [
            Some("UnknownParameter".into()),
            Some("UnknownParameter".into())
        ]
    );

    // Flow-log files outside the account's directory.
    let vpc = aws.json(&["ec2", "describe-vpcs"])["Vpcs"][0]["VpcId"]
        .as_str()
        .expect("VpcId")
        .to_string();
    let escapes = [
        outside.join("abs.log").display().to_string(),
        "../../../../../../etc/fw-hostile.log".to_string(),
        format!("../{}/x.log", "000000000000"),
        format!("/tmp/x/../..{}/dots.log", outside.display()),
    ];
    for destination in &escapes {
        let refused = aws.fails(
            "InvalidParameterValue",
            &[
                "ec2",
                "create-flow-logs",
                "--resource-type",
                "VPC",
                "--resource-ids",
                &vpc,
                "--traffic-type",
                "ALL",
                "--log-destination-type",
                "file",
                "--log-destination",
                destination,
            ],
        );
        assert!(!refused.stderr.is_empty(), "{destination}");
    }

    // A VPC on the host's own subnet, instances in it, then the instance quota.
    let created = aws.json(&["ec2", "create-vpc", "--cidr-block", SUBNET]);
    let overlapping = created["Vpc"]["VpcId"].as_str().expect("VpcId").to_string();
    let group = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "h",
        "--description",
        "h",
        "--vpc-id",
        &overlapping,
    ])["GroupId"]
        .as_str()
        .expect("GroupId")
        .to_string();
    let subnet = aws.json(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        &overlapping,
        "--cidr-block",
        SUBNET,
    ])["Subnet"]["SubnetId"]
        .as_str()
        .expect("SubnetId")
        .to_string();
    let launched = aws.json(&[
        "ec2",
        "run-instances",
        "--count",
        "2",
        "--security-group-ids",
        &group,
        "--subnet-id",
        &subnet,
    ]);
    let ids: Vec<String> = launched["Instances"]
        .as_array()
        .expect("Instances")
        .iter()
        .map(|i| i["InstanceId"].as_str().expect("InstanceId").to_string())
        .collect();
    let _namespaces: Vec<Netns> = ids
        .iter()
        .map(|id| Netns::adopt(id))
        .chain([Netns::adopt(&format!("{overlapping}-router"))])
        .collect();
    assert_eq!(
        routing(&host),
        routes,
        "instances on the host's subnet: no route"
    );
    assert!(ping(&host, NETWORK, std::time::Duration::from_millis(700)));
    aws.fails("InstanceLimitExceeded", &["ec2", "run-instances"]);
    for n in 1..=3 {
        aws.json(&[
            "ec2",
            "create-vpc",
            "--cidr-block",
            &format!("10.{n}.0.0/16"),
        ]);
    }
    aws.fails(
        "VpcLimitExceeded",
        &["ec2", "create-vpc", "--cidr-block", "10.9.0.0/16"],
    );

    let mut terminate = vec!["ec2", "terminate-instances", "--instance-ids"];
    terminate.extend(ids.iter().map(String::as_str));
    aws.json(&terminate);
    assert_eq!(interfaces(&host), links, "the host's interfaces");
    assert_eq!(routing(&host), routes, "the host's routes and addresses");
    let written: Vec<_> = std::fs::read_dir(&outside)
        .expect("outside dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(written.is_empty(), "nothing written outside: {written:?}");
    assert!(!Path::new("/etc/fw-hostile.log").exists());
    assert!(agent.log().contains("listening"));
    let _ = std::fs::remove_dir_all(&outside);
}

//! Instances: run (also from a launch template), states and group changes.

use serde_json::json;

use super::Fixture;

#[test]
fn run_instances_checks_groups_addresses_and_interfaces() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let run = |ip: &str, ifname: &str| json!({"SecurityGroupIds": [web], "PrivateIpAddress": ip, "HostInterface": ifname});
    let out = f.ok("RunInstances", run("172.31.0.10", "veth-a"));
    let instance = &out["Instances"][0];
    assert_eq!(instance["State"], json!({"Code": 16, "Name": "running"}));
    assert_eq!(instance["SecurityGroups"][0]["GroupName"], "web");
    f.fails(
        "RunInstances",
        run("172.31.0.10", "veth-b"),
        "InvalidIPAddress.InUse",
    );
    f.fails(
        "RunInstances",
        run("172.31.0.11", "veth-a"),
        "InvalidParameterValue",
    );
    f.fails(
        "RunInstances",
        run("10.0.0.1", "veth-b"),
        "InvalidParameterValue",
    );
    f.fails("RunInstances", json!({"SecurityGroupIds": ["sg-00000000000000fff"], "PrivateIpAddress": "172.31.0.12", "HostInterface": "x"}), "InvalidGroup.NotFound");
    f.fails(
        "RunInstances",
        json!({"HostInterface": "veth-x"}),
        "MissingParameter",
    );
    f.fails(
        "DeleteSecurityGroup",
        json!({"GroupId": web}),
        "DependencyViolation",
    );

    let id = instance["InstanceId"].as_str().unwrap().to_string();
    let out = f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    assert_eq!(
        out["TerminatingInstances"][0]["CurrentState"]["Name"],
        "terminated"
    );
    // A terminated instance frees its address, interface and groups.
    f.ok("RunInstances", run("172.31.0.10", "veth-a"));
    f.fails(
        "TerminateInstances",
        json!({"InstanceIds": ["i-00000000000000fff"]}),
        "InvalidInstanceID.NotFound",
    );
    f.fails(
        "TerminateInstances",
        json!({"InstanceIds": ["bogus"]}),
        "InvalidInstanceID.Malformed",
    );
}

#[test]
fn stop_start_and_group_changes_follow_instance_states() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let db = f.group("db");
    let out = f.ok("RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.10", "HostInterface": "veth-a"}));
    let id = out["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let out = f.ok("StopInstances", json!({"InstanceIds": [id]}));
    assert_eq!(
        out["StoppingInstances"][0]["CurrentState"],
        json!({"Code": 80, "Name": "stopped"})
    );
    assert_eq!(
        out["StoppingInstances"][0]["PreviousState"]["Name"],
        "running"
    );
    assert_eq!(
        f.ok(
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "Groups": [web, db]})
        ),
        json!({})
    );
    assert_eq!(
        f.state.network_interfaces[&f.state.instances[&id].eni_id].group_ids,
        vec![web.clone(), db.clone()]
    );
    let out = f.ok("StartInstances", json!({"InstanceIds": [id]}));
    assert_eq!(
        out["StartingInstances"][0]["CurrentState"]["Name"],
        "running"
    );

    f.fails(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "Groups": []}),
        "InvalidParameterCombination",
    );
    f.fails(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "Groups": ["sg-00000000000000fff"]}),
        "InvalidGroup.NotFound",
    );
    f.state.quotas.groups_per_instance = 1;
    f.fails(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "Groups": [web, db]}),
        "SecurityGroupsPerInterfaceLimitExceeded",
    );
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    f.fails(
        "StartInstances",
        json!({"InstanceIds": [id]}),
        "IncorrectInstanceState",
    );
    f.fails(
        "StopInstances",
        json!({"InstanceIds": [id]}),
        "IncorrectInstanceState",
    );
    f.fails(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "Groups": [web]}),
        "IncorrectInstanceState",
    );
}

#[test]
fn run_instances_takes_its_groups_from_a_launch_template() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let out = f.ok("CreateLaunchTemplate", json!({"LaunchTemplateName": "web-tier", "LaunchTemplateData": {"SecurityGroupIds": [web], "ImageId": "ami-1"}}));
    let lt = out["LaunchTemplate"]["LaunchTemplateId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out["LaunchTemplate"]["LatestVersionNumber"], 1);
    f.fails(
        "CreateLaunchTemplate",
        json!({"LaunchTemplateName": "web-tier", "LaunchTemplateData": {}}),
        "InvalidLaunchTemplateName.AlreadyExistsException",
    );
    f.fails(
        "CreateLaunchTemplate",
        json!({"LaunchTemplateName": "x", "LaunchTemplateData": {}}),
        "InvalidLaunchTemplateName.MalformedException",
    );
    let out = f.ok("RunInstances", json!({"LaunchTemplate": {"LaunchTemplateName": "web-tier"}, "PrivateIpAddress": "172.31.0.9", "HostInterface": "v1"}));
    assert_eq!(
        out["Instances"][0]["SecurityGroups"][0]["GroupId"],
        web.as_str()
    );
    f.fails("RunInstances", json!({"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "2"}, "PrivateIpAddress": "172.31.0.8", "HostInterface": "v2"}), "InvalidLaunchTemplateId.VersionNotFound");
    f.fails(
        "DescribeLaunchTemplates",
        json!({"LaunchTemplateIds": ["lt-00000000000000fff"]}),
        "InvalidLaunchTemplateId.NotFound",
    );
    f.ok("DeleteLaunchTemplate", json!({"LaunchTemplateId": lt}));
    assert_eq!(
        f.ok("DescribeLaunchTemplates", json!({})),
        json!({"LaunchTemplates": []})
    );
}

#[test]
fn describe_instances_filters_by_state_group_and_address_and_pages_with_max_results() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let mut ids = Vec::new();
    for n in 0..7 {
        let out = f.ok(
            "RunInstances",
            json!({"SecurityGroupIds": [web], "PrivateIpAddress": format!("172.31.0.{}", 10 + n), "HostInterface": format!("veth{n}")}),
        );
        ids.push(
            out["Instances"][0]["InstanceId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    f.ok("StopInstances", json!({"InstanceIds": [ids[0]]}));
    let count = |out: &serde_json::Value| out["Reservations"].as_array().unwrap().len();
    let running = f.ok(
        "DescribeInstances",
        json!({"Filters": [{"Name": "instance-state-name", "Values": ["running"]}]}),
    );
    assert_eq!(count(&running), 6);
    let by_address = f.ok(
        "DescribeInstances",
        json!({"Filters": [{"Name": "private-ip-address", "Values": ["172.31.0.1?"]},
                           {"Name": "instance.group-name", "Values": ["web"]}]}),
    );
    assert_eq!(count(&by_address), 7);
    let first = f.ok("DescribeInstances", json!({"MaxResults": 5}));
    assert_eq!(count(&first), 5);
    let token = first["NextToken"].as_str().unwrap().to_string();
    let rest = f.ok(
        "DescribeInstances",
        json!({"MaxResults": 5, "NextToken": token}),
    );
    assert_eq!(count(&rest), 2);
    assert!(rest.get("NextToken").is_none());
    f.fails(
        "DescribeInstances",
        json!({"InstanceIds": [ids[1]], "MaxResults": 5}),
        "InvalidParameterCombination",
    );
    f.fails(
        "DescribeInstances",
        json!({"Filters": [{"Name": "image-id", "Values": ["ami-1"]}]}),
        "InvalidParameterValue",
    );
}

#[test]
fn without_an_interface_instances_are_local_with_names_from_their_ids_and_free_vpc_addresses() {
    let mut f = Fixture::new();
    let web = f.group("web");
    f.ok("RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.4", "HostInterface": "veth-a"}));
    let out = f.ok("RunInstances", json!({"SecurityGroupIds": [web], "MinCount": 2, "MaxCount": 2,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "tier", "Value": "web"}]}]}));
    let instances = out["Instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "one reservation of two");
    let addresses: Vec<&str> = instances
        .iter()
        .map(|i| i["PrivateIpAddress"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["172.31.0.5", "172.31.0.6"],
        "the lowest free past the reserved four and the registered one"
    );
    for instance in instances {
        let id = instance["InstanceId"].as_str().unwrap();
        let interface = &instance["NetworkInterfaces"][0];
        assert_eq!(
            interface["Namespace"], id,
            "the namespace is the instance ID"
        );
        assert_eq!(
            interface["HostInterface"],
            format!("fwi{}", &id[id.len() - 12..])
        );
        assert!(
            interface["HostInterface"].as_str().unwrap().len() <= 15,
            "fits IFNAMSIZ"
        );
        assert!(
            interface["Ipv6Addresses"][0]["Ipv6Address"]
                .as_str()
                .unwrap()
                .starts_with("fd00:ec2::")
        );
    }
    let tagged = f.ok(
        "DescribeInstances",
        json!({"Filters": [{"Name": "tag:tier", "Values": ["web"]}]}),
    );
    assert_eq!(tagged["Reservations"].as_array().unwrap().len(), 2);
    f.fails(
        "RunInstances",
        json!({"PrivateIpAddress": "172.31.0.2"}),
        "InvalidParameterValue",
    );
    f.fails(
        "RunInstances",
        json!({"MaxCount": 2, "PrivateIpAddress": "172.31.0.9"}),
        "InvalidParameterCombination",
    );
    f.fails(
        "RunInstances",
        json!({"MaxCount": 2, "HostInterface": "veth-b", "PrivateIpAddress": "172.31.0.9"}),
        "InvalidParameterValue",
    );
    f.fails(
        "RunInstances",
        json!({"MinCount": 3, "MaxCount": 2}),
        "InvalidParameterValue",
    );
    f.fails(
        "RunInstances",
        json!({"TagSpecifications": [{"ResourceType": "vpc", "Tags": []}]}),
        "InvalidParameterValue",
    );
}

#[test]
fn network_interfaces_per_region_are_bounded_and_a_terminated_instance_frees_its_own() {
    let mut f = Fixture::new();
    let web = f.group("web");
    f.state.quotas.interfaces_per_region = 2;
    let run = |ip: &str, ifname: &str| json!({"SecurityGroupIds": [web], "PrivateIpAddress": ip, "HostInterface": ifname});
    let first = f.ok("RunInstances", run("172.31.0.10", "veth-a"));
    f.ok("RunInstances", run("172.31.0.11", "veth-b"));
    f.fails(
        "RunInstances",
        run("172.31.0.12", "veth-c"),
        "NetworkInterfaceLimitExceeded",
    );
    f.fails(
        "RunInstances",
        json!({"MaxCount": 2}),
        "NetworkInterfaceLimitExceeded",
    );
    let id = first["Instances"][0]["InstanceId"].as_str().unwrap();
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    f.ok("RunInstances", run("172.31.0.12", "veth-c"));
}

#[test]
fn a_local_instances_given_ipv6_address_must_be_in_the_block_and_not_reserved() {
    let mut f = Fixture::new();
    let v6 = |address: &str| json!({"Ipv6Addresses": [{"Ipv6Address": address}]});
    f.fails("RunInstances", v6("fd00:ec2::1"), "InvalidParameterValue");
    f.fails("RunInstances", v6("fd00:ec2::3"), "InvalidParameterValue");
    f.fails("RunInstances", v6("2001:db8::9"), "InvalidParameterValue");
    f.ok("RunInstances", v6("fd00:ec2::9"));
}

#[test]
fn a_terminated_instance_is_listed_for_an_hour_then_forgotten() {
    let mut f = Fixture::new();
    let web = f.group("web");
    let run = |ip: &str, ifname: &str| json!({"SecurityGroupIds": [web], "PrivateIpAddress": ip, "HostInterface": ifname});
    let out = f.ok("RunInstances", run("172.31.0.10", "veth-a"));
    let id = out["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = |f: &mut Fixture| {
        f.ok("DescribeInstances", json!({}))["Reservations"]
            .as_array()
            .unwrap()
            .len()
    };
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    f.ids.advance(3599);
    // Terminating it again does not restart its hour.
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    let out = f.ok("DescribeInstances", json!({"InstanceIds": [id]}));
    let state = &out["Reservations"][0]["Instances"][0]["State"]["Name"];
    assert_eq!(state, "terminated");

    f.ids.advance(1);
    assert_eq!(listed(&mut f), 0, "an hour after, it is no longer listed");
    f.fails(
        "DescribeInstances",
        json!({"InstanceIds": [id]}),
        "InvalidInstanceID.NotFound",
    );
    assert!(
        f.state.instances.contains_key(&id),
        "a read changes nothing"
    );
    // The next change of the region drops its record.
    f.ok("RunInstances", run("172.31.0.11", "veth-b"));
    assert!(!f.state.instances.contains_key(&id));
    assert_eq!(listed(&mut f), 1);
}

#[test]
fn an_instance_terminated_by_a_release_that_kept_no_time_is_forgotten() {
    let mut f = Fixture::new();
    let out = f.ok(
        "RunInstances",
        json!({"PrivateIpAddress": "172.31.0.10", "HostInterface": "veth-a"}),
    );
    let id = out["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
    f.state.instances.get_mut(&id).unwrap().terminated_at = None;
    f.fails(
        "DescribeInstances",
        json!({"InstanceIds": [id]}),
        "InvalidInstanceID.NotFound",
    );
}

//! Golden tests of subnets and network interfaces: every shape and AWS error of their actions,
//! as the JSON socket answers (`tests/golden/network.json`) and as the EC2 Query endpoint
//! writes it (`tests/golden/network.xml`), on deterministic IDs. `GOLDEN_UPDATE=1` rewrites.

use serde_json::json;

use crate::golden_tests::{Scenario, check_golden, id};

#[test]
fn subnets_and_network_interfaces_answer_in_aws_shapes_and_errors() {
    let mut s = Scenario::new();
    // The default VPC's default subnet, as AWS lays it out.
    let default_subnet = id(
        &s.call(
            "DescribeSubnets",
            json!({"Filters": [{"Name": "default-for-az", "Values": ["true"]}]}),
        ),
        "/Subnets/0/SubnetId",
    );
    let vpc = id(
        &s.call(
            "CreateVpc",
            json!({"CidrBlock": "10.8.0.0/16", "AmazonProvidedIpv6CidrBlock": true}),
        ),
        "/Vpc/VpcId",
    );
    let v6 = id(
        &s.call("DescribeVpcs", json!({"VpcIds": [vpc]})),
        "/Vpcs/0/Ipv6CidrBlockAssociationSet/0/Ipv6CidrBlock",
    );
    let block64 = v6.replace("00::/56", "01::/64");
    let subnet_a = id(
        &s.call(
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": "10.8.1.0/24", "Ipv6CidrBlock": block64,
                   "TagSpecifications": [{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "a"}]}]}),
        ),
        "/Subnet/SubnetId",
    );
    let subnet_b = id(
        &s.call(
            "CreateSubnet",
            json!({"VpcId": vpc, "CidrBlock": "10.8.2.0/24", "AvailabilityZone": "locala"}),
        ),
        "/Subnet/SubnetId",
    );
    // Refused: overlapping, outside the VPC, too small, an unknown zone, an unknown VPC.
    s.call(
        "CreateSubnet",
        json!({"VpcId": vpc, "CidrBlock": "10.8.1.128/25"}),
    );
    s.call(
        "CreateSubnet",
        json!({"VpcId": vpc, "CidrBlock": "10.9.0.0/24"}),
    );
    s.call(
        "CreateSubnet",
        json!({"VpcId": vpc, "CidrBlock": "10.8.3.0/29"}),
    );
    s.call(
        "CreateSubnet",
        json!({"VpcId": vpc, "CidrBlock": "10.8.3.0/24", "AvailabilityZone": "us-east-1z"}),
    );
    s.call(
        "CreateSubnet",
        json!({"VpcId": "vpc-0000000000000dead", "CidrBlock": "10.8.3.0/24"}),
    );
    s.call(
        "DescribeSubnets",
        json!({"SubnetIds": ["subnet-0000000000000dead"]}),
    );
    s.call("DescribeSubnets", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "cidrBlock", "Values": ["10.8.1.0/24"]}]}));
    s.call(
        "DescribeSubnets",
        json!({"Filters": [{"Name": "bogus", "Values": ["x"]}]}),
    );

    let web = id(
        &s.call(
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "web", "VpcId": vpc}),
        ),
        "/GroupId",
    );
    let db = id(
        &s.call(
            "CreateSecurityGroup",
            json!({"GroupName": "db", "Description": "db", "VpcId": vpc}),
        ),
        "/GroupId",
    );
    // An instance in subnet a gets the subnet's first free address (after AWS's four).
    let launched = s.call(
        "RunInstances",
        json!({"SubnetId": subnet_a, "SecurityGroupIds": [web]}),
    );
    let instance = id(&launched, "/Instances/0/InstanceId");
    let primary = id(
        &launched,
        "/Instances/0/NetworkInterfaces/0/NetworkInterfaceId",
    );
    // Without a subnet, groups of another VPC than the default one: AWS's error.
    s.call("RunInstances", json!({"SecurityGroupIds": [web]}));
    // A reserved address, one outside the subnet.
    s.call(
        "RunInstances",
        json!({"SubnetId": subnet_a, "SecurityGroupIds": [web], "PrivateIpAddress": "10.8.1.2"}),
    );
    s.call(
        "RunInstances",
        json!({"SubnetId": subnet_a, "SecurityGroupIds": [web], "PrivateIpAddress": "10.8.2.9"}),
    );

    let created = s.call(
        "CreateNetworkInterface",
        json!({"SubnetId": subnet_b, "Groups": [db], "Description": "second",
               "TagSpecifications": [{"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "db"}]}]}),
    );
    let second = id(&created, "/NetworkInterface/NetworkInterfaceId");
    s.call(
        "CreateNetworkInterface",
        json!({"SubnetId": subnet_b, "Groups": [web], "PrivateIpAddress": "10.8.2.4"}),
    );
    s.call(
        "CreateNetworkInterface",
        json!({"SubnetId": default_subnet, "Groups": [web]}),
    );
    s.call(
        "AttachNetworkInterface",
        json!({"NetworkInterfaceId": second, "InstanceId": instance, "DeviceIndex": 0}),
    );
    let attachment = id(
        &s.call(
            "AttachNetworkInterface",
            json!({"NetworkInterfaceId": second, "InstanceId": instance, "DeviceIndex": 1}),
        ),
        "/AttachmentId",
    );
    s.call(
        "AttachNetworkInterface",
        json!({"NetworkInterfaceId": second, "InstanceId": instance, "DeviceIndex": 2}),
    );
    s.call("DescribeInstances", json!({"InstanceIds": [instance]}));
    s.call(
        "DescribeNetworkInterfaces",
        json!({"Filters": [{"Name": "group-id", "Values": [db]}]}),
    );
    s.call("DescribeNetworkInterfaces", json!({"Filters": [{"Name": "attachment.instance-id", "Values": [instance]}], "MaxResults": 5}));
    s.call("DescribeNetworkInterfaces", json!({"Filters": [{"Name": "addresses.private-ip-address", "Values": ["10.8.2.*"]}, {"Name": "status", "Values": ["in-use"]}]}));
    s.call(
        "DescribeNetworkInterfaces",
        json!({"NetworkInterfaceIds": ["eni-0000000000000dead"]}),
    );
    s.call(
        "DescribeNetworkInterfaces",
        json!({"NetworkInterfaceIds": ["eni-nope"]}),
    );
    // With two interfaces, the instance's groups can only change by interface.
    s.call(
        "ModifyInstanceAttribute",
        json!({"InstanceId": instance, "Groups": [db]}),
    );
    s.call(
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": primary, "Groups": [web, db]}),
    );
    s.call(
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": second, "Description": {"Value": "replica"}}),
    );
    s.call(
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": second, "Groups": [web], "Description": {"Value": "x"}}),
    );
    s.call(
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": second, "Groups": ["sg-00000000000000001"]}),
    );
    s.call(
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": second, "SourceDestCheck": {"Value": false}}),
    );
    s.call(
        "DescribeInstances",
        json!({"Filters": [{"Name": "network-interface.subnet-id", "Values": [subnet_b]}]}),
    );
    // In use: the group, the subnet, the VPC, the attached interface; the primary stays.
    s.call("DeleteSecurityGroup", json!({"GroupId": db}));
    s.call("DeleteSubnet", json!({"SubnetId": subnet_b}));
    s.call("DeleteVpc", json!({"VpcId": vpc}));
    s.call(
        "DeleteNetworkInterface",
        json!({"NetworkInterfaceId": second}),
    );
    s.call(
        "DetachNetworkInterface",
        json!({"AttachmentId": format!("eni-attach-{}", &primary[4..])}),
    );
    s.call(
        "DetachNetworkInterface",
        json!({"AttachmentId": attachment}),
    );
    s.call(
        "DetachNetworkInterface",
        json!({"AttachmentId": attachment}),
    );
    s.call(
        "DeleteNetworkInterface",
        json!({"NetworkInterfaceId": second}),
    );
    s.call(
        "DeleteNetworkInterface",
        json!({"NetworkInterfaceId": second}),
    );
    // Terminating deletes the primary interface: its groups, subnet and VPC are free again.
    s.call("TerminateInstances", json!({"InstanceIds": [instance]}));
    s.call(
        "DescribeNetworkInterfaces",
        json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}),
    );
    s.call("DeleteSecurityGroup", json!({"GroupId": web}));
    s.call("DeleteSubnet", json!({"SubnetId": subnet_a}));
    s.call("DeleteSubnet", json!({"SubnetId": subnet_b}));
    s.call(
        "DescribeSubnets",
        json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}),
    );
    // Each VPC's main route table: its local routes only.
    s.call(
        "DescribeRouteTables",
        json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]}),
    );
    s.call(
        "DescribeRouteTables",
        json!({"RouteTableIds": ["rtb-0123456789abcdef0"]}),
    );
    check_golden("network.json", &s.text());
    check_golden("network.xml", &s.xml());
}

//! Golden tests of what an instance is launched with and what tools read of it beside
//! `describe-instances`: instance types, images, instance attributes, credit specifications,
//! volumes, with their AWS errors, as the JSON socket answers (`tests/golden/instance.json`)
//! and as the EC2 Query endpoint writes it (`tests/golden/instance.xml`). `GOLDEN_UPDATE=1`
//! rewrites.

use serde_json::json;

use crate::golden_tests::{Scenario, check_golden, id};

#[test]
fn instance_types_images_attributes_and_volumes_answer_in_aws_shapes_and_errors() {
    let mut s = Scenario::new();
    // What Terraform's aws_instance sends for a t3.micro.
    let instance = id(
        &s.call(
            "RunInstances",
            json!({"ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro",
                   "MinCount": 1, "MaxCount": 1, "ClientToken": "terraform-1",
                   "CreditSpecification": {"CpuCredits": "unlimited"},
                   "DisableApiTermination": false, "EbsOptimized": false,
                   "HibernationOptions": {"Configured": false},
                   "Monitoring": {"Enabled": false}, "Placement": {"AvailabilityZone": ""},
                   "UserData": "ZWNobyBoZWxsbw=="}),
        ),
        "/Instances/0/InstanceId",
    );
    s.call(
        "RunInstances",
        json!({"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}),
    );
    s.call(
        "RunInstances",
        json!({"InstanceType": "t9.huge", "MinCount": 1, "MaxCount": 1}),
    );
    s.call(
        "DescribeInstanceTypes",
        json!({"InstanceTypes": ["t3.micro"]}),
    );
    s.call(
        "DescribeInstanceTypes",
        json!({"InstanceTypes": ["t9.huge"]}),
    );
    s.call(
        "DescribeImages",
        json!({"ImageIds": ["ami-0123456789abcdef0"]}),
    );
    s.call("DescribeImages", json!({"ImageIds": ["ami-12345678"]}));
    for attribute in [
        "instanceType",
        "userData",
        "disableApiTermination",
        "disableApiStop",
        "instanceInitiatedShutdownBehavior",
        "groupSet",
        "colour",
    ] {
        s.call(
            "DescribeInstanceAttribute",
            json!({"InstanceId": instance, "Attribute": attribute}),
        );
    }
    s.call(
        "DescribeInstanceCreditSpecifications",
        json!({"InstanceIds": [instance]}),
    );
    s.call(
        "DescribeVolumes",
        json!({"Filters": [{"Name": "attachment.instance-id", "Values": [instance]}]}),
    );
    s.call(
        "DescribeVolumes",
        json!({"VolumeIds": ["vol-0123456789abcdef0"]}),
    );
    s.call(
        "ModifyInstanceAttribute",
        json!({"InstanceId": instance, "DisableApiTermination": {"Value": true}}),
    );
    s.call("TerminateInstances", json!({"InstanceIds": [instance]}));
    s.call(
        "ModifyInstanceAttribute",
        json!({"InstanceId": instance, "DisableApiTermination": {"Value": false}}),
    );
    s.call("TerminateInstances", json!({"InstanceIds": [instance]}));
    s.call("DescribeInstances", json!({"InstanceIds": [instance]}));
    check_golden("instance.json", &s.text());
    check_golden("instance.xml", &s.xml());
}

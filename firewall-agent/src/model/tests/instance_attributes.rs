//! What an instance is launched with beyond its network, the attributes that read and change
//! it, and the catalogues (types, images) and empty volume listing tools read.

use serde_json::json;

use super::Fixture;

fn launch(f: &mut Fixture, extra: serde_json::Value) -> String {
    let mut request = json!({"MinCount": 1, "MaxCount": 1});
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    let out = f.ok("RunInstances", request);
    out["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn attribute(f: &mut Fixture, id: &str, name: &str) -> serde_json::Value {
    f.ok(
        "DescribeInstanceAttribute",
        json!({"InstanceId": id, "Attribute": name}),
    )
}

#[test]
fn a_launch_takes_an_image_and_type_of_the_catalogues_and_terraforms_members() {
    let mut f = Fixture::new();
    let id = launch(
        &mut f,
        json!({
            "ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro",
            "CreditSpecification": {"CpuCredits": "unlimited"}, "DisableApiTermination": false,
            "EbsOptimized": false, "HibernationOptions": {"Configured": false},
            "Monitoring": {"Enabled": false}, "Placement": {"AvailabilityZone": ""},
            "UserData": "ZWNobyBoaQ==", "ClientToken": "terraform-1"
        }),
    );
    let described = f.ok("DescribeInstances", json!({"InstanceIds": [id]}));
    let instance = &described["Reservations"][0]["Instances"][0];
    assert_eq!(instance["InstanceType"], "t3.micro");
    assert_eq!(instance["ImageId"], "ami-0123456789abcdef0");
    assert_eq!(instance["Placement"]["AvailabilityZone"], "locala");
    assert_eq!(instance["Monitoring"]["State"], "disabled");
    assert_eq!(
        attribute(&mut f, &id, "userData")["UserData"]["Value"],
        "ZWNobyBoaQ=="
    );
    assert_eq!(
        attribute(&mut f, &id, "instanceType")["InstanceType"]["Value"],
        "t3.micro"
    );
    assert_eq!(
        attribute(&mut f, &id, "disableApiStop")["DisableApiStop"]["Value"],
        false
    );
    let credits = f.ok(
        "DescribeInstanceCreditSpecifications",
        json!({"InstanceIds": [id]}),
    );
    assert_eq!(
        credits["InstanceCreditSpecifications"][0]["CpuCredits"],
        "unlimited"
    );

    let plain = launch(&mut f, json!({}));
    let described = f.ok("DescribeInstances", json!({"InstanceIds": [plain]}));
    assert_eq!(
        described["Reservations"][0]["Instances"][0]["InstanceType"], "m1.small",
        "AWS's default type"
    );
    f.fails(
        "DescribeInstanceCreditSpecifications",
        json!({"InstanceIds": [plain]}),
        "UnsupportedOperation",
    );
    f.fails(
        "DescribeInstanceAttribute",
        json!({"InstanceId": plain, "Attribute": "colour"}),
        "InvalidParameterValue",
    );
}

#[test]
fn unknown_images_and_types_and_what_is_not_available_are_refused_with_aws_codes() {
    let mut f = Fixture::new();
    let refused = [
        (json!({"ImageId": "ami-12345678"}), "InvalidAMIID.NotFound"),
        (json!({"ImageId": "image-1"}), "InvalidAMIID.Malformed"),
        (json!({"InstanceType": "t9.huge"}), "InvalidParameterValue"),
        (json!({"UserData": "not base64!"}), "InvalidParameterValue"),
        (
            json!({"Monitoring": {"Enabled": true}}),
            "UnsupportedOperation",
        ),
        (
            json!({"InstanceType": "m5.large", "CreditSpecification": {"CpuCredits": "unlimited"}}),
            "InvalidParameterCombination",
        ),
        (
            json!({"Placement": {"AvailabilityZone": "mars-1a"}}),
            "InvalidParameterValue",
        ),
        (
            json!({"InstanceInitiatedShutdownBehavior": "explode"}),
            "InvalidParameterValue",
        ),
    ];
    for (extra, code) in refused {
        let mut request = json!({"MinCount": 1, "MaxCount": 1});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        f.fails("RunInstances", request, code);
    }
}

#[test]
fn termination_and_stop_protection_hold_until_the_attribute_is_turned_off() {
    let mut f = Fixture::new();
    let id = launch(
        &mut f,
        json!({"DisableApiTermination": true, "DisableApiStop": true}),
    );
    f.fails(
        "TerminateInstances",
        json!({"InstanceIds": [id]}),
        "OperationNotPermitted",
    );
    f.fails(
        "StopInstances",
        json!({"InstanceIds": [id]}),
        "OperationNotPermitted",
    );
    f.fails(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "DisableApiTermination": {"Value": false}, "DisableApiStop": {"Value": false}}),
        "InvalidParameterCombination",
    );
    f.ok(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "DisableApiStop": {"Value": false}}),
    );
    f.ok("StopInstances", json!({"InstanceIds": [id]}));
    f.ok(
        "ModifyInstanceAttribute",
        json!({"InstanceId": id, "Attribute": "disableApiTermination", "Value": "false"}),
    );
    assert_eq!(
        attribute(&mut f, &id, "disableApiTermination")["DisableApiTermination"]["Value"],
        false
    );
    f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
}

#[test]
fn instance_types_images_and_volumes_answer_as_aws_does() {
    let mut f = Fixture::new();
    let types = f.ok(
        "DescribeInstanceTypes",
        json!({"InstanceTypes": ["t3.micro"]}),
    );
    let t3 = &types["InstanceTypes"][0];
    assert_eq!(types["InstanceTypes"].as_array().unwrap().len(), 1);
    assert_eq!(t3["BurstablePerformanceSupported"], true);
    assert_eq!(t3["VCpuInfo"]["DefaultVCpus"], 2);
    assert_eq!(t3["MemoryInfo"]["SizeInMiB"], 1024);
    f.fails(
        "DescribeInstanceTypes",
        json!({"InstanceTypes": ["t9.huge"]}),
        "InvalidParameterValue",
    );
    let images = f.ok("DescribeImages", json!({"Owners": ["amazon"]}));
    assert_eq!(images["Images"][0]["ImageId"], "ami-0123456789abcdef0");
    let none = f.ok("DescribeImages", json!({"Owners": ["self"]}));
    assert_eq!(none["Images"], json!([]));
    let volumes = f.ok(
        "DescribeVolumes",
        json!({"Filters": [{"Name": "attachment.instance-id", "Values": ["i-1"]}]}),
    );
    assert_eq!(volumes["Volumes"], json!([]));
    f.fails(
        "DescribeVolumes",
        json!({"VolumeIds": ["vol-0123456789abcdef0"]}),
        "InvalidVolume.NotFound",
    );
    f.fails(
        "DescribeVolumes",
        json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}),
        "InvalidParameterValue",
    );
}

//! Flow logs: what create-flow-logs refuses (AWS's destinations, intervals, formats), unknown
//! resources as unsuccessful items, describe filters, delete.

use serde_json::json;

use super::Fixture;

fn vpc(f: &Fixture) -> String {
    f.state.default_vpc().unwrap().id.clone()
}

#[test]
fn create_describe_delete_a_vpc_flow_log_to_a_file() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    let out = f.ok(
        "CreateFlowLogs",
        json!({"ResourceIds": [vpc, "vpc-00000000000000000"], "ResourceType": "VPC",
               "TrafficType": "REJECT", "LogDestinationType": "file",
               "LogDestination": "/var/log/flows.log", "MaxAggregationInterval": 60}),
    );
    let id = out["FlowLogIds"][0].as_str().unwrap().to_string();
    assert!(id.starts_with("fl-"));
    assert_eq!(
        out["Unsuccessful"][0]["ResourceId"],
        "vpc-00000000000000000"
    );
    assert_eq!(
        out["Unsuccessful"][0]["Error"]["Code"],
        "InvalidVpcID.NotFound"
    );
    let again = f.ok(
        "CreateFlowLogs",
        json!({"ResourceIds": [vpc], "ResourceType": "VPC", "TrafficType": "REJECT",
               "LogDestinationType": "file", "LogDestination": "/var/log/flows.log"}),
    );
    assert_eq!(
        again["Unsuccessful"][0]["Error"]["Code"],
        "FlowLogAlreadyExists"
    );
    let described = f.ok(
        "DescribeFlowLogs",
        json!({"Filter": [{"Name": "resource-id", "Values": [vpc]}]}),
    );
    let log = &described["FlowLogs"][0];
    assert_eq!(log["FlowLogId"], id.as_str());
    assert_eq!(log["TrafficType"], "REJECT");
    assert_eq!(log["LogDestination"], "/var/log/flows.log");
    assert_eq!(log["MaxAggregationInterval"], 60);
    assert_eq!(log["FlowLogStatus"], "ACTIVE");
    assert_eq!(
        log["LogFormat"],
        "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} \
         ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
    );
    let none = f.ok(
        "DescribeFlowLogs",
        json!({"Filter": [{"Name": "traffic-type", "Values": ["ACCEPT"]}]}),
    );
    assert_eq!(none["FlowLogs"], json!([]));
    let deleted = f.ok("DeleteFlowLogs", json!({"FlowLogIds": [id]}));
    assert_eq!(deleted["Unsuccessful"], json!([]));
    assert!(f.state.flow_logs.is_empty());
}

#[test]
fn bad_flow_logs_are_refused_with_aws_errors_and_change_nothing() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    let base = json!({"ResourceIds": [vpc], "ResourceType": "VPC", "TrafficType": "ALL",
                      "LogDestinationType": "stdout"});
    let with = |key: &str, value: serde_json::Value| {
        let mut request = base.clone();
        request[key] = value;
        request
    };
    let without = |key: &str| {
        let mut request = base.clone();
        request.as_object_mut().unwrap().remove(key);
        request
    };
    for (request, code) in [
        (
            with("LogDestinationType", json!("s3")),
            "InvalidParameterValue",
        ),
        (
            with("LogDestinationType", json!("cloud-watch-logs")),
            "InvalidParameterValue",
        ),
        (
            with("LogDestinationType", json!("kinesis-data-firehose")),
            "InvalidParameterValue",
        ),
        (
            with("LogGroupName", json!("flows")),
            "InvalidParameterValue",
        ),
        (
            with("LogDestination", json!("/tmp/x")),
            "InvalidParameterCombination",
        ),
        (with("TrafficType", json!("SOME")), "InvalidParameterValue"),
        (
            with("ResourceType", json!("Subnet")),
            "InvalidParameterValue",
        ),
        (
            with("MaxAggregationInterval", json!(30)),
            "InvalidParameterValue",
        ),
        (
            with("LogFormat", json!("${srcaddr} ${nope}")),
            "InvalidParameter",
        ),
        (with("LogFormat", json!("srcaddr")), "InvalidParameter"),
        (without("TrafficType"), "MissingParameter"),
        (without("ResourceIds"), "MissingParameter"),
        (without("LogDestinationType"), "MissingParameter"),
        (
            json!({"ResourceIds": [vpc], "ResourceType": "VPC", "TrafficType": "ALL",
                   "LogDestinationType": "file", "LogDestination": "relative.log"}),
            "InvalidParameterValue",
        ),
    ] {
        f.fails("CreateFlowLogs", request, code);
    }
    f.fails(
        "DescribeFlowLogs",
        json!({"Filter": [{"Name": "nope", "Values": ["x"]}]}),
        "InvalidParameterValue",
    );
    f.fails("DeleteFlowLogs", json!({}), "MissingParameter");
}

//! Flow logs: what create-flow-logs refuses (AWS's destinations, intervals, formats), unknown
//! resources as unsuccessful items, describe filters, delete; a file's name stays in its
//! account's flow-log directory.

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
               "LogDestination": "flows.log", "MaxAggregationInterval": 60}),
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
               "LogDestinationType": "file", "LogDestination": "flows.log"}),
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
    assert_eq!(log["LogDestination"], "flows.log");
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
            with("ResourceType", json!("TransitGateway")),
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
                   "LogDestinationType": "file", "LogDestination": "/var/log/flows.log"}),
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

/// The fixture's account directory: `FlowLogDir::DEFAULT` and the default account.
const ACCOUNT_DIR: &str = "/var/lib/firewall-agent/flow-logs/000000000000";

fn to_file(vpc: &str, destination: &str) -> serde_json::Value {
    json!({"ResourceIds": [vpc], "ResourceType": "VPC", "TrafficType": "ALL",
           "LogDestinationType": "file", "LogDestination": destination})
}

#[test]
fn a_file_is_a_name_in_the_accounts_directory_or_an_absolute_path_inside_it() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    for destination in [
        "web.log",
        "vpc/all.log",
        "./vpc//rejects.log",
        &format!("{ACCOUNT_DIR}/abs.log"),
        &format!("{ACCOUNT_DIR}/deep/er/abs.log"),
    ] {
        let out = f.ok("CreateFlowLogs", to_file(&vpc, destination));
        assert_eq!(out["Unsuccessful"], json!([]), "{destination}: {out}");
        let id = out["FlowLogIds"][0].as_str().unwrap();
        // Echoed as given, as AWS echoes a destination.
        assert_eq!(
            f.state.flow_logs[id].destination.as_deref(),
            Some(destination)
        );
    }
    let described = f.ok("DescribeFlowLogs", json!({}));
    let echoed: Vec<&str> = described["FlowLogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["LogDestination"].as_str().unwrap())
        .collect();
    assert!(echoed.contains(&"vpc/all.log"), "{echoed:?}");
}

#[test]
fn two_spellings_of_one_file_are_the_same_destination() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    f.ok("CreateFlowLogs", to_file(&vpc, "web.log"));
    for same in [
        format!("{ACCOUNT_DIR}/web.log"),
        "./web.log".to_string(),
        "web.log".to_string(),
    ] {
        let out = f.ok("CreateFlowLogs", to_file(&vpc, &same));
        assert_eq!(
            out["Unsuccessful"][0]["Error"]["Code"], "FlowLogAlreadyExists",
            "{same}: {out}"
        );
    }
}

#[test]
fn a_name_leading_out_of_the_accounts_directory_is_refused_naming_it() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    for destination in [
        // `..` anywhere, even where it would come back.
        "../x.log",
        "vpc/../../x.log",
        "vpc/../x.log",
        "/tmp/x/../y/z.log",
        &format!("{ACCOUNT_DIR}/../x.log"),
        // Another account's directory.
        "../123456789012/x.log",
        "/var/lib/firewall-agent/flow-logs/123456789012/x.log",
        // Absolute paths elsewhere, or the directory's own prefix without its separator.
        "/etc/passwd",
        "/var/log/flows.log",
        "/var/lib/firewall-agent/flow-logs/000000000000x.log",
        "/var/lib/firewall-agent/flow-logs/x.log",
        // No file: empty, the directory itself, a directory.
        "",
        ".",
        "./",
        ACCOUNT_DIR,
        &format!("{ACCOUNT_DIR}/"),
        "vpc/",
        // A NUL byte.
        "web.log\0.txt",
    ] {
        let err = f
            .call("CreateFlowLogs", to_file(&vpc, destination))
            .expect_err(destination);
        assert_eq!(err.code, "InvalidParameterValue", "{destination}: {err}");
        assert!(
            err.message.contains(&format!("{ACCOUNT_DIR}/")),
            "{destination}: names the account's directory: {}",
            err.message
        );
    }
    assert!(f.state.flow_logs.is_empty(), "nothing was created");
}

#[test]
fn the_directory_is_the_agents_configuration_not_the_stored_state() {
    let mut f = Fixture::new();
    let vpc = vpc(&f);
    f.state.flow_log_dir = crate::model::state::FlowLogDir::new("/srv/flows/").unwrap();
    let out = f.ok(
        "CreateFlowLogs",
        to_file(&vpc, "/srv/flows/000000000000/web.log"),
    );
    assert_eq!(out["Unsuccessful"], json!([]), "{out}");
    f.fails(
        "CreateFlowLogs",
        to_file(&vpc, &format!("{ACCOUNT_DIR}/web.log")),
        "InvalidParameterValue",
    );
    let stored = serde_json::to_value(&f.state).unwrap();
    assert!(stored.get("flow_log_dir").is_none(), "{stored}");
    for bad in [
        "relative",
        "/",
        "/srv/../etc",
        "/srv/./flows",
        "/srv//flows",
    ] {
        assert!(crate::model::state::FlowLogDir::new(bad).is_err(), "{bad}");
    }
}

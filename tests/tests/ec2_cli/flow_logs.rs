//! Flow logs through the AWS CLI: created for a VPC to a file, described with `--filter`,
//! AWS's destinations refused, deleted with the unknown ID as an unsuccessful item.

use super::*;

#[test]
fn flow_logs_are_created_described_refused_and_deleted_through_the_aws_cli() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let vpc = default_vpc(&aws);
    let out = aws.json(&[
        "ec2",
        "create-flow-logs",
        "--resource-type",
        "VPC",
        "--resource-ids",
        &vpc,
        "--traffic-type",
        "REJECT",
        "--log-destination-type",
        "file",
        "--log-destination",
        "firewall-flows.log",
        "--max-aggregation-interval",
        "60",
        "--log-format",
        "${version} ${srcaddr} ${action} ${reject-reason}",
    ]);
    let id = out["FlowLogIds"][0]
        .as_str()
        .expect("a flow-log ID")
        .to_string();
    assert!(id.starts_with("fl-"), "{out}");
    assert_eq!(out["Unsuccessful"], json!([]), "{out}");

    let out = aws.json(&[
        "ec2",
        "describe-flow-logs",
        "--filter",
        &format!("Name=resource-id,Values={vpc}"),
    ]);
    let log = &out["FlowLogs"][0];
    assert_eq!(log["FlowLogId"], id.as_str(), "{out}");
    assert_eq!(log["TrafficType"], "REJECT");
    assert_eq!(log["LogDestinationType"], "file");
    assert_eq!(log["LogDestination"], "firewall-flows.log");
    assert_eq!(
        log["LogFormat"],
        "${version} ${srcaddr} ${action} ${reject-reason}"
    );
    assert_eq!(log["MaxAggregationInterval"], 60);

    aws.fails(
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
            "s3",
            "--log-destination",
            "arn:aws:s3:::bucket",
        ],
    );

    let out = aws.json(&[
        "ec2",
        "delete-flow-logs",
        "--flow-log-ids",
        &id,
        "fl-00000000000000000",
    ]);
    assert_eq!(
        out["Unsuccessful"][0]["ResourceId"], "fl-00000000000000000",
        "{out}"
    );
    assert_eq!(
        out["Unsuccessful"][0]["Error"]["Code"],
        "InvalidFlowLogId.NotFound"
    );
    let out = aws.json(&["ec2", "describe-flow-logs"]);
    assert_eq!(out["FlowLogs"], json!([]), "{out}");
}

//! The CLI builds the requests the AWS CLI builds and prints answers as it does.

use clap::Parser as _;

use serde_json::{Value, json};

use super::*;

#[derive(clap::Parser)]
struct TestCli {
    #[command(subcommand)]
    verb: Verb,
}

/// The action and the request members (empty lists left out) a command line sends.
pub(super) fn request_for(args: &[&str]) -> (&'static str, Value) {
    let cli = TestCli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
    let call = request(&cli.verb).unwrap();
    (
        call.action.name,
        crate::golden_tests::canonical(&call.members()),
    )
}

#[test]
fn shorthand_builds_the_permission_the_aws_cli_builds() {
    let (action, body) = request_for(&[
        "authorize-security-group-ingress",
        "--group-id",
        "sg-1",
        "--protocol",
        "tcp",
        "--port",
        "8000-8080",
        "--cidr",
        "10.0.0.0/8",
    ]);
    assert_eq!(action, "AuthorizeSecurityGroupIngress");
    assert_eq!(
        body,
        json!({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})
    );
    let (_, body) = request_for(&[
        "authorize-security-group-egress",
        "--group-id",
        "sg-1",
        "--protocol",
        "all",
        "--source-group",
        "sg-2",
    ]);
    assert_eq!(
        body["IpPermissions"][0],
        json!({"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-2"}]})
    );
    let (_, body) = request_for(&[
        "revoke-security-group-ingress",
        "--group-id",
        "sg-1",
        "--protocol",
        "icmp",
        "--port",
        "-1",
        "--cidr",
        "0.0.0.0/0",
    ]);
    assert_eq!(body["IpPermissions"][0]["FromPort"], -1);
}

#[test]
fn ip_permissions_json_and_filters_shorthand() {
    let (_, body) = request_for(&[
        "authorize-security-group-ingress",
        "--group-id",
        "sg-1",
        "--ip-permissions",
        r#"[{"IpProtocol":"udp","FromPort":53,"ToPort":53,"Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]"#,
    ]);
    assert_eq!(
        body["IpPermissions"][0]["Ipv6Ranges"][0]["CidrIpv6"],
        "::/0"
    );
    let (_, body) = request_for(&[
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web,db",
    ]);
    assert_eq!(
        body["Filters"],
        json!([{"Name": "group-name", "Values": ["web", "db"]}])
    );
}

#[test]
fn output_is_indented_like_the_aws_cli() {
    assert_eq!(
        to_aws_json(&json!({"Return": true})),
        "{\n    \"Return\": true\n}"
    );
}

#[test]
fn ip_permissions_and_rule_updates_take_the_aws_shorthand_too() {
    let (_, body) = request_for(&[
        "authorize-security-group-ingress",
        "--group-id",
        "sg-1",
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=10.0.0.0/8,Description=web}]",
        "IpProtocol=udp,FromPort=53,ToPort=53,UserIdGroupPairs=[{GroupId=sg-2}]",
    ]);
    assert_eq!(
        body["IpPermissions"],
        json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "web"}]},
               {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
                "UserIdGroupPairs": [{"GroupId": "sg-2"}]}])
    );
    let (_, body) = request_for(&[
        "modify-security-group-rules",
        "--group-id",
        "sg-1",
        "--security-group-rules",
        "SecurityGroupRuleId=sgr-1,SecurityGroupRule={IpProtocol=tcp,FromPort=22,ToPort=22,CidrIpv4=10.0.0.0/8}",
    ]);
    assert_eq!(
        body["SecurityGroupRules"],
        json!([{"SecurityGroupRuleId": "sgr-1", "SecurityGroupRule":
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/8"}}])
    );
}

//! The real AWS CLI (v1, from `target/venv`) against the agent's EC2 Query endpoint, run inside
//! the agent's namespace: STS, groups, rules (shorthand, JSON, the legacy options), pagination,
//! revoke and modify, tags, VPCs, prefix lists, errors and exit statuses, dry runs, signatures,
//! regions, flow logs, and a rule opened and closed on real traffic.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    aws::{self, ACCOUNT_ID, Aws, REGION, UNKNOWN_KEY_PROFILE, WRONG_SECRET_PROFILE, start_agent},
    netns::Netns,
    topology::Topology,
    traffic::{EchoServer, echoes, eventually, tcp_connect, tcp_round_trip},
};
use serde_json::{Value, json};

/// The AWS CLI v1's exit status for a service error (v2 uses 254).
const CLI_ERROR_STATUS: i32 = 255;
const SHORT: Duration = Duration::from_millis(700);

/// An agent whose EC2 key acts in the default account: the local CLI, which registers the
/// workloads (the AWS CLI cannot send our `HostInterface`), acts in it too.
pub fn start_in_default_account(ns: &Netns) -> (Agent, Aws) {
    let identity = aws::Identity {
        account_id: None,
        ..aws::Identity::test()
    };
    let aws = Aws::with_identity(ns, aws::free_port(), identity);
    let options = aws.agent_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let agent = Agent::start_with(ns, &options);
    assert!(
        aws.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    (agent, aws)
}

pub fn create_group(aws: &Aws, name: &str) -> String {
    let out = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        name,
        "--description",
        &format!("{name} tier"),
    ]);
    let id = out["GroupId"].as_str().expect("GroupId").to_string();
    assert!(id.starts_with("sg-"), "{out}");
    id
}

pub fn rules_of(aws: &Aws, group: &str) -> Vec<Value> {
    let out = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &format!("Name=group-id,Values={group}"),
    ]);
    out["SecurityGroupRules"]
        .as_array()
        .expect("SecurityGroupRules")
        .clone()
}

pub fn ingress_cidrs(aws: &Aws, group: &str) -> Vec<String> {
    let mut cidrs: Vec<String> = rules_of(aws, group)
        .iter()
        .filter(|r| r["IsEgress"] == false)
        .filter_map(|r| r["CidrIpv4"].as_str().map(str::to_string))
        .collect();
    cidrs.sort();
    cidrs
}

pub fn default_vpc(aws: &Aws) -> String {
    let out = aws.json(&[
        "ec2",
        "describe-vpcs",
        "--filters",
        "Name=is-default,Values=true",
    ]);
    let vpcs = out["Vpcs"].as_array().expect("Vpcs");
    assert_eq!(vpcs.len(), 1, "one default VPC: {out}");
    assert_eq!(vpcs[0]["CidrBlock"], "172.31.0.0/16");
    vpcs[0]["VpcId"].as_str().unwrap().to_string()
}

mod clients;
mod flow_logs;
mod groups;
mod interfaces;
mod resources;

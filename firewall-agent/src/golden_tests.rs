//! Golden tests of the JSON API's wire shapes: every response and every error code/message pair
//! that the model's tests reached when these files were recorded, replayed call by call from a
//! fresh state with deterministic IDs. A change of shape, member order or message shows up here
//! as a diff of `tests/golden/*.json` in review; `GOLDEN_UPDATE=1 cargo test golden` rewrites
//! the files after an intended change.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    api::catalogue::call_json as dispatch,
    model::{State, testing::SeqIds},
};

/// One call and what it answered. `state` and `ids` are set where the recorded test changed the
/// state or started a new ID sequence between calls: the replay starts the call from them.
#[derive(Serialize, Deserialize)]
struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<u64>,
    action: String,
    request: Value,
    result: Value,
}

/// The calls one test made on one state, in order.
#[derive(Serialize, Deserialize)]
struct Transcript {
    test: String,
    steps: Vec<Step>,
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// The JSON front end's answer as the socket sends it: the response, or the error body.
fn answer(result: crate::model::ApiResult<Value>) -> Value {
    match result {
        Ok(v) => json!({"Response": v}),
        Err(e) => json!({"Error": {"Code": e.code, "Message": e.message}}),
    }
}

/// Compares `actual` with the golden file `name` (or rewrites it under `GOLDEN_UPDATE=1`).
pub(crate) fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, actual).expect("writing the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("reading the golden file");
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        let show = |text: &str| {
            text.lines()
                .skip(line.saturating_sub(3))
                .take(7)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{} differs from what the code answers now, first at line {}:\n--- golden\n{}\n--- now\n{}",
            path.display(),
            line + 1,
            show(&expected),
            show(actual)
        );
    }
}

#[test]
fn every_recorded_model_response_and_error_is_unchanged() {
    let text = std::fs::read_to_string(golden_path("model.json")).expect("golden file");
    let transcripts: Vec<Transcript> = serde_json::from_str(&text).expect("golden JSON");
    let mut replayed = Vec::new();
    for transcript in transcripts {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let mut steps = Vec::new();
        for step in transcript.steps {
            if let Some(given) = &step.state {
                state = given.clone();
            }
            if let Some(n) = step.ids {
                ids = SeqIds::at(n);
            }
            let result = answer(dispatch(
                &mut state,
                &mut ids,
                &step.action,
                step.request.clone(),
            ));
            steps.push(Step { result, ..step });
        }
        replayed.push(Transcript {
            test: transcript.test,
            steps,
        });
    }
    let mut out = serde_json::to_string_pretty(&replayed).expect("serialising");
    out.push('\n');
    check_golden("model.json", &out);
}

/// Calls made in order on one state, recorded with their answers.
pub(crate) struct Scenario {
    pub(crate) state: State,
    ids: SeqIds,
    steps: Vec<Step>,
}

impl Scenario {
    pub(crate) fn new() -> Scenario {
        let mut ids = SeqIds::default();
        let state = State::initial(&mut ids);
        Scenario {
            state,
            ids,
            steps: Vec::new(),
        }
    }

    /// Calls `action` and returns its response (`Null` for an error).
    pub(crate) fn call(&mut self, action: &str, request: Value) -> Value {
        let result = answer(dispatch(
            &mut self.state,
            &mut self.ids,
            action,
            request.clone(),
        ));
        let response = result.get("Response").cloned().unwrap_or(Value::Null);
        self.steps.push(Step {
            state: None,
            ids: None,
            action: action.into(),
            request,
            result,
        });
        response
    }

    pub(crate) fn text(&self) -> String {
        let mut out = serde_json::to_string_pretty(&self.steps).expect("serialising");
        out.push('\n');
        out
    }

    /// Each step's answer as the EC2 Query endpoint writes it, after a line naming the action.
    pub(crate) fn xml(&self) -> String {
        use crate::{api::catalogue::Service, front::ec2::xml};
        let request_id = "00000000-0000-4000-8000-000000000000";
        let mut out = String::new();
        for step in &self.steps {
            out += &format!("=== {}\n", step.action);
            out += &match (step.result.get("Response"), step.result.get("Error")) {
                (Some(members), _) => {
                    xml::response(Service::Ec2, &step.action, request_id, members)
                }
                (None, Some(error)) => xml::error(
                    Service::Ec2,
                    request_id,
                    &crate::api::ApiError::new(
                        error["Code"].as_str().unwrap_or_default(),
                        error["Message"].as_str().unwrap_or_default(),
                    ),
                ),
                (None, None) => String::new(),
            };
            out.push('\n');
        }
        out
    }
}

pub(crate) fn id(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
        .to_string()
}

/// The shapes and codes the model's own tests leave out, and those the CLI and traffic tests
/// reach through the agent (where IDs are random), on deterministic IDs.
#[test]
fn every_other_response_shape_and_error_is_unchanged() {
    let mut s = Scenario::new();
    let web = id(
        &s.call(
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "web tier",
                   "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "env", "Value": "prod"}]}]}),
        ),
        "/GroupId",
    );
    let db = id(
        &s.call(
            "CreateSecurityGroup",
            json!({"GroupName": "db", "Description": "db tier"}),
        ),
        "/GroupId",
    );
    s.call(
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": db, "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web, "Description": "from web"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "Ipv6Ranges": [{"CidrIpv6": "fd00::/8", "Description": "dns"}]}],
            "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": [{"Key": "k", "Value": "v"}]}]}),
    );
    let egress = s.call(
        "AuthorizeSecurityGroupEgress",
        json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
    );
    let egress_rule = id(&egress, "/SecurityGroupRules/0/SecurityGroupRuleId");
    s.call("DescribeSecurityGroupRules", json!({}));
    s.call(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": [db]}], "MaxResults": 5}),
    );
    s.call(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "tag:k", "Values": ["v"]}]}),
    );
    s.call(
        "DescribeSecurityGroupRules",
        json!({"SecurityGroupRuleIds": ["sgr-00000000000000fff"]}),
    );
    s.call(
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "cidr", "Values": ["x"]}]}),
    );
    s.call(
        "UpdateSecurityGroupRuleDescriptionsEgress",
        json!({"GroupId": web, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": egress_rule, "Description": "https out"}]}),
    );
    s.call("DescribeSecurityGroups", json!({"GroupIds": [web, db]}));
    s.call(
        "RevokeSecurityGroupEgress",
        json!({"GroupId": web, "SecurityGroupRuleIds": [egress_rule]}),
    );
    s.call(
        "RevokeSecurityGroupIngress",
        json!({"GroupId": db, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}]}),
    );
    // Instances: several groups, the per-instance quota, groups of two VPCs.
    s.call(
        "RunInstances",
        json!({"SecurityGroupIds": [web, db], "PrivateIpAddress": "172.31.0.10",
               "Ipv6Addresses": [{"Ipv6Address": "fd00:ec2::10"}], "HostInterface": "veth-a"}),
    );
    s.call(
        "RunInstances",
        json!({"SecurityGroupIds": [web, db, web], "PrivateIpAddress": "172.31.0.11", "HostInterface": "veth-b"}),
    );
    s.state.quotas.groups_per_instance = 1;
    let quota = answer(dispatch(
        &mut s.state,
        &mut s.ids,
        "RunInstances",
        json!({"SecurityGroupIds": [web, db], "PrivateIpAddress": "172.31.0.12", "HostInterface": "veth-c"}),
    ));
    s.state.quotas.groups_per_instance = 5;
    s.steps.push(Step {
        state: None,
        ids: None,
        action: "RunInstances (groups_per_instance = 1)".into(),
        request: json!({}),
        result: quota,
    });
    let vpc = s.call(
        "CreateVpc",
        json!({"CidrBlock": "10.1.0.0/16", "AmazonProvidedIpv6CidrBlock": true,
               "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "name", "Value": "second"}]}]}),
    );
    let vpc_id = id(&vpc, "/Vpc/VpcId");
    let other = id(
        &s.call(
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "d", "VpcId": vpc_id}),
        ),
        "/GroupId",
    );
    s.call(
        "RunInstances",
        json!({"SecurityGroupIds": [web, other], "PrivateIpAddress": "172.31.0.13", "HostInterface": "veth-d"}),
    );
    let instance = id(
        &s.call(
            "RunInstances",
            json!({"PrivateIpAddress": "172.31.0.14", "HostInterface": "veth-e", "MinCount": 1, "MaxCount": 1}),
        ),
        "/Instances/0/InstanceId",
    );
    s.call("TerminateInstances", json!({"InstanceIds": [instance]}));
    s.call("DescribeInstances", json!({}));
    s.call(
        "DescribeInstances",
        json!({"InstanceIds": ["i-00000000000000fff"]}),
    );
    s.call("DescribeInstances", json!({"InstanceIds": ["x"]}));
    // Prefix lists.
    let list = s.call(
        "CreateManagedPrefixList",
        json!({"PrefixListName": "office", "MaxEntries": 3, "AddressFamily": "IPv4",
               "Entries": [{"Cidr": "192.0.2.0/24", "Description": "hq"}],
               "TagSpecifications": [{"ResourceType": "prefix-list", "Tags": [{"Key": "team", "Value": "net"}]}]}),
    );
    let list_id = id(&list, "/PrefixList/PrefixListId");
    s.call(
        "ModifyManagedPrefixList",
        json!({"PrefixListId": list_id, "CurrentVersion": 1, "PrefixListName": "offices",
               "AddEntries": [{"Cidr": "198.51.100.0/24"}], "RemoveEntries": [{"Cidr": "192.0.2.0/24"}]}),
    );
    s.call(
        "GetManagedPrefixListEntries",
        json!({"PrefixListId": list_id, "TargetVersion": 1}),
    );
    s.call("DescribeManagedPrefixLists", json!({}));
    s.call(
        "DescribeManagedPrefixLists",
        json!({"Filters": [{"Name": "prefix-list-name", "Values": ["off*"]}]}),
    );
    s.call("DeleteManagedPrefixList", json!({"PrefixListId": list_id}));
    s.call(
        "CreateManagedPrefixList",
        json!({"PrefixListName": "x", "MaxEntries": "many", "AddressFamily": "IPv4"}),
    );
    // Tags, VPCs and launch templates.
    s.call(
        "CreateTags",
        json!({"Resources": ["x-1"], "Tags": [{"Key": "a", "Value": "b"}]}),
    );
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    s.call("CreateTags", json!({"Resources": [web], "Tags": many}));
    s.call(
        "DescribeTags",
        json!({"Filters": [{"Name": "resource-type", "Values": ["vpc", "security-group"]}]}),
    );
    s.call(
        "DescribeVpcs",
        json!({"Filters": [{"Name": "is-default", "Values": ["false"]}]}),
    );
    s.call(
        "DescribeLaunchTemplates",
        json!({"LaunchTemplateNames": ["none"]}),
    );
    s.call(
        "RunInstances",
        json!({"LaunchTemplate": {"LaunchTemplateName": "none"}, "PrivateIpAddress": "172.31.0.15", "HostInterface": "veth-f"}),
    );
    s.call("DescribeSecurityGroupReferences", json!({"GroupId": [web]}));
    // Without a default VPC, a group needs a VPC.
    let described = s.call("DescribeInstances", json!({}));
    let instances: Vec<String> = described["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| id(r, "/Instances/0/InstanceId"))
        .collect();
    s.call("TerminateInstances", json!({"InstanceIds": instances}));
    let default_vpc = s
        .state
        .default_vpc()
        .map(|v| v.id.clone())
        .unwrap_or_default();
    s.call("DeleteVpc", json!({"VpcId": default_vpc}));
    s.call("DeleteSecurityGroup", json!({"GroupId": db}));
    s.call("DeleteSecurityGroup", json!({"GroupId": web}));
    s.call("DeleteVpc", json!({"VpcId": default_vpc}));
    s.call(
        "CreateSecurityGroup",
        json!({"GroupName": "late", "Description": "d"}),
    );
    check_golden("scenario.json", &s.text());
}

/// A JSON value with empty lists and nulls left out and members sorted: what a request means,
/// whatever the order and the spelling of absence.
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, Value)> = map
                .iter()
                .map(|(k, v)| (k, canonical(v)))
                .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                .collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(members.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

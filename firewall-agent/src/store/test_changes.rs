//! Seeded random changes through the model, for the stores' tests.

use serde_json::{Value, json};

use crate::{
    api::catalogue::call_json,
    model::{
        State,
        testing::{Seeded, SeqIds},
    },
};

pub fn group_ids(state: &State) -> Vec<String> {
    state.groups.keys().cloned().collect()
}

/// One random change through the model (refused ones change nothing, like the agent's).
pub fn random_change(state: &mut State, ids: &mut SeqIds, rng: &mut Seeded, step: usize) {
    let groups = group_ids(state);
    let group = groups[rng.below(groups.len())].clone();
    let port = 1000 + rng.below(50);
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": format!("10.{}.0.0/16", rng.below(4))}]}]});
    let rule_ids: Vec<String> = state.groups[&group]
        .ingress
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let some_rule = rule_ids
        .get(rng.below(rule_ids.len().max(1)))
        .cloned()
        .unwrap_or_default();
    let (action, request): (&str, Value) = match rng.below(13) {
        // A rule changed in place, in the middle of its group: the others keep their order.
        10 => (
            "ModifySecurityGroupRules",
            json!({"GroupId": group, "SecurityGroupRules": [{"SecurityGroupRuleId": some_rule,
                "SecurityGroupRule": {"IpProtocol": "udp", "FromPort": port, "ToPort": port, "CidrIpv4": "10.9.0.0/16"}}]}),
        ),
        11 => (
            "UpdateSecurityGroupRuleDescriptionsIngress",
            json!({"GroupId": group, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": some_rule, "Description": format!("step {step}")}]}),
        ),
        12 => (
            "RevokeSecurityGroupIngress",
            json!({"GroupId": group, "SecurityGroupRuleIds": [some_rule]}),
        ),
        0..=3 => ("AuthorizeSecurityGroupIngress", rule),
        4 => ("AuthorizeSecurityGroupEgress", rule),
        5 | 6 => ("RevokeSecurityGroupIngress", rule),
        7 => (
            "CreateSecurityGroup",
            json!({"GroupName": format!("g{step}"), "Description": "d"}),
        ),
        8 => ("DeleteSecurityGroup", json!({"GroupId": group})),
        _ => (
            "RunInstances",
            json!({"PrivateIpAddress": format!("172.31.0.{}", 10 + rng.below(200)), "HostInterface": format!("v{step}"), "SecurityGroupIds": [group]}),
        ),
    };
    let _ = call_json(state, ids, action, request);
}

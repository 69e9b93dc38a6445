//! The JSON the AWS CLI prints for our objects, member order as in the EC2 service model: the
//! grouped `IpPermissions` view of `describe-security-groups`, the one-rule-per-peer
//! `SecurityGroupRule` view, and instances.

use serde_json::{Map, Value, json};

use super::{Instance, Peer, Rule, SecurityGroup, State, Tag};

pub fn tags(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
}

/// A group as `describe-security-groups` prints it.
pub fn security_group(state: &State, group: &SecurityGroup) -> Value {
    let mut out = Map::new();
    out.insert("GroupId".into(), json!(group.id));
    out.insert(
        "IpPermissionsEgress".into(),
        ip_permissions(state, &group.egress),
    );
    if !group.tags.is_empty() {
        out.insert("Tags".into(), tags(&group.tags));
    }
    out.insert("VpcId".into(), json!(group.vpc_id));
    out.insert("SecurityGroupArn".into(), json!(state.group_arn(&group.id)));
    out.insert("OwnerId".into(), json!(state.account_id));
    out.insert("GroupName".into(), json!(group.name));
    out.insert("Description".into(), json!(group.description));
    out.insert(
        "IpPermissions".into(),
        ip_permissions(state, &group.ingress),
    );
    Value::Object(out)
}

/// Rules grouped into one `IpPermission` per (protocol, from, to), in first-seen order.
pub fn ip_permissions(state: &State, rules: &[Rule]) -> Value {
    let mut groups: Vec<(&Rule, Vec<&Rule>)> = Vec::new();
    for rule in rules {
        match groups
            .iter_mut()
            .find(|(first, _)| first.protocol == rule.protocol && first.ports == rule.ports)
        {
            Some((_, members)) => members.push(rule),
            None => groups.push((rule, vec![rule])),
        }
    }
    Value::Array(
        groups
            .into_iter()
            .map(|(first, members)| ip_permission(state, first, &members))
            .collect(),
    )
}

fn ip_permission(state: &State, first: &Rule, members: &[&Rule]) -> Value {
    let mut out = Map::new();
    out.insert("IpProtocol".into(), json!(first.protocol.api_name()));
    if let Some((from, to)) = first.ports {
        out.insert("FromPort".into(), json!(from));
        out.insert("ToPort".into(), json!(to));
    }
    let mut pairs = Vec::new();
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut lists = Vec::new();
    for rule in members {
        let mut entry = Map::new();
        if let Some(d) = &rule.description {
            entry.insert("Description".into(), json!(d));
        }
        match &rule.peer {
            Peer::Cidr4(net) => {
                entry.insert("CidrIp".into(), json!(net.to_string()));
                v4.push(Value::Object(entry));
            }
            Peer::Cidr6(net) => {
                entry.insert("CidrIpv6".into(), json!(net.to_string()));
                v6.push(Value::Object(entry));
            }
            Peer::PrefixList(id) => {
                entry.insert("PrefixListId".into(), json!(id));
                lists.push(Value::Object(entry));
            }
            Peer::Group(id) => {
                entry.insert("UserId".into(), json!(state.account_id));
                entry.insert("GroupId".into(), json!(id));
                pairs.push(Value::Object(entry));
            }
        }
    }
    out.insert("UserIdGroupPairs".into(), Value::Array(pairs));
    out.insert("IpRanges".into(), Value::Array(v4));
    out.insert("Ipv6Ranges".into(), Value::Array(v6));
    out.insert("PrefixListIds".into(), Value::Array(lists));
    Value::Object(out)
}

/// One `SecurityGroupRule` (describe-security-group-rules, authorize output).
pub fn security_group_rule(
    state: &State,
    group: &SecurityGroup,
    rule: &Rule,
    egress: bool,
) -> Value {
    let mut out = Map::new();
    out.insert("SecurityGroupRuleId".into(), json!(rule.id));
    out.insert("GroupId".into(), json!(group.id));
    out.insert("GroupOwnerId".into(), json!(state.account_id));
    out.insert("IsEgress".into(), json!(egress));
    out.insert("IpProtocol".into(), json!(rule.protocol.api_name()));
    let (from, to) = rule.ports.unwrap_or((-1, -1));
    out.insert("FromPort".into(), json!(from));
    out.insert("ToPort".into(), json!(to));
    match &rule.peer {
        Peer::Cidr4(net) => {
            out.insert("CidrIpv4".into(), json!(net.to_string()));
        }
        Peer::Cidr6(net) => {
            out.insert("CidrIpv6".into(), json!(net.to_string()));
        }
        Peer::PrefixList(id) => {
            out.insert("PrefixListId".into(), json!(id));
        }
        Peer::Group(id) => {
            out.insert(
                "ReferencedGroupInfo".into(),
                json!({"GroupId": id, "UserId": state.account_id}),
            );
        }
    }
    if let Some(d) = &rule.description {
        out.insert("Description".into(), json!(d));
    }
    out.insert("Tags".into(), tags(&rule.tags));
    out.insert(
        "SecurityGroupRuleArn".into(),
        json!(state.rule_arn(&rule.id)),
    );
    Value::Object(out)
}

/// One `RevokedSecurityGroupRule` (note `ReferencedGroupId`, not `ReferencedGroupInfo`).
pub fn revoked_rule(group: &SecurityGroup, rule: &Rule, egress: bool) -> Value {
    let mut out = Map::new();
    out.insert("SecurityGroupRuleId".into(), json!(rule.id));
    out.insert("GroupId".into(), json!(group.id));
    out.insert("IsEgress".into(), json!(egress));
    out.insert("IpProtocol".into(), json!(rule.protocol.api_name()));
    let (from, to) = rule.ports.unwrap_or((-1, -1));
    out.insert("FromPort".into(), json!(from));
    out.insert("ToPort".into(), json!(to));
    let (name, value) = match &rule.peer {
        Peer::Cidr4(net) => ("CidrIpv4", net.to_string()),
        Peer::Cidr6(net) => ("CidrIpv6", net.to_string()),
        Peer::PrefixList(id) => ("PrefixListId", id.clone()),
        Peer::Group(id) => ("ReferencedGroupId", id.clone()),
    };
    out.insert(name.into(), json!(value));
    if let Some(d) = &rule.description {
        out.insert("Description".into(), json!(d));
    }
    Value::Object(out)
}

fn group_identifiers(state: &State, group_ids: &[String]) -> Value {
    Value::Array(
        group_ids
            .iter()
            .map(|id| {
                let name = state.groups.get(id).map(|g| g.name.as_str()).unwrap_or("");
                json!({"GroupId": id, "GroupName": name})
            })
            .collect(),
    )
}

pub fn instance_state(instance: &Instance) -> Value {
    json!({"Code": instance.state.code(), "Name": instance.state.name()})
}

/// An instance as `describe-instances` and `run-instances` print it. `HostInterface` (the
/// workload's host-side veth) is ours; everything else is AWS's shape.
pub fn instance(state: &State, instance: &Instance) -> Value {
    let groups = group_identifiers(state, &instance.group_ids);
    let live = instance.state != super::InstanceState::Terminated;
    let mut out = Map::new();
    out.insert("InstanceId".into(), json!(instance.id));
    out.insert("InstanceType".into(), json!("workload"));
    out.insert("LaunchTime".into(), json!(instance.launch_time));
    if live {
        out.insert(
            "PrivateIpAddress".into(),
            json!(instance.private_ip.to_string()),
        );
    }
    out.insert("State".into(), instance_state(instance));
    if live {
        out.insert("VpcId".into(), json!(instance.vpc_id));
        let ipv6: Vec<Value> = instance
            .ipv6
            .iter()
            .map(|a| json!({"Ipv6Address": a.to_string(), "IsPrimaryIpv6": false}))
            .collect();
        out.insert(
            "NetworkInterfaces".into(),
            json!([{
                "Groups": groups,
                "Ipv6Addresses": ipv6,
                "NetworkInterfaceId": instance.eni_id,
                "OwnerId": state.account_id,
                "PrivateIpAddress": instance.private_ip.to_string(),
                "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": instance.private_ip.to_string()}],
                "Status": "in-use",
                "VpcId": instance.vpc_id,
                "InterfaceType": "interface",
                "HostInterface": instance.interface,
            }]),
        );
        out.insert("SecurityGroups".into(), groups);
    } else {
        out.insert("NetworkInterfaces".into(), json!([]));
        out.insert("SecurityGroups".into(), json!([]));
    }
    Value::Object(out)
}

/// One reservation (`run-instances` output, `describe-instances` element).
pub fn reservation(state: &State, reservation_id: &str, instances: &[&Instance]) -> Value {
    json!({
        "Groups": [],
        "Instances": instances.iter().map(|i| instance(state, i)).collect::<Vec<_>>(),
        "OwnerId": state.account_id,
        "ReservationId": reservation_id,
    })
}

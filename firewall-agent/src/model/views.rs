//! The answers' views of groups, rules and instances, built from the state: the grouped
//! `IpPermission` view of `describe-security-groups`, the one-rule-per-peer `SecurityGroupRule`
//! view, and instances with their reservation.

use firewall_common::Direction;

use super::{
    rule::{Peer, Rule},
    state::{Instance, InstanceState, SecurityGroup, State},
    tagging,
};
use crate::api::types::{
    groups,
    instance_details::Placement,
    instances::{self, GroupIdentifier, NetworkInterface, Reservation},
    rules::{
        IpPermission, IpRange, Ipv6Range, PrefixListId, ReferencedGroup, RevokedSecurityGroupRule,
        SecurityGroupRule, UserIdGroupPair,
    },
};

/// A group as `describe-security-groups` prints it.
pub fn security_group(state: &State, group: &SecurityGroup) -> groups::SecurityGroup {
    groups::SecurityGroup {
        group_id: group.id.clone(),
        ip_permissions_egress: ip_permissions(state, &group.egress),
        tags: tagging::views(&group.tags),
        vpc_id: group.vpc_id.clone(),
        security_group_arn: state.group_arn(&group.id),
        owner_id: state.account_id.clone(),
        group_name: group.name.clone(),
        description: group.description.clone(),
        ip_permissions: ip_permissions(state, &group.ingress),
    }
}

/// Rules grouped into one `IpPermission` per (protocol, from, to), in first-seen order.
pub fn ip_permissions(state: &State, rules: &super::RuleList) -> Vec<IpPermission> {
    let mut groups: Vec<(&Rule, Vec<&Rule>)> = Vec::new();
    // Where each (protocol, ports) is in `groups`: linear in the rules, not quadratic.
    let mut index: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
    for rule in rules {
        match index.entry((rule.protocol, rule.ports)) {
            std::collections::hash_map::Entry::Occupied(at) => groups[*at.get()].1.push(rule),
            std::collections::hash_map::Entry::Vacant(at) => {
                at.insert(groups.len());
                groups.push((rule, vec![rule]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(first, members)| ip_permission(state, first, &members))
        .collect()
}

fn ip_permission(state: &State, first: &Rule, members: &[&Rule]) -> IpPermission {
    let mut out = IpPermission {
        ip_protocol: Some(first.protocol.api_name()),
        from_port: first.ports.map(|(from, _)| i64::from(from)),
        to_port: first.ports.map(|(_, to)| i64::from(to)),
        ..IpPermission::default()
    };
    for rule in members {
        let description = rule.description.clone();
        match &rule.peer {
            Peer::Cidr4(net) => out.ip_ranges.push(IpRange {
                description,
                cidr_ip: Some(net.to_string()),
            }),
            Peer::Cidr6(net) => out.ipv6_ranges.push(Ipv6Range {
                description,
                cidr_ipv6: Some(net.to_string()),
            }),
            Peer::PrefixList(id) => out.prefix_list_ids.push(PrefixListId {
                description,
                prefix_list_id: Some(id.clone()),
            }),
            Peer::Group(id) => out.user_id_group_pairs.push(UserIdGroupPair {
                description,
                user_id: Some(state.account_id.clone()),
                group_id: Some(id.clone()),
                ..UserIdGroupPair::default()
            }),
        }
    }
    out
}

/// `(from, to)` as rule views print them: `-1` for none.
fn ports(rule: &Rule) -> (i64, i64) {
    let (from, to) = rule.ports.unwrap_or((-1, -1));
    (i64::from(from), i64::from(to))
}

/// One `SecurityGroupRule` (describe-security-group-rules, authorize output).
pub fn security_group_rule(
    state: &State,
    group: &SecurityGroup,
    rule: &Rule,
    direction: Direction,
) -> SecurityGroupRule {
    let (from_port, to_port) = ports(rule);
    let mut out = SecurityGroupRule {
        security_group_rule_id: rule.id.clone(),
        group_id: group.id.clone(),
        group_owner_id: state.account_id.clone(),
        is_egress: direction.is_egress(),
        ip_protocol: rule.protocol.api_name(),
        from_port,
        to_port,
        cidr_ipv4: None,
        cidr_ipv6: None,
        prefix_list_id: None,
        referenced_group_info: None,
        description: rule.description.clone(),
        tags: tagging::views(&rule.tags),
        security_group_rule_arn: state.rule_arn(&rule.id),
    };
    match &rule.peer {
        Peer::Cidr4(net) => out.cidr_ipv4 = Some(net.to_string()),
        Peer::Cidr6(net) => out.cidr_ipv6 = Some(net.to_string()),
        Peer::PrefixList(id) => out.prefix_list_id = Some(id.clone()),
        Peer::Group(id) => {
            out.referenced_group_info = Some(ReferencedGroup {
                group_id: id.clone(),
                user_id: state.account_id.clone(),
            })
        }
    }
    out
}

/// One `RevokedSecurityGroupRule`.
pub fn revoked_rule(
    group: &SecurityGroup,
    rule: &Rule,
    direction: Direction,
) -> RevokedSecurityGroupRule {
    let (from_port, to_port) = ports(rule);
    let mut out = RevokedSecurityGroupRule {
        security_group_rule_id: rule.id.clone(),
        group_id: group.id.clone(),
        is_egress: direction.is_egress(),
        ip_protocol: rule.protocol.api_name(),
        from_port,
        to_port,
        cidr_ipv4: None,
        cidr_ipv6: None,
        prefix_list_id: None,
        referenced_group_id: None,
        description: rule.description.clone(),
    };
    match &rule.peer {
        Peer::Cidr4(net) => out.cidr_ipv4 = Some(net.to_string()),
        Peer::Cidr6(net) => out.cidr_ipv6 = Some(net.to_string()),
        Peer::PrefixList(id) => out.prefix_list_id = Some(id.clone()),
        Peer::Group(id) => out.referenced_group_id = Some(id.clone()),
    }
    out
}

pub fn group_identifiers(state: &State, group_ids: &[String]) -> Vec<GroupIdentifier> {
    group_ids
        .iter()
        .map(|id| GroupIdentifier {
            group_id: id.clone(),
            group_name: state
                .groups
                .get(id)
                .map(|g| g.name.clone())
                .unwrap_or_default(),
        })
        .collect()
}

pub fn instance_state(instance: &Instance) -> instances::InstanceState {
    instances::InstanceState {
        code: instance.state.code(),
        name: instance.state.name().into(),
    }
}

/// An instance as `describe-instances` and `run-instances` print it: its interfaces by device
/// index, its groups and address its primary interface's. `HostInterface` (the workload's
/// host-side veth) is ours; everything else is AWS's shape.
pub fn instance(state: &State, instance: &Instance) -> instances::Instance {
    let live = instance.state != InstanceState::Terminated;
    let primary = state.primary(instance).filter(|_| live);
    let interfaces = if live {
        state
            .interfaces_of(&instance.id)
            .into_iter()
            .filter_map(|eni| instance_interface(state, instance, eni))
            .collect()
    } else {
        Vec::new()
    };
    let zone = state
        .subnets
        .get(&instance.subnet_id)
        .map(|s| s.availability_zone.clone());
    instances::Instance {
        ami_launch_index: live.then_some(0),
        image_id: live.then(|| instance.launch.image_id.clone()),
        instance_id: instance.id.clone(),
        instance_type: instance.launch.instance_type.clone(),
        launch_time: instance.launch_time.clone(),
        monitoring: live.then(|| instances::Monitoring {
            state: "disabled".into(),
        }),
        placement: live.then(|| Placement {
            availability_zone: zone,
            group_name: Some(String::new()),
            tenancy: Some("default".into()),
        }),
        private_dns_name: primary.map(|p| {
            crate::model::network_interface::private_dns_name(state, p.private_ip)
        }),
        private_ip_address: primary.map(|p| p.private_ip.to_string()),
        state: instance_state(instance),
        subnet_id: live.then(|| instance.subnet_id.clone()),
        vpc_id: live.then(|| instance.vpc_id.clone()),
        network_interfaces: interfaces,
        security_groups: primary
            .map(|p| group_identifiers(state, &p.group_ids))
            .unwrap_or_default(),
        architecture: live.then(|| "x86_64".into()),
        ebs_optimized: live.then_some(false),
        root_device_type: live.then(|| "instance-store".into()),
        source_dest_check: live.then_some(true),
        virtualization_type: live.then(|| "hvm".into()),
        hibernation_options: live.then_some(instances::HibernationOptions { configured: false }),
        state_reason: (live && instance.host_lost).then(|| instances::StateReason {
            code: "Server.HostLost".into(),
            message: format!(
                "Server.HostLost: the agent of host {} stopped renewing its lease; the instance is no longer enforced there",
                instance.host.as_deref().unwrap_or("?")
            ),
        }),
        tags: tagging::views(&instance.tags),
    }
}

/// One attached interface as an instance lists it.
fn instance_interface(
    state: &State,
    instance: &Instance,
    eni: &crate::model::network::NetworkInterface,
) -> Option<NetworkInterface> {
    let attachment = eni.attachment.as_ref()?;
    let private_ip = eni.private_ip.to_string();
    Some(NetworkInterface {
        attachment: instances::InstanceNetworkInterfaceAttachment {
            attach_time: attachment.attach_time.clone(),
            attachment_id: attachment.id.clone(),
            delete_on_termination: attachment.delete_on_termination,
            device_index: attachment.device_index,
            status: "attached".into(),
            network_card_index: 0,
        },
        description: eni.description.clone(),
        groups: group_identifiers(state, &eni.group_ids),
        ipv6_addresses: eni
            .ipv6
            .iter()
            .map(|a| instances::InterfaceIpv6Address {
                ipv6_address: a.to_string(),
                is_primary_ipv6: false,
            })
            .collect(),
        mac_address: eni.mac(),
        network_interface_id: eni.id.clone(),
        owner_id: state.account_id.clone(),
        private_ip_address: private_ip.clone(),
        private_ip_addresses: vec![instances::PrivateIpAddress {
            primary: true,
            private_ip_address: private_ip,
        }],
        source_dest_check: true,
        status: eni.status().into(),
        subnet_id: eni.subnet_id.clone(),
        vpc_id: eni.vpc_id.clone(),
        interface_type: "interface".into(),
        host_interface: eni.host_interface.clone(),
        namespace: instance.netns.clone(),
    })
}

/// One reservation (`run-instances` output, `describe-instances` element).
pub fn reservation(state: &State, reservation_id: &str, instances: &[&Instance]) -> Reservation {
    Reservation {
        groups: Vec::new(),
        instances: instances.iter().map(|i| instance(state, i)).collect(),
        owner_id: state.account_id.clone(),
        reservation_id: reservation_id.into(),
    }
}

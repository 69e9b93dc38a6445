//! The compiler's front end: the state resolved into **policies**, the one place where groups
//! become peer prefixes and port items. Both back ends (`ebpf`, `nft`) consume its output.
//!
//! * A policy is one distinct (sorted) set of attached groups; workloads with the same groups
//!   share it.
//! * For each policy and direction, every rule of every attached group contributes one [`Grant`]
//!   per peer prefix it stands for right now: a CIDR itself, a referenced group the /32 and /128
//!   addresses of its running members, a prefix list its current entries. The address family of
//!   a grant is its prefix's.
//!
//! The output is plain data with no IDs and no map layout, so a later incremental compiler can
//! diff two resolutions.

use std::{collections::BTreeMap, net::IpAddr};

use firewall_common::Direction;
use ipnet::IpNet;

use crate::model::{InstanceState, Peer, Protocol, Rule, State};

/// The state as the data plane needs it: policies and the workloads enforcing them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// In the order their first workload appears in `State::enforced`.
    pub policies: Vec<Policy>,
    /// Every network interface to enforce on (attached to an instance neither terminated nor
    /// shutting down, nor another host's), in `State::enforced` order.
    pub workloads: Vec<Workload>,
}

/// One distinct set of attached groups and everything its rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The attached group IDs, sorted: the policy's identity.
    pub groups: Vec<String>,
    /// What the groups' inbound rules allow, rule by rule and prefix by prefix.
    pub inbound: Vec<Grant>,
    /// What the groups' outbound rules allow.
    pub outbound: Vec<Grant>,
}

impl Policy {
    /// The grants of one direction.
    pub fn grants(&self, direction: Direction) -> &[Grant] {
        match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        }
    }
}

/// One rule applied to one peer prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The peer prefix (source of inbound, destination of outbound traffic).
    pub prefix: IpNet,
    /// What the rule allows of that peer.
    pub item: PortItem,
    /// The `sgr-` ID of the rule.
    pub rule: String,
    /// The group or prefix list the rule references, whose addresses or entries `prefix` is one
    /// of (`None`: a CIDR rule).
    pub via: Option<String>,
}

/// What one rule allows, in the rule's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortItem {
    /// Protocol `-1`: every packet.
    All,
    /// A protocol with an inclusive port range (TCP, UDP, or any number given ports).
    Ports { proto: u8, from: u16, to: u16 },
    /// A protocol without ports: all of it.
    Proto(u8),
    /// ICMP or ICMPv6: inclusive type and code ranges (`-1` is the whole 0–255 range).
    Icmp {
        proto: u8,
        types: (u8, u8),
        codes: (u8, u8),
    },
}

/// A network interface's host-side veth and the policy enforced on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub interface: String,
    /// Index into [`Resolved::policies`] (the sets of [`workloads`]).
    pub policy: usize,
    /// Running: its policy is enforced. Otherwise (pending, stopping, stopped) its traffic drops.
    pub running: bool,
    /// A flow log covers its interface or its VPC: the kernel reports its slow-path packets.
    pub flow_logged: bool,
}

/// Resolves `state` into policies.
pub fn resolve(state: &State) -> Resolved {
    let (sets, workloads) = workloads(state);
    Resolved {
        policies: sets.iter().map(|groups| policy_of(state, groups)).collect(),
        workloads,
    }
}

/// The distinct sets of attached groups (sorted), in the order their first workload appears,
/// and the workloads, each naming its set by index: [`resolve`] without the grants, for a back
/// end that compiles other units than whole sets.
pub fn workloads(state: &State) -> (Vec<Vec<String>>, Vec<Workload>) {
    let (mut sets, mut workloads) = (Vec::new(), Vec::new());
    let mut index_of: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (eni, instance) in state.enforced() {
        let mut groups = eni.group_ids.clone();
        groups.sort();
        let policy = *index_of.entry(groups.clone()).or_insert_with(|| {
            sets.push(groups);
            sets.len() - 1
        });
        workloads.push(Workload {
            interface: eni.host_interface.clone(),
            policy,
            running: instance.state == InstanceState::Running,
            flow_logged: state.flow_logs.values().any(|f| f.covers(eni)),
        });
    }
    (sets, workloads)
}

/// The policy of these (sorted) groups: every grant of their rules.
pub fn policy_of(state: &State, groups: &[String]) -> Policy {
    let grants = |direction: Direction| -> Vec<Grant> {
        groups
            .iter()
            .filter_map(|g| state.groups.get(g))
            .flat_map(|g| g.rules(direction))
            .flat_map(|rule| grants_of(state, rule))
            .collect()
    };
    Policy {
        inbound: grants(Direction::Inbound),
        outbound: grants(Direction::Outbound),
        groups: groups.to_vec(),
    }
}

/// One grant per prefix the rule's peer stands for right now.
fn grants_of<'a>(state: &'a State, rule: &'a Rule) -> impl Iterator<Item = Grant> + 'a {
    let item = port_item(rule);
    let via = match &rule.peer {
        Peer::Group(id) | Peer::PrefixList(id) => Some(id),
        Peer::Cidr4(_) | Peer::Cidr6(_) => None,
    };
    peer_prefixes(state, &rule.peer)
        .into_iter()
        .map(move |prefix| Grant {
            prefix,
            item,
            rule: rule.id.clone(),
            via: via.cloned(),
        })
}

/// The prefixes a rule's peer stands for right now.
pub(super) fn peer_prefixes(state: &State, peer: &Peer) -> Vec<IpNet> {
    match peer {
        Peer::Cidr4(net) => vec![IpNet::V4(*net)],
        Peer::Cidr6(net) => vec![IpNet::V6(*net)],
        Peer::Group(group_id) => state
            .members_of(group_id)
            .flat_map(|i| {
                let mut nets = vec![IpNet::from(IpAddr::V4(i.private_ip))];
                nets.extend(i.ipv6.map(|a| IpNet::from(IpAddr::V6(a))));
                nets
            })
            .collect(),
        Peer::PrefixList(id) => state
            .prefix_lists
            .get(id)
            .map(|list| list.entries().iter().map(|e| e.cidr).collect())
            .unwrap_or_default(),
    }
}

pub(super) fn port_item(rule: &Rule) -> PortItem {
    let range = |v: i32| if v < 0 { (0, 255) } else { (v as u8, v as u8) };
    match (rule.protocol, rule.ports) {
        (Protocol::All, _) => PortItem::All,
        (Protocol::Number(proto @ (1 | 58)), Some((ty, code))) => PortItem::Icmp {
            proto,
            types: range(ty),
            codes: if ty < 0 { (0, 255) } else { range(code) },
        },
        (Protocol::Number(proto), Some((from, to))) => PortItem::Ports {
            proto,
            from: from as u16,
            to: to as u16,
        },
        (Protocol::Number(proto), None) => PortItem::Proto(proto),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{api::catalogue::call_json as dispatch, model::testing::SeqIds};

    #[test]
    fn workloads_share_policies_and_group_peers_expand_to_running_members() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let group = state.groups.keys().next().unwrap().clone();
        let mut run = |state: &mut State, ip: &str, interface: &str| {
            let request = json!({"PrivateIpAddress": ip, "HostInterface": interface});
            let out = dispatch(state, &mut ids, "RunInstances", request).unwrap();
            out["Instances"][0]["InstanceId"]
                .as_str()
                .unwrap()
                .to_string()
        };
        run(&mut state, "172.31.0.5", "a");
        let stopped = run(&mut state, "172.31.0.6", "b");
        dispatch(
            &mut state,
            &mut ids,
            "StopInstances",
            json!({"InstanceIds": [stopped]}),
        )
        .unwrap();
        let resolved = resolve(&state);
        assert_eq!(resolved.policies.len(), 1, "the same groups, one policy");
        let policy = &resolved.policies[0];
        assert_eq!(policy.groups, [group]);
        let running: Vec<_> = resolved.workloads.iter().map(|w| w.running).collect();
        assert_eq!(running, [true, false]);
        // The default group: inbound from its own members (the running one only), all outbound.
        let inbound: Vec<_> = policy.inbound.iter().map(|g| g.prefix).collect();
        assert_eq!(inbound, ["172.31.0.5/32".parse::<IpNet>().unwrap()]);
        assert!(policy.inbound.iter().all(|g| g.item == PortItem::All));
        let outbound: Vec<_> = policy.grants(Direction::Outbound).iter().collect();
        assert_eq!(outbound.len(), 2, "0.0.0.0/0 and ::/0");
    }
}

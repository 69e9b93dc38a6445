//! Compiles the desired state into the exact contents of the data plane's maps (pure, no I/O).
//!
//! * One **policy** per distinct set of attached groups (instances with the same groups share it).
//! * For each policy, direction and family, every peer prefix of every rule becomes one `PEERS`
//!   entry whose port set is the union of all rules whose peer *covers* that prefix; the kernel's
//!   longest-prefix match then returns exactly the rules that match the address (see
//!   `firewall_common` for why). Referenced groups expand to the /32 and /128 addresses of their
//!   running members.
//! * Port sets are content-addressed: equal contents share one ID and one set of `PORTS` entries.
//!   IDs are never reused while the agent runs, so entries of an old set are never overwritten
//!   in place (make-before-break; see `dataplane::Dataplane::apply`).

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::{
    IFACE_ENFORCING, IfaceConfig, PEER_KEY_FIXED_BITS, PORT_KEY_PROTO_BITS, PORT_KEY_SET_BITS,
    PeerKey, PeerValue, PortKey, PortValue, direction, family,
};
use ipnet::IpNet;

use crate::model::{InstanceState, Peer, Protocol, Rule, State};

/// An LPM trie entry key: prefix length and key data.
pub type LpmKey<K> = (u32, K);

/// What the maps must contain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Desired {
    /// By interface name; the data plane resolves the ifindex when it attaches.
    pub ifaces: BTreeMap<String, IfaceConfig>,
    pub peers: BTreeMap<LpmKey<PeerKey>, PeerValue>,
    pub ports: BTreeMap<LpmKey<PortKey>, PortValue>,
}

/// One allowed (protocol, port range) item of a port set; `proto: None` is protocol `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PortItem {
    proto: Option<u8>,
    lo: u16,
    hi: u16,
}

/// Stable IDs for policies and port sets across compilations.
#[derive(Debug, Default, Clone)]
pub struct Ids {
    policies: BTreeMap<Vec<String>, u32>,
    port_sets: BTreeMap<Vec<PortItem>, u32>,
    next_policy: u32,
    next_port_set: u32,
}

impl Ids {
    fn policy(&mut self, groups: &[String]) -> u32 {
        let next = &mut self.next_policy;
        *self.policies.entry(groups.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
    fn port_set(&mut self, items: &[PortItem]) -> u32 {
        let next = &mut self.next_port_set;
        *self.port_sets.entry(items.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
    /// Forgets IDs that the last compilation did not use; their numbers are not handed out again.
    fn retain(&mut self, policies: &BTreeSet<u32>, port_sets: &BTreeSet<u32>) {
        self.policies.retain(|_, id| policies.contains(id));
        self.port_sets.retain(|_, id| port_sets.contains(id));
    }
}

/// Compiles `state` into map contents, reusing and updating `ids`.
pub fn compile(state: &State, ids: &mut Ids) -> Desired {
    let mut desired = Desired::default();
    let mut used_policies = BTreeSet::new();
    let mut used_sets = BTreeSet::new();
    let mut compiled: BTreeSet<u32> = BTreeSet::new();
    for instance in state.instances.values() {
        let enforcing = match instance.state {
            InstanceState::Running => IFACE_ENFORCING,
            InstanceState::Stopped | InstanceState::Stopping | InstanceState::Pending => 0,
            InstanceState::Terminated | InstanceState::ShuttingDown => continue,
        };
        let mut groups = instance.group_ids.clone();
        groups.sort();
        let policy_id = ids.policy(&groups);
        used_policies.insert(policy_id);
        desired.ifaces.insert(
            instance.interface.clone(),
            IfaceConfig {
                policy_id,
                flags: enforcing,
            },
        );
        if !compiled.insert(policy_id) {
            continue;
        }
        for (dir, egress) in [(direction::INBOUND, false), (direction::OUTBOUND, true)] {
            let rules: Vec<&Rule> = groups
                .iter()
                .filter_map(|g| state.groups.get(g))
                .flat_map(|g| g.rules(egress))
                .collect();
            compile_direction(
                state,
                ids,
                policy_id,
                dir,
                &rules,
                &mut desired,
                &mut used_sets,
            );
        }
    }
    for set_id in &used_sets {
        let items = ids
            .port_sets
            .iter()
            .find(|(_, id)| *id == set_id)
            .map(|(items, _)| items.clone())
            .unwrap_or_default();
        for item in items {
            for (prefix_len, key) in port_entries(*set_id, item) {
                desired
                    .ports
                    .insert((prefix_len, key), PortValue { allow: 1 });
            }
        }
    }
    ids.retain(&used_policies, &used_sets);
    desired
}

/// The prefixes a rule's peer stands for right now.
fn peer_prefixes(state: &State, peer: &Peer) -> Vec<IpNet> {
    match peer {
        Peer::Cidr4(net) => vec![IpNet::V4(*net)],
        Peer::Cidr6(net) => vec![IpNet::V6(*net)],
        Peer::Group(group_id) => state
            .members_of(group_id)
            .flat_map(|i| {
                let mut nets = vec![IpNet::from(std::net::IpAddr::V4(i.private_ip))];
                nets.extend(i.ipv6.map(|a| IpNet::from(std::net::IpAddr::V6(a))));
                nets
            })
            .collect(),
        // Prefix lists are not modelled yet: they match nothing.
        Peer::PrefixList(_) => Vec::new(),
    }
}

fn port_item(rule: &Rule) -> PortItem {
    match (rule.protocol, rule.ports) {
        (Protocol::All, _) => PortItem {
            proto: None,
            lo: 0,
            hi: u16::MAX,
        },
        (Protocol::Number(p), Some((from, to))) if p == 1 || p == 58 => {
            // ICMP: the "port" is type << 8 | code.
            let (lo, hi) = match (from, to) {
                (-1, _) => (0, u16::MAX),
                (t, -1) => ((t as u16) << 8, ((t as u16) << 8) | 0xff),
                (t, c) => (((t as u16) << 8) | c as u16, ((t as u16) << 8) | c as u16),
            };
            PortItem {
                proto: Some(p),
                lo,
                hi,
            }
        }
        (Protocol::Number(p), Some((from, to))) => PortItem {
            proto: Some(p),
            lo: from as u16,
            hi: to as u16,
        },
        (Protocol::Number(p), None) => PortItem {
            proto: Some(p),
            lo: 0,
            hi: u16::MAX,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_direction(
    state: &State,
    ids: &mut Ids,
    policy_id: u32,
    dir: u8,
    rules: &[&Rule],
    desired: &mut Desired,
    used_sets: &mut BTreeSet<u32>,
) {
    let expanded: Vec<(IpNet, PortItem)> = rules
        .iter()
        .flat_map(|rule| {
            let item = port_item(rule);
            peer_prefixes(state, &rule.peer)
                .into_iter()
                .map(move |net| (net, item))
        })
        .collect();
    let prefixes: BTreeSet<IpNet> = expanded.iter().map(|(net, _)| *net).collect();
    for prefix in prefixes {
        let mut items: Vec<PortItem> = expanded
            .iter()
            .filter(|(net, _)| net.contains(&prefix))
            .map(|(_, item)| *item)
            .collect();
        items.sort();
        items.dedup();
        let set_id = ids.port_set(&items);
        used_sets.insert(set_id);
        let (fam, addr, bits) = match prefix {
            IpNet::V4(net) => {
                let mut addr = [0u8; 16];
                addr[..4].copy_from_slice(&net.network().octets());
                (family::IPV4, addr, net.prefix_len())
            }
            IpNet::V6(net) => (family::IPV6, net.network().octets(), net.prefix_len()),
        };
        let key = PeerKey {
            policy_id: policy_id.to_be_bytes(),
            direction: dir,
            family: fam,
            addr,
            _pad: [0; 2],
        };
        desired.peers.insert(
            (PEER_KEY_FIXED_BITS + u32::from(bits), key),
            PeerValue { port_set: set_id },
        );
    }
}

/// The `PORTS` entries of one item: the port range split into aligned power-of-two blocks.
fn port_entries(set_id: u32, item: PortItem) -> Vec<LpmKey<PortKey>> {
    let key = |proto: u8, port: u16| PortKey {
        port_set: set_id.to_be_bytes(),
        proto,
        port: port.to_be_bytes(),
        _pad: 0,
    };
    let Some(proto) = item.proto else {
        return vec![(PORT_KEY_SET_BITS, key(0, 0))];
    };
    range_to_prefixes(item.lo, item.hi)
        .into_iter()
        .map(|(start, len)| (PORT_KEY_PROTO_BITS + len, key(proto, start)))
        .collect()
}

/// Splits `lo..=hi` into the fewest aligned blocks, as `(start, prefix length in bits of 16)`.
pub fn range_to_prefixes(lo: u16, hi: u16) -> Vec<(u16, u32)> {
    let mut out = Vec::new();
    let mut start = u32::from(lo);
    let end = u32::from(hi);
    while start <= end {
        // Largest block aligned at `start` that does not pass `end`.
        let mut size: u32 = if start == 0 {
            1 << 16
        } else {
            1 << start.trailing_zeros()
        };
        while start + size - 1 > end {
            size >>= 1;
        }
        out.push((start as u16, 16 - size.trailing_zeros()));
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{IdSource, ops::dispatch, testing::SeqIds};

    #[test]
    fn port_ranges_split_into_aligned_prefixes() {
        assert_eq!(range_to_prefixes(0, 65535), vec![(0, 0)]);
        assert_eq!(range_to_prefixes(80, 80), vec![(80, 16)]);
        assert_eq!(range_to_prefixes(1024, 2047), vec![(1024, 6)]);
        assert_eq!(range_to_prefixes(1, 65535).len(), 16);
        // The worst case is 30 prefixes.
        assert_eq!(range_to_prefixes(1, 65534).len(), 30);
        for (lo, hi) in [(5u16, 9u16), (100, 1000), (0, 1), (65535, 65535)] {
            let covered: u32 = range_to_prefixes(lo, hi)
                .iter()
                .map(|(_, l)| 1u32 << (16 - l))
                .sum();
            assert_eq!(covered, u32::from(hi - lo) + 1);
        }
    }

    /// Evaluates the compiled maps the way the kernel does: longest-prefix match on the peer,
    /// then any match on the port set.
    fn allowed(
        d: &Desired,
        policy: u32,
        dir: u8,
        peer: std::net::Ipv4Addr,
        proto: u8,
        port: u16,
    ) -> bool {
        let mut best: Option<(u32, u32)> = None;
        for ((len, key), value) in &d.peers {
            if key.policy_id != policy.to_be_bytes()
                || key.direction != dir
                || key.family != family::IPV4
            {
                continue;
            }
            let bits = len - PEER_KEY_FIXED_BITS;
            let net = ipnet::Ipv4Net::new(
                std::net::Ipv4Addr::new(key.addr[0], key.addr[1], key.addr[2], key.addr[3]),
                bits as u8,
            )
            .unwrap();
            if net.contains(&peer) && best.is_none_or(|(l, _)| bits > l) {
                best = Some((bits, value.port_set));
            }
        }
        let Some((_, set)) = best else { return false };
        d.ports.keys().any(|(len, key)| {
            key.port_set == set.to_be_bytes()
                && (*len == PORT_KEY_SET_BITS
                    || (key.proto == proto && {
                        let port_bits = len - PORT_KEY_PROTO_BITS;
                        let mask = if port_bits == 0 {
                            0
                        } else {
                            u16::MAX << (16 - port_bits)
                        };
                        port & mask == u16::from_be_bytes(key.port) & mask
                    }))
        })
    }

    fn setup(permissions: Value) -> (State, Desired, u32) {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let out = dispatch(
            &mut state,
            &mut ids,
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "d"}),
        )
        .unwrap();
        let web = out["GroupId"].as_str().unwrap().to_string();
        dispatch(
            &mut state,
            &mut ids,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": permissions}),
        )
        .unwrap();
        dispatch(&mut state, &mut ids, "RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.5", "HostInterface": "veth-w"})).unwrap();
        let mut cids = Ids::default();
        let desired = compile(&state, &mut cids);
        let policy = desired.ifaces["veth-w"].policy_id;
        let _ = ids.now();
        (state, desired, policy)
    }

    use serde_json::Value;

    #[test]
    fn overlapping_cidrs_union_their_rules() {
        let (_, d, p) = setup(json!([
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]},
        ]));
        let inside = "10.1.2.3".parse().unwrap();
        let outside = "10.2.0.1".parse().unwrap();
        assert!(
            allowed(&d, p, direction::INBOUND, inside, 6, 22),
            "the /8 rule still applies inside the /16"
        );
        assert!(allowed(&d, p, direction::INBOUND, inside, 6, 80));
        assert!(allowed(&d, p, direction::INBOUND, outside, 6, 22));
        assert!(
            !allowed(&d, p, direction::INBOUND, outside, 6, 80),
            "the /16 rule does not reach outside it"
        );
        assert!(
            !allowed(&d, p, direction::INBOUND, inside, 17, 22),
            "protocol matters"
        );
        assert!(
            allowed(&d, p, direction::OUTBOUND, outside, 17, 53),
            "default outbound rule"
        );
    }

    #[test]
    fn icmp_type_and_code_wildcards() {
        let (_, d, p) = setup(json!([
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ]));
        let a = "192.0.2.1".parse().unwrap();
        assert!(allowed(&d, p, direction::INBOUND, a, 1, 8 << 8));
        assert!(allowed(&d, p, direction::INBOUND, a, 1, (8 << 8) | 5));
        assert!(allowed(&d, p, direction::INBOUND, a, 1, (3 << 8) | 4));
        assert!(!allowed(&d, p, direction::INBOUND, a, 1, (3 << 8) | 3));
        assert!(!allowed(&d, p, direction::INBOUND, a, 1, 0));
    }

    #[test]
    fn referenced_groups_expand_to_running_members() {
        let (state, d, p) = setup(json!([
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "web"}]},
        ]));
        assert!(allowed(
            &d,
            p,
            direction::INBOUND,
            "172.31.0.5".parse().unwrap(),
            6,
            1
        ));
        assert!(!allowed(
            &d,
            p,
            direction::INBOUND,
            "172.31.0.6".parse().unwrap(),
            6,
            1
        ));
        assert_eq!(state.instances.len(), 1);
    }

    #[test]
    fn instances_with_the_same_groups_share_one_policy_and_sets_are_shared() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        for (ip, ifname) in [("172.31.0.5", "a"), ("172.31.0.6", "b")] {
            dispatch(
                &mut state,
                &mut ids,
                "RunInstances",
                json!({"PrivateIpAddress": ip, "HostInterface": ifname}),
            )
            .unwrap();
        }
        let mut cids = Ids::default();
        let first = compile(&state, &mut cids);
        assert_eq!(first.ifaces["a"].policy_id, first.ifaces["b"].policy_id);
        let again = compile(&state, &mut cids);
        assert_eq!(first, again, "compiling twice yields the same entries");
    }
}

//! Compiles the desired state into the exact contents of the data plane's maps (pure, no I/O).
//!
//! * One **policy** per distinct set of attached groups (instances with the same groups share it).
//! * For each policy, direction and family, every peer prefix of every rule becomes one `PEERS`
//!   entry holding the chain of port sets of that prefix and of its nearest covering prefixes
//!   (see `firewall_common`): each port set holds the rules written at exactly its prefix, so a
//!   rule's entries exist once. Referenced groups expand to the /32 and /128 addresses of their
//!   running members, prefix lists to their current entries.
//! * Port sets are content-addressed: equal contents share one ID and one set of `PORTS` entries.
//!   IDs are never reused while the agent runs, so entries of an old set are never overwritten
//!   in place (make-before-break; see `dataplane::Dataplane::apply`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::net::IpAddr;

use firewall_common::{
    IFACE_ENFORCING, IFACE_MANAGED, IfaceConfig, NO_RULE_SLOT, PEER_CHAIN, PEER_KEY_FIXED_BITS,
    PORT_KEY_PROTO_BITS, PORT_KEY_SET_BITS, PeerKey, PeerValue, PortKey, PortValue, capacity,
    direction, family,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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
    /// Hit-counter slot of every rule (`RULE_HITS` index → `sgr-` ID).
    pub rule_slots: BTreeMap<u32, String>,
}

/// One allowed (protocol, port range) item; `proto: None` is protocol `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct PortItem {
    proto: Option<u8>,
    lo: u16,
    hi: u16,
}

/// A port-set member: the item, the rule it is counted against, and how specific that rule's
/// peer is (where two rules allow the same item, the hit goes to the more specific peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct SetItem {
    item: PortItem,
    /// Negated peer prefix length, so sorting puts the most specific rule first.
    specificity: i16,
    slot: u32,
}

/// Stable IDs for policies, port sets and rule counter slots across compilations. Persisted
/// by the agent, so that after a restart the same state compiles to the same entries.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IdsSnapshot", into = "IdsSnapshot")]
pub struct Ids {
    policies: BTreeMap<Vec<String>, u32>,
    port_sets: BTreeMap<Vec<SetItem>, u32>,
    rule_slots: BTreeMap<String, u32>,
    free_slots: Vec<u32>,
    next_policy: u32,
    next_port_set: u32,
    next_slot: u32,
}

/// [`Ids`] with its maps as lists of pairs (JSON object keys must be strings).
#[derive(Serialize, Deserialize)]
struct IdsSnapshot {
    policies: Vec<(Vec<String>, u32)>,
    port_sets: Vec<(Vec<SetItem>, u32)>,
    rule_slots: Vec<(String, u32)>,
    free_slots: Vec<u32>,
    next_policy: u32,
    next_port_set: u32,
    next_slot: u32,
}

impl From<Ids> for IdsSnapshot {
    fn from(ids: Ids) -> Self {
        IdsSnapshot {
            policies: ids.policies.into_iter().collect(),
            port_sets: ids.port_sets.into_iter().collect(),
            rule_slots: ids.rule_slots.into_iter().collect(),
            free_slots: ids.free_slots,
            next_policy: ids.next_policy,
            next_port_set: ids.next_port_set,
            next_slot: ids.next_slot,
        }
    }
}

impl From<IdsSnapshot> for Ids {
    fn from(s: IdsSnapshot) -> Self {
        Ids {
            policies: s.policies.into_iter().collect(),
            port_sets: s.port_sets.into_iter().collect(),
            rule_slots: s.rule_slots.into_iter().collect(),
            free_slots: s.free_slots,
            next_policy: s.next_policy,
            next_port_set: s.next_port_set,
            next_slot: s.next_slot,
        }
    }
}

impl Ids {
    /// Makes sure new IDs start above `policy` and `port_set` (the highest in the kernel).
    pub fn skip_past(&mut self, (policy, port_set): (u32, u32)) {
        self.next_policy = self.next_policy.max(policy);
        self.next_port_set = self.next_port_set.max(port_set);
    }

    /// Which rule each counter slot counts for.
    pub fn slot_map(&self) -> BTreeMap<u32, String> {
        self.rule_slots
            .iter()
            .filter(|(_, slot)| **slot != NO_RULE_SLOT)
            .map(|(rule, slot)| (*slot, rule.clone()))
            .collect()
    }

    fn policy(&mut self, groups: &[String]) -> u32 {
        let next = &mut self.next_policy;
        *self.policies.entry(groups.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    fn port_set(&mut self, items: &[SetItem]) -> u32 {
        let next = &mut self.next_port_set;
        *self.port_sets.entry(items.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    fn rule_slot(&mut self, rule_id: &str) -> u32 {
        if let Some(slot) = self.rule_slots.get(rule_id) {
            return *slot;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None if self.next_slot < capacity::RULE_HITS => {
                self.next_slot += 1;
                self.next_slot - 1
            }
            None => NO_RULE_SLOT,
        };
        self.rule_slots.insert(rule_id.to_string(), slot);
        slot
    }

    /// Forgets what the last compilation did not use. Policy and port-set numbers are never
    /// handed out again; freed rule slots only from the next compilation on (their old entries
    /// are deleted at the end of this one).
    fn retain(
        &mut self,
        policies: &BTreeSet<u32>,
        port_sets: &BTreeSet<u32>,
        rules: &BTreeSet<&str>,
    ) {
        self.policies.retain(|_, id| policies.contains(id));
        self.port_sets.retain(|_, id| port_sets.contains(id));
        let freed: Vec<u32> = self
            .rule_slots
            .iter()
            .filter(|(rule, slot)| !rules.contains(rule.as_str()) && **slot != NO_RULE_SLOT)
            .map(|(_, slot)| *slot)
            .collect();
        self.rule_slots
            .retain(|rule, _| rules.contains(rule.as_str()));
        self.free_slots.splice(0..0, freed);
    }
}

/// Compiles `state` into map contents, reusing and updating `ids`.
pub fn compile(state: &State, ids: &mut Ids) -> Desired {
    let mut desired = Desired::default();
    let mut used_policies = BTreeSet::new();
    let mut sets: BTreeMap<u32, Vec<SetItem>> = BTreeMap::new();
    let mut live_rules: BTreeSet<&str> = BTreeSet::new();
    for rule in state
        .groups
        .values()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
    {
        live_rules.insert(&rule.id);
        let slot = ids.rule_slot(&rule.id);
        if slot != NO_RULE_SLOT {
            desired.rule_slots.insert(slot, rule.id.clone());
        }
    }
    for instance in state.instances.values() {
        let enforcing = match instance.state {
            InstanceState::Running => IFACE_MANAGED | IFACE_ENFORCING,
            InstanceState::Stopped | InstanceState::Stopping | InstanceState::Pending => {
                IFACE_MANAGED
            }
            InstanceState::Terminated | InstanceState::ShuttingDown => continue,
        };
        let mut groups = instance.group_ids.clone();
        groups.sort();
        let policy_id = ids.policy(&groups);
        desired.ifaces.insert(
            instance.interface.clone(),
            IfaceConfig {
                policy_id,
                flags: enforcing,
            },
        );
        if !used_policies.insert(policy_id) {
            continue;
        }
        for (dir, egress) in [(direction::INBOUND, false), (direction::OUTBOUND, true)] {
            let rules: Vec<&Rule> = groups
                .iter()
                .filter_map(|g| state.groups.get(g))
                .flat_map(|g| g.rules(firewall_common::Direction::from_egress(egress)))
                .collect();
            compile_direction(state, ids, policy_id, dir, &rules, &mut desired, &mut sets);
        }
    }
    for (set_id, items) in &sets {
        // Items are sorted most specific rule first: the first writer of an entry keeps it.
        for set_item in items {
            for (prefix_len, key) in port_entries(*set_id, set_item.item) {
                desired.ports.entry((prefix_len, key)).or_insert(PortValue {
                    rule_slot: set_item.slot,
                });
            }
        }
    }
    let used_sets = sets.keys().copied().collect();
    ids.retain(&used_policies, &used_sets, &live_rules);
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

fn compile_direction(
    state: &State,
    ids: &mut Ids,
    policy_id: u32,
    dir: u8,
    rules: &[&Rule],
    desired: &mut Desired,
    sets: &mut BTreeMap<u32, Vec<SetItem>>,
) {
    let expanded: Vec<(IpNet, SetItem)> = rules
        .iter()
        .flat_map(|rule| {
            let item = port_item(rule);
            let slot = ids.rule_slot(&rule.id);
            peer_prefixes(state, &rule.peer)
                .into_iter()
                .map(move |net| {
                    let specificity = -i16::from(net.prefix_len());
                    (
                        net,
                        SetItem {
                            item,
                            specificity,
                            slot,
                        },
                    )
                })
        })
        .collect();
    // Items by the exact prefix they were written for: each becomes one port set, written once.
    let mut by_prefix: HashMap<IpNet, Vec<SetItem>> = HashMap::new();
    for (net, item) in expanded {
        by_prefix.entry(net).or_default().push(item);
    }
    let mut own: HashMap<IpNet, u32> = HashMap::new();
    for (prefix, items) in &by_prefix {
        own.insert(*prefix, intern_set(ids, sets, items.clone()));
    }
    let prefixes: BTreeSet<IpNet> = by_prefix.keys().copied().collect();
    for prefix in prefixes {
        // The prefix itself, then its covering prefixes that have rules, nearest first.
        let ancestors: Vec<IpNet> = (0..=prefix.prefix_len())
            .rev()
            .map(|len| {
                IpNet::new(prefix.addr(), len)
                    .expect("shorter prefix")
                    .trunc()
            })
            .filter(|ancestor| own.contains_key(ancestor))
            .collect();
        let mut chain: Vec<u32> = ancestors.iter().take(PEER_CHAIN).map(|a| own[a]).collect();
        if ancestors.len() > PEER_CHAIN {
            // Too deep: the last link carries everything from there up.
            let tail: Vec<SetItem> = ancestors[PEER_CHAIN - 1..]
                .iter()
                .flat_map(|a| by_prefix[a].iter().copied())
                .collect();
            chain[PEER_CHAIN - 1] = intern_set(ids, sets, tail);
        }
        let mut port_sets = [0u32; PEER_CHAIN];
        port_sets[..chain.len()].copy_from_slice(&chain);
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
            PeerValue { port_sets },
        );
    }
}

/// The content-addressed ID of a port set of these items: one member per item, the most
/// specific rule's (that is the one its hits count for).
fn intern_set(
    ids: &mut Ids,
    sets: &mut BTreeMap<u32, Vec<SetItem>>,
    mut items: Vec<SetItem>,
) -> u32 {
    items.sort_by_key(|i| (i.specificity, i.slot, i.item));
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.item));
    let id = ids.port_set(&items);
    sets.entry(id).or_insert(items);
    id
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

/// What the kernel's lookups answer for a packet, evaluated on compiled contents: the rule
/// slot of the allowing entry, or `None` (no rule). `port` is the destination port, or
/// `type << 8 | code` for ICMP.
pub fn evaluate(
    d: &Desired,
    policy_id: u32,
    dir: u8,
    addr: IpAddr,
    proto: u8,
    port: u16,
) -> Option<u32> {
    let (fam, bytes, width) = match addr {
        IpAddr::V4(a) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.octets());
            (family::IPV4, bytes, 32u32)
        }
        IpAddr::V6(a) => (family::IPV6, a.octets(), 128),
    };
    let peer = (0..=width).rev().find_map(|bits| {
        let key = PeerKey {
            policy_id: policy_id.to_be_bytes(),
            direction: dir,
            family: fam,
            addr: mask(bytes, bits),
            _pad: [0; 2],
        };
        d.peers.get(&(PEER_KEY_FIXED_BITS + bits, key))
    })?;
    peer.port_sets
        .iter()
        .take_while(|set| **set != 0)
        .find_map(|set| {
            let port_key = |proto: u8, port: u16| PortKey {
                port_set: set.to_be_bytes(),
                proto,
                port: port.to_be_bytes(),
                _pad: 0,
            };
            (0..=16u32)
                .rev()
                .find_map(|bits| {
                    let masked = if bits == 0 {
                        0
                    } else {
                        port & (u16::MAX << (16 - bits))
                    };
                    d.ports
                        .get(&(PORT_KEY_PROTO_BITS + bits, port_key(proto, masked)))
                })
                .or_else(|| d.ports.get(&(PORT_KEY_SET_BITS, port_key(0, 0))))
                .map(|v| v.rule_slot)
        })
}

fn mask(mut bytes: [u8; 16], bits: u32) -> [u8; 16] {
    for (i, byte) in bytes.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    bytes
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
    use crate::{api::catalogue::call_json as dispatch, model::testing::SeqIds};

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

    fn allowed(
        d: &Desired,
        policy: u32,
        dir: u8,
        peer: std::net::Ipv4Addr,
        proto: u8,
        port: u16,
    ) -> bool {
        evaluate(d, policy, dir, IpAddr::V4(peer), proto, port).is_some()
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

    #[test]
    fn a_freed_rule_slot_is_not_reused_by_the_compilation_that_frees_it() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let group = state.groups.keys().next().unwrap().clone();
        let tcp = |port: u16| json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
        dispatch(
            &mut state,
            &mut ids,
            "AuthorizeSecurityGroupIngress",
            tcp(1),
        )
        .unwrap();
        let mut cids = Ids::default();
        let first = compile(&state, &mut cids);
        let slot_of = |d: &Desired, id: &str| {
            d.rule_slots
                .iter()
                .find(|(_, r)| r.as_str() == id)
                .map(|(s, _)| *s)
        };
        let old_rule = state.groups[&group].ingress.last().unwrap().id.clone();
        let old_slot = slot_of(&first, &old_rule).unwrap();

        dispatch(&mut state, &mut ids, "RevokeSecurityGroupIngress", tcp(1)).unwrap();
        dispatch(
            &mut state,
            &mut ids,
            "AuthorizeSecurityGroupIngress",
            tcp(2),
        )
        .unwrap();
        let second = compile(&state, &mut cids);
        let new_rule = state.groups[&group].ingress.last().unwrap().id.clone();
        assert_ne!(slot_of(&second, &new_rule), Some(old_slot));
        assert_eq!(slot_of(&second, &old_rule), None);

        dispatch(
            &mut state,
            &mut ids,
            "AuthorizeSecurityGroupIngress",
            tcp(3),
        )
        .unwrap();
        let third = compile(&state, &mut cids);
        let newest = state.groups[&group].ingress.last().unwrap().id.clone();
        assert_eq!(
            slot_of(&third, &newest),
            Some(old_slot),
            "reused one compilation later"
        );
    }

    #[test]
    fn a_rule_is_written_once_however_many_prefixes_nest_inside_it() {
        let mut many = vec![
            json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 65534, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}),
        ];
        for i in 0..50 {
            many.push(json!({"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": format!("10.{i}.0.0/16")}]}));
        }
        let (_, d, p) = setup(json!(many));
        // The /8 range splits into 30 blocks written once (a closure would copy them into each
        // nested /16: 50 × 31 + 30 entries); each /16 rule adds its udp/53 entry (a set per rule,
        // for its hit counter), and the default egress rules two more.
        assert_eq!(d.ports.len(), 30 + 50 + 2);
        assert!(allowed(
            &d,
            p,
            direction::INBOUND,
            "10.7.1.1".parse().unwrap(),
            6,
            443
        ));
        assert!(allowed(
            &d,
            p,
            direction::INBOUND,
            "10.7.1.1".parse().unwrap(),
            17,
            53
        ));
        assert!(!allowed(
            &d,
            p,
            direction::INBOUND,
            "10.70.1.1".parse().unwrap(),
            17,
            53
        ));
    }
}

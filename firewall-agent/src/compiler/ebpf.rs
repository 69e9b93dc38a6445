//! The eBPF back end: resolved policies → the exact contents of the data plane's maps.
//!
//! * Each policy (a set of attached groups) composes one **chain** per group ([`chains_of`]):
//!   its `POLICIES` entry lists them, so a new set of groups whose groups have chains costs one
//!   entry. (In layout 4 a policy was a single chain of all its groups' rules.)
//! * For each chain, direction and family, every peer prefix of every grant becomes one `PEERS`
//!   entry holding the chain of port sets of that prefix and of its nearest covering prefixes
//!   (see `firewall_common`): each port set holds rules written at exactly its prefix, so a
//!   rule's entries exist once. A prefix has one set per part (see [`links`]): its CIDR rules,
//!   and the rules referencing each group or prefix list whose address or entry it is.
//! * A prefix's CIDR rules (and a folded tail) make a content-addressed port set: equal contents
//!   share one ID and one set of `PORTS` entries, never rewritten in place. The rules
//!   referencing one group or list in one policy direction make one **part set** per prefix
//!   length, its ID named by that ([`PartKey`]): when those rules change, its entries are
//!   rewritten in place, new and changed entries before any deletion, so each packet meets the
//!   old rules, the new ones, or both (see `dataplane::apply`). IDs are never reused while the
//!   agent runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use firewall_common::{
    Direction, IFACE_ENFORCING, IFACE_FLOW_LOG, IFACE_MANAGED, IFACE_UNTRACKED_V4,
    IFACE_UNTRACKED_V6, IfaceConfig, NO_RULE_SLOT, PEER_CHAIN, PEER_KEY_FIXED_BITS, POLICY_CHAINS,
    PORT_KEY_PROTO_BITS, PORT_KEY_SET_BITS, PeerKey, PeerValue, PolicyValue, PortKey, PortValue,
    capacity, family, layout,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::resolve::{self, Grant, PortItem};
use crate::model::State;

/// An LPM trie entry key: prefix length and key data.
pub type LpmKey<K> = (u32, K);

/// What the maps must contain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Desired {
    /// By interface name; the data plane resolves the ifindex when it attaches.
    pub ifaces: BTreeMap<String, IfaceConfig>,
    /// `POLICIES`: by policy ID, the chains it composes (empty before layout 5).
    pub policies: BTreeMap<u32, PolicyValue>,
    pub peers: BTreeMap<LpmKey<PeerKey>, PeerValue>,
    pub ports: BTreeMap<LpmKey<PortKey>, PortValue>,
    /// Hit-counter slot of every rule (`RULE_HITS` index → `sgr-` ID).
    pub rule_slots: RuleSlots,
}

/// `RULE_HITS` index → `sgr-` ID: a persistent map, so that a scrape takes it whole in O(1)
/// under the agent's lock and names the counters after, while changes edit it in O(log n).
pub type RuleSlots = imbl::OrdMap<u32, String>;

/// One allowed (protocol, port range) item as `PORTS` matches it; `proto: None` is protocol
/// `-1`, ICMP uses `type << 8 | code` as the port. Serialized inside [`Ids`] (field names kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct PortRange {
    proto: Option<u8>,
    lo: u16,
    hi: u16,
}

impl From<PortItem> for PortRange {
    fn from(item: PortItem) -> Self {
        let icmp = |ty: u8, code: u8| (u16::from(ty) << 8) | u16::from(code);
        let (proto, lo, hi) = match item {
            PortItem::All => (None, 0, u16::MAX),
            PortItem::Ports { proto, from, to } => (Some(proto), from, to),
            PortItem::Proto(proto) => (Some(proto), 0, u16::MAX),
            PortItem::Icmp {
                proto,
                types,
                codes,
            } => (Some(proto), icmp(types.0, codes.0), icmp(types.1, codes.1)),
        };
        PortRange { proto, lo, hi }
    }
}

/// A port-set member: the item, the rule it is counted against, and how specific that rule's
/// peer is (where two rules allow the same item, the hit goes to the more specific peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct SetItem {
    item: PortRange,
    /// Negated peer prefix length, so sorting puts the most specific rule first.
    specificity: i16,
    slot: u32,
}

impl SetItem {
    /// What `grant` contributes to the port set at its prefix, counted against `slot`.
    pub(super) fn of(grant_prefix: IpNet, item: PortItem, slot: u32) -> SetItem {
        SetItem {
            item: item.into(),
            specificity: -i16::from(grant_prefix.prefix_len()),
            slot,
        }
    }

    /// [`SetItem::of`] for a grant at a prefix of length `len`.
    pub(super) fn at_length(len: u8, item: PortItem, slot: u32) -> SetItem {
        SetItem {
            item: item.into(),
            specificity: -i16::from(len),
            slot,
        }
    }
}

/// What names a part set: the policy, the direction (its `as_u8`), the group or prefix list
/// the part's rules reference, and the prefix length of the addresses it is written at.
pub(super) type PartKey = (u32, u8, String, u8);

/// The [`PartKey`] of the rules of `policy_id`'s `direction` referencing `target`, written at
/// prefixes of length `len`.
pub(super) fn part_key(policy_id: u32, direction: Direction, target: &str, len: u8) -> PartKey {
    (policy_id, direction.as_u8(), target.to_string(), len)
}

/// Stable IDs for policies, port sets and rule counter slots across compilations. Persisted
/// by the agent, so that after a restart the same state compiles to the same entries. The maps
/// are persistent: the agent's tick copies them in O(1) under its lock and saves the copy
/// without it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IdsSnapshot", into = "IdsSnapshot")]
pub struct Ids {
    pub(super) policies: imbl::OrdMap<Vec<String>, u32>,
    pub(super) port_sets: imbl::OrdMap<Vec<SetItem>, u32>,
    pub(super) part_sets: imbl::OrdMap<PartKey, u32>,
    pub(super) rule_slots: imbl::OrdMap<String, u32>,
    pub(super) free_slots: Vec<u32>,
    pub(super) next_policy: u32,
    pub(super) next_port_set: u32,
    pub(super) next_slot: u32,
}

/// [`Ids`] with its maps as lists of pairs (JSON object keys must be strings).
#[derive(Serialize, Deserialize)]
struct IdsSnapshot {
    policies: Vec<(Vec<String>, u32)>,
    port_sets: Vec<(Vec<SetItem>, u32)>,
    /// Absent in IDs saved before part sets: those get new IDs.
    #[serde(default)]
    part_sets: Vec<(PartKey, u32)>,
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
            part_sets: ids.part_sets.into_iter().collect(),
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
            part_sets: s.part_sets.into_iter().collect(),
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
    pub fn slot_map(&self) -> RuleSlots {
        self.rule_slots
            .iter()
            .filter(|(_, slot)| **slot != NO_RULE_SLOT)
            .map(|(rule, slot)| (*slot, rule.clone()))
            .collect()
    }

    pub(super) fn policy(&mut self, groups: &[String]) -> u32 {
        let next = &mut self.next_policy;
        *self.policies.entry(groups.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    pub(super) fn port_set(&mut self, items: &[SetItem]) -> u32 {
        let next = &mut self.next_port_set;
        *self.port_sets.entry(items.to_vec()).or_insert_with(|| {
            *next += 1;
            *next
        })
    }

    /// The ID of a part set (see [`PartKey`]), whatever its contents.
    pub(super) fn part_set(&mut self, key: &PartKey) -> u32 {
        if let Some(id) = self.part_sets.get(key) {
            return *id;
        }
        self.next_port_set += 1;
        self.part_sets.insert(key.clone(), self.next_port_set);
        self.next_port_set
    }

    /// Forgets a part set no entry points at any more (its number is not handed out again).
    pub(super) fn forget_part_set(&mut self, key: &PartKey) {
        self.part_sets.remove(key);
    }

    /// The rule's counter slot, if it has one already.
    pub(super) fn known_slot(&self, rule_id: &str) -> Option<u32> {
        self.rule_slots.get(rule_id).copied()
    }

    /// Forgets a policy no workload uses any more (its number is not handed out again).
    pub(super) fn forget_policy(&mut self, groups: &[String]) {
        self.policies.remove(groups);
    }

    /// Forgets a port set no entry points at any more (its number is not handed out again).
    pub(super) fn forget_port_set(&mut self, items: &[SetItem]) {
        self.port_sets.remove(items);
    }

    /// Forgets rules that are gone: their slots are handed out again from the next change on,
    /// in the order [`Ids::retain`] frees them. Returns the freed slots.
    pub(super) fn forget_rules(&mut self, rules: &BTreeSet<String>) -> Vec<u32> {
        let freed: Vec<u32> = rules
            .iter()
            .filter_map(|rule| self.rule_slots.remove(rule))
            .filter(|slot| *slot != NO_RULE_SLOT)
            .collect();
        self.free_slots.splice(0..0, freed.iter().copied());
        freed
    }

    pub(super) fn rule_slot(&mut self, rule_id: &str) -> u32 {
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
    pub(super) fn retain(
        &mut self,
        policies: &BTreeSet<u32>,
        port_sets: &BTreeSet<u32>,
        rules: &BTreeSet<&str>,
    ) {
        retain(&mut self.policies, |_, id| policies.contains(id));
        retain(&mut self.port_sets, |_, id| port_sets.contains(id));
        retain(&mut self.part_sets, |_, id| port_sets.contains(id));
        let freed: Vec<u32> = self
            .rule_slots
            .iter()
            .filter(|(rule, slot)| !rules.contains(rule.as_str()) && **slot != NO_RULE_SLOT)
            .map(|(_, slot)| *slot)
            .collect();
        retain(&mut self.rule_slots, |rule, _| {
            rules.contains(rule.as_str())
        });
        self.free_slots.splice(0..0, freed);
    }
}

/// Keeps the entries of `map` that `keep` takes (`OrdMap` has no `retain`).
fn retain<K: Ord + Clone, V: Clone>(map: &mut imbl::OrdMap<K, V>, keep: impl Fn(&K, &V) -> bool) {
    let gone: Vec<K> = (map.iter())
        .filter(|(key, value)| !keep(key, value))
        .map(|(key, _)| key.clone())
        .collect();
    for key in gone {
        map.remove(&key);
    }
}

/// Compiles `state` into map contents, reusing and updating `ids`.
pub fn compile(state: &State, ids: &mut Ids) -> Desired {
    // The sets of groups alone: the grants are compiled per chain below.
    let (sets_of_groups, workloads) = resolve::workloads(state);
    let mut desired = Desired::default();
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
    // The chains the policies compose (the policies themselves before layout 5), each once.
    let mut chains: BTreeMap<Vec<String>, (u32, resolve::Policy)> = BTreeMap::new();
    for groups in &sets_of_groups {
        for chain in chains_of(groups) {
            if !chains.contains_key(&chain) {
                let compiled = resolve::policy_of(state, &chain);
                chains.insert(chain.clone(), (ids.policy(&chain), compiled));
            }
        }
    }
    let policy_ids: Vec<u32> = sets_of_groups
        .iter()
        .map(|groups| ids.policy(groups))
        .collect();
    let mut policy_flags = Vec::new();
    for (groups, policy_id) in sets_of_groups.iter().zip(&policy_ids) {
        let composed: Vec<&(u32, resolve::Policy)> = chains_of(groups)
            .iter()
            .map(|chain| &chains[chain])
            .collect();
        if layout::COMPOSED {
            let chain_ids: Vec<u32> = composed.iter().map(|(id, _)| *id).collect();
            desired
                .policies
                .insert(*policy_id, policy_value(&chain_ids));
        }
        policy_flags.push(untracked(|direction, v4| {
            composed
                .iter()
                .any(|(_, chain)| has_zero(chain, direction, v4))
        }));
    }
    for workload in &workloads {
        let mut flags = if workload.running {
            IFACE_MANAGED | IFACE_ENFORCING
        } else {
            IFACE_MANAGED
        } | policy_flags[workload.policy];
        if workload.flow_logged {
            flags |= IFACE_FLOW_LOG;
        }
        desired.ifaces.insert(
            workload.interface.clone(),
            IfaceConfig {
                policy_id: policy_ids[workload.policy],
                flags,
            },
        );
    }
    let mut sets: BTreeMap<u32, Vec<SetItem>> = BTreeMap::new();
    for (chain_id, chain) in chains.values() {
        for direction in Direction::ALL {
            let mut compiler = DirectionCompiler {
                ids: &mut *ids,
                sets: &mut sets,
                policy_id: *chain_id,
                direction,
            };
            compiler.compile(chain.grants(direction), &mut desired);
        }
    }
    for (set_id, items) in &sets {
        desired.ports.extend(set_entries(*set_id, items));
    }
    let used_policies = policy_ids
        .into_iter()
        .chain(chains.values().map(|(id, _)| *id))
        .collect();
    let used_sets = sets.keys().copied().collect();
    ids.retain(&used_policies, &used_sets, &live_rules);
    desired
}

/// Whether a chain has a `/0` peer of this family (IPv4 or not) in this direction.
fn has_zero(chain: &resolve::Policy, direction: Direction, v4: bool) -> bool {
    chain
        .grants(direction)
        .iter()
        .any(|g| g.prefix.prefix_len() == 0 && matches!(g.prefix, IpNet::V4(_)) == v4)
}

/// The chains a policy of these (sorted) groups composes, each named by its groups: one per
/// group ([`layout::COMPOSED`]), or in layout 4 the whole set as one chain. A new set of groups
/// whose groups have chains already costs one `POLICIES` entry.
pub(super) fn chains_of(groups: &[String]) -> Vec<Vec<String>> {
    if layout::COMPOSED {
        groups.iter().map(|g| vec![g.clone()]).collect()
    } else {
        vec![groups.to_vec()]
    }
}

/// The `POLICIES` value composing these chains, in order. More than [`POLICY_CHAINS`] cannot
/// happen: the groups-per-instance quota is capped there (`agent_args`).
pub(super) fn policy_value(chain_ids: &[u32]) -> PolicyValue {
    let mut chains = [0; POLICY_CHAINS];
    for (slot, id) in chains.iter_mut().zip(chain_ids) {
        *slot = *id;
    }
    PolicyValue { chains }
}

/// [`IFACE_UNTRACKED_V4`] / [`IFACE_UNTRACKED_V6`] where the policy has a `/0` peer of that family
/// in both directions (in any of its chains): only then can one of its flows be untracked (the
/// kernel checks which), given whether it has a `/0` peer (direction, IPv4?).
pub(super) fn untracked(zero: impl Fn(Direction, bool) -> bool) -> u32 {
    let both = |v4: bool| zero(Direction::Inbound, v4) && zero(Direction::Outbound, v4);
    let mut flags = 0;
    if both(true) {
        flags |= IFACE_UNTRACKED_V4;
    }
    if both(false) {
        flags |= IFACE_UNTRACKED_V6;
    }
    flags
}

/// Compiles one policy direction: its `PEERS` entries and the port sets they chain.
struct DirectionCompiler<'a> {
    ids: &'a mut Ids,
    sets: &'a mut BTreeMap<u32, Vec<SetItem>>,
    policy_id: u32,
    direction: Direction,
}

impl DirectionCompiler<'_> {
    fn compile(&mut self, grants: &[Grant], desired: &mut Desired) {
        // Items by the exact prefix they were written for, then by part (the CIDR rules' first,
        // then by the group or list referenced): each part becomes one port set, written once.
        let mut by_prefix: HashMap<IpNet, BTreeMap<Option<&str>, Vec<SetItem>>> = HashMap::new();
        for grant in grants {
            let slot = self.ids.rule_slot(&grant.rule);
            by_prefix
                .entry(grant.prefix)
                .or_default()
                .entry(grant.via.as_deref())
                .or_default()
                .push(SetItem::of(grant.prefix, grant.item, slot));
        }
        let mut parts: HashMap<IpNet, Vec<u32>> = HashMap::new();
        for (prefix, by_part) in &by_prefix {
            let sets = by_part
                .iter()
                .map(|(via, items)| match via {
                    None => self.intern_set(items.clone()),
                    Some(target) => {
                        let key =
                            part_key(self.policy_id, self.direction, target, prefix.prefix_len());
                        let id = self.ids.part_set(&key);
                        self.sets
                            .entry(id)
                            .or_insert_with(|| set_contents(items.clone()));
                        id
                    }
                })
                .collect();
            parts.insert(*prefix, sets);
        }
        let prefixes: BTreeSet<IpNet> = by_prefix.keys().copied().collect();
        // The prefix lengths that have rules, by family: only those can be covering prefixes.
        let mut lengths = [BTreeSet::new(), BTreeSet::new()];
        for prefix in &prefixes {
            lengths[usize::from(prefix.addr().is_ipv6())].insert(prefix.prefix_len());
        }
        for prefix in prefixes {
            let lengths = lengths[usize::from(prefix.addr().is_ipv6())]
                .range(..=prefix.prefix_len())
                .rev()
                .copied();
            let links = links(prefix, lengths, |a| {
                parts.get(a).map_or(&[][..], Vec::as_slice)
            });
            let value = peer_value(&links, |tail| {
                let items = tail.iter().flat_map(|id| self.sets[id].clone()).collect();
                self.intern_set(items)
            });
            desired
                .peers
                .insert(peer_key(self.policy_id, self.direction, prefix), value);
        }
    }

    /// The content-addressed ID of a port set of these items (see [`set_contents`]).
    fn intern_set(&mut self, items: Vec<SetItem>) -> u32 {
        let items = set_contents(items);
        let id = self.ids.port_set(&items);
        self.sets.entry(id).or_insert(items);
        id
    }
}

/// The chain of port sets of `prefix`: the parts of the prefix itself, then those of its
/// covering prefixes that have rules, nearest first; `lengths` are the family's prefix lengths
/// that have rules, up to the prefix's own, longest first. A prefix's parts (`parts`) are the
/// set of its CIDR rules, then one set per group or prefix list it is an address or entry of,
/// holding the rules that reference it (by ID): that set is the same at every member, so a
/// membership change rewrites the member's `PEERS` entry and no port set. A set met twice is
/// chained once. Where rules of two parts allow the same packet, the first part's rule gets the
/// hit.
pub(super) fn links<'a>(
    prefix: IpNet,
    lengths: impl Iterator<Item = u8>,
    parts: impl Fn(&IpNet) -> &'a [u32],
) -> Vec<u32> {
    let mut links: Vec<u32> = Vec::new();
    for len in lengths {
        let ancestor = IpNet::new(prefix.addr(), len)
            .expect("shorter prefix")
            .trunc();
        for set in parts(&ancestor) {
            if !links.contains(set) {
                links.push(*set);
            }
        }
    }
    links
}

/// The `PEERS` value of a chain of port sets: deeper than [`PEER_CHAIN`], its tail goes into
/// the last link, one set of the tail's items (interned by `fold`).
pub(super) fn peer_value(links: &[u32], fold: impl FnOnce(&[u32]) -> u32) -> PeerValue {
    let mut port_sets = [0u32; PEER_CHAIN];
    for (slot, set) in port_sets.iter_mut().zip(links) {
        *slot = *set;
    }
    if links.len() > PEER_CHAIN {
        port_sets[PEER_CHAIN - 1] = fold(&links[PEER_CHAIN - 1..]);
    }
    PeerValue { port_sets }
}

/// The `PEERS` key of one prefix of a policy direction.
pub(super) fn peer_key(policy_id: u32, direction: Direction, prefix: IpNet) -> LpmKey<PeerKey> {
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
        direction: direction.as_u8(),
        family: fam,
        addr,
        _pad: [0; 2],
    };
    (PEER_KEY_FIXED_BITS + u32::from(bits), key)
}

/// A port set's contents: one member per item, the most specific rule's (that is the one its
/// hits count for), most specific first.
pub(super) fn set_contents(mut items: Vec<SetItem>) -> Vec<SetItem> {
    items.sort_by_key(|i| (i.specificity, i.slot, i.item));
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.item));
    items
}

/// The `PORTS` entries of a port set: items most specific first, the first writer of an entry
/// keeps it.
pub(super) fn set_entries(set_id: u32, items: &[SetItem]) -> BTreeMap<LpmKey<PortKey>, PortValue> {
    let mut entries = BTreeMap::new();
    for set_item in items {
        for key in port_entries(set_id, set_item.item) {
            entries.entry(key).or_insert(PortValue {
                rule_slot: set_item.slot,
            });
        }
    }
    entries
}

/// `PORTS` entries to write, and keys to delete.
pub(super) type EntryChanges = (Vec<(LpmKey<PortKey>, PortValue)>, Vec<LpmKey<PortKey>>);

/// The `PORTS` writes and deletions that turn set `set_id` from `old` into `new` (both as
/// [`set_contents`] has them), found from the items that changed: only the entries of those are
/// looked at, each given to the first item of `new` that writes it (as [`set_entries`] does).
/// `current` reads an entry as the maps hold it. `None` when many items changed: then building
/// both sets' entries is as cheap.
pub(super) fn entry_changes(
    set_id: u32,
    old: &[SetItem],
    new: &[SetItem],
    current: impl Fn(&LpmKey<PortKey>) -> Option<PortValue>,
) -> Option<EntryChanges> {
    let order = |i: &SetItem| (i.specificity, i.slot, i.item);
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    let mut changed: Vec<PortRange> = Vec::new();
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                a.next();
                b.next();
            }
            (Some(x), Some(y)) if order(x) < order(y) => changed.push(a.next()?.item),
            (Some(_), Some(_)) | (None, Some(_)) => changed.push(b.next()?.item),
            (Some(_), None) => changed.push(a.next()?.item),
            (None, None) => break,
        }
        if changed.len() > 64 {
            return None;
        }
    }
    let keys: BTreeSet<LpmKey<PortKey>> = changed
        .iter()
        .flat_map(|item| port_entries(set_id, *item))
        .collect();
    let (mut writes, mut deletes) = (Vec::new(), Vec::new());
    for key in keys {
        let (proto, port) = (key.1.proto, u16::from_be_bytes(key.1.port));
        let writer = new.iter().find(|i| {
            let covers = match i.item.proto {
                None => key.0 == PORT_KEY_SET_BITS,
                Some(p) => p == proto && i.item.lo <= port && port <= i.item.hi,
            };
            covers && port_entries(set_id, i.item).contains(&key)
        });
        let value = writer.map(|i| PortValue { rule_slot: i.slot });
        match (current(&key), value) {
            (held, Some(value)) if held != Some(value) => writes.push((key, value)),
            (Some(_), None) => deletes.push(key),
            _ => {}
        }
    }
    Some((writes, deletes))
}

/// The `PORTS` entries of one item: the port range split into aligned power-of-two blocks.
fn port_entries(set_id: u32, item: PortRange) -> Vec<LpmKey<PortKey>> {
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

//! The incremental compiler's index of one policy direction: what is written at each peer
//! prefix, as parts (see [`ebpf::links`]), the port sets of those parts and the `PEERS` entry of
//! each prefix, kept so that a change rewrites only the entries whose chain passes through a
//! prefix whose parts changed (the prefix itself and the prefixes it covers).
//!
//! * A CIDR rule's items are the prefix's direct part.
//! * The rules that reference one group or prefix list make one shared part, written at each
//!   of its current addresses or entries: a member that joins, leaves, starts or stops changes
//!   which parts its address chains, one `PEERS` entry, and no port set.
//!
//! Port sets are counted by the chains that use them: a set no chain uses any more is deleted
//! at the end of the change, and a set first used is written before anything points at it. A
//! content-addressed set (a prefix's CIDR rules) is shared by every chain with those contents;
//! a part set (see [`ebpf::PartKey`]) belongs to its part, and a change of the part's rules
//! rewrites its entries in place: new and changed entries with the change's writes, entries
//! gone with its deletions (after everything else).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use firewall_common::{Direction, PeerKey, PeerValue, PortKey, PortValue};
use ipnet::IpNet;

use super::{
    ebpf::{self, Desired, Ids, LpmKey, PartKey, SetItem},
    resolve::PortItem,
};

/// The map writes of one change, in the order the data plane makes them (see
/// `dataplane::apply`): `ports`, `peers`, `policies`, the interfaces, then the policies no
/// longer wanted, `stale_peers`, `stale_ports`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub ports: Vec<(LpmKey<PortKey>, PortValue)>,
    pub peers: Vec<(LpmKey<PeerKey>, PeerValue)>,
    /// The whole `POLICIES` contents wanted (one entry per set of groups in use: small).
    pub policies: BTreeMap<u32, firewall_common::PolicyValue>,
    /// The whole `IFACES` contents wanted (one entry per workload: small).
    pub ifaces: BTreeMap<String, firewall_common::IfaceConfig>,
    pub stale_peers: Vec<LpmKey<PeerKey>>,
    pub stale_ports: Vec<LpmKey<PortKey>>,
    /// Counter slots that start counting for a (new) rule: zeroed before any entry uses them.
    pub fresh_slots: Vec<(u32, String)>,
    /// Counter slots of rules that are gone.
    pub freed_slots: Vec<u32>,
}

impl Delta {
    /// Whether the change writes or deletes any `PEERS` or `PORTS` entry.
    pub fn touches_policy_maps(&self) -> bool {
        !(self.ports.is_empty()
            && self.peers.is_empty()
            && self.stale_peers.is_empty()
            && self.stale_ports.is_empty())
    }
}

/// A live port set: its members, how many chain links point at it, and the part it is the set
/// of (`None`: content-addressed).
#[derive(Debug, Clone)]
struct SetEntry {
    items: Vec<SetItem>,
    uses: usize,
    part: Option<PartKey>,
}

/// What every policy direction shares during one change: the IDs, the port sets, the whole
/// compiled contents (kept equal to a whole compile's) and the delta being built.
#[derive(Debug, Default, Clone)]
pub(super) struct Shared {
    pub ids: Ids,
    pub desired: Desired,
    sets: HashMap<u32, SetEntry>,
    /// Sets interned during this change that no map holds yet.
    created: BTreeSet<u32>,
    /// Sets whose last use went during this change.
    unused: BTreeSet<u32>,
    pub delta: Delta,
}

impl Shared {
    pub fn new(ids: Ids) -> Shared {
        Shared {
            ids,
            ..Shared::default()
        }
    }

    /// The ID of the port set of `items` (see [`ebpf::set_contents`]).
    fn intern(&mut self, items: Vec<SetItem>) -> u32 {
        let items = ebpf::set_contents(items);
        let id = self.ids.port_set(&items);
        if !self.sets.contains_key(&id) {
            self.created.insert(id);
            let entry = SetEntry {
                items,
                uses: 0,
                part: None,
            };
            self.sets.insert(id, entry);
        }
        id
    }

    /// The ID of the part set `key` holding `items`, and whether its items changed: a set the
    /// maps hold already with other items gets the difference of its entries (written in
    /// place, see [`ebpf::PartKey`]).
    fn part(&mut self, key: &PartKey, items: Vec<SetItem>) -> (u32, bool) {
        let items = ebpf::set_contents(items);
        let id = self.ids.part_set(key);
        let Some(entry) = self.sets.get_mut(&id) else {
            self.created.insert(id);
            let entry = SetEntry {
                items,
                uses: 0,
                part: Some(key.clone()),
            };
            self.sets.insert(id, entry);
            return (id, true);
        };
        if entry.items == items {
            return (id, false);
        }
        if !self.created.contains(&id) {
            let desired = &self.desired.ports;
            let (writes, deletes) =
                ebpf::entry_changes(id, &entry.items, &items, |key| desired.get(key).copied())
                    .unwrap_or_else(|| {
                        let old = ebpf::set_entries(id, &entry.items);
                        let new = ebpf::set_entries(id, &items);
                        let writes = new.iter().filter(|(k, v)| old.get(k) != Some(v));
                        let deletes = old.keys().filter(|k| !new.contains_key(k));
                        (
                            writes.map(|(k, v)| (*k, *v)).collect(),
                            deletes.copied().collect(),
                        )
                    });
            for (key, value) in writes {
                self.delta.ports.push((key, value));
                self.desired.ports.insert(key, value);
            }
            for key in deletes {
                self.delta.stale_ports.push(key);
                self.desired.ports.remove(&key);
            }
        }
        entry.items = items;
        (id, true)
    }

    fn use_sets(&mut self, value: &PeerValue, up: bool) {
        for id in value.port_sets.iter().filter(|id| **id != 0) {
            let entry = self.sets.get_mut(id).expect("a chained set is live");
            if up {
                entry.uses += 1;
                self.unused.remove(id);
            } else {
                entry.uses -= 1;
                if entry.uses == 0 {
                    self.unused.insert(*id);
                }
            }
        }
    }

    /// Makes the `PEERS` entry `key` hold `value` (`None`: no entry).
    fn set_peer(&mut self, key: LpmKey<PeerKey>, value: Option<PeerValue>) {
        let old = match value {
            Some(value) => self.desired.peers.insert(key, value),
            None => self.desired.peers.remove(&key),
        };
        if old == value {
            return;
        }
        if let Some(value) = value {
            self.use_sets(&value, true);
            self.delta.peers.push((key, value));
        }
        if let Some(old) = old {
            self.use_sets(&old, false);
            if value.is_none() {
                self.delta.stale_peers.push(key);
            }
        }
    }

    /// The members of a live port set.
    fn items_of(&self, id: u32) -> &[SetItem] {
        &self.sets[&id].items
    }

    /// Ends the change: sets first used get their `PORTS` entries written, sets no longer used
    /// are deleted and forgotten.
    pub fn finish(&mut self) -> Delta {
        for id in std::mem::take(&mut self.created) {
            let entry = &self.sets[&id];
            if entry.uses > 0 {
                let entries = ebpf::set_entries(id, &entry.items);
                self.delta
                    .ports
                    .extend(entries.iter().map(|(k, v)| (*k, *v)));
                self.desired.ports.extend(entries);
            } else {
                // Interned on the way, never pointed at: no map ever held it.
                let entry = self.sets.remove(&id).expect("created");
                self.forget(&entry);
                self.unused.remove(&id);
            }
        }
        for id in std::mem::take(&mut self.unused) {
            let entry = self.sets.remove(&id).expect("a used set");
            for (key, _) in ebpf::set_entries(id, &entry.items) {
                self.desired.ports.remove(&key);
                self.delta.stale_ports.push(key);
            }
            self.forget(&entry);
        }
        std::mem::take(&mut self.delta)
    }

    fn forget(&mut self, entry: &SetEntry) {
        match &entry.part {
            Some(key) => self.ids.forget_part_set(key),
            None => self.ids.forget_port_set(&entry.items),
        }
    }
}

/// The rules of a policy direction that reference one group or prefix list: one part, written
/// at each of the referenced addresses or entries.
#[derive(Debug, Clone, Default)]
struct RefPart {
    /// (item, counter slot) of each rule, with how many grants give it.
    items: BTreeMap<(PortItem, u32), u32>,
    /// The group's member addresses or the list's entries, counted (members may share one).
    prefixes: BTreeMap<IpNet, u32>,
    /// The port set of the part at each prefix length present (a set's items carry it).
    sets: BTreeMap<u8, u32>,
}

impl RefPart {
    fn lengths(&self) -> BTreeSet<u8> {
        self.prefixes.keys().map(IpNet::prefix_len).collect()
    }
}

/// One policy direction's prefixes.
#[derive(Debug, Clone)]
pub(super) struct DirectionIndex {
    policy_id: u32,
    direction: Direction,
    /// The CIDR rules' items written at each prefix, with how many grants write each.
    direct: HashMap<IpNet, BTreeMap<SetItem, u32>>,
    /// The parts of rules referencing a group or a list, by the ID referenced.
    refs: HashMap<String, RefPart>,
    /// The referenced IDs whose part is written at each prefix.
    at: HashMap<IpNet, BTreeSet<String>>,
    /// The port sets of each prefix's parts, direct first (see [`ebpf::links`]).
    parts: HashMap<IpNet, Vec<u32>>,
    /// The prefixes with parts, ordered by address then length (for "the prefixes under P").
    ordered: BTreeSet<IpNet>,
    /// How many prefixes of each length there are, by family (IPv4, IPv6).
    lengths: [BTreeMap<u8, usize>; 2],
    /// Prefixes whose direct items or referenced parts changed since the last refresh.
    touched: BTreeSet<IpNet>,
    /// Referenced parts whose items or prefix lengths changed since the last refresh.
    touched_refs: BTreeSet<String>,
}

impl DirectionIndex {
    pub fn new(policy_id: u32, direction: Direction) -> DirectionIndex {
        DirectionIndex {
            policy_id,
            direction,
            direct: HashMap::new(),
            refs: HashMap::new(),
            at: HashMap::new(),
            parts: HashMap::new(),
            ordered: BTreeSet::new(),
            lengths: [BTreeMap::new(), BTreeMap::new()],
            touched: BTreeSet::new(),
            touched_refs: BTreeSet::new(),
        }
    }

    /// One grant more (`up`) or less of a CIDR rule's `item` at `prefix`.
    pub fn grant(&mut self, prefix: IpNet, item: SetItem, up: bool) {
        let items = self.direct.entry(prefix).or_default();
        count(items, item, up);
        if items.is_empty() {
            self.direct.remove(&prefix);
        }
        self.touched.insert(prefix);
    }

    /// One grant more (`up`) or less of a rule referencing `target` (its `item`, counted
    /// against `slot`). A part first given takes the target's addresses from `prefixes`; a part
    /// whose last rule goes leaves them.
    pub fn grant_ref(
        &mut self,
        target: &str,
        item: PortItem,
        slot: u32,
        up: bool,
        prefixes: impl FnOnce() -> Vec<IpNet>,
    ) {
        let new = !self.refs.contains_key(target);
        let part = self.refs.entry(target.to_string()).or_default();
        count(&mut part.items, (item, slot), up);
        self.touched_refs.insert(target.to_string());
        if new {
            self.move_ref(target, &[], &prefixes());
        } else if self.refs[target].items.is_empty() {
            let gone: Vec<IpNet> = self.refs[target]
                .prefixes
                .iter()
                .flat_map(|(p, n)| std::iter::repeat_n(*p, *n as usize))
                .collect();
            self.move_ref(target, &gone, &[]);
            self.refs.remove(target);
        }
    }

    /// The referenced group's members or the list's entries changed: `gone` and `came`
    /// (counted). Nothing when no rule of this direction references `target`.
    pub fn move_ref(&mut self, target: &str, gone: &[IpNet], came: &[IpNet]) {
        let Some(part) = self.refs.get_mut(target) else {
            return;
        };
        let lengths = part.lengths();
        for (prefix, up) in gone
            .iter()
            .map(|p| (p, false))
            .chain(came.iter().map(|p| (p, true)))
        {
            let n = part.prefixes.entry(*prefix).or_insert(0);
            let was = *n;
            *n = if up {
                was + 1
            } else {
                was.checked_sub(1).expect("an address that went was there")
            };
            if *n == 0 {
                part.prefixes.remove(prefix);
            }
            let now = part.prefixes.contains_key(prefix);
            if (was > 0) != now {
                let at = self.at.entry(*prefix).or_default();
                if now {
                    at.insert(target.to_string());
                } else {
                    at.remove(target);
                    if at.is_empty() {
                        self.at.remove(prefix);
                    }
                }
                self.touched.insert(*prefix);
            }
        }
        if part.lengths() != lengths {
            self.touched_refs.insert(target.to_string());
        }
    }

    /// Whether a `/0` prefix of the family has items (IPv4 when `v4`).
    pub fn has_zero(&self, v4: bool) -> bool {
        let zero: IpNet = if v4 {
            "0.0.0.0/0".parse().expect("constant")
        } else {
            "::/0".parse().expect("constant")
        };
        self.parts.contains_key(&zero)
    }

    /// Brings the port sets and the `PEERS` entries up to date with the grants since the last
    /// refresh: the referenced parts' sets, each touched prefix's parts, then the chains
    /// through the prefixes whose parts changed.
    pub fn refresh(&mut self, shared: &mut Shared) {
        // Prefixes whose parts kept their sets while a set's items changed in place: the chains
        // through them may fold it into their tail.
        let mut refold: BTreeSet<IpNet> = BTreeSet::new();
        for target in std::mem::take(&mut self.touched_refs) {
            let Some(part) = self.refs.get_mut(&target) else {
                continue;
            };
            let (mut sets, mut changed) = (BTreeMap::new(), BTreeSet::new());
            for len in part.lengths() {
                let items = part
                    .items
                    .keys()
                    .map(|(item, slot)| SetItem::at_length(len, *item, *slot))
                    .collect();
                let key = ebpf::part_key(self.policy_id, self.direction, &target, len);
                let (id, items_changed) = shared.part(&key, items);
                if items_changed || part.sets.get(&len) != Some(&id) {
                    changed.insert(len);
                }
                sets.insert(len, id);
            }
            part.sets = sets;
            let prefixes = part.prefixes.keys();
            let prefixes = prefixes.filter(|p| changed.contains(&p.prefix_len()));
            refold.extend(prefixes.clone());
            self.touched.extend(prefixes);
        }
        let mut changed = Vec::new();
        for prefix in std::mem::take(&mut self.touched) {
            let family = usize::from(prefix.addr().is_ipv6());
            let len = prefix.prefix_len();
            let mut parts = Vec::new();
            if let Some(items) = self.direct.get(&prefix) {
                parts.push(shared.intern(items.keys().copied().collect()));
            }
            for target in self.at.get(&prefix).into_iter().flatten() {
                parts.push(self.refs[target].sets[&len]);
            }
            let old = if parts.is_empty() {
                self.parts.remove(&prefix)
            } else {
                self.parts.insert(prefix, parts.clone())
            };
            if old.as_deref() == Some(&parts[..]) {
                if refold.contains(&prefix) {
                    changed.push(prefix);
                }
                continue;
            }
            match (old.is_some(), !parts.is_empty()) {
                (false, true) => {
                    self.ordered.insert(prefix);
                    *self.lengths[family].entry(len).or_insert(0) += 1;
                }
                (true, false) => {
                    self.ordered.remove(&prefix);
                    let count = self.lengths[family].get_mut(&len).expect("counted");
                    *count -= 1;
                    if *count == 0 {
                        self.lengths[family].remove(&len);
                    }
                    shared.set_peer(ebpf::peer_key(self.policy_id, self.direction, prefix), None);
                }
                _ => {}
            }
            changed.push(prefix);
        }
        for prefix in self.chains_through(&changed) {
            let lengths = self.lengths[usize::from(prefix.addr().is_ipv6())]
                .range(..=prefix.prefix_len())
                .rev()
                .map(|(len, _)| *len);
            let links = ebpf::links(prefix, lengths, |a| {
                self.parts.get(a).map_or(&[][..], Vec::as_slice)
            });
            let value = ebpf::peer_value(&links, |tail| {
                let items = tail
                    .iter()
                    .flat_map(|id| shared.items_of(*id).to_vec())
                    .collect();
                shared.intern(items)
            });
            shared.set_peer(
                ebpf::peer_key(self.policy_id, self.direction, prefix),
                Some(value),
            );
        }
    }

    /// The prefixes with parts whose chain passes through one of `changed`: those equal to or
    /// inside one of them.
    fn chains_through(&self, changed: &[IpNet]) -> BTreeSet<IpNet> {
        if changed.len() * 4 >= self.ordered.len() {
            // Most of them anyway (a new policy): every one.
            return self.ordered.clone();
        }
        let mut out = BTreeSet::new();
        for prefix in changed {
            let (first, last) = match prefix {
                IpNet::V4(net) => (
                    IpNet::V4(ipnet::Ipv4Net::new(net.network(), 0).expect("length 0")),
                    IpNet::V4(ipnet::Ipv4Net::new(net.broadcast(), 32).expect("length 32")),
                ),
                IpNet::V6(net) => (
                    IpNet::V6(ipnet::Ipv6Net::new(net.network(), 0).expect("length 0")),
                    IpNet::V6(ipnet::Ipv6Net::new(net.broadcast(), 128).expect("length 128")),
                ),
            };
            out.extend(
                self.ordered
                    .range(first..=last)
                    .filter(|q| q.prefix_len() >= prefix.prefix_len()),
            );
        }
        out
    }

    /// Deletes every entry of this policy direction (its policy is no longer used).
    pub fn clear(&mut self, shared: &mut Shared) {
        for prefix in std::mem::take(&mut self.ordered) {
            shared.set_peer(ebpf::peer_key(self.policy_id, self.direction, prefix), None);
        }
        *self = DirectionIndex::new(self.policy_id, self.direction);
    }
}

/// One more (`up`) or one fewer of `key` in `counts`; a key counted down to 0 goes.
fn count<K: Ord>(counts: &mut BTreeMap<K, u32>, key: K, up: bool) {
    if up {
        *counts.entry(key).or_insert(0) += 1;
    } else {
        let n = counts.get_mut(&key).expect("a grant taken back was given");
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

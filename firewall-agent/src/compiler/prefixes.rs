//! The incremental compiler's index of one policy direction: the items written at each peer
//! prefix, the port set each prefix owns and the `PEERS` entry of each, kept so that a change
//! of some prefixes' items rewrites only the entries whose chain passes through them (the
//! prefix itself and the prefixes it covers). Port sets are shared by every policy direction
//! whose chains use them and counted: a set no chain uses any more is deleted at the end of the
//! change, and a set first used is written before anything points at it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use firewall_common::{Direction, PeerKey, PeerValue, PortKey, PortValue};
use ipnet::IpNet;

use super::ebpf::{self, Desired, Ids, LpmKey, SetItem};

/// The map writes of one change, in the order the data plane makes them (see
/// `dataplane::apply`): `ports`, `peers`, the interfaces, then `stale_peers`, `stale_ports`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub ports: Vec<(LpmKey<PortKey>, PortValue)>,
    pub peers: Vec<(LpmKey<PeerKey>, PeerValue)>,
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

/// A live port set: its members and how many chain links point at it.
#[derive(Debug, Clone)]
struct SetEntry {
    items: Vec<SetItem>,
    uses: usize,
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
            self.sets.insert(id, SetEntry { items, uses: 0 });
        }
        id
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
                self.ids.forget_port_set(&entry.items);
                self.unused.remove(&id);
            }
        }
        for id in std::mem::take(&mut self.unused) {
            let entry = self.sets.remove(&id).expect("a used set");
            for (key, _) in ebpf::set_entries(id, &entry.items) {
                self.desired.ports.remove(&key);
                self.delta.stale_ports.push(key);
            }
            self.ids.forget_port_set(&entry.items);
        }
        std::mem::take(&mut self.delta)
    }
}

/// One policy direction's prefixes.
#[derive(Debug, Clone)]
pub(super) struct DirectionIndex {
    policy_id: u32,
    direction: Direction,
    /// The items written at each prefix, with how many grants write each.
    items: HashMap<IpNet, BTreeMap<SetItem, u32>>,
    /// The port set each prefix with items owns.
    own: HashMap<IpNet, u32>,
    /// The prefixes with items, ordered by address then length (for "the prefixes under P").
    ordered: BTreeSet<IpNet>,
    /// How many prefixes of each length there are, by family (IPv4, IPv6).
    lengths: [BTreeMap<u8, usize>; 2],
    /// Prefixes whose items changed since the last refresh.
    touched: BTreeSet<IpNet>,
}

impl DirectionIndex {
    pub fn new(policy_id: u32, direction: Direction) -> DirectionIndex {
        DirectionIndex {
            policy_id,
            direction,
            items: HashMap::new(),
            own: HashMap::new(),
            ordered: BTreeSet::new(),
            lengths: [BTreeMap::new(), BTreeMap::new()],
            touched: BTreeSet::new(),
        }
    }

    /// One grant more (`up`) or less of `item` at `prefix`.
    pub fn grant(&mut self, prefix: IpNet, item: SetItem, up: bool) {
        let items = self.items.entry(prefix).or_default();
        let count = items.entry(item).or_insert(0);
        if up {
            *count += 1;
        } else {
            *count = count.checked_sub(1).expect("a grant taken back was given");
            if *count == 0 {
                items.remove(&item);
            }
        }
        self.touched.insert(prefix);
    }

    /// Whether a `/0` prefix of the family has items (IPv4 when `v4`).
    pub fn has_zero(&self, v4: bool) -> bool {
        let zero: IpNet = if v4 {
            "0.0.0.0/0".parse().expect("constant")
        } else {
            "::/0".parse().expect("constant")
        };
        self.own.contains_key(&zero)
    }

    /// Brings the own sets and the `PEERS` entries up to date with the grants since the last
    /// refresh: each touched prefix's own set, then the chains through the prefixes whose own
    /// set changed.
    pub fn refresh(&mut self, shared: &mut Shared) {
        let mut changed = Vec::new();
        for prefix in std::mem::take(&mut self.touched) {
            let family = usize::from(prefix.addr().is_ipv6());
            let len = prefix.prefix_len();
            let items = self.items.get(&prefix);
            let set = match items {
                Some(items) if !items.is_empty() => {
                    Some(shared.intern(items.keys().copied().collect()))
                }
                _ => None,
            };
            let old = match set {
                Some(set) => self.own.insert(prefix, set),
                None => {
                    self.items.remove(&prefix);
                    self.own.remove(&prefix)
                }
            };
            if old == set {
                continue;
            }
            match (old, set) {
                (None, Some(_)) => {
                    self.ordered.insert(prefix);
                    *self.lengths[family].entry(len).or_insert(0) += 1;
                }
                (Some(_), None) => {
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
            let value = ebpf::chain(
                prefix,
                lengths,
                |a| self.own.get(a).copied(),
                |a| self.items[a].keys().copied().collect(),
                |items| shared.intern(items),
            );
            shared.set_peer(
                ebpf::peer_key(self.policy_id, self.direction, prefix),
                Some(value),
            );
        }
    }

    /// The prefixes with items whose chain passes through one of `changed`: those equal to or
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
        self.items.clear();
        self.own.clear();
        self.lengths = [BTreeMap::new(), BTreeMap::new()];
        self.touched.clear();
    }
}

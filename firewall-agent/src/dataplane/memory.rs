//! [`MemoryDataplane`]: a [`Dataplane`] that keeps the map entries in memory, for agent-level
//! tests without root. It runs the same diff as the kernel one (`apply`), so it holds exactly
//! what the kernel maps would; it sees no packets, so its counters stay zero and its flows are
//! the ones a test gives it ([`MemoryDataplane::track`]).

use std::{
    collections::{BTreeMap, HashMap},
    io,
};

use firewall_common::{
    CtKey, CtTimeouts, CtValue, IfaceConfig, PeerKey, PeerValue, PolicyValue, PortKey, PortValue,
};

use super::{
    Answer, Dataplane, Probe, RawCounters, Result, TrackedFlow,
    apply::{self, Target},
    attach::checked_ifindex,
    conntrack, counters, lookup, readback,
};
use crate::compiler::{Delta, Desired, LpmKey, RuleSlots};

#[derive(Debug, Clone)]
pub struct MemoryDataplane {
    timeouts: CtTimeouts,
    /// The interfaces that exist, by name (what `if_nametoindex` answers on a host).
    interfaces: BTreeMap<String, u32>,
    /// The interfaces "attached" to, by name.
    attached: BTreeMap<String, u32>,
    /// What `apply` believes the maps hold, as in the kernel implementation.
    current: Desired,
    /// The map contents as written: `IFACES` by ifindex (its non-zero slots), `PEERS`, `PORTS`.
    ifaces: BTreeMap<u32, IfaceConfig>,
    policies: BTreeMap<u32, PolicyValue>,
    peers: BTreeMap<LpmKey<PeerKey>, PeerValue>,
    ports: BTreeMap<LpmKey<PortKey>, PortValue>,
    /// `RULE_HITS` slots cleared so far, in order (no packet ever bumps one).
    cleared_rule_hits: Vec<u32>,
    flows: HashMap<CtKey, CtValue>,
    /// The clock expiry is judged by (nanoseconds, as `bpf_ktime_get_coarse_ns`).
    now_ns: u64,
}

impl MemoryDataplane {
    pub fn new(timeouts: CtTimeouts) -> MemoryDataplane {
        MemoryDataplane {
            timeouts,
            interfaces: BTreeMap::new(),
            attached: BTreeMap::new(),
            current: Desired::default(),
            ifaces: BTreeMap::new(),
            policies: BTreeMap::new(),
            peers: BTreeMap::new(),
            ports: BTreeMap::new(),
            cleared_rule_hits: Vec::new(),
            flows: HashMap::new(),
            now_ns: 0,
        }
    }

    /// Makes an interface exist with this ifindex (applying an unknown one fails as on a host).
    pub fn add_interface(&mut self, name: &str, ifindex: u32) {
        self.interfaces.insert(name.to_string(), ifindex);
    }

    /// Records a flow as the kernel would on its opening packet.
    pub fn track(&mut self, key: CtKey, value: CtValue) {
        self.flows.insert(key, value);
    }

    /// Sets the clock expiry is judged by.
    pub fn set_now_ns(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
    }

    /// `IFACES`: the slots in use, by ifindex.
    pub fn ifaces(&self) -> &BTreeMap<u32, IfaceConfig> {
        &self.ifaces
    }

    /// `PEERS` as written.
    pub fn peers(&self) -> &BTreeMap<LpmKey<PeerKey>, PeerValue> {
        &self.peers
    }

    /// `PORTS` as written.
    pub fn ports(&self) -> &BTreeMap<LpmKey<PortKey>, PortValue> {
        &self.ports
    }

    /// The `RULE_HITS` slots zeroed so far, in order.
    pub fn cleared_rule_hits(&self) -> &[u32] {
        &self.cleared_rule_hits
    }

    fn flush(&mut self, doomed: impl Fn(&CtKey, &CtValue) -> bool) -> usize {
        let before = self.flows.len();
        self.flows.retain(|k, v| !doomed(k, v));
        before - self.flows.len()
    }
}

impl MemoryDataplane {
    fn interface_of(&self, index: u32) -> &str {
        self.attached
            .iter()
            .find(|(_, i)| **i == index)
            .map_or("", |(name, _)| name.as_str())
    }
}

impl Dataplane for MemoryDataplane {
    fn apply(&mut self, desired: &Desired) -> Result<()> {
        apply::apply(self, desired)
    }

    fn apply_delta(&mut self, delta: &Delta) -> Result<()> {
        apply::apply_delta(self, delta)
    }

    fn flush_disallowed_flows(&mut self, desired: &Desired) -> Result<usize> {
        let attached = self.attached.clone();
        Ok(self.flush(conntrack::disallowed(
            desired,
            attached.iter().map(|(name, index)| (name, *index)),
        )))
    }

    fn collect_expired_flows(&mut self) -> Result<usize> {
        Ok(self.flush(conntrack::expired(self.timeouts, self.now_ns)))
    }

    fn disallowed_flows(&self, desired: &Desired) -> Result<Vec<TrackedFlow>> {
        let doomed = conntrack::disallowed(
            desired,
            self.attached.iter().map(|(name, index)| (name, *index)),
        );
        let mut flows: Vec<TrackedFlow> = self
            .flows
            .iter()
            .filter(|(k, v)| doomed(k, v))
            .map(|(k, v)| lookup::listed(self.interface_of(k.ifindex), k, v))
            .collect();
        flows.sort();
        Ok(flows)
    }

    fn lookup(&self, interface: &str, probe: &Probe) -> Result<Answer> {
        let Some(index) = self.attached.get(interface).copied() else {
            return Ok(Answer::Unmanaged);
        };
        let expired = conntrack::expired(self.timeouts, self.now_ns);
        let tracked = |key: &CtKey| {
            let value = self.flows.get(key)?;
            (!expired(key, value)).then_some(*value)
        };
        let iface = self.ifaces.get(&index).copied();
        let policy = self.read_back()?;
        Ok(lookup::answer(
            interface, index, iface, probe, tracked, &policy,
        ))
    }

    fn rule_of_slot(&self, slot: u32) -> Option<String> {
        self.current.rule_slots.get(&slot).cloned()
    }

    fn tracked_flows(&self) -> usize {
        self.flows.len()
    }

    fn conntrack_capacity(&self) -> u32 {
        firewall_common::capacity::CONNTRACK
    }

    fn has_interface(&self, name: &str) -> bool {
        self.interfaces.contains_key(name)
    }

    fn read_back(&self) -> Result<Desired> {
        Ok(Desired {
            ifaces: readback::name_ifaces(
                self.ifaces.iter().map(|(i, c)| (*i, *c)),
                &self.attached,
            ),
            policies: self.policies.clone(),
            peers: self.peers.clone(),
            ports: self.ports.clone(),
            rule_slots: RuleSlots::new(),
        })
    }

    fn raw_counters(&self) -> Result<RawCounters> {
        counters::collect(
            &self.current.rule_slots,
            |_| Ok(0),
            |len| Ok(vec![0; len as usize]),
        )
    }

    fn restored(&self) -> bool {
        false
    }

    fn assume_rule_slots(&mut self, slots: RuleSlots) {
        self.current.rule_slots = slots;
    }

    fn highest_ids(&self) -> (u32, u32) {
        apply::highest_ids(&self.current)
    }
}

impl Target for MemoryDataplane {
    fn current(&mut self) -> &mut Desired {
        &mut self.current
    }

    fn clear_rule_hits(&mut self, slots: &[u32]) -> Result<()> {
        self.cleared_rule_hits.extend_from_slice(slots);
        Ok(())
    }

    fn write_port(&mut self, key: &LpmKey<PortKey>, value: &PortValue) -> Result<()> {
        self.ports.insert(*key, *value);
        Ok(())
    }

    fn write_peer(&mut self, key: &LpmKey<PeerKey>, value: &PeerValue) -> Result<()> {
        self.peers.insert(*key, *value);
        Ok(())
    }

    fn delete_peer(&mut self, key: &LpmKey<PeerKey>) -> Result<()> {
        self.peers.remove(key);
        Ok(())
    }

    fn delete_port(&mut self, key: &LpmKey<PortKey>) -> Result<()> {
        self.ports.remove(key);
        Ok(())
    }

    fn write_policy(&mut self, id: u32, value: &PolicyValue) -> Result<()> {
        self.policies.insert(id, *value);
        Ok(())
    }

    fn delete_policy(&mut self, id: u32) -> Result<()> {
        self.policies.remove(&id);
        Ok(())
    }

    fn attached(&self, interface: &str) -> Option<u32> {
        self.attached.get(interface).copied()
    }

    fn attached_interfaces(&self) -> Vec<String> {
        self.attached.keys().cloned().collect()
    }

    fn set_iface(&mut self, index: u32, config: IfaceConfig) -> Result<()> {
        if config == apply::UNUSED_IFACE {
            self.ifaces.remove(&index);
        } else {
            self.ifaces.insert(index, config);
        }
        Ok(())
    }

    fn attach(&mut self, interface: &str, config: IfaceConfig) -> Result<()> {
        let lookup = self
            .interfaces
            .get(interface)
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV));
        let index = checked_ifindex(interface, lookup)?;
        self.set_iface(index, config)?;
        self.attached.insert(interface.to_string(), index);
        Ok(())
    }

    fn detach(&mut self, interface: &str) -> Option<u32> {
        self.attached.remove(interface)
    }

    fn flush_interface(&mut self, index: u32) -> Result<usize> {
        Ok(self.flush(conntrack::on_interface(index)))
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
pub(crate) mod tests;

//! Writing a [`Desired`] as the difference from what the maps hold, make-before-break: `PORTS`
//! entries first (new sets, and the new or changed entries of a part set rewritten in place),
//! then `PEERS` (repointing at the new sets), then `POLICIES` (new sets of groups composing
//! their chains), then `IFACES` (attaching new interfaces, repointing moved ones), and only
//! then the deletions, `POLICIES` before `PEERS` before `PORTS`. Meanwhile a set rewritten in
//! place allows its old and its new rules, so each packet meets either the old or the new
//! policy.
//!
//! The order lives here once, over a [`Target`]: the kernel maps or their in-memory stand-in.

use std::collections::BTreeMap;

use imbl::ordmap::DiffItem;

use firewall_common::{
    IFACE_ENFORCING, IfaceConfig, PeerKey, PeerValue, PolicyValue, PortKey, PortValue,
};

use super::{
    Result,
    compare::{Difference, compare},
};
use crate::compiler::{Delta, Desired, LpmKey};

/// An `IFACES` slot no workload uses.
pub(super) const UNUSED_IFACE: IfaceConfig = IfaceConfig {
    policy_id: 0,
    flags: 0,
};

/// The writes `apply` makes, on the kernel's maps or on a stand-in.
pub(super) trait Target {
    /// What the maps hold now; `apply` updates it after each successful write.
    fn current(&mut self) -> &mut Desired;
    /// Zeroes the hit counters of these `RULE_HITS` slots.
    fn clear_rule_hits(&mut self, slots: &[u32]) -> Result<()>;
    fn write_port(&mut self, key: &LpmKey<PortKey>, value: &PortValue) -> Result<()>;
    fn write_peer(&mut self, key: &LpmKey<PeerKey>, value: &PeerValue) -> Result<()>;
    fn delete_peer(&mut self, key: &LpmKey<PeerKey>) -> Result<()>;
    fn delete_port(&mut self, key: &LpmKey<PortKey>) -> Result<()>;
    fn write_policy(&mut self, id: u32, value: &PolicyValue) -> Result<()>;
    fn delete_policy(&mut self, id: u32) -> Result<()>;
    /// Writes `PORTS` entries in order, each recorded in `current` once written (the kernel
    /// batches them).
    fn write_ports(&mut self, entries: &[(LpmKey<PortKey>, PortValue)]) -> Result<()> {
        for (key, value) in entries {
            self.write_port(key, value)?;
            self.current().ports.insert(*key, *value);
        }
        Ok(())
    }
    /// Writes `PEERS` entries in order, as [`Target::write_ports`].
    fn write_peers(&mut self, entries: &[(LpmKey<PeerKey>, PeerValue)]) -> Result<()> {
        for (key, value) in entries {
            self.write_peer(key, value)?;
            self.current().peers.insert(*key, *value);
        }
        Ok(())
    }
    /// Deletes `PEERS` entries in order, each forgotten in `current` once deleted.
    fn delete_peers(&mut self, keys: &[LpmKey<PeerKey>]) -> Result<()> {
        for key in keys {
            self.delete_peer(key)?;
            self.current().peers.remove(key);
        }
        Ok(())
    }
    /// Deletes `PORTS` entries in order, as [`Target::delete_peers`].
    fn delete_ports(&mut self, keys: &[LpmKey<PortKey>]) -> Result<()> {
        for key in keys {
            self.delete_port(key)?;
            self.current().ports.remove(key);
        }
        Ok(())
    }
    /// The ifindex of an interface the programs are attached to.
    fn attached(&self, interface: &str) -> Option<u32>;
    /// Every interface the programs are attached to.
    fn attached_interfaces(&self) -> Vec<String>;
    /// Writes `IFACES[index]`.
    fn set_iface(&mut self, index: u32, config: IfaceConfig) -> Result<()>;
    /// Starts enforcing on an interface: writes its `IFACES` slot before attaching the programs,
    /// so the policy is in place before the first packet reaches them.
    fn attach(&mut self, interface: &str, config: IfaceConfig) -> Result<()>;
    /// Detaches the programs from an interface; the ifindex it had, if attached.
    fn detach(&mut self, interface: &str) -> Option<u32>;
    /// Deletes the tracked flows of one interface, or queues them for
    /// [`super::Dataplane::flush_queued_flows`] (the kernel's); returns how many were deleted.
    fn flush_interface(&mut self, index: u32) -> Result<usize>;
}

/// Writes `desired` into `target` (see the module documentation for the order).
pub(super) fn apply(target: &mut impl Target, desired: &Desired) -> Result<()> {
    let current = target.current();
    let (ports, stale_ports) = differences(&desired.ports, &current.ports);
    let (peers, stale_peers) = differences(&desired.peers, &current.peers);
    // A slot starts counting from zero for the rule it is (re)assigned to, before any entry
    // attributes hits to it.
    let fresh: Vec<u32> = (current.rule_slots.diff(&desired.rule_slots))
        .filter_map(|item| match item {
            DiffItem::Add(slot, _) | DiffItem::Update { new: (slot, _), .. } => Some(*slot),
            DiffItem::Remove(..) => None,
        })
        .collect();
    if !fresh.is_empty() {
        target.clear_rule_hits(&fresh)?;
    }
    target.current().rule_slots = desired.rule_slots.clone();
    write_in_order(
        target,
        &ports,
        &peers,
        (&desired.policies, &desired.ifaces),
        &stale_peers,
        &stale_ports,
    )
}

/// Writes a change the incremental compiler worked out (`target` holds what it was compiled
/// against), in the same order as [`apply`].
pub(super) fn apply_delta(target: &mut impl Target, delta: &Delta) -> Result<()> {
    let fresh: Vec<u32> = delta.fresh_slots.iter().map(|(slot, _)| *slot).collect();
    if !fresh.is_empty() {
        target.clear_rule_hits(&fresh)?;
    }
    let slots = &mut target.current().rule_slots;
    for slot in &delta.freed_slots {
        slots.remove(slot);
    }
    slots.extend(delta.fresh_slots.iter().cloned());
    write_in_order(
        target,
        &delta.ports,
        &delta.peers,
        (&delta.policies, &delta.ifaces),
        &delta.stale_peers,
        &delta.stale_ports,
    )
}

/// The whole `POLICIES` and `IFACES` contents wanted (both small).
type Small<'a> = (
    &'a BTreeMap<u32, PolicyValue>,
    &'a BTreeMap<String, IfaceConfig>,
);

/// New `PORTS` entries, `PEERS` entries, `POLICIES`, the interfaces, then the deletions,
/// `POLICIES` first and `PORTS` last.
fn write_in_order(
    target: &mut impl Target,
    ports: &[(LpmKey<PortKey>, PortValue)],
    peers: &[(LpmKey<PeerKey>, PeerValue)],
    (policies, ifaces): Small,
    stale_peers: &[LpmKey<PeerKey>],
    stale_ports: &[LpmKey<PortKey>],
) -> Result<()> {
    tracing::debug!(
        written = ports.len() + peers.len(),
        removed = stale_peers.len() + stale_ports.len(),
        "applying policy entries"
    );
    target.write_ports(ports)?;
    target.write_peers(peers)?;
    let (new_policies, stale_policies) = differences(policies, &target.current().policies);
    for (id, value) in new_policies {
        target.write_policy(id, &value)?;
        target.current().policies.insert(id, value);
    }
    let mut first_error = None;
    for (name, config) in ifaces {
        if let Err(e) = enforce(target, name, *config) {
            tracing::error!(interface = %name, error = %e, "cannot enforce on interface");
            first_error.get_or_insert(e);
        }
    }
    for name in target.attached_interfaces() {
        if !ifaces.contains_key(&name) {
            release(target, &name)?;
        }
    }
    for id in stale_policies {
        target.delete_policy(id)?;
        target.current().policies.remove(&id);
    }
    target.delete_peers(stale_peers)?;
    target.delete_ports(stale_ports)?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What `desired` has that `current` lacks or holds differently, and the keys of `current` that
/// `desired` no longer has.
fn differences<K: Ord + Copy, V: PartialEq + Copy>(
    desired: &BTreeMap<K, V>,
    current: &BTreeMap<K, V>,
) -> (Vec<(K, V)>, Vec<K>) {
    let (mut write, mut delete) = (Vec::new(), Vec::new());
    compare(desired, current, |difference| match difference {
        Difference::Missing(key, value) | Difference::Changed(key, value, _) => {
            write.push((*key, *value));
        }
        Difference::Extra(key, _) => delete.push(*key),
    });
    (write, delete)
}

/// Makes one interface enforce `config`: attaches it, or rewrites its `IFACES` slot.
fn enforce(target: &mut impl Target, name: &str, config: IfaceConfig) -> Result<()> {
    let Some(index) = target.attached(name) else {
        target.attach(name, config)?;
        target.current().ifaces.insert(name.to_string(), config);
        return Ok(());
    };
    let previous = target.current().ifaces.get(name).copied();
    if previous != Some(config) {
        target.set_iface(index, config)?;
        target.current().ifaces.insert(name.to_string(), config);
        let stopped = config.flags & IFACE_ENFORCING == 0;
        if stopped && previous.is_some_and(|p| p.flags & IFACE_ENFORCING != 0) {
            // A stopped workload keeps no connections.
            target.flush_interface(index)?;
        }
    }
    Ok(())
}

/// Detaches from a workload interface and forgets its policy and tracked flows.
fn release(target: &mut impl Target, name: &str) -> Result<()> {
    let Some(index) = target.detach(name) else {
        return Ok(());
    };
    // The interface may be gone already, taking the links with it.
    let _ = target.set_iface(index, UNUSED_IFACE);
    target.current().ifaces.remove(name);
    target.flush_interface(index)?;
    tracing::info!(interface = %name, "detached");
    Ok(())
}

/// The highest policy (or chain) and port-set IDs in `current` (new IDs must start above them).
pub(super) fn highest_ids(current: &Desired) -> (u32, u32) {
    let chains = current
        .peers
        .keys()
        .map(|(_, k)| u32::from_be_bytes(k.policy_id));
    let composed = current
        .policies
        .iter()
        .flat_map(|(id, v)| v.iter().chain([*id]));
    let policy = chains.chain(composed).max().unwrap_or(0);
    let sets = current
        .ports
        .keys()
        .map(|(_, k)| u32::from_be_bytes(k.port_set));
    let peer_sets = current.peers.values().flat_map(|v| v.port_sets);
    (policy, sets.chain(peer_sets).max().unwrap_or(0))
}

//! [`KernelDataplane`]: the [`Dataplane`] of the running kernel, through aya.

use std::{collections::BTreeMap, os::fd::AsFd as _, path::PathBuf};

use aya::{
    Ebpf,
    maps::{HashMap, IterableMap as _, Map, MapData, MapError, PerCpuValues, lpm_trie::Key},
    programs::{SchedClassifier, Xdp},
};
use firewall_common::{
    CtKey, CtTimeouts, CtValue, IfaceConfig, PeerKey, PeerValue, PolicyValue, PortKey, PortValue,
};

use super::{
    Answer, Dataplane, DataplaneError, Probe, RawCounters, Result, TrackedFlow,
    apply::{self, Target},
    attach::Attachment,
    batch, conntrack, counters,
    load::{self, LoadOptions},
    lookup,
    maps::{self, Maps, map_err},
    readback,
};
use crate::compiler::{Delta, Desired, LpmKey, RuleSlots};

pub struct KernelDataplane {
    pub(super) ebpf: Ebpf,
    pub(super) maps: Maps,
    pub(super) attached: BTreeMap<String, Attachment>,
    /// What the maps hold now (the last successfully applied [`Desired`], entry by entry).
    pub(super) current: Desired,
    timeouts: CtTimeouts,
    /// Where maps and links are pinned (`<bpffs>/firewall-agent/v<N>`), if anywhere.
    pub(super) pins: Option<PathBuf>,
    /// The maps were found pinned (or migrated): this agent took over from a previous one.
    restored: bool,
    /// Where what workloads send is judged (`serve --attach`).
    pub(super) mode: super::AttachMode,
    /// The interfaces (ifindex) whose tracked flows wait to be deleted
    /// ([`Dataplane::flush_queued_flows`]).
    queued_flushes: std::collections::BTreeSet<u32>,
}

impl KernelDataplane {
    /// Loads the programs. Without `pins`, creates fresh maps and attaches nothing. With `pins`
    /// (a directory on bpffs), reuses the maps pinned there and takes over the pinned links of a
    /// previous agent: the new programs replace the old ones in place (`bpf_link_update`), so
    /// enforcement and tracked flows continue without a gap. Pins of the previous map layout
    /// are migrated first (`migrate.rs`).
    pub fn load(options: &LoadOptions) -> Result<KernelDataplane> {
        let load::Loaded {
            mut ebpf,
            pins,
            restored,
            migration,
        } = load::load(options)?;
        let maps = Maps::take(&mut ebpf)?;
        let mut dataplane = KernelDataplane {
            ebpf,
            maps,
            attached: BTreeMap::new(),
            current: Desired::default(),
            timeouts: options.timeouts,
            pins: pins.clone(),
            restored,
            mode: options.attach,
            queued_flushes: Default::default(),
        };
        if let Some(migration) = migration {
            // The previous layout's state, converted; then taken over like this layout's own.
            #[cfg(not(feature = "previous-layout"))]
            dataplane.migrate(&migration)?;
            #[cfg(feature = "previous-layout")]
            let _ = migration;
            dataplane.restored = true;
        }
        if let (true, Some(dir)) = (dataplane.restored, pins) {
            dataplane.restore(&dir)?;
        }
        Ok(dataplane)
    }

    /// Every tracked flow as the kernel holds it, per-flow counters included.
    pub fn flows(&self) -> Vec<(CtKey, CtValue)> {
        self.maps
            .conntrack
            .iter()
            .filter_map(|entry| entry.ok())
            .collect()
    }

    /// The loaded program for `name` (one of [`super::programs`]), for `BPF_PROG_TEST_RUN`.
    pub fn program(&mut self, name: &'static str) -> &mut SchedClassifier {
        self.ebpf
            .program_mut(name)
            .and_then(|p| p.try_into().ok())
            .expect("programs are loaded in KernelDataplane::load")
    }

    /// The loaded XDP program ([`super::programs::FROM_WORKLOAD_XDP`]), for `BPF_PROG_TEST_RUN`.
    pub fn xdp_program(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(super::programs::FROM_WORKLOAD_XDP)
            .and_then(|p| p.try_into().ok())
            .expect("programs are loaded in KernelDataplane::load")
    }
}

impl KernelDataplane {
    fn interface_of(&self, index: u32) -> &str {
        self.attached
            .iter()
            .find(|(_, a)| a.ifindex == index)
            .map_or("", |(name, _)| name.as_str())
    }
}

impl Dataplane for KernelDataplane {
    fn apply(&mut self, desired: &Desired) -> Result<()> {
        self.flush_queued_flows()?;
        apply::apply(self, desired)
    }

    fn apply_delta(&mut self, delta: &Delta) -> Result<()> {
        self.flush_queued_flows()?;
        apply::apply_delta(self, delta)
    }

    fn flows_queued(&self) -> bool {
        !self.queued_flushes.is_empty()
    }

    fn flush_queued_flows(&mut self) -> Result<usize> {
        if self.queued_flushes.is_empty() {
            return Ok(0);
        }
        let queued = std::mem::take(&mut self.queued_flushes);
        let doomed = move |key: &CtKey, _: &CtValue| queued.contains(&key.ifindex);
        Ok(conntrack::flush(&mut self.maps.conntrack, doomed))
    }

    fn flush_disallowed_flows(&mut self, desired: &Desired) -> Result<usize> {
        self.flush_queued_flows()?;
        let attached = self.attached.iter().map(|(name, a)| (name, a.ifindex));
        let doomed = conntrack::disallowed(desired, attached);
        Ok(conntrack::flush(&mut self.maps.conntrack, doomed))
    }

    fn collect_expired_flows(&mut self) -> Result<usize> {
        self.flush_queued_flows()?;
        let expired = conntrack::expired(self.timeouts, conntrack::monotonic_ns());
        Ok(conntrack::flush(&mut self.maps.conntrack, expired))
    }

    fn read_back(&self) -> Result<Desired> {
        let attached = self
            .attached
            .iter()
            .map(|(name, a)| (name.clone(), a.ifindex))
            .collect();
        readback::read_back(&self.maps, &attached)
    }

    fn disallowed_flows(&self, desired: &Desired) -> Result<Vec<TrackedFlow>> {
        let attached = self.attached.iter().map(|(name, a)| (name, a.ifindex));
        let doomed = conntrack::disallowed(desired, attached);
        let mut flows: Vec<TrackedFlow> = self
            .maps
            .conntrack
            .iter()
            .filter_map(|entry| entry.ok())
            .filter(|(k, v)| doomed(k, v))
            .map(|(k, v)| lookup::listed(self.interface_of(k.ifindex), &k, &v))
            .collect();
        flows.sort();
        Ok(flows)
    }

    fn lookup(&self, interface: &str, probe: &Probe) -> Result<Answer> {
        let Some(index) = self.attached.get(interface).map(|a| a.ifindex) else {
            return Ok(Answer::Unmanaged);
        };
        let iface = self.maps.ifaces.get(&index, 0).ok();
        let live = conntrack::expired(self.timeouts, conntrack::monotonic_ns());
        let tracked = |key: &CtKey| {
            let value = self.maps.conntrack.get(key, 0).ok()?;
            (!live(key, &value)).then_some(value)
        };
        let policy = lookup::KernelPolicy(&self.maps);
        Ok(lookup::answer(
            interface, index, iface, probe, tracked, &policy,
        ))
    }

    fn rule_of_slot(&self, slot: u32) -> Option<String> {
        self.current.rule_slots.get(&slot).cloned()
    }

    fn tracked_flows(&self) -> usize {
        self.maps.conntrack.keys().count()
    }

    /// Walks a second handle of `CONNTRACK` (its fd duplicated); counted under the caller's
    /// lock only when the fd could not be duplicated.
    fn flow_counter(&self) -> super::FlowCounter {
        let handle = (self.maps.conntrack.map().fd().as_fd().try_clone_to_owned())
            .map_err(MapError::from)
            .and_then(MapData::from_fd)
            .and_then(|data| HashMap::<MapData, CtKey, CtValue>::try_from(Map::HashMap(data)));
        match handle {
            Ok(conntrack) => Box::new(move || conntrack.keys().count()),
            Err(e) => {
                tracing::debug!(error = %e, "CONNTRACK's fd could not be duplicated");
                let flows = self.tracked_flows();
                Box::new(move || flows)
            }
        }
    }

    fn conntrack_capacity(&self) -> u32 {
        self.maps
            .conntrack
            .map()
            .info()
            .map_or(0, |info| info.max_entries())
    }

    fn has_interface(&self, name: &str) -> bool {
        super::attach::ifindex(name).is_ok()
    }

    fn raw_counters(&self) -> Result<RawCounters> {
        let mut all = counters::collect(
            &self.current.rule_slots,
            |counter| counters::read(&self.maps, counter),
            |len| counters::read_hits(&self.maps, len),
        )?;
        let attached = self.attached.iter().map(|(name, a)| (name, a.ifindex));
        all.interfaces = counters::interfaces(&self.maps, attached);
        Ok(all)
    }

    fn restored(&self) -> bool {
        self.restored
    }

    fn highest_ids(&self) -> (u32, u32) {
        apply::highest_ids(&self.current)
    }

    fn assume_rule_slots(&mut self, slots: RuleSlots) {
        self.current.rule_slots = slots;
    }

    fn take_flow_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        self.maps.flow_events.take()
    }

    fn flow_log_lost(&self) -> u64 {
        self.maps
            .flow_log_lost
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    fn tracked_flow(&self, key: &CtKey) -> Option<CtValue> {
        self.maps.conntrack.get(key, 0).ok()
    }
}

impl KernelDataplane {
    /// The policy maps whose writes the kernel takes in batches (`BPF_MAP_UPDATE_BATCH`); the
    /// others are written one element per syscall.
    pub fn batched_maps(&self) -> Vec<&'static str> {
        [
            (
                maps::PEERS,
                batch::supported(self.maps.peers.map().fd().as_fd()),
            ),
            (
                maps::PORTS,
                batch::supported(self.maps.ports.map().fd().as_fd()),
            ),
            (
                maps::RULE_HITS,
                batch::supported(self.maps.rule_hits.map().fd().as_fd()),
            ),
        ]
        .into_iter()
        .filter(|(_, supported)| *supported)
        .map(|(name, _)| name)
        .collect()
    }

    /// `POLICIES`, which an agent of layout 4 has not (nor does it compile any entry for it).
    pub(super) fn policies_map(
        &mut self,
    ) -> Result<&mut aya::maps::HashMap<aya::maps::MapData, u32, PolicyValue>> {
        self.maps
            .policies
            .as_mut()
            .ok_or(DataplaneError::MissingMap {
                name: maps::POLICIES,
            })
    }
}

impl Target for KernelDataplane {
    fn current(&mut self) -> &mut Desired {
        &mut self.current
    }

    fn clear_rule_hits(&mut self, slots: &[u32]) -> Result<()> {
        let cpus_err = |source| DataplaneError::Interface {
            name: "possible CPUs".into(),
            source,
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, source)| cpus_err(source))?;
        // One batch: every slot's value is `cpus` zeroed u64s.
        let zeros = vec![0u64; slots.len() * cpus];
        let fd = self.maps.rule_hits.map().fd().as_fd();
        match batch::update(fd, slots, &zeros, cpus) {
            Ok(()) => return Ok(()),
            Err(partial) if partial.unsupported() => {}
            Err(partial) => {
                return Err(DataplaneError::Batch {
                    name: maps::RULE_HITS,
                    done: partial.done,
                    source: partial.error,
                });
            }
        }
        for slot in slots {
            let zeros = PerCpuValues::try_from(vec![0u64; cpus]).map_err(cpus_err)?;
            self.maps
                .rule_hits
                .set(*slot, zeros, 0)
                .map_err(map_err(maps::RULE_HITS))?;
        }
        Ok(())
    }

    fn write_port(&mut self, key: &LpmKey<PortKey>, value: &PortValue) -> Result<()> {
        self.maps
            .ports
            .insert(&Key::new(key.0, key.1), value, 0)
            .map_err(map_err(maps::PORTS))
    }

    fn write_peer(&mut self, key: &LpmKey<PeerKey>, value: &PeerValue) -> Result<()> {
        self.maps
            .peers
            .insert(&Key::new(key.0, key.1), value, 0)
            .map_err(map_err(maps::PEERS))
    }

    fn delete_peer(&mut self, key: &LpmKey<PeerKey>) -> Result<()> {
        self.maps
            .peers
            .remove(&Key::new(key.0, key.1))
            .map_err(map_err(maps::PEERS))
    }

    fn delete_port(&mut self, key: &LpmKey<PortKey>) -> Result<()> {
        self.maps
            .ports
            .remove(&Key::new(key.0, key.1))
            .map_err(map_err(maps::PORTS))
    }

    fn write_policy(&mut self, id: u32, value: &PolicyValue) -> Result<()> {
        self.policies_map()?
            .insert(id, value, 0)
            .map_err(map_err(maps::POLICIES))
    }

    fn delete_policy(&mut self, id: u32) -> Result<()> {
        self.policies_map()?
            .remove(&id)
            .map_err(map_err(maps::POLICIES))
    }

    fn write_ports(&mut self, entries: &[(LpmKey<PortKey>, PortValue)]) -> Result<()> {
        let (done, result) = batch::write_lpm(&mut self.maps.ports, maps::PORTS, entries);
        self.current.ports.extend(entries[..done].iter().copied());
        result
    }

    fn write_peers(&mut self, entries: &[(LpmKey<PeerKey>, PeerValue)]) -> Result<()> {
        let (done, result) = batch::write_lpm(&mut self.maps.peers, maps::PEERS, entries);
        self.current.peers.extend(entries[..done].iter().copied());
        result
    }

    fn delete_peers(&mut self, keys: &[LpmKey<PeerKey>]) -> Result<()> {
        let (done, result) = batch::delete_lpm(&mut self.maps.peers, maps::PEERS, keys);
        for key in &keys[..done] {
            self.current.peers.remove(key);
        }
        result
    }

    fn delete_ports(&mut self, keys: &[LpmKey<PortKey>]) -> Result<()> {
        let (done, result) = batch::delete_lpm(&mut self.maps.ports, maps::PORTS, keys);
        for key in &keys[..done] {
            self.current.ports.remove(key);
        }
        result
    }

    fn attached(&self, interface: &str) -> Option<u32> {
        self.attached.get(interface).map(|a| a.ifindex)
    }

    fn attached_interfaces(&self) -> Vec<String> {
        self.attached.keys().cloned().collect()
    }

    fn set_iface(&mut self, index: u32, config: IfaceConfig) -> Result<()> {
        self.maps
            .ifaces
            .set(index, config, 0)
            .map_err(map_err(maps::IFACES))
    }

    fn attach(&mut self, interface: &str, config: IfaceConfig) -> Result<()> {
        self.attach_interface(interface, config)
    }

    fn detach(&mut self, interface: &str) -> Option<u32> {
        self.detach_interface(interface)
    }

    fn flush_interface(&mut self, index: u32) -> Result<usize> {
        // Deleted by the agent's next turn (see `Dataplane::flush_queued_flows`).
        self.queued_flushes.insert(index);
        Ok(0)
    }
}

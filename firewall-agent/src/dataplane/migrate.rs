//! Taking over from an agent of the previous map layout, make-before-break. Its programs keep
//! enforcing through its pinned tcx links until this agent's programs replace them in those
//! same links (`bpf_link_update` swaps a link's program atomically: every packet runs the old
//! or the new one, and the hook is never empty), so enforcement has no gap:
//!
//! 1. the new maps (pinned in `v<N>-migrating`) get the old maps' contents: `IFACES`, `PEERS`,
//!    `PORTS`, `CONNTRACK` and `FRAGMENTS` as they are (unchanged layouts), and `POLICIES`, new
//!    in layout 5, one entry per policy in use making it compose its own old chain
//!    ([`previous::upgrade`]), so the new programs enforce the same policy and know the same
//!    flows from their first packet. The agent's first apply then moves each policy to its
//!    groups' chains, one `POLICIES` entry at a time (the saved IDs keep the policy's ID);
//! 2. each pinned link gets the new program;
//! 3. the flows and fragments the old programs recorded between the first copy and the swap are
//!    copied again (an entry they refreshed in between is refreshed here too), and the counters
//!    the old programs bumped are added to the new ones (they no longer run anywhere);
//! 4. the link pins move to `v<N>-migrating/links`, which becomes `v<N>`, and the old maps'
//!    pins go (the old maps are freed with their last reference).
//!
//! Every step can be repeated: a migration interrupted before 4 is resumed by the next agent from
//! the staging directory. The previous layout's types are `firewall_common::layout::previous`;
//! a future layout change replaces them and the conversion, and this file follows.

use std::{path::Path, time::Instant};

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuValues};
use firewall_common::{
    CtKey, CtValue, FragKey, IFACE_MANAGED, IfaceConfig, PeerKey, PeerValue, PortKey, PortValue,
    layout::{self, previous},
};

use super::{
    DataplaneError, KernelDataplane, Result,
    attach::ifindex,
    maps::{self, map_err},
    pins::{Adopted, Migration, pin_err, pinned_links},
    programs,
};

/// `BPF_NOEXIST`: insert only if the key is absent.
const BPF_NOEXIST: u64 = 1;

/// The previous layout's maps, opened from their pins.
struct Previous {
    ifaces: Array<MapData, IfaceConfig>,
    peers: LpmTrie<MapData, PeerKey, PeerValue>,
    ports: LpmTrie<MapData, PortKey, PortValue>,
    conntrack: HashMap<MapData, CtKey, CtValue>,
    fragments: HashMap<MapData, FragKey, u64>,
    /// `DROPS`, `PASSES`, `RULE_HITS`.
    counters: [(&'static str, PerCpuArray<MapData, u64>); 3],
}

impl Previous {
    /// Opens every map; the typed handles check each one's key and value sizes against
    /// [`previous`]'s types.
    fn open(dir: &Path) -> Result<Previous> {
        let maps = dir.join("maps");
        Ok(Previous {
            ifaces: open(&maps, maps::IFACES, Array::try_from)?,
            peers: open(&maps, maps::PEERS, LpmTrie::try_from)?,
            ports: open(&maps, maps::PORTS, LpmTrie::try_from)?,
            conntrack: open(&maps, maps::CONNTRACK, HashMap::try_from)?,
            fragments: open(&maps, maps::FRAGMENTS, HashMap::try_from)?,
            counters: [
                (
                    maps::DROPS,
                    open(&maps, maps::DROPS, PerCpuArray::try_from)?,
                ),
                (
                    maps::PASSES,
                    open(&maps, maps::PASSES, PerCpuArray::try_from)?,
                ),
                (
                    maps::RULE_HITS,
                    open(&maps, maps::RULE_HITS, PerCpuArray::try_from)?,
                ),
            ],
        })
    }
}

fn open<T>(
    dir: &Path,
    name: &'static str,
    typed: impl FnOnce(Map) -> Result<T, MapError>,
) -> Result<T> {
    let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
    typed(Map::from_map_data(data).map_err(map_err(name))?).map_err(map_err(name))
}

/// What a migration did, for the log.
#[derive(Debug, Default)]
struct Report {
    flows: usize,
    flows_after_swap: usize,
    flows_lost: usize,
    links: usize,
}

impl KernelDataplane {
    /// Migrates the previous layout's pins (module docs); on return `migration.to` holds this
    /// layout's maps and the links, as a previous agent of this layout would have left them.
    pub(super) fn migrate(&mut self, migration: &Migration) -> Result<()> {
        let started = Instant::now();
        let old = Previous::open(&migration.from)?;
        let mut report = Report::default();
        self.copy_policy(&old)?;
        let (flows, lost) = self.copy_flows(&old);
        report.flows = flows;
        report.flows_lost += lost;
        self.copy_fragments(&old)?;

        report.links = self.swap_links(&migration.from)?;

        let (late, lost) = self.copy_flows(&old);
        report.flows_after_swap = late;
        report.flows_lost += lost;
        self.copy_fragments(&old)?;
        self.add_counters(&old)?;
        drop(old);

        move_pins(migration)?;
        tracing::info!(
            from_layout = previous::VERSION,
            to_layout = layout::VERSION,
            flows = report.flows,
            flows_after_swap = report.flows_after_swap,
            flows_lost = report.flows_lost,
            links = report.links,
            ms = started.elapsed().as_millis() as u64,
            "migrated the pinned maps and links of the previous layout"
        );
        Ok(())
    }

    /// `IFACES` (its used slots), `PEERS`, `PORTS`, as they are; `POLICIES` made.
    fn copy_policy(&mut self, old: &Previous) -> Result<()> {
        for (index, config) in old.ifaces.iter().enumerate() {
            let config = config.map_err(map_err(maps::IFACES))?;
            if config.flags & IFACE_MANAGED != 0 {
                // Before the slot that names it (make-before-break).
                self.policies_map()?
                    .insert(config.policy_id, previous::upgrade(config.policy_id), 0)
                    .map_err(map_err(maps::POLICIES))?;
                self.maps
                    .ifaces
                    .set(index as u32, config, 0)
                    .map_err(map_err(maps::IFACES))?;
            }
        }
        for entry in old.peers.iter() {
            let (key, value) = entry.map_err(map_err(maps::PEERS))?;
            self.maps
                .peers
                .insert(&key, value, 0)
                .map_err(map_err(maps::PEERS))?;
        }
        for entry in old.ports.iter() {
            let (key, value) = entry.map_err(map_err(maps::PORTS))?;
            self.maps
                .ports
                .insert(&key, value, 0)
                .map_err(map_err(maps::PORTS))?;
        }
        Ok(())
    }

    /// Copies the old flows the new table lacks or has older; returns (copied, refused: the new
    /// table is full).
    fn copy_flows(&mut self, old: &Previous) -> (usize, usize) {
        let (mut copied, mut lost) = (0, 0);
        // An entry the old program deleted (expired) meanwhile is skipped.
        for (key, value) in old.conntrack.iter().filter_map(|entry| entry.ok()) {
            let result = match self.maps.conntrack.get(&key, 0) {
                Ok(current) if current.last_seen_ns >= value.last_seen_ns => continue,
                Ok(current) => {
                    let refreshed = CtValue {
                        last_seen_ns: value.last_seen_ns,
                        state: value.state,
                        flags: value.flags,
                        ..current
                    };
                    self.maps.conntrack.insert(key, refreshed, 0)
                }
                // The new program may have created it just now: then its entry wins.
                Err(_) => self.maps.conntrack.insert(key, value, BPF_NOEXIST),
            };
            match result {
                Ok(()) => copied += 1,
                Err(MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
                Err(_) => lost += 1,
            }
        }
        (copied, lost)
    }

    /// First fragments seen recently (an LRU: losing one only loses its datagram's rest).
    fn copy_fragments(&mut self, old: &Previous) -> Result<()> {
        let map = self
            .ebpf
            .map_mut(maps::FRAGMENTS)
            .ok_or(DataplaneError::MissingMap {
                name: maps::FRAGMENTS,
            })?;
        let mut fragments: HashMap<&mut MapData, FragKey, u64> =
            HashMap::try_from(map).map_err(map_err(maps::FRAGMENTS))?;
        for (key, seen) in old.fragments.iter().filter_map(|entry| entry.ok()) {
            let _ = fragments.insert(key, seen, BPF_NOEXIST);
        }
        Ok(())
    }

    /// Puts this agent's programs into every pinned link of the previous layout; returns how
    /// many. A link whose interface is gone is left to `restore` (it removes its pin).
    fn swap_links(&mut self, from: &Path) -> Result<usize> {
        let mut swapped = 0;
        for (interface, links) in pinned_links(&from.join("links"))? {
            if ifindex(&interface).is_err() {
                continue;
            }
            for (hook, path) in links {
                let adopted = self.adopt_link(hook, &path)?;
                // Only our file descriptor goes: the pin keeps the link and `restore` adopts it.
                self.release_fd(adopted);
                swapped += 1;
            }
        }
        Ok(swapped)
    }

    /// Lets go of this agent's file descriptor of an adopted link: its pin keeps it attached.
    fn release_fd(&mut self, adopted: Adopted) {
        match adopted {
            Adopted::To(id) => {
                let _ = self.program(programs::TO_WORKLOAD).detach(id);
            }
            Adopted::From(link) => self.detach_from_workload(link),
        }
    }

    /// Adds the old per-CPU counters to the new ones (the old programs no longer run).
    fn add_counters(&mut self, old: &Previous) -> Result<()> {
        for (name, old_counters) in &old.counters {
            let new_counters = match *name {
                maps::DROPS => &mut self.maps.drops,
                maps::PASSES => &mut self.maps.passes,
                _ => &mut self.maps.rule_hits,
            };
            for index in 0..old_counters.len() {
                let Ok(values) = old_counters.get(&index, 0) else {
                    continue;
                };
                if values.iter().all(|v| *v == 0) {
                    continue;
                }
                let current = new_counters.get(&index, 0).map_err(map_err(name))?;
                let sum: Vec<u64> = current
                    .iter()
                    .zip(values.iter())
                    .map(|(a, b)| a + b)
                    .collect();
                let sum =
                    PerCpuValues::try_from(sum).map_err(|source| DataplaneError::Interface {
                        name: "possible CPUs".into(),
                        source,
                    })?;
                new_counters.set(index, sum, 0).map_err(map_err(name))?;
            }
        }
        Ok(())
    }
}

/// Moves the link pins into the staging directory, renames it to this layout's, and removes
/// the previous layout's pins.
fn move_pins(migration: &Migration) -> Result<()> {
    let Migration { from, staging, to } = migration;
    let links = from.join("links");
    for entry in std::fs::read_dir(&links).map_err(|e| pin_err(&links, e))? {
        let path = entry.map_err(|e| pin_err(&links, e))?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        std::fs::rename(&path, staging.join("links").join(name)).map_err(|e| pin_err(&path, e))?;
    }
    // Empty directories of an earlier start of this layout are in the way of the rename.
    for sub in ["maps", "links"] {
        let _ = std::fs::remove_dir(to.join(sub));
    }
    let _ = std::fs::remove_dir(to);
    std::fs::rename(staging, to).map_err(|e| pin_err(staging, e))?;
    std::fs::remove_dir_all(from).map_err(|e| pin_err(from, e))
}

//! `DROPS`, `PASSES` (per-CPU arrays indexed by reason), `RULE_HITS` (per-CPU array indexed
//! by rule slot) and `IFACE_COUNTERS` (per-CPU hash by ifindex), summed over CPUs and named as
//! `get-dataplane-statistics` and `/metrics` report them.

use std::collections::BTreeMap;

use aya::maps::{MapData, PerCpuArray};
use firewall_common::{DropReason, IfaceCounters, PassReason};

use crate::compiler::RuleSlots;

use super::{
    Result,
    maps::{self, Maps, map_err},
};

/// Drop and pass counters summed over CPUs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// By [`DropReason::name`].
    pub drops: BTreeMap<&'static str, u64>,
    /// By [`PassReason::name`].
    pub passes: BTreeMap<&'static str, u64>,
    /// Packets admitted by each rule (new flows; tracked packets count under `passes.conntrack`).
    pub rule_hits: BTreeMap<String, u64>,
    /// The drops and passes of each attached interface, by name.
    pub interfaces: BTreeMap<String, InterfaceCounters>,
}

/// The counters as the kernel holds them, summed over CPUs: the rules' hits by slot, with the
/// rule of each slot at the time of the read (a persistent map, taken whole in O(1)). Naming the
/// hits ([`RawCounters::named`], 100k string keys at 100k rules) is left to the reader, off the
/// agent's lock.
#[derive(Debug, Default, Clone)]
pub struct RawCounters {
    pub drops: BTreeMap<&'static str, u64>,
    pub passes: BTreeMap<&'static str, u64>,
    /// By slot: the first slots of `RULE_HITS`, up to the highest `slots` names.
    pub hits: Vec<u64>,
    pub slots: RuleSlots,
    pub interfaces: BTreeMap<String, InterfaceCounters>,
}

impl RawCounters {
    /// Each rule's hits by its ID.
    pub fn named(self) -> Counters {
        let rule_hits = (self.slots.iter())
            // A slot past what the array holds has counted nothing.
            .map(|(slot, rule)| {
                (
                    rule.clone(),
                    self.hits.get(*slot as usize).copied().unwrap_or(0),
                )
            })
            .collect();
        Counters {
            drops: self.drops,
            passes: self.passes,
            rule_hits,
            interfaces: self.interfaces,
        }
    }
}

/// One interface's drops and passes, by reason name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub drops: BTreeMap<&'static str, u64>,
    pub passes: BTreeMap<&'static str, u64>,
}

impl InterfaceCounters {
    /// Named from the kernel's per-CPU values, summed.
    pub(super) fn sum(per_cpu: impl IntoIterator<Item = IfaceCounters>) -> InterfaceCounters {
        let total = per_cpu
            .into_iter()
            .fold(IfaceCounters::default(), |mut total, cpu| {
                for (t, c) in total.drops.iter_mut().zip(cpu.drops) {
                    *t += c;
                }
                for (t, c) in total.passes.iter_mut().zip(cpu.passes) {
                    *t += c;
                }
                total
            });
        InterfaceCounters {
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name(), total.drops[*r as usize]))
                .collect(),
            passes: PassReason::ALL
                .iter()
                .map(|r| (r.name(), total.passes[*r as usize]))
                .collect(),
        }
    }
}

/// One counter of a per-CPU array.
pub(super) enum Counter {
    Drop(DropReason),
    Pass(PassReason),
}

/// Every counter, each read by `read`, the rules' hits by `read_hits` (the first `len` slots at
/// once); `rule_slots` names the rule of each hit-counter slot.
pub(super) fn collect(
    rule_slots: &RuleSlots,
    mut read: impl FnMut(Counter) -> Result<u64>,
    read_hits: impl FnOnce(u32) -> Result<Vec<u64>>,
) -> Result<RawCounters> {
    let mut counters = RawCounters::default();
    for reason in DropReason::ALL {
        counters
            .drops
            .insert(reason.name(), read(Counter::Drop(reason))?);
    }
    let len = rule_slots.get_max().map_or(0, |(slot, _)| slot + 1);
    counters.hits = read_hits(len)?;
    counters.slots = rule_slots.clone();
    for reason in PassReason::ALL {
        counters
            .passes
            .insert(reason.name(), read(Counter::Pass(reason))?);
    }
    Ok(counters)
}

/// The first `len` rule-hit slots, each summed over CPUs (one lookup batch per 4096 slots).
pub(super) fn read_hits(maps: &Maps, len: u32) -> Result<Vec<u64>> {
    super::batch::read_per_cpu_sums(&maps.rule_hits, maps::RULE_HITS, len)
}

/// Reads one counter from the kernel, summed over CPUs.
pub(super) fn read(maps: &Maps, counter: Counter) -> Result<u64> {
    let (array, name, index): (&PerCpuArray<MapData, u64>, _, _) = match counter {
        Counter::Drop(reason) => (&maps.drops, maps::DROPS, reason as u32),
        Counter::Pass(reason) => (&maps.passes, maps::PASSES, reason as u32),
    };
    Ok(array.get(&index, 0).map_err(map_err(name))?.iter().sum())
}

/// The counters of each attached interface (`attached`: ifindex by name) that has an entry.
pub(super) fn interfaces<'a>(
    maps: &Maps,
    attached: impl Iterator<Item = (&'a String, u32)>,
) -> BTreeMap<String, InterfaceCounters> {
    attached
        .filter_map(|(name, index)| {
            let values = maps.iface_counters.get(&index, 0).ok()?;
            Some((name.clone(), InterfaceCounters::sum(values.iter().copied())))
        })
        .collect()
}

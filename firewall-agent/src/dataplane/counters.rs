//! `DROPS`, `PASSES` (per-CPU arrays indexed by reason) and `RULE_HITS` (per-CPU array indexed
//! by rule slot), summed over CPUs and named as `get-dataplane-statistics` reports them.

use std::collections::BTreeMap;

use aya::maps::{MapData, PerCpuArray};
use firewall_common::{DropReason, PassReason};

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
}

/// One counter of a per-CPU array.
pub(super) enum Counter {
    Drop(DropReason),
    Pass(PassReason),
    RuleHits(u32),
}

/// Every counter, each read by `read`; `rule_slots` names the rule of each hit-counter slot.
pub(super) fn collect(
    rule_slots: &BTreeMap<u32, String>,
    mut read: impl FnMut(Counter) -> Result<u64>,
) -> Result<Counters> {
    let mut counters = Counters::default();
    for reason in DropReason::ALL {
        counters
            .drops
            .insert(reason.name(), read(Counter::Drop(reason))?);
    }
    for (slot, rule) in rule_slots {
        counters
            .rule_hits
            .insert(rule.clone(), read(Counter::RuleHits(*slot))?);
    }
    for reason in PassReason::ALL {
        counters
            .passes
            .insert(reason.name(), read(Counter::Pass(reason))?);
    }
    Ok(counters)
}

/// Reads one counter from the kernel, summed over CPUs.
pub(super) fn read(maps: &Maps, counter: Counter) -> Result<u64> {
    let (array, name, index): (&PerCpuArray<MapData, u64>, _, _) = match counter {
        Counter::Drop(reason) => (&maps.drops, maps::DROPS, reason as u32),
        Counter::Pass(reason) => (&maps.passes, maps::PASSES, reason as u32),
        Counter::RuleHits(slot) => (&maps.rule_hits, maps::RULE_HITS, slot),
    };
    Ok(array.get(&index, 0).map_err(map_err(name))?.iter().sum())
}

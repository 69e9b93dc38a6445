//! The policy maps read back from the kernel (`IFACES`, `POLICIES`, `PEERS`, `PORTS`, not what
//! the agent believes it wrote), and their differences from what the state compiles to: a
//! takeover starts from them, and `verify-dataplane` reports them.

use std::{collections::BTreeMap, fmt::Debug};

use firewall_common::{IFACE_MANAGED, IfaceConfig};

use super::{
    Result, batch,
    compare::{Difference, compare},
    maps::{self, Maps},
};
use crate::compiler::Desired;

/// The `IFACES` slots a workload uses (the managed flag), by ifindex.
pub(super) fn managed_ifaces(maps: &Maps) -> Vec<(u32, IfaceConfig)> {
    maps.ifaces
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.ok().map(|c| (i as u32, c)))
        .filter(|(_, c)| c.flags & IFACE_MANAGED != 0)
        .collect()
}

/// Every `POLICIES`, `PEERS` and `PORTS` entry, into `into` (its interfaces and rule slots
/// untouched).
pub(super) fn read_policy(maps: &Maps, into: &mut Desired) -> Result<()> {
    if let Some(policies) = &maps.policies {
        for entry in policies.iter() {
            let (id, value) = entry.map_err(maps::map_err(maps::POLICIES))?;
            into.policies.insert(id, value);
        }
    }
    into.peers
        .extend(batch::read_lpm(&maps.peers, maps::PEERS)?);
    into.ports
        .extend(batch::read_lpm(&maps.ports, maps::PORTS)?);
    Ok(())
}

/// What the maps hold, in the compiler's terms: `IFACES` slots named by the interface attached
/// at that ifindex (`attached`), or `ifindex N` for a slot no attachment explains.
pub(super) fn read_back(maps: &Maps, attached: &BTreeMap<String, u32>) -> Result<Desired> {
    let mut held = Desired::default();
    read_policy(maps, &mut held)?;
    held.ifaces = name_ifaces(managed_ifaces(maps), attached);
    Ok(held)
}

/// Slots by ifindex → by interface name, through the attachments.
pub(super) fn name_ifaces(
    slots: impl IntoIterator<Item = (u32, IfaceConfig)>,
    attached: &BTreeMap<String, u32>,
) -> BTreeMap<String, IfaceConfig> {
    slots
        .into_iter()
        .map(|(index, config)| {
            let name = attached
                .iter()
                .find(|(_, i)| **i == index)
                .map_or_else(|| format!("ifindex {index}"), |(name, _)| name.clone());
            (name, config)
        })
        .collect()
}

/// How the maps `held` differ from `expected`, one line per entry (missing, unexpected, or with
/// another value); empty when they are equal. Rule slots are not map contents and are ignored.
pub fn differences(expected: &Desired, held: &Desired) -> Vec<String> {
    let mut out = Vec::new();
    diff(maps::IFACES, &expected.ifaces, &held.ifaces, &mut out);
    diff(maps::POLICIES, &expected.policies, &held.policies, &mut out);
    diff(maps::PEERS, &expected.peers, &held.peers, &mut out);
    diff(maps::PORTS, &expected.ports, &held.ports, &mut out);
    out
}

fn diff<K: Ord + Debug, V: PartialEq + Debug>(
    map: &str,
    expected: &BTreeMap<K, V>,
    held: &BTreeMap<K, V>,
    out: &mut Vec<String>,
) {
    compare(expected, held, |difference| {
        out.push(match difference {
            Difference::Missing(key, want) => format!("{map} {key:?}: missing, expected {want:?}"),
            Difference::Changed(key, want, got) => {
                format!("{map} {key:?}: holds {got:?}, expected {want:?}")
            }
            Difference::Extra(key, got) => format!("{map} {key:?}: unexpected {got:?}"),
        })
    });
}

#[cfg(test)]
mod tests {
    use firewall_common::{PortKey, PortValue};

    use super::*;

    #[test]
    fn differences_name_missing_unexpected_and_changed_entries() {
        let key = |set: u8| {
            (
                40,
                PortKey {
                    port_set: [0, 0, 0, set],
                    proto: 6,
                    port: [0, 0],
                    _pad: 0,
                },
            )
        };
        let mut expected = Desired::default();
        expected.ports.insert(key(1), PortValue { rule_slot: 1 });
        expected.ports.insert(key(2), PortValue { rule_slot: 2 });
        assert_eq!(
            differences(&expected, &expected.clone()),
            Vec::<String>::new()
        );
        let mut held = Desired::default();
        held.ports.insert(key(2), PortValue { rule_slot: 7 });
        held.ports.insert(key(3), PortValue { rule_slot: 3 });
        let found = differences(&expected, &held);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("missing"), "{found:?}");
        assert!(
            found[1].contains("holds PortValue { rule_slot: 7 }"),
            "{found:?}"
        );
        assert!(found[2].contains("unexpected"), "{found:?}");
    }
}

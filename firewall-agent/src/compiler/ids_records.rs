//! The compiler's [`Ids`] as records, so that a store saves only what changed since its last
//! save: one record per policy, port set, part set and rule slot, and one for the counters.
//!
//! | key | value |
//! |---|---|
//! | `p/<groups as JSON>` | the policy's ID |
//! | `s/<items as JSON>` | the port set's ID |
//! | `t/<part key as JSON>` | the part set's ID |
//! | `r/<rule ID>` | the rule's counter slot |
//! | `counters` | `{"free_slots": [..], "next_policy": n, "next_port_set": n, "next_slot": n}` |
//!
//! Two versions of the IDs share their maps' unchanged nodes, so [`Ids::records_since`] the
//! version saved last visits only what differs ([`imbl::OrdMap::diff`]).

use imbl::ordmap::DiffItem;
use serde::{Deserialize, Serialize};

use super::ebpf::Ids;

/// A record to write: key, and value (`None`: delete the key).
pub type IdRecord = (String, Option<String>);

const COUNTERS: &str = "counters";

#[derive(Serialize, Deserialize)]
struct Counters {
    free_slots: Vec<u32>,
    next_policy: u32,
    next_port_set: u32,
    next_slot: u32,
}

/// The record writes of one map between two versions, keys made by `key`.
fn map_records<K: Ord + Clone, F: Fn(&K) -> String>(
    out: &mut Vec<IdRecord>,
    before: &imbl::OrdMap<K, u32>,
    after: &imbl::OrdMap<K, u32>,
    key: F,
) {
    for item in before.diff(after) {
        out.push(match item {
            DiffItem::Add(k, id) | DiffItem::Update { new: (k, id), .. } => {
                (key(k), Some(id.to_string()))
            }
            DiffItem::Remove(k, _) => (key(k), None),
        });
    }
}

fn json_key<T: Serialize>(prefix: &str, key: &T) -> String {
    let json = serde_json::to_string(key).expect("IDs' keys serialize");
    format!("{prefix}/{json}")
}

impl Ids {
    /// What a store holding `before`'s records (none: an empty store) must write to hold
    /// this version's.
    pub fn records_since(&self, before: Option<&Ids>) -> Vec<IdRecord> {
        let empty = Ids::default();
        let before = before.unwrap_or(&empty);
        let mut out = Vec::new();
        map_records(&mut out, &before.policies, &self.policies, |k| {
            json_key("p", k)
        });
        map_records(&mut out, &before.port_sets, &self.port_sets, |k| {
            json_key("s", k)
        });
        map_records(&mut out, &before.part_sets, &self.part_sets, |k| {
            json_key("t", k)
        });
        map_records(&mut out, &before.rule_slots, &self.rule_slots, |k| {
            format!("r/{k}")
        });
        let counters = Counters {
            free_slots: self.free_slots.clone(),
            next_policy: self.next_policy,
            next_port_set: self.next_port_set,
            next_slot: self.next_slot,
        };
        let counters = serde_json::to_string(&counters).expect("counters serialize");
        out.push((COUNTERS.to_string(), Some(counters)));
        out
    }

    /// The IDs the records hold (as [`Ids::records_since`] wrote them).
    pub fn from_records<'a>(
        records: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Ids, serde_json::Error> {
        use serde::de::Error as _;
        let mut ids = Ids::default();
        for (key, value) in records {
            if key == COUNTERS {
                let c: Counters = serde_json::from_str(value)?;
                ids.free_slots = c.free_slots;
                ids.next_policy = c.next_policy;
                ids.next_port_set = c.next_port_set;
                ids.next_slot = c.next_slot;
                continue;
            }
            let id: u32 = value
                .parse()
                .map_err(|_| serde_json::Error::custom(format!("ID record {key}: {value}")))?;
            match key.split_once('/') {
                Some(("p", k)) => _ = ids.policies.insert(serde_json::from_str(k)?, id),
                Some(("s", k)) => _ = ids.port_sets.insert(serde_json::from_str(k)?, id),
                Some(("t", k)) => _ = ids.part_sets.insert(serde_json::from_str(k)?, id),
                Some(("r", k)) => _ = ids.rule_slots.insert(k.to_string(), id),
                _ => return Err(serde_json::Error::custom(format!("ID record {key}"))),
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Applies record writes to a key-value table, as a store does.
    fn apply(table: &mut BTreeMap<String, String>, records: Vec<IdRecord>) {
        for (key, value) in records {
            match value {
                Some(value) => _ = table.insert(key, value),
                None => _ = table.remove(&key),
            }
        }
    }

    fn read(table: &BTreeMap<String, String>) -> Ids {
        Ids::from_records(table.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
    }

    #[test]
    fn ids_saved_as_records_read_back_equal_after_each_change() {
        let mut table = BTreeMap::new();
        let mut ids = Ids::default();
        apply(&mut table, ids.records_since(None));
        assert_eq!(read(&table), ids);
        let mut saved = ids.clone();
        for n in 0..50 {
            ids.rule_slot(&format!("sgr-{n:04}"));
            ids.policy(&[format!("sg-{}", n % 7)]);
            if n % 5 == 0 {
                ids.forget_rules(&[format!("sgr-{:04}", n / 2)].into());
            }
            apply(&mut table, ids.records_since(Some(&saved)));
            saved = ids.clone();
            assert_eq!(read(&table), ids, "after change {n}");
        }
    }

    #[test]
    fn a_one_rule_change_writes_its_record_and_the_counters_only() {
        let mut ids = Ids::default();
        for n in 0..1000 {
            ids.rule_slot(&format!("sgr-{n:04}"));
        }
        let saved = ids.clone();
        ids.rule_slot("sgr-new");
        let records = ids.records_since(Some(&saved));
        let keys: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["r/sgr-new", "counters"]);
    }

    #[test]
    fn a_record_that_is_not_an_id_is_refused() {
        assert!(Ids::from_records([("r/sgr-1", "x")]).is_err());
        assert!(Ids::from_records([("q/1", "1")]).is_err());
    }
}

//! Record writes applied to decoded states: what a store that follows another's writes (etcd's
//! watch) does with each batch of them, at the cost of the records it names, never of the
//! whole state.
//!
//! A batch is applied kind by kind: scopes' own records first (a new scope starts from its
//! record), then groups, prefix lists, network interfaces and instances, then rules (their
//! group exists by then). A rule is put in its group's list of its direction at the position
//! its record holds (O(log n), see [`crate::model::RuleList`]). Everything not touched stays
//! shared with the state before the batch, so comparing the two afterwards skips it unread.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use super::{
    StoreError,
    records::{RuleRecord, header},
};
use crate::model::{SecurityGroup, State};

/// One record's new value (`None`: deleted), by its key without the store's prefix.
pub(super) type RecordWrite = (String, Option<String>);

/// The order kinds are applied in (see the module); liveness and unknown keys last.
fn rank(key: &str) -> u8 {
    match key.split_once('/').map(|(kind, _)| kind) {
        Some("s") => 0,
        Some("g") => 1,
        Some("p") => 2,
        Some("n") => 3,
        Some("i") => 4,
        Some("r") => 5,
        _ => 6,
    }
}

/// `(<account>/<region>, what follows)` of a record key.
fn split(key: &str) -> Option<(&str, String, &str)> {
    let (kind, rest) = key.split_once('/')?;
    let mut parts = rest.splitn(3, '/');
    let scope = format!("{}/{}", parts.next()?, parts.next()?);
    Some((kind, scope, parts.next().unwrap_or("")))
}

/// Applies `writes` to `states` (by `<account>/<region>`); the scopes they changed. A record
/// that is not readable is an error, and then nothing of the batch may be assumed applied.
pub(super) fn apply(
    states: &mut BTreeMap<String, State>,
    mut writes: Vec<RecordWrite>,
) -> Result<BTreeSet<String>, StoreError> {
    // A record written several times in the batch (a put and its delete in one watch
    // response) counts with its last write only; then rule deletes before rule puts.
    let mut last: HashMap<String, usize> = HashMap::new();
    for (at, (key, _)) in writes.iter().enumerate() {
        last.insert(key.clone(), at);
    }
    let mut at = 0;
    writes.retain(|(key, _)| {
        at += 1;
        last[key] == at - 1
    });
    writes.sort_by_key(|(key, value)| (rank(key), value.is_some()));
    let mut changed = BTreeSet::new();
    for (key, value) in writes {
        let Some((kind, scope, tail)) = split(&key) else {
            continue;
        };
        if kind == "s" {
            match value {
                Some(value) => {
                    let record: State = serde_json::from_str(&value)?;
                    put_scope(states, &scope, record);
                }
                None => {
                    states.remove(&scope);
                }
            }
            changed.insert(scope);
            continue;
        }
        let Some(state) = states.get_mut(&scope) else {
            // A record of a scope whose own record is not (yet) there: skipped, as a whole
            // read skips it.
            continue;
        };
        changed.insert(scope.clone());
        let id = tail.to_string();
        match (kind, value) {
            ("g", Some(value)) => put_group(state, serde_json::from_str(&value)?),
            ("g", None) => {
                state.groups.remove(&id);
            }
            ("p", Some(value)) => {
                state.prefix_lists.insert(id, serde_json::from_str(&value)?);
            }
            ("p", None) => {
                state.prefix_lists.remove(&id);
            }
            ("n", Some(value)) => {
                state
                    .network_interfaces
                    .insert(id, serde_json::from_str(&value)?);
            }
            ("n", None) => {
                state.network_interfaces.remove(&id);
            }
            ("i", Some(value)) => {
                state.instances.insert(id, serde_json::from_str(&value)?);
            }
            ("i", None) => {
                state.instances.remove(&id);
            }
            ("r", value) => {
                let group = tail.split('/').next().unwrap_or("").to_string();
                let record = value
                    .map(|v| serde_json::from_str::<RuleRecord>(&v))
                    .transpose()?;
                put_rule(state, &key, &group, record);
            }
            _ => {}
        }
    }
    for scope in &changed {
        if let Some(state) = states.get_mut(scope) {
            // Records of an earlier release: subnets and interfaces made from what they held.
            state.upgrade();
        }
    }
    Ok(changed)
}

/// A scope's own record put: a new scope, or the old one's resources under the new record.
fn put_scope(states: &mut BTreeMap<String, State>, scope: &str, mut record: State) {
    if let Some(old) = states.remove(scope) {
        record.groups = old.groups;
        record.instances = old.instances;
        record.network_interfaces = old.network_interfaces;
        record.prefix_lists = old.prefix_lists;
        record.flow_log_dir = old.flow_log_dir;
        record.refuse_deleting_self_referenced = old.refuse_deleting_self_referenced;
    }
    states.insert(scope.to_string(), record);
}

/// A group's record put: a new group (its rules follow), or the old one's rules under the new
/// header.
fn put_group(state: &mut State, record: SecurityGroup) {
    match state.groups.get_mut(&record.id) {
        Some(group) if header(group) == record => {}
        Some(group) => {
            let group = Arc::make_mut(group);
            group.name = record.name;
            group.description = record.description;
            group.vpc_id = record.vpc_id;
            group.tags = record.tags;
        }
        None => {
            state.groups.insert(record.id.clone(), Arc::new(record));
        }
    }
}

/// A rule record's put (`Some`) or delete in its group.
fn put_rule(state: &mut State, key: &str, group_id: &str, record: Option<RuleRecord>) {
    let Some(group) = state.groups.get_mut(group_id) else {
        return;
    };
    let group = Arc::make_mut(group);
    let rule_id = key.rsplit('/').next().unwrap_or("");
    match record {
        Some(record) => {
            // Out of the other direction's list, should a record ever have moved.
            let (list, other) = if record.egress {
                (&mut group.egress, &mut group.ingress)
            } else {
                (&mut group.ingress, &mut group.egress)
            };
            other.remove(rule_id);
            list.put_at(record.pos, record.rule);
        }
        None => {
            group.ingress.remove(rule_id);
            group.egress.remove(rule_id);
        }
    }
}

/// Every scope's state from its records (a whole read: any key order).
pub(super) fn assemble(
    records: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<State>, StoreError> {
    let mut states = BTreeMap::new();
    let writes = records.into_iter().map(|(k, v)| (k, Some(v))).collect();
    apply(&mut states, writes)?;
    Ok(states.into_values().collect())
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;

//! A scope's state as per-resource records, and the writes that turn one saved version into the
//! next: only the records of resources that changed.
//!
//! Keys (one redb table, `&str → &str`, values JSON; account and region never contain `/`):
//!
//! * `s/<account>/<region>`: the scope's own record, the state without its groups, instances,
//!   network interfaces and prefix lists (VPCs, subnets, launch templates, flow logs, quotas, …);
//! * `g/<account>/<region>/<group>`: a group without its rules;
//! * `r/<account>/<region>/<group>/<rule>`: one rule, its direction and its position (rules are
//!   read back in position order, so a group's rules keep their order);
//! * `i/<account>/<region>/<instance>`, `n/<account>/<region>/<network interface>`,
//!   `p/<account>/<region>/<prefix list>`; subnets are in the scope's own record.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Rule, SecurityGroup, State};

/// One write of a save.
#[derive(Debug)]
pub(super) enum Write {
    Put(String, String),
    Delete(String),
}

/// A rule's record.
#[derive(Serialize, Deserialize)]
pub(super) struct RuleRecord {
    pub pos: u64,
    pub egress: bool,
    pub rule: Arc<Rule>,
}

/// Where each stored rule sits in its group's order (by record key), and the next free position.
/// Kept in memory: a save needs the positions of the rules it keeps.
#[derive(Debug, Default)]
pub(super) struct Positions {
    pub of: HashMap<String, u64>,
    pub next: u64,
}

/// The writes of one save and the positions they assign, applied once the transaction commits.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub writes: Vec<Write>,
    assigned: Vec<(String, u64)>,
    forgotten: Vec<String>,
    next: u64,
}

impl Positions {
    /// Records that `changes` were committed.
    pub fn commit(&mut self, changes: Changes) {
        for key in changes.forgotten {
            self.of.remove(&key);
        }
        self.of.extend(changes.assigned);
        self.next = self.next.max(changes.next);
    }
}

/// `<account>/<region>`, the part of a record key that names its scope.
pub(super) fn scope_of(state: &State) -> String {
    format!("{}/{}", state.account_id, state.region)
}

/// The scope's own record: everything but the resources stored one by one.
fn skeleton(state: &State) -> State {
    State {
        account_id: state.account_id.clone(),
        region: state.region.clone(),
        // Each agent's own configuration, not shared.
        quotas: Default::default(),
        vpcs: state.vpcs.clone(),
        groups: BTreeMap::new(),
        instances: BTreeMap::new(),
        subnets: state.subnets.clone(),
        network_interfaces: BTreeMap::new(),
        prefix_lists: BTreeMap::new(),
        launch_templates: state.launch_templates.clone(),
        flow_logs: state.flow_logs.clone(),
        flow_log_dir: state.flow_log_dir.clone(),
        refuse_deleting_self_referenced: state.refuse_deleting_self_referenced,
    }
}

/// A group as its record stores it: without rules.
pub(super) fn header(group: &SecurityGroup) -> SecurityGroup {
    SecurityGroup {
        id: group.id.clone(),
        name: group.name.clone(),
        description: group.description.clone(),
        vpc_id: group.vpc_id.clone(),
        ingress: Vec::new(),
        egress: Vec::new(),
        tags: group.tags.clone(),
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

/// The writes that turn the stored `before` (`None`: nothing stored for this scope) into
/// `after`. The scope's own record is always written.
pub(super) fn changes(
    positions: &Positions,
    before: Option<&State>,
    after: &State,
) -> Result<Changes, StoreError> {
    let scope = scope_of(after);
    let mut changes = Changes {
        next: positions.next,
        ..Changes::default()
    };
    changes
        .writes
        .push(Write::Put(format!("s/{scope}"), json(&skeleton(after))?));
    let empty = BTreeMap::new();
    let old_groups = before.map_or(&empty, |b| &b.groups);
    for (id, group) in &after.groups {
        let old = old_groups.get(id);
        if old.is_some_and(|old| Arc::ptr_eq(old, group)) {
            // Shared with the stored version: unchanged.
            continue;
        }
        if old.is_none_or(|old| header(old) != header(group)) {
            changes
                .writes
                .push(Write::Put(format!("g/{scope}/{id}"), json(&header(group))?));
        }
        rule_changes(positions, &mut changes, &scope, old.map(|g| &**g), group)?;
    }
    for (id, group) in old_groups {
        if !after.groups.contains_key(id) {
            changes
                .writes
                .push(Write::Delete(format!("g/{scope}/{id}")));
            for rule in group.ingress.iter().chain(&group.egress) {
                let key = format!("r/{scope}/{id}/{}", rule.id);
                changes.writes.push(Write::Delete(key.clone()));
                changes.forgotten.push(key);
            }
        }
    }
    let empty = BTreeMap::new();
    resource_changes(
        &mut changes,
        &format!("i/{scope}"),
        before.map_or(&empty, |b| &b.instances),
        &after.instances,
    )?;
    let empty = BTreeMap::new();
    resource_changes(
        &mut changes,
        &format!("n/{scope}"),
        before.map_or(&empty, |b| &b.network_interfaces),
        &after.network_interfaces,
    )?;
    let empty = BTreeMap::new();
    resource_changes(
        &mut changes,
        &format!("p/{scope}"),
        before.map_or(&empty, |b| &b.prefix_lists),
        &after.prefix_lists,
    )?;
    Ok(changes)
}

/// Puts and deletes of one kind of resource stored whole.
fn resource_changes<T: Serialize + PartialEq>(
    changes: &mut Changes,
    prefix: &str,
    before: &BTreeMap<String, T>,
    after: &BTreeMap<String, T>,
) -> Result<(), StoreError> {
    for (id, value) in after {
        if before.get(id) != Some(value) {
            changes
                .writes
                .push(Write::Put(format!("{prefix}/{id}"), json(value)?));
        }
    }
    for id in before.keys() {
        if !after.contains_key(id) {
            changes.writes.push(Write::Delete(format!("{prefix}/{id}")));
        }
    }
    Ok(())
}

/// The rule records of one group that changed, direction by direction. Kept rules keep their
/// position; new ones get fresh (higher) positions, so appending writes only the new rules. The
/// rules both versions have unchanged at the head and the tail of a direction are skipped
/// unread, so a change costs what it changes, not the group's size. When the kept rules would
/// no longer read back in order (a rule inserted before others), the direction is rewritten
/// whole.
fn rule_changes(
    positions: &Positions,
    changes: &mut Changes,
    scope: &str,
    before: Option<&SecurityGroup>,
    after: &SecurityGroup,
) -> Result<(), StoreError> {
    let key = |rule: &Rule| format!("r/{scope}/{}/{}", after.id, rule.id);
    for (egress, old, new) in [
        (
            false,
            before.map_or(&[][..], |b| &b.ingress[..]),
            &after.ingress[..],
        ),
        (
            true,
            before.map_or(&[][..], |b| &b.egress[..]),
            &after.egress[..],
        ),
    ] {
        let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let (old_rest, new_rest) = (&old[head..], &new[head..]);
        let tail = old_rest
            .iter()
            .rev()
            .zip(new_rest.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let old_mid = &old_rest[..old_rest.len() - tail];
        let new_mid = &new_rest[..new_rest.len() - tail];
        if old_mid.is_empty() && new_mid.is_empty() {
            continue;
        }
        let stored: HashMap<&str, &Arc<Rule>> =
            old_mid.iter().map(|r| (r.id.as_str(), r)).collect();
        // In order when the kept rules' positions rise after the head's last one, and every
        // new rule comes after all of them (fresh positions are the highest).
        let mut last = head
            .checked_sub(1)
            .and_then(|i| positions.of.get(&key(&old[i])).copied());
        let mut in_order = true;
        for rule in new_mid {
            match stored.get(rule.id.as_str()) {
                Some(_) => {
                    let pos = positions.of.get(&key(rule)).copied();
                    in_order &= pos.is_some() && pos >= last;
                    last = pos;
                }
                None => last = Some(u64::MAX),
            }
        }
        in_order &= tail == 0 || last != Some(u64::MAX);
        let (rewrite, old_rewrite) = if in_order {
            (new_mid, old_mid)
        } else {
            (new, old)
        };
        let mut kept = std::collections::HashSet::new();
        for rule in rewrite {
            // Rewritten whole, every rule takes a fresh position.
            let was = stored.get(rule.id.as_str()).copied().filter(|_| in_order);
            let pos = match positions.of.get(&key(rule)) {
                Some(pos) if was.is_some() => *pos,
                _ => {
                    changes.next += 1;
                    changes.next
                }
            };
            kept.insert(rule.id.as_str());
            if was == Some(rule) {
                continue;
            }
            let record = RuleRecord {
                pos,
                egress,
                rule: rule.clone(),
            };
            changes.writes.push(Write::Put(key(rule), json(&record)?));
            changes.assigned.push((key(rule), pos));
        }
        for rule in old_rewrite {
            if !kept.contains(rule.id.as_str()) {
                let key = key(rule);
                changes.writes.push(Write::Delete(key.clone()));
                changes.forgotten.push(key);
            }
        }
    }
    Ok(())
}

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

use std::{collections::BTreeMap, sync::Arc};

use firewall_common::Direction;

use imbl::ordmap::DiffItem;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Rule, RuleDiff, RuleList, SecurityGroup, State, Table};

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

/// The writes of one save.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub writes: Vec<Write>,
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
        groups: Table::new(),
        instances: Table::new(),
        subnets: state.subnets.clone(),
        network_interfaces: Table::new(),
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
        ingress: RuleList::default(),
        egress: RuleList::default(),
        tags: group.tags.clone(),
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

/// The writes that turn the stored `before` (`None`: nothing stored for this scope) into
/// `after`. The scope's own record is always written.
pub(super) fn changes(before: Option<&State>, after: &State) -> Result<Changes, StoreError> {
    let scope = scope_of(after);
    let mut changes = Changes::default();
    changes
        .writes
        .push(Write::Put(format!("s/{scope}"), json(&skeleton(after))?));
    let empty = Table::new();
    let old_groups = before.map_or(&empty, |b| &b.groups);
    // The groups both versions share (the map's nodes, or the group itself) are skipped unread.
    for item in old_groups.diff(&after.groups) {
        let (id, old, group) = match item {
            DiffItem::Add(id, group) => (id, None, group),
            DiffItem::Update { old, new } if !Arc::ptr_eq(old.1, new.1) => {
                (new.0, Some(old.1), new.1)
            }
            DiffItem::Update { .. } => continue,
            DiffItem::Remove(id, group) => {
                changes
                    .writes
                    .push(Write::Delete(format!("g/{scope}/{id}")));
                for rule in group.ingress.iter().chain(&group.egress) {
                    let key = format!("r/{scope}/{id}/{}", rule.id);
                    changes.writes.push(Write::Delete(key));
                }
                continue;
            }
        };
        if old.is_none_or(|old| header(old) != header(group)) {
            changes
                .writes
                .push(Write::Put(format!("g/{scope}/{id}"), json(&header(group))?));
        }
        rule_changes(&mut changes, &scope, old.map(|g| &**g), group)?;
    }
    let empty = Table::new();
    table_changes(
        &mut changes,
        &format!("i/{scope}"),
        before.map_or(&empty, |b| &b.instances),
        &after.instances,
    )?;
    let empty = Table::new();
    table_changes(
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

/// Puts and deletes of one kind of resource held in a [`Table`]: the parts both versions
/// share are skipped unread, so a change of one object costs O(log n).
fn table_changes<T: Serialize + PartialEq + Clone>(
    changes: &mut Changes,
    prefix: &str,
    before: &Table<T>,
    after: &Table<T>,
) -> Result<(), StoreError> {
    for item in before.diff(after) {
        match item {
            DiffItem::Add(id, value)
            | DiffItem::Update {
                new: (id, value), ..
            } => changes
                .writes
                .push(Write::Put(format!("{prefix}/{id}"), json(value)?)),
            DiffItem::Remove(id, _) => changes.writes.push(Write::Delete(format!("{prefix}/{id}"))),
        }
    }
    Ok(())
}

/// The rule records of one group that changed, direction by direction: each record holds the
/// rule's position in its list, so only the rules added, changed or revoked are written, and
/// the parts of a list both versions share are skipped unread ([`RuleList::diff`]).
fn rule_changes(
    changes: &mut Changes,
    scope: &str,
    before: Option<&SecurityGroup>,
    after: &SecurityGroup,
) -> Result<(), StoreError> {
    let key = |rule: &Rule| format!("r/{scope}/{}/{}", after.id, rule.id);
    for direction in Direction::ALL {
        let old = before.map_or(RuleList::empty(), |b| b.rules(direction));
        let new = after.rules(direction);
        let mut put = |rule: &Arc<Rule>| -> Result<(), StoreError> {
            let record = RuleRecord {
                pos: new.position_of(&rule.id).expect("a rule of the list"),
                egress: direction == Direction::Outbound,
                rule: rule.clone(),
            };
            changes.writes.push(Write::Put(key(rule), json(&record)?));
            Ok(())
        };
        let mut gone = Vec::new();
        // Only what the two versions do not share is visited.
        for item in old.diff(new) {
            match item {
                RuleDiff::Added(rule) => put(rule)?,
                RuleDiff::Changed { old, new } => {
                    put(new)?;
                    gone.push(old);
                }
                RuleDiff::Removed(rule) => gone.push(rule),
            }
        }
        for rule in gone {
            if new.by_id(&rule.id).is_none() {
                changes.writes.push(Write::Delete(key(rule)));
            }
        }
    }
    Ok(())
}

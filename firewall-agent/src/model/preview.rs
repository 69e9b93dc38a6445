//! The rules a change adds and removes, for a `DryRun`'s preview: the state before and after,
//! compared rule by rule and, for each rule, by the running instances it applies to.

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::Direction;

use super::{InstanceState, State, views};
use crate::api::types::{ours::PreviewRule, rules::SecurityGroupRule};

/// Each rule of `state` (by `sgr-` ID), as `describe-security-group-rules` shows it, with the
/// running instances whose groups hold it.
fn applications(state: &State) -> BTreeMap<String, (SecurityGroupRule, BTreeSet<String>)> {
    let mut out = BTreeMap::new();
    for group in state.groups.values() {
        let members: BTreeSet<String> = state
            .attached()
            .filter(|(eni, i)| {
                i.state == InstanceState::Running && eni.group_ids.contains(&group.id)
            })
            .map(|(_, i)| i.id.clone())
            .collect();
        for direction in Direction::ALL {
            for rule in group.rules(direction) {
                let view = views::security_group_rule(state, group, rule, direction);
                out.insert(rule.id.clone(), (view, members.clone()));
            }
        }
    }
    out
}

/// The rules in `after` that `before` lacks (or held otherwise), each with the running
/// instances it applies to there; an unchanged rule applying to new instances, with those.
fn gained(
    before: &BTreeMap<String, (SecurityGroupRule, BTreeSet<String>)>,
    after: &BTreeMap<String, (SecurityGroupRule, BTreeSet<String>)>,
) -> Vec<PreviewRule> {
    after
        .iter()
        .filter_map(|(id, (view, instances))| {
            let instance_ids: Vec<String> = match before.get(id) {
                Some((old, old_instances)) if old == view => {
                    let new: Vec<String> = instances.difference(old_instances).cloned().collect();
                    if new.is_empty() {
                        return None;
                    }
                    new
                }
                _ => instances.iter().cloned().collect(),
            };
            Some(PreviewRule {
                security_group_rule: view.clone(),
                instance_ids,
            })
        })
        .collect()
}

/// `(added, removed)` from `before` to `after`.
pub fn rule_changes(before: &State, after: &State) -> (Vec<PreviewRule>, Vec<PreviewRule>) {
    let (before, after) = (applications(before), applications(after));
    (gained(&before, &after), gained(&after, &before))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::tests::{Fixture, tcp};

    #[test]
    fn an_authorized_rule_is_added_and_a_revoked_one_removed() {
        let mut f = Fixture::new();
        let group = f.group("web");
        let before = f.state.clone();
        let out = f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": group, "IpPermissions": [tcp(22, "10.0.0.0/8")]}),
        );
        let rule = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
            .as_str()
            .unwrap()
            .to_string();
        let (added, removed) = rule_changes(&before, &f.state);
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].security_group_rule.security_group_rule_id, rule);
        assert!(removed.is_empty());
        let (added, removed) = rule_changes(&f.state, &before);
        assert!(added.is_empty());
        assert_eq!(removed[0].security_group_rule.security_group_rule_id, rule);
        assert_eq!(rule_changes(&before, &before), (vec![], vec![]));
    }
}

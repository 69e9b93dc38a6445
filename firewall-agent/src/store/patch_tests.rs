//! A follower that applies only the record writes of each save holds, after every step of
//! long seeded change sequences, the writer's state and what a whole read of the records
//! assembles; what a step did not touch stays shared with the follower's previous version.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;

use super::*;
use crate::{
    api::catalogue::call_json,
    model::{
        Rule,
        testing::{Seeded, SeqIds},
    },
    store::{
        records::{self, Write},
        test_changes::{group_ids, random_change},
    },
};

/// An etcd stand-in: the records, and the writer's and follower's sides.
struct Pair {
    records: BTreeMap<String, String>,
    followed: BTreeMap<String, State>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            records: BTreeMap::new(),
            followed: BTreeMap::new(),
        }
    }

    /// Saves `after` as the writer does and hands the writes to the follower; the scopes the
    /// follower says changed.
    fn save(&mut self, before: Option<&State>, after: &State) -> BTreeSet<String> {
        let changes = records::changes(before, after).unwrap();
        let mut writes = Vec::new();
        for write in &changes.writes {
            match write {
                Write::Put(key, value) => {
                    self.records.insert(key.clone(), value.clone());
                    writes.push((key.clone(), Some(value.clone())));
                }
                Write::Delete(key) => {
                    self.records.remove(key);
                    writes.push((key.clone(), None));
                }
            }
        }
        apply(&mut self.followed, writes).unwrap()
    }

    /// What a whole read of the records gives (every record at once, in key order).
    fn assembled(&self) -> Vec<State> {
        let entries = self.records.iter().map(|(k, v)| (k.clone(), v.clone()));
        assemble(entries).unwrap()
    }
}

#[test]
fn a_follower_of_the_writes_holds_the_writers_state_after_every_step() {
    for seed in [3u64, 11, 99] {
        let mut ids = SeqIds::default();
        let mut rng = Seeded::new(seed);
        let mut state = State::initial(&mut ids);
        let mut pair = Pair::new();
        pair.save(None, &state);
        for step in 0..400 {
            let mut next = state.clone();
            random_change(&mut next, &mut ids, &mut rng, step);
            if step % 37 == 0 {
                // A rule changed in place (its description): the same position, a new record.
                let group = group_ids(&next)[0].clone();
                let group = Arc::make_mut(next.groups.get_mut(&group).unwrap());
                if let Some(first) = group.ingress.first() {
                    let mut changed = Rule::clone(first);
                    changed.description = Some(format!("step {step}"));
                    group.ingress.replace(Arc::new(changed));
                }
            }
            pair.save(Some(&state), &next);
            state = next;
            let scope = "000000000000/local";
            assert_eq!(pair.followed[scope], state, "seed {seed} step {step}");
            if step % 25 == 0 {
                assert_eq!(
                    pair.assembled(),
                    vec![state.clone()],
                    "seed {seed} step {step}"
                );
            }
        }
    }
}

#[test]
fn a_rule_added_leaves_every_other_group_shared_with_the_version_before() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    for name in ["web", "db", "cache"] {
        let request = json!({"GroupName": name, "Description": "d"});
        call_json(&mut state, &mut ids, "CreateSecurityGroup", request).unwrap();
    }
    let mut pair = Pair::new();
    pair.save(None, &state);
    let scope = "000000000000/local".to_string();
    let before = pair.followed[&scope].clone();
    let group = group_ids(&state)[1].clone();
    let mut next = state.clone();
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    call_json(&mut next, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    assert_eq!(
        pair.save(Some(&state), &next),
        BTreeSet::from([scope.clone()])
    );
    let after = &pair.followed[&scope];
    assert_eq!(after, &next);
    for (id, group) in &after.groups {
        let shared = Arc::ptr_eq(group, &before.groups[id]);
        assert_eq!(!shared, *id == *group_ids(&next)[1], "{id}");
    }
}

#[test]
fn a_new_scope_arrives_whole_and_a_deleted_one_goes() {
    let mut pair = Pair::new();
    let other = State::initial_in("123456789012", "eu-west-1", &mut SeqIds::at(100));
    assert_eq!(
        pair.save(None, &other),
        BTreeSet::from(["123456789012/eu-west-1".to_string()])
    );
    assert_eq!(pair.followed["123456789012/eu-west-1"], other);
    let writes = vec![("s/123456789012/eu-west-1".to_string(), None)];
    apply(&mut pair.followed, writes).unwrap();
    assert!(pair.followed.is_empty());
}

#[test]
fn a_record_put_and_deleted_in_one_batch_counts_with_its_last_write() {
    let mut ids = SeqIds::default();
    let state = State::initial(&mut ids);
    let mut pair = Pair::new();
    pair.save(None, &state);
    let group = group_ids(&state)[0].clone();
    let mut next = state.clone();
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    call_json(&mut next, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    let changes = records::changes(Some(&state), &next).unwrap();
    let put = changes
        .writes
        .iter()
        .find_map(|w| match w {
            Write::Put(key, value) if key.starts_with("r/") => Some((key.clone(), value.clone())),
            _ => None,
        })
        .unwrap();
    // As one watch response brings an authorize and its revoke.
    let batch = vec![(put.0.clone(), Some(put.1.clone())), (put.0.clone(), None)];
    apply(&mut pair.followed, batch).unwrap();
    assert_eq!(
        pair.followed["000000000000/local"], state,
        "the rule stays revoked"
    );
    let batch = vec![(put.0.clone(), None), (put.0, Some(put.1))];
    apply(&mut pair.followed, batch).unwrap();
    assert_eq!(
        pair.followed["000000000000/local"], next,
        "put again last: there"
    );
}

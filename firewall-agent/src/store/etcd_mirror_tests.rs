//! The mirror applies each record's newest write once: an agent's own writes coming back
//! through the watch, replays after a resumed watch, and full reads older than a save change
//! nothing.

use std::sync::{Condvar, Mutex};

use serde_json::json;

use super::*;
use crate::{
    api::catalogue::call_json,
    model::testing::SeqIds,
    store::records::{self, Write},
};

struct TempCache(std::path::PathBuf);

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shared(name: &str) -> (Shared, TempCache) {
    let dir = std::env::temp_dir().join(format!("fw-mirror-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shared = Shared {
        mirror: Mutex::new(Mirror::default()),
        applied: Condvar::new(),
        cache: EtcdCache::open(&dir.join("state.redb")).unwrap(),
        cache_order: Mutex::new(()),
        host_id: "host-a".into(),
        lease: Mutex::new(None),
    };
    (shared, TempCache(dir))
}

/// A region with one group and one rule, as a save writes it: its events at `revision`.
fn region_with_a_rule() -> (Vec<Event>, String) {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let group = state.groups.keys().next().unwrap().clone();
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    call_json(&mut state, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    let changes = records::changes(None, &state).unwrap();
    let mut events = Vec::new();
    let mut rule_key = String::new();
    for write in changes.writes {
        if let Write::Put(key, value) = write {
            if key.starts_with("r/") && key.contains("/sgr-") && rule_key.is_empty() {
                let record: records::RuleRecord = serde_json::from_str(&value).unwrap();
                if !record.egress {
                    rule_key = key.clone();
                }
            }
            events.push((key, Some(value), 5));
        }
    }
    (events, rule_key)
}

fn ingress_rules(shared: &Shared) -> usize {
    let m = shared.mirror.lock().unwrap();
    m.states
        .values()
        .flat_map(|s| s.groups.values())
        .map(|g| g.ingress.len())
        .sum()
}

#[test]
fn a_rule_this_agent_deleted_is_not_brought_back_by_its_older_put_from_the_watch() {
    let (shared, _dir) = shared("tombstone");
    let (events, rule_key) = region_with_a_rule();
    shared.apply(events.clone(), 5, false, || {});
    // The default group's own rule and ours.
    assert_eq!(ingress_rules(&shared), 2);
    {
        // This agent's save deleted the rule at revision 7, as `EtcdStore::save` records it.
        let mut m = shared.mirror.lock().unwrap();
        m.revisions.remove(&rule_key);
        m.tombstones.insert(rule_key.clone(), 7);
        patch::apply(&mut m.states, vec![(rule_key.clone(), None)]).unwrap();
    }
    assert_eq!(ingress_rules(&shared), 1);
    let mut changed = false;
    // The put comes back (a watch resumed from before it), then the delete itself.
    let put = events.iter().find(|e| e.0 == rule_key).unwrap().clone();
    shared.apply(vec![put], 6, false, || changed = true);
    assert!(
        !changed,
        "an older put of a deleted record changed the state"
    );
    assert_eq!(ingress_rules(&shared), 1);
    shared.apply(vec![(rule_key, None, 7)], 7, false, || changed = true);
    assert!(!changed);
    assert!(
        shared.mirror.lock().unwrap().tombstones.is_empty(),
        "pruned once passed"
    );
}

#[test]
fn a_full_read_older_than_a_save_neither_deletes_nor_revives_its_records() {
    let (shared, _dir) = shared("whole");
    let (events, rule_key) = region_with_a_rule();
    shared.apply(events.clone(), 5, true, || {});
    assert_eq!(ingress_rules(&shared), 2);
    // A record this agent wrote at revision 9, after a full read made at revision 8.
    shared
        .mirror
        .lock()
        .unwrap()
        .revisions
        .insert("i/000000000000/local/i-x".into(), 9);
    let mut changed = false;
    shared.apply(events.clone(), 8, true, || changed = true);
    assert!(!changed, "an unchanged read costs nothing");
    assert!(
        shared
            .mirror
            .lock()
            .unwrap()
            .revisions
            .contains_key("i/000000000000/local/i-x")
    );
    // A read that lacks the rule (deleted by another agent) deletes it.
    let without: Vec<Event> = events.into_iter().filter(|e| e.0 != rule_key).collect();
    shared.apply(without, 10, true, || changed = true);
    assert!(changed);
    assert_eq!(ingress_rules(&shared), 1);
}

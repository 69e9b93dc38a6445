//! The store on a real redb file: what is saved reads back identically after reopening, over
//! long seeded sequences of changes; a change writes only its own records; a whole-state
//! document of an earlier version is converted at the first load.

use serde_json::json;

use super::*;
use crate::{
    api::catalogue::call_json,
    model::testing::{Seeded, SeqIds},
    store::{
        records::changes,
        test_changes::{group_ids, random_change},
    },
};

/// A database file in a directory removed on drop.
pub(crate) struct TempDb(std::path::PathBuf);

impl TempDb {
    pub(crate) fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("fw-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.0.join("state.redb")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn saved_states_of_every_scope_read_back_identically_after_reopening() {
    let db = TempDb::new("scopes");
    let state = State::initial(&mut SeqIds::default());
    let other = State::initial_in("123456789012", "eu-west-1", &mut SeqIds::at(100));
    {
        let store = RedbStore::open(&db.path()).unwrap();
        assert_eq!(store.load().unwrap(), Vec::new());
        store.save(None, &state).unwrap();
        store.save(None, &other).unwrap();
    }
    let store = RedbStore::open(&db.path()).unwrap();
    assert_eq!(store.load().unwrap(), vec![state, other]);
}

#[test]
fn after_every_step_of_long_seeded_change_sequences_the_store_reads_back_the_state() {
    for seed in [1u64, 7, 42] {
        let db = TempDb::new(&format!("seq-{seed}"));
        let mut ids = SeqIds::default();
        let mut rng = Seeded::new(seed);
        let mut state = State::initial(&mut ids);
        let mut store = RedbStore::open(&db.path()).unwrap();
        store.save(None, &state).unwrap();
        for step in 0..300 {
            let mut next = state.clone();
            random_change(&mut next, &mut ids, &mut rng, step);
            store.save(Some(&state), &next).unwrap();
            state = next;
            if step % 10 == 0 {
                drop(store);
                store = RedbStore::open(&db.path()).unwrap();
                assert_eq!(
                    store.load().unwrap(),
                    vec![state.clone()],
                    "seed {seed} step {step}"
                );
            }
        }
        drop(store);
        let store = RedbStore::open(&db.path()).unwrap();
        assert_eq!(store.load().unwrap(), vec![state], "seed {seed} at the end");
    }
}

#[test]
fn adding_one_rule_to_a_large_group_writes_the_rule_and_the_scope_record_only() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    state.quotas.rules_per_group = 1000;
    let group = group_ids(&state)[0].clone();
    for port in 0..200 {
        let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
        call_json(&mut state, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    }
    let mut next = state.clone();
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    call_json(&mut next, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    let writes = changes(Some(&state), &next).unwrap().writes;
    let keys: Vec<String> = writes
        .iter()
        .map(|w| match w {
            Write::Put(key, _) => format!("put {}", &key[..2]),
            Write::Delete(key) => format!("delete {}", &key[..2]),
        })
        .collect();
    assert_eq!(keys, ["put s/", "put r/"]);
}

#[test]
fn a_whole_state_document_of_an_earlier_version_is_converted_at_the_first_load() {
    let db = TempDb::new("legacy");
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let group = group_ids(&state)[0].clone();
    for port in [22, 80, 443] {
        let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
        call_json(&mut state, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    }
    let other = State::initial_in("123456789012", "eu-west-1", &mut SeqIds::at(100));
    {
        // As earlier versions wrote it: one JSON document per scope in the `state` table.
        let database = Database::create(db.path()).unwrap();
        let txn = database.begin_write().unwrap();
        {
            let mut table = txn.open_table(STATE_TABLE).unwrap();
            let doc = serde_json::to_string(&state).unwrap();
            table.insert(DESIRED_KEY, doc.as_str()).unwrap();
            let doc = serde_json::to_string(&other).unwrap();
            table
                .insert("desired/123456789012/eu-west-1", doc.as_str())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStore::open(&db.path()).unwrap();
    assert_eq!(store.load().unwrap(), vec![state.clone(), other.clone()]);
    assert!(
        store.legacy_states().unwrap().is_empty(),
        "documents removed"
    );
    drop(store);
    let store = RedbStore::open(&db.path()).unwrap();
    assert_eq!(store.load().unwrap(), vec![state, other]);
}

#[test]
fn ids_saved_whole_by_an_earlier_version_read_back_and_are_replaced_by_records_at_the_next_save() {
    let db = TempDb::new("legacy-ids");
    let records = [("r/sgr-1", "0"), ("r/sgr-2", "1"), ("p/[\"sg-1\"]", "3")];
    let ids = Ids::from_records(records).unwrap();
    {
        let database = Database::create(db.path()).unwrap();
        let txn = database.begin_write().unwrap();
        {
            let mut table = txn.open_table(STATE_TABLE).unwrap();
            let doc = serde_json::to_string(&ids).unwrap();
            table.insert(DATAPLANE_IDS_KEY, doc.as_str()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStore::open(&db.path()).unwrap();
    let read = store.load_dataplane_ids().unwrap().expect("the document");
    assert_eq!(read, ids);
    // The agent's base is what it read; the store has no records yet, so it writes them all.
    let more = Ids::from_records(records.into_iter().chain([("r/sgr-3", "2")])).unwrap();
    store.save_dataplane_ids(Some(&read), &more).unwrap();
    drop(store);
    let store = RedbStore::open(&db.path()).unwrap();
    assert_eq!(store.load_dataplane_ids().unwrap(), Some(more));
    let txn = store.db.begin_read().unwrap();
    let old = txn.open_table(STATE_TABLE).unwrap();
    assert!(
        old.get(DATAPLANE_IDS_KEY).unwrap().is_none(),
        "document removed"
    );
}

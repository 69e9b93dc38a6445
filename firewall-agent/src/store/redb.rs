//! The embedded store: redb, a crash-safe database in one file. Every save is one write
//! transaction, committed (fsync'd) before it returns.
//!
//! Each account and region's state is one JSON document under its own key (`desired` for the
//! default account in `local`, as earlier versions wrote it; `desired/<account>/<region>` for
//! the others), so a change is one atomic write transaction of the state it changed.

use std::path::Path;

use redb::{Database, TableDefinition};

use super::{Store, StoreError};
use crate::{
    api::Scope,
    compiler::Ids,
    model::{State, regions::LOCAL},
};

const STATE_TABLE: TableDefinition<&str, &str> = TableDefinition::new("state");
const DESIRED_KEY: &str = "desired";
/// The compiler's ID assignment matching what the kernel maps hold.
const DATAPLANE_IDS_KEY: &str = "dataplane-ids";

/// redb has one error type per operation; they all convert into `redb::Error`.
fn db<T, E: Into<redb::Error>>(result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Database(Box::new(e.into())))
}

pub struct RedbStore {
    db: Database,
}

/// The key of a scope's state.
fn state_key(scope: &Scope) -> String {
    if scope.account_id == Scope::DEFAULT_ACCOUNT && scope.region == LOCAL {
        DESIRED_KEY.to_string()
    } else {
        format!("{DESIRED_KEY}/{}/{}", scope.account_id, scope.region)
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Vec<State>, StoreError> {
        let txn = db(self.db.begin_read())?;
        let table = match txn.open_table(STATE_TABLE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        };
        let mut states = Vec::new();
        for entry in db(table.range(DESIRED_KEY..))? {
            let (key, json) = db(entry)?;
            let key = key.value();
            if key != DESIRED_KEY && !key.starts_with("desired/") {
                break;
            }
            states.push(serde_json::from_str(json.value())?);
        }
        Ok(states)
    }

    fn save(&self, state: &State) -> Result<(), StoreError> {
        self.put(&state_key(&state.scope()), state)
    }

    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError> {
        self.get(DATAPLANE_IDS_KEY)
    }

    fn save_dataplane_ids(&self, ids: &Ids) -> Result<(), StoreError> {
        self.put(DATAPLANE_IDS_KEY, ids)
    }
}

impl RedbStore {
    /// Opens the database at `path`, creating it when missing.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Ok(RedbStore {
            db: db(Database::create(path))?,
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let txn = db(self.db.begin_read())?;
        let table = match txn.open_table(STATE_TABLE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        };
        match db(table.get(key))? {
            Some(json) => Ok(Some(serde_json::from_str(json.value())?)),
            None => Ok(None),
        }
    }

    /// One durable write transaction.
    fn put<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let json = serde_json::to_string(value)?;
        let txn = db(self.db.begin_write())?;
        {
            let mut table = db(txn.open_table(STATE_TABLE))?;
            db(table.insert(key, json.as_str()))?;
        }
        db(txn.commit())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::SeqIds;

    #[test]
    fn saved_states_of_every_scope_read_back_identically_after_reopening() {
        let dir = std::env::temp_dir().join(format!("fw-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.redb");
        let _ = std::fs::remove_file(&path);
        let state = State::initial(&mut SeqIds::default());
        let other = State::initial_in("123456789012", "eu-west-1", &mut SeqIds::at(100));
        {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.load().unwrap(), Vec::new());
            store.save(&state).unwrap();
            store.save(&other).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), vec![state, other]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Durable desired state in redb (an embedded, crash-safe database): every acknowledged change
//! is committed (fsync'd) before the API replies.
//!
//! The state is one JSON document under one key, so a change is one atomic write transaction.

use std::path::Path;

use redb::{Database, TableDefinition};

use crate::model::State;

const STATE_TABLE: TableDefinition<&str, &str> = TableDefinition::new("state");
const DESIRED_KEY: &str = "desired";
/// The compiler's ID assignment matching what the kernel maps hold.
const DATAPLANE_IDS_KEY: &str = "dataplane-ids";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(Box<redb::Error>),
    #[error("stored state is not readable: {0}")]
    Decode(#[from] serde_json::Error),
}

/// redb has one error type per operation; they all convert into `redb::Error`.
fn db<T, E: Into<redb::Error>>(result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Database(Box::new(e.into())))
}

pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            db: db(Database::create(path))?,
        })
    }

    pub fn load(&self) -> Result<Option<State>, StoreError> {
        self.get(DESIRED_KEY)
    }

    pub fn save(&self, state: &State) -> Result<(), StoreError> {
        self.put(DESIRED_KEY, state)
    }

    pub fn load_dataplane_ids(&self) -> Result<Option<crate::compiler::Ids>, StoreError> {
        self.get(DATAPLANE_IDS_KEY)
    }

    pub fn save_dataplane_ids(&self, ids: &crate::compiler::Ids) -> Result<(), StoreError> {
        self.put(DATAPLANE_IDS_KEY, ids)
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
    fn saved_state_reads_back_identically_after_reopening() {
        let dir = std::env::temp_dir().join(format!("fw-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.redb");
        let _ = std::fs::remove_file(&path);
        let state = State::initial(&mut SeqIds::default());
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.load().unwrap(), None);
            store.save(&state).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(state));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

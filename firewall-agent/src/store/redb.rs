//! The embedded store: redb, a crash-safe database in one file. Every save is one write
//! transaction, committed (fsync'd, redb's `Durability::Immediate`) before it returns, and
//! writes only the records of what changed (`records.rs`): a rule added at 100k rules writes
//! the rule, not the state.
//!
//! Earlier versions kept each scope's state as one JSON document in the `state` table
//! (`desired`, `desired/<account>/<region>`); the first load converts them to records and
//! removes them, in one transaction.

use std::path::Path;

use redb::{Database, Durability, ReadableTable as _, TableDefinition};

use super::{
    Store, StoreError, patch,
    records::{self, Write},
};
use crate::{compiler::Ids, model::State};

/// Per-resource records (`records.rs`).
pub(super) const RECORDS: TableDefinition<&str, &str> = TableDefinition::new("records");
/// The earlier whole-state documents, and the data-plane IDs.
const STATE_TABLE: TableDefinition<&str, &str> = TableDefinition::new("state");
const DESIRED_KEY: &str = "desired";
/// The compiler's ID assignment matching what the kernel maps hold.
const DATAPLANE_IDS_KEY: &str = "dataplane-ids";

/// redb has one error type per operation; they all convert into `redb::Error`.
pub(super) fn db<T, E: Into<redb::Error>>(result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Database(Box::new(e.into())))
}

pub struct RedbStore {
    db: Database,
}

impl Store for RedbStore {
    fn load(&self) -> Result<Vec<State>, StoreError> {
        let legacy = self.legacy_states()?;
        if !legacy.is_empty() {
            self.migrate(&legacy)?;
        }
        let txn = db(self.db.begin_read())?;
        let table = match txn.open_table(RECORDS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        };
        let mut entries = Vec::new();
        for entry in db(table.iter())? {
            let (key, value) = db(entry)?;
            entries.push((key.value().to_string(), value.value().to_string()));
        }
        patch::assemble(entries)
    }

    fn save(&self, before: Option<&State>, after: &State) -> Result<(), StoreError> {
        let changes = records::changes(before, after)?;
        let txn = db(self.db.begin_write())?;
        {
            let mut table = db(txn.open_table(RECORDS))?;
            write_all(&mut table, &changes.writes)?;
        }
        db(txn.commit())?;
        Ok(())
    }

    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError> {
        let txn = db(self.db.begin_read())?;
        let table = match txn.open_table(STATE_TABLE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        };
        match db(table.get(DATAPLANE_IDS_KEY))? {
            Some(json) => Ok(Some(serde_json::from_str(json.value())?)),
            None => Ok(None),
        }
    }

    /// Not fsync'd: the IDs become durable with the next state save. A crash may leave older
    /// IDs, which only costs rewriting the entries they no longer match at the next start.
    fn save_dataplane_ids(&self, ids: &Ids) -> Result<(), StoreError> {
        let json = serde_json::to_string(ids)?;
        let mut txn = db(self.db.begin_write())?;
        txn.set_durability(Durability::None);
        {
            let mut table = db(txn.open_table(STATE_TABLE))?;
            db(table.insert(DATAPLANE_IDS_KEY, json.as_str()))?;
        }
        db(txn.commit())?;
        Ok(())
    }
}

fn write_all(table: &mut redb::Table<&str, &str>, writes: &[Write]) -> Result<(), StoreError> {
    for write in writes {
        match write {
            Write::Put(key, value) => {
                db(table.insert(key.as_str(), value.as_str()))?;
            }
            Write::Delete(key) => {
                db(table.remove(key.as_str()))?;
            }
        }
    }
    Ok(())
}

/// redb's page cache (its default is 1 GiB). The agent reads the records whole once, at
/// start, and keeps them decoded; a save then touches the few pages on the paths to its
/// records. Left at the default, the first read kept 390 B per rule cached (37 MiB at 100k
/// rules, against 16 MiB now; `cargo xtask bench --only memory`).
const CACHE_BYTES: usize = 16 << 20;

impl RedbStore {
    /// Opens the database at `path`, creating it when missing.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let database = Database::builder().set_cache_size(CACHE_BYTES).create(path);
        Ok(RedbStore { db: db(database)? })
    }

    /// The database, for a store that keeps tables of its own in the same file (the etcd
    /// store's cache).
    pub(super) fn database(&self) -> &Database {
        &self.db
    }

    /// The whole-state documents an earlier version wrote.
    fn legacy_states(&self) -> Result<Vec<(String, State)>, StoreError> {
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
            states.push((key.to_string(), serde_json::from_str(json.value())?));
        }
        Ok(states)
    }

    /// Rewrites whole-state documents as records and removes them, in one transaction.
    fn migrate(&self, legacy: &[(String, State)]) -> Result<(), StoreError> {
        let txn = db(self.db.begin_write())?;
        {
            let mut table = db(txn.open_table(RECORDS))?;
            let mut old = db(txn.open_table(STATE_TABLE))?;
            for (key, state) in legacy {
                let changes = records::changes(None, state)?;
                write_all(&mut table, &changes.writes)?;
                db(old.remove(key.as_str()))?;
            }
        }
        db(txn.commit())?;
        tracing::info!(
            scopes = legacy.len(),
            "the stored state was converted to per-resource records"
        );
        Ok(())
    }
}

#[cfg(test)]
#[path = "redb_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod upgrade_tests;

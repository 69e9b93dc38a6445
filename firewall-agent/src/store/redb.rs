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
/// The earlier whole-state documents, and the data-plane IDs as one document.
const STATE_TABLE: TableDefinition<&str, &str> = TableDefinition::new("state");
const DESIRED_KEY: &str = "desired";
/// Where earlier versions saved the compiler's IDs whole, in `state`.
const DATAPLANE_IDS_KEY: &str = "dataplane-ids";
/// The compiler's ID assignment matching what the kernel maps hold, one record per ID
/// (`compiler/ids_records.rs`): a save writes what changed since the last.
const IDS_TABLE: TableDefinition<&str, &str> = TableDefinition::new("dataplane-ids");

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
        match txn.open_table(IDS_TABLE) {
            Ok(table) if db(table.first())?.is_some() => {
                let mut records = Vec::new();
                for entry in db(table.iter())? {
                    let (key, value) = db(entry)?;
                    records.push((key.value().to_string(), value.value().to_string()));
                }
                let records = records.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                return Ok(Some(Ids::from_records(records)?));
            }
            Ok(_) | Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        }
        // Saved by an earlier version, as one document.
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

    /// Writes the records that differ from `before`'s; with no `before`, or none saved as
    /// records yet, replaces whatever was saved with every record.
    fn save_dataplane_ids(&self, before: Option<&Ids>, after: &Ids) -> Result<(), StoreError> {
        let mut txn = db(self.db.begin_write())?;
        txn.set_durability(Durability::None);
        {
            let mut table = db(txn.open_table(IDS_TABLE))?;
            let whole = before.is_none() || db(table.first())?.is_none();
            if whole {
                db(table.retain(|_, _| false))?;
                db(db(txn.open_table(STATE_TABLE))?.remove(DATAPLANE_IDS_KEY))?;
            }
            for (key, value) in after.records_since(if whole { None } else { before }) {
                match value {
                    Some(value) => db(table.insert(key.as_str(), value.as_str()))?,
                    None => db(table.remove(key.as_str()))?,
                };
            }
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
pub(super) mod tests;

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod upgrade_tests;

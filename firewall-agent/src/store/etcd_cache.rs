//! The etcd store's local cache, in the redb file of `--state-dir`: etcd's own records as the
//! mirror last applied them (value and mod revision by key, liveness keys included) and the
//! revision they are etcd's content at, written together in one transaction, record by record.
//! A restarted agent enforces them at once and resumes etcd's watch after that revision,
//! without reading the records again. The data-plane IDs live beside them (the embedded
//! store's table).
//!
//! Writes are not fsync'd each (etcd holds the truth): at most once a second, and when the
//! agent stops. A crash leaves an older, still consistent, pair of records and revision, so the
//! restarted agent resumes from further back.

use std::{
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use redb::{Durability, ReadableTable as _, TableDefinition};

use super::{
    RedbStore, Store as _, StoreError,
    redb::{RECORDS, db},
};
use crate::compiler::Ids;

/// Record key (without etcd's prefix) → (mod revision, value).
const ETCD_RECORDS: TableDefinition<&str, (i64, &str)> = TableDefinition::new("etcd-records");
/// `revision` → the etcd revision the records are the content at.
const ETCD_META: TableDefinition<&str, i64> = TableDefinition::new("etcd-meta");
const REVISION_KEY: &str = "revision";
/// How long a cache write may stay unsynced.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The cached records (key, value, mod revision) and the revision they are etcd's content at.
pub(super) type Cached = (Vec<(String, String, i64)>, i64);

/// One record's new value and mod revision (`None`: deleted).
pub(super) type CachedWrite = (String, Option<(String, i64)>);

pub(super) struct EtcdCache {
    store: RedbStore,
    synced: Mutex<Instant>,
}

impl EtcdCache {
    /// Opens (or creates) the cache at `path`. The records table of an earlier release's cache
    /// (whole states in the embedded store's shape) is dropped: etcd is read again instead.
    pub fn open(path: &Path) -> Result<EtcdCache, StoreError> {
        let store = RedbStore::open(path)?;
        let txn = db(store.database().begin_write())?;
        db(txn.delete_table(RECORDS))?;
        db(txn.commit())?;
        Ok(EtcdCache {
            store,
            // The first write is synced: a cache then exists from the start.
            synced: Mutex::new(
                Instant::now()
                    .checked_sub(SYNC_EVERY)
                    .unwrap_or_else(Instant::now),
            ),
        })
    }

    /// The cached records (key, value, mod revision) and their revision; `None` when nothing
    /// was cached.
    pub fn load(&self) -> Result<Option<Cached>, StoreError> {
        let txn = db(self.store.database().begin_read())?;
        let meta = match txn.open_table(ETCD_META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::Database(Box::new(e.into()))),
        };
        let Some(revision) = db(meta.get(REVISION_KEY))?.map(|r| r.value()) else {
            return Ok(None);
        };
        let table = db(txn.open_table(ETCD_RECORDS))?;
        let mut records = Vec::new();
        for entry in db(table.iter())? {
            let (key, value) = db(entry)?;
            let (mod_revision, value) = value.value();
            records.push((key.value().to_string(), value.to_string(), mod_revision));
        }
        Ok(Some((records, revision)))
    }

    /// Writes `writes` and `revision` in one transaction; fsync'd when the last sync is a
    /// second old, or `sync`.
    pub fn write(
        &self,
        writes: &[CachedWrite],
        revision: i64,
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().expect("not poisoned");
        let durable = sync || synced.elapsed() >= SYNC_EVERY;
        let mut txn = db(self.store.database().begin_write())?;
        if !durable {
            txn.set_durability(Durability::None);
        }
        {
            let mut table = db(txn.open_table(ETCD_RECORDS))?;
            for (key, value) in writes {
                match value {
                    Some((value, mod_revision)) => {
                        db(table.insert(key.as_str(), (*mod_revision, value.as_str())))?;
                    }
                    None => {
                        db(table.remove(key.as_str()))?;
                    }
                }
            }
            let mut meta = db(txn.open_table(ETCD_META))?;
            db(meta.insert(REVISION_KEY, revision))?;
        }
        db(txn.commit())?;
        if durable {
            *synced = Instant::now();
        }
        Ok(())
    }

    pub fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError> {
        self.store.load_dataplane_ids()
    }

    pub fn save_dataplane_ids(&self, before: Option<&Ids>, after: &Ids) -> Result<(), StoreError> {
        self.store.save_dataplane_ids(before, after)
    }
}

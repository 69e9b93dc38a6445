//! The compiler's IDs saved record by record: each save writes what changed since the version
//! saved last (`compiler/ids_records.rs`), which the saver keeps (the IDs' maps are persistent,
//! so keeping it is an O(1) copy). The tick saves off the agent's lock and a stop saves under
//! it; the saver takes one save at a time, and a copy older than the one saved is skipped, so
//! the store never goes back to an older version.

use std::sync::{Arc, Mutex};

use crate::{
    compiler::Ids,
    store::{Store, StoreError},
};

#[derive(Default)]
struct Saved {
    /// The version the store holds (`None`: unknown, the next save writes every record).
    ids: Option<Ids>,
    /// The copy it was taken from (see [`IdsSaver::save`]).
    copy: u64,
}

/// The IDs as saved, and the order of saves.
#[derive(Default)]
pub struct IdsSaver {
    saved: Mutex<Saved>,
    /// Numbers the copies the agent hands out for saving, in the order it takes them.
    copies: Mutex<u64>,
}

/// A copy of the compiler's IDs to save, in the order it was taken.
pub struct IdsCopy {
    pub(crate) saver: Arc<IdsSaver>,
    pub(crate) store: Arc<dyn Store>,
    ids: Ids,
    copy: u64,
}

impl IdsSaver {
    /// A saver whose store holds `stored` (as read at start).
    pub fn new(stored: Option<Ids>) -> Arc<IdsSaver> {
        Arc::new(IdsSaver {
            saved: Mutex::new(Saved {
                ids: stored,
                copy: 0,
            }),
            copies: Mutex::new(0),
        })
    }

    /// A copy of `ids` to save in `store`, numbered after every copy taken before.
    pub fn copy(self: &Arc<Self>, store: Arc<dyn Store>, ids: &Ids) -> IdsCopy {
        let mut copies = self.copies.lock().expect("not poisoned");
        *copies += 1;
        IdsCopy {
            saver: self.clone(),
            store,
            ids: ids.clone(),
            copy: *copies,
        }
    }
}

impl IdsCopy {
    /// Writes what changed since the version saved; nothing when a later copy was saved
    /// already. Blocks while another save runs.
    pub fn save(self) -> Result<(), StoreError> {
        let mut saved = self.saver.saved.lock().expect("not poisoned");
        if saved.copy > self.copy {
            return Ok(());
        }
        self.store
            .save_dataplane_ids(saved.ids.as_ref(), &self.ids)?;
        saved.ids = Some(self.ids);
        saved.copy = self.copy;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RedbStore, TempDb};

    /// IDs with a counter slot for each rule.
    fn ids_with(rules: &[&str]) -> Ids {
        let records: Vec<(String, String)> = (rules.iter().enumerate())
            .map(|(slot, rule)| (format!("r/{rule}"), slot.to_string()))
            .collect();
        Ids::from_records(records.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
    }

    #[test]
    fn a_copy_taken_before_the_one_saved_is_not_written_over_it() {
        const NAME: &str = "ids-order";
        let db = TempDb::new(NAME);
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&db.path()).unwrap());
        let saver = IdsSaver::new(None);
        let older = saver.copy(store.clone(), &ids_with(&["sgr-1"]));
        let newer = saver.copy(store.clone(), &ids_with(&["sgr-1", "sgr-2"]));
        newer.save().unwrap();
        older.save().unwrap();
        assert_eq!(
            store.load_dataplane_ids().unwrap(),
            Some(ids_with(&["sgr-1", "sgr-2"]))
        );
    }

    #[test]
    fn each_save_writes_the_difference_and_reads_back_whole() {
        const NAME: &str = "ids-diff";
        let db = TempDb::new(NAME);
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&db.path()).unwrap());
        let saver = IdsSaver::new(None);
        for n in 1..20 {
            let rules: Vec<String> = (0..n).map(|i| format!("sgr-{i}")).collect();
            let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
            saver.copy(store.clone(), &ids_with(&rules)).save().unwrap();
            assert_eq!(store.load_dataplane_ids().unwrap(), Some(ids_with(&rules)));
        }
    }
}

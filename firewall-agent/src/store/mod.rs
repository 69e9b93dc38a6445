//! Where the desired state is kept. The agent writes every acknowledged change through a
//! [`Store`] before it replies; the embedded default is [`RedbStore`] (later also etcd, for
//! several hosts).

mod records;
mod redb;

pub use self::redb::RedbStore;
use crate::{compiler::Ids, model::State};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(Box<::redb::Error>),
    #[error("stored state is not readable: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Durable desired state. Each save is atomic and durable when it returns.
pub trait Store: Send {
    /// The saved state of every account and region (none before the first save).
    fn load(&self) -> Result<Vec<State>, StoreError>;
    /// Saves the state of one account and region (its own `account_id` and `region`): `after`,
    /// writing only what differs from `before`, the version saved last (`None`: none was).
    fn save(&self, before: Option<&State>, after: &State) -> Result<(), StoreError>;
    /// The compiler's ID assignment matching what the kernel maps hold (for a takeover).
    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError>;
    /// Saves the IDs; they may become durable only with the next state save.
    fn save_dataplane_ids(&self, ids: &Ids) -> Result<(), StoreError>;
}

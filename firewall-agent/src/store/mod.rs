//! Where the desired state is kept. The agent writes every acknowledged change through a
//! [`Store`] before it replies; the embedded default is [`RedbStore`]; [`EtcdStore`] shares one
//! state between several hosts' agents.

mod etcd;
mod etcd_cache;
mod etcd_mirror;
mod etcd_watch;
mod patch;
mod records;
mod redb;
#[cfg(test)]
mod test_changes;

#[cfg(test)]
pub(crate) use self::redb::tests::TempDb;
pub use self::{
    etcd::{EtcdOptions, EtcdStore},
    redb::RedbStore,
};
use crate::{compiler::Ids, model::State};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(Box<::redb::Error>),
    #[error("stored state is not readable: {0}")]
    Decode(#[from] serde_json::Error),
    /// The shared store could not be reached (nothing was written, or nothing is known).
    #[error("the shared store is unavailable: {0}")]
    Unavailable(String),
    /// Another agent changed the scope since this agent's version: nothing was written.
    #[error("another agent changed the state at the same time")]
    Conflict,
    /// The shared store refused the change as such (etcd: more records than its
    /// `--max-txn-ops`, or larger than its `--max-request-bytes`): nothing was written.
    #[error("etcd refused the change: {0}")]
    Refused(String),
}

/// Durable desired state. Each save is atomic and durable when it returns.
pub trait Store: Send + Sync {
    /// The saved state of every account and region (none before the first save).
    fn load(&self) -> Result<Vec<State>, StoreError>;
    /// Saves the state of one account and region (its own `account_id` and `region`): `after`,
    /// writing only what differs from `before`, the version saved last (`None`: none was).
    fn save(&self, before: Option<&State>, after: &State) -> Result<(), StoreError>;
    /// The compiler's ID assignment matching what the kernel maps hold (for a takeover).
    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError>;
    /// Saves the IDs `after`, writing only what differs from `before`, the version saved last
    /// (`None`: none, or not known); they may become durable only with the next state save.
    fn save_dataplane_ids(&self, before: Option<&Ids>, after: &Ids) -> Result<(), StoreError>;
    /// With a store shared by several hosts: the host this agent registers instances for.
    fn host_id(&self) -> Option<&str> {
        None
    }
    /// With a shared store: re-reads it (after a lost race), and true; its changes then come
    /// from [`Store::take_remote_states`]. False for a store only this agent writes.
    fn refresh(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// With a shared store, once: a signal each time other agents changed a scope.
    fn remote_changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        None
    }
    /// The latest state of every scope other agents changed since the last call.
    fn take_remote_states(&self) -> Vec<State> {
        Vec::new()
    }
    /// The agent stops: with a shared store, this host leaves it (its liveness ends now).
    fn close(&self) {}
}

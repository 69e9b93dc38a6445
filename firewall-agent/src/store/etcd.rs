//! The shared store: etcd (v3), so that several hosts' agents keep one desired state.
//!
//! * Keys: `<prefix>` + the per-resource record keys of `records.rs` (`s/…`, `g/…`, `r/…`,
//!   `i/…`, `p/…`), values the same JSON; `<prefix>h/<host>` is each agent's liveness key,
//!   attached to its lease.
//! * Writes: one transaction per save, conditional on the mod revision of the scope's own
//!   record (`s/<account>/<region>`), which every save writes: a save made on an out-of-date
//!   state (another agent wrote since, or the watch brought a change the agent has not taken
//!   yet) fails as [`StoreError::Conflict`] and changes nothing, so no update is lost.
//!   A save that lost the race learns the scope record's current mod revision in the same
//!   transaction and waits for the watch to bring that change; nothing else is read.
//! * The mirror (`etcd_mirror.rs`) keeps every record's mod revision and the states they make,
//!   decoded; the watch (`etcd_watch.rs`, from the last revision applied, resumed there after
//!   a reconnection) patches the records each event names and hands the scopes they changed to
//!   the agent. A paged full read at one revision, diffed against the mirror, happens only
//!   with nothing cached or after the watch's history was compacted.
//! * etcd's records and their revision are cached record by record in the redb file of
//!   `--state-dir` (`etcd_cache.rs`, with the data-plane IDs): a restarted agent enforces them
//!   at once and resumes the watch after that revision, even while etcd is unreachable.
//! * A graceful stop ([`Store::close`]) revokes this host's lease, so the other hosts see at
//!   once that its instances are no longer enforced.
//!
//! The etcd client is asynchronous; it runs on a small runtime of the store's own, and the
//! agent's (synchronous) calls wait for it with a time limit.

use std::{
    future::Future,
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, Identity, TlsOptions, Txn, TxnOp,
    TxnOpResponse,
};
use tokio::sync::mpsc;

use super::{
    Store, StoreError,
    etcd_cache::EtcdCache,
    etcd_mirror::{Mirror, Shared},
    etcd_watch::{self, PREFIX, REQUEST_TIMEOUT},
    records::{self, Write, scope_of},
};
use crate::{compiler::Ids, model::State};

/// How long a whole read of etcd may take (paged: a hundred thousand records is a few
/// hundred pages).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach etcd and who this agent is.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    /// PEM files: the CA that signed the servers' certificates, and this client's own pair.
    pub ca_cert: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    /// The host this agent registers instances for (its liveness key `h/<host>`).
    pub host_id: String,
    /// Seconds without renewal after which etcd drops this host's liveness key.
    pub lease_ttl: i64,
}

pub struct EtcdStore {
    /// Always `Some` but in `drop`, which shuts it down without waiting (it may be dropped
    /// inside the agent's own runtime).
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    shared: Arc<Shared>,
    remote: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
    sender: mpsc::UnboundedSender<()>,
    lease_ttl: i64,
    /// The watch and the lease, stopped by [`Store::close`].
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// After a lost race: the scope record's key and the mod revision the winner gave it.
    awaited: Mutex<Option<(String, i64)>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// etcd's answer as a store error: a request it refuses as such (a transaction over its
/// `--max-txn-ops`, a request over `--max-request-bytes`) is not a passing outage.
fn refused_or_unavailable(e: etcd_client::Error) -> StoreError {
    match &e {
        etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::InvalidArgument => {
            StoreError::Refused(status.message().to_string())
        }
        _ => unavailable(e),
    }
}

fn pem(path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| unavailable(format!("{}: {e}", path.display())))
}

impl EtcdStore {
    /// Connects (lazily: etcd may be down) and opens the cache at `cache`.
    pub fn open(options: &EtcdOptions, cache: &std::path::Path) -> Result<EtcdStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(unavailable)?;
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2));
        if options.ca_cert.is_some() || options.cert.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &options.ca_cert {
                tls = tls.ca_certificate(Certificate::from_pem(pem(ca)?));
            }
            match (&options.cert, &options.key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(Identity::from_pem(pem(cert)?, pem(key)?));
                }
                (None, None) => {}
                _ => {
                    return Err(unavailable(
                        "--etcd-cert and --etcd-key go together".to_string(),
                    ));
                }
            }
            connect = connect.with_tls(tls);
        }
        let endpoints = options.endpoints.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(Client::connect(endpoints, Some(connect)).await);
        });
        let client = rx
            .recv()
            .map_err(|_| unavailable("the etcd client stopped"))?
            .map_err(unavailable)?;
        let (sender, receiver) = mpsc::unbounded_channel();
        Ok(EtcdStore {
            runtime: Some(runtime),
            client,
            shared: Arc::new(Shared {
                mirror: Mutex::new(Mirror::default()),
                applied: Condvar::new(),
                cache: EtcdCache::open(cache)?,
                cache_order: Mutex::new(()),
                host_id: options.host_id.clone(),
                lease: Mutex::new(None),
            }),
            remote: Mutex::new(Some(receiver)),
            sender,
            lease_ttl: options.lease_ttl,
            tasks: Mutex::new(Vec::new()),
            awaited: Mutex::new(None),
        })
    }

    /// Runs `request` on the store's runtime and waits for it, at most `timeout`.
    fn run_for<T: Send + 'static>(
        &self,
        timeout: Duration,
        request: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime().spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, request).await);
        });
        match rx.recv() {
            Ok(Ok(result)) => result.map_err(refused_or_unavailable),
            Ok(Err(_)) => Err(unavailable("etcd did not answer in time")),
            Err(_) => Err(unavailable("the etcd client stopped")),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run_for(REQUEST_TIMEOUT, request)
    }

    /// Reads etcd whole (paged) into the mirror.
    fn read_whole(&self) -> Result<(), StoreError> {
        let (events, revision) =
            self.run_for(READ_TIMEOUT, etcd_watch::read_paged(self.client.clone()))?;
        let records = events.len();
        self.shared.apply(events, revision, true, || {});
        tracing::info!(revision, records, "read etcd whole");
        Ok(())
    }

    /// Starts the watch and the lease (on the store's runtime). Remote changes are sent to the
    /// receiver [`Store::remote_changes`] hands out.
    fn start_background(&self) {
        let watch = etcd_watch::watch(
            self.shared.clone(),
            self.client.clone(),
            self.sender.clone(),
        );
        let lease =
            etcd_watch::keep_lease(self.shared.clone(), self.client.clone(), self.lease_ttl);
        let mut tasks = self.tasks.lock().expect("not poisoned");
        tasks.push(self.runtime().spawn(watch));
        tasks.push(self.runtime().spawn(lease));
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("taken only in drop")
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The mod revision of the record a lost transaction's `or_else` read (0: it does not exist).
fn read_back(response: &etcd_client::TxnResponse) -> i64 {
    response
        .op_responses()
        .into_iter()
        .find_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().map_or(0, |kv| kv.mod_revision())),
            _ => None,
        })
        .unwrap_or(0)
}

impl Store for EtcdStore {
    /// The cached records, at once (the watch then brings what changed since their revision);
    /// with nothing cached, etcd read whole (or nothing, while it is unreachable).
    fn load(&self) -> Result<Vec<State>, StoreError> {
        let cached = self.shared.load_cache()?;
        if !cached && let Err(e) = self.read_whole() {
            tracing::warn!(error = %e, "etcd is unreachable and nothing is cached: starting empty");
        }
        // From the cache: enforced already (the pinned maps, then the agent's first apply), but
        // answered only once current. The watch brings what changed since the cached revision,
        // in order; this host's liveness key, written after etcd's current revision was read,
        // comes after all of it.
        let current = if cached {
            self.run(etcd_watch::current_revision(self.client.clone()))
                .inspect_err(
                    |e| tracing::warn!(error = %e, "etcd is unreachable: serving the cached state"),
                )
                .ok()
        } else {
            None
        };
        self.start_background();
        if let Some(revision) = current {
            let started = std::time::Instant::now();
            let key = format!("h/{}", self.shared.host_id);
            if self
                .shared
                .wait_for(&key, revision + 1, READ_TIMEOUT, false)
            {
                tracing::info!(revision, took = ?started.elapsed(), "caught up with etcd from the cache");
            } else {
                tracing::warn!(revision, "the watch did not catch up with etcd in time");
            }
        }
        let mut m = self.shared.mirror.lock().expect("not poisoned");
        // The agent starts from what this returns.
        m.dirty.clear();
        Ok(m.states.values().cloned().collect())
    }

    fn save(&self, before: Option<&State>, after: &State) -> Result<(), StoreError> {
        let scope = scope_of(after);
        let scope_key = format!("s/{scope}");
        // Held until the mirror has this save's writes: the watch then skips their events.
        let mut m = self.shared.mirror.lock().expect("not poisoned");
        if m.stale {
            return Err(unavailable(
                "etcd has not been read since the agent started",
            ));
        }
        if m.dirty.contains(&scope) {
            // Another agent's change the agent has not taken yet: `before` is out of date.
            return Err(StoreError::Conflict);
        }
        let expected = m.revisions.get(&scope_key).copied().unwrap_or(0);
        let changes = records::changes(before, after)?;
        let operations: Vec<TxnOp> = changes
            .writes
            .iter()
            .map(|write| match write {
                Write::Put(key, value) => {
                    TxnOp::put(format!("{PREFIX}{key}"), value.as_str(), None)
                }
                Write::Delete(key) => TxnOp::delete(format!("{PREFIX}{key}"), None),
            })
            .collect();
        let full_key = format!("{PREFIX}{scope_key}");
        let condition = Compare::mod_revision(full_key.as_str(), CompareOp::Equal, expected);
        let txn = Txn::new()
            .when([condition])
            .and_then(operations)
            .or_else([TxnOp::get(full_key, None)]);
        let mut client = self.client.clone();
        let response = self.run(async move { client.txn(txn).await })?;
        if !response.succeeded() {
            *self.awaited.lock().expect("not poisoned") = Some((scope_key, read_back(&response)));
            return Err(StoreError::Conflict);
        }
        let revision = response.header().map_or(0, |h| h.revision());
        let mut cached = Vec::with_capacity(changes.writes.len());
        for write in &changes.writes {
            match write {
                Write::Put(key, value) => {
                    m.tombstones.remove(key);
                    m.revisions.insert(key.clone(), revision);
                    cached.push((key.clone(), Some((value.clone(), revision))));
                }
                Write::Delete(key) => {
                    m.revisions.remove(key);
                    m.tombstones.insert(key.clone(), revision);
                    cached.push((key.clone(), None));
                }
            }
        }
        m.states.insert(scope, after.clone());
        // At the mirror's revision: events before this save's may still be on their way.
        let revision = m.revision;
        let order = self.shared.cache_order.lock().expect("not poisoned");
        drop(m);
        self.shared.write_cache(order, &cached, revision);
        Ok(())
    }

    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError> {
        self.shared.cache.load_dataplane_ids()
    }

    fn save_dataplane_ids(&self, before: Option<&Ids>, after: &Ids) -> Result<(), StoreError> {
        self.shared.cache.save_dataplane_ids(before, after)
    }

    fn host_id(&self) -> Option<&str> {
        Some(&self.shared.host_id)
    }

    /// After a lost race: waits for the watch to bring the winner's change of the scope record
    /// (only that key is read, in the lost transaction itself); a mirror that never caught up
    /// reads etcd whole.
    fn refresh(&self) -> Result<bool, StoreError> {
        if self.shared.mirror.lock().expect("not poisoned").stale {
            self.read_whole()?;
            return Ok(true);
        }
        let awaited = self.awaited.lock().expect("not poisoned").take();
        if let Some((key, revision)) = awaited
            && !self.shared.wait_for(&key, revision, REQUEST_TIMEOUT, true)
        {
            return Err(unavailable(
                "the other agent's change did not arrive from etcd's watch in time",
            ));
        }
        Ok(true)
    }

    fn remote_changes(&self) -> Option<mpsc::UnboundedReceiver<()>> {
        self.remote.lock().expect("not poisoned").take()
    }

    fn take_remote_states(&self) -> Vec<State> {
        let mut m = self.shared.mirror.lock().expect("not poisoned");
        let dirty = std::mem::take(&mut m.dirty);
        dirty
            .iter()
            .filter_map(|scope| m.states.get(scope).cloned())
            .collect()
    }

    /// Stops following etcd, revokes this host's lease (its liveness key goes at once) and
    /// syncs the cache.
    fn close(&self) {
        for task in self.tasks.lock().expect("not poisoned").drain(..) {
            task.abort();
        }
        let lease = self.shared.lease.lock().expect("not poisoned").take();
        if let Some(lease) = lease {
            let mut client = self.client.clone();
            match self.run(async move { client.lease_revoke(lease).await }) {
                Ok(_) => tracing::info!(host = self.shared.host_id, "revoked the host's lease"),
                Err(e) => tracing::warn!(error = %e, "the host's lease could not be revoked"),
            }
        }
        let m = self.shared.mirror.lock().expect("not poisoned");
        if let Err(e) = self.shared.cache.write(&[], m.revision, true) {
            tracing::warn!(error = %e, "the local cache of etcd's records could not be synced");
        }
    }
}

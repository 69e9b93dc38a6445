//! The shared store: etcd (v3), so that several hosts' agents keep one desired state.
//!
//! * Keys: `<prefix>` + the per-resource record keys of `records.rs` (`s/…`, `g/…`, `r/…`,
//!   `i/…`, `p/…`), values the same JSON; `<prefix>h/<host>` is each agent's liveness key,
//!   attached to its lease.
//! * Writes: one transaction per save, conditional on the mod revision of the scope's own
//!   record (`s/<account>/<region>`), which every save writes: a save made on an out-of-date
//!   state (another agent wrote since, or the watch brought a change the agent has not taken
//!   yet) fails as [`StoreError::Conflict`] and changes nothing, so no update is lost.
//! * A mirror of every record with its mod revision is kept in memory; the watch (from the last
//!   revision seen, resumed there after a reconnection, a full re-read after a compaction)
//!   applies other agents' writes to it and hands the scopes they changed to the agent.
//! * The last known state is cached in the redb file of `--state-dir` (with the data-plane
//!   IDs): an agent that starts while etcd is unreachable enforces it and catches up later.
//!
//! The etcd client is asynchronous; it runs on a small runtime of the store's own, and the
//! agent's (synchronous) calls wait for it with a time limit.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, WatchOptions,
};
use tokio::sync::mpsc;

use super::{
    RedbStore, Store, StoreError,
    records::{self, Positions, Write},
};
use crate::{compiler::Ids, model::State};

/// Every key this agent reads and writes starts with it.
const PREFIX: &str = "/firewall-agent/v1/";
/// How long one request to etcd may take before the store reports it unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause between two attempts to reach etcd again.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// The largest answer read (a whole state at start; gRPC's default is 4 MiB).
const MAX_ANSWER: usize = 1 << 30;

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

/// What the store knows of etcd's content.
#[derive(Default)]
struct Mirror {
    /// Record key (without the prefix) → JSON value and its mod revision.
    records: BTreeMap<String, (String, i64)>,
    positions: Positions,
    /// The highest revision applied: the watch resumes after it.
    revision: i64,
    /// The states as last assembled or saved, by `<account>/<region>` (the cache's versions).
    states: BTreeMap<String, State>,
    /// Hosts whose liveness key exists.
    live_hosts: BTreeSet<String>,
    /// Scopes other agents changed since the agent last took them.
    dirty: BTreeSet<String>,
    /// Set when the mirror may miss writes (started from the cache, or the watch's history was
    /// compacted): the next connection re-reads everything.
    stale: bool,
}

struct Shared {
    mirror: Mutex<Mirror>,
    cache: RedbStore,
    host_id: String,
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

/// `<account>/<region>` of a record key (`s/<account>/<region>`, `g/<account>/<region>/…`).
fn scope_of_key(key: &str) -> Option<String> {
    let mut parts = key.splitn(4, '/');
    let _kind = parts.next()?;
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

fn scope_of(state: &State) -> String {
    format!("{}/{}", state.account_id, state.region)
}

impl Shared {
    /// Assembles every scope from the mirror and marks other hosts' instances; the `changed`
    /// scopes (all with `None`) that differ from their last version are cached and marked
    /// dirty. True when there are any.
    fn reassemble(&self, m: &mut Mirror, changed: Option<&BTreeSet<String>>) -> bool {
        let entries = m.records.iter().map(|(k, (v, _))| (k.clone(), v.clone()));
        let (states, positions) = match records::assemble(entries) {
            Ok(assembled) => assembled,
            Err(e) => {
                tracing::error!(error = %e, "a record in etcd is not readable; ignored the change");
                return false;
            }
        };
        m.positions = positions;
        if changed.is_none() {
            // A full read: scopes only the cache knew are not etcd's.
            let held: BTreeSet<String> = states.iter().map(scope_of).collect();
            m.states.retain(|scope, _| held.contains(scope));
        }
        let mut any = false;
        for mut state in states {
            let scope = scope_of(&state);
            if changed.is_some_and(|c| !c.contains(&scope)) {
                continue;
            }
            self.mark(Some(&m.live_hosts), &mut state);
            if m.states.get(&scope) == Some(&state) {
                continue;
            }
            if let Err(e) = self.cache.save(m.states.get(&scope), &state) {
                tracing::warn!(error = %e, "the local cache of the state could not be written");
            }
            m.dirty.insert(scope.clone());
            m.states.insert(scope, state);
            any = true;
        }
        any
    }

    /// Marks the instances other hosts own, and those whose host is gone.
    /// (With `live_hosts` unknown, none is marked gone.)
    fn mark(&self, live_hosts: Option<&BTreeSet<String>>, state: &mut State) {
        for instance in state.instances.values_mut() {
            let host = instance.host.as_deref();
            instance.remote = host.is_some_and(|h| h != self.host_id);
            instance.host_lost =
                host.is_some_and(|h| live_hosts.is_some_and(|live| !live.contains(h)));
        }
    }

    /// Replaces the mirror with a full read (`kvs` at `revision`); true when a scope changed.
    fn replace(&self, kvs: Vec<(String, String, i64)>, revision: i64) -> bool {
        let mut m = self.mirror.lock().expect("not poisoned");
        m.records.clear();
        m.live_hosts.clear();
        for (key, value, rev) in kvs {
            match key.strip_prefix("h/") {
                Some(host) => {
                    m.live_hosts.insert(host.to_string());
                }
                None => {
                    m.records.insert(key, (value, rev));
                }
            }
        }
        m.revision = revision;
        m.stale = false;
        self.reassemble(&mut m, None)
    }

    /// Applies watched events (key without prefix, put?, value, mod revision); the scopes that
    /// changed (see [`Shared::reassemble`]). Events this agent's own saves already applied are
    /// skipped by their revision.
    fn apply(&self, events: Vec<(String, bool, String, i64)>) -> bool {
        let mut m = self.mirror.lock().expect("not poisoned");
        let mut changed = BTreeSet::new();
        let mut hosts_changed = false;
        for (key, put, value, rev) in events {
            m.revision = m.revision.max(rev);
            if let Some(host) = key.strip_prefix("h/") {
                hosts_changed |= if put {
                    m.live_hosts.insert(host.to_string())
                } else {
                    m.live_hosts.remove(host)
                };
                continue;
            }
            let known = m.records.get(&key).map(|(_, r)| *r);
            let newer = if put {
                known.is_none_or(|r| r < rev)
            } else {
                known.is_some_and(|r| r < rev)
            };
            if !newer {
                continue;
            }
            if put {
                m.records.insert(key.clone(), (value, rev));
            } else {
                m.records.remove(&key);
            }
            changed.extend(scope_of_key(&key));
        }
        if hosts_changed {
            return self.reassemble(&mut m, None);
        }
        if changed.is_empty() {
            return false;
        }
        self.reassemble(&mut m, Some(&changed))
    }
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
                mirror: Mutex::default(),
                cache: RedbStore::open(cache)?,
                host_id: options.host_id.clone(),
            }),
            remote: Mutex::new(Some(receiver)),
            sender,
            lease_ttl: options.lease_ttl,
        })
    }

    /// Runs `request` on the store's runtime and waits for it, at most [`REQUEST_TIMEOUT`].
    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime().spawn(async move {
            let _ = tx.send(tokio::time::timeout(REQUEST_TIMEOUT, request).await);
        });
        match rx.recv() {
            Ok(Ok(result)) => result.map_err(refused_or_unavailable),
            Ok(Err(_)) => Err(unavailable("etcd did not answer in time")),
            Err(_) => Err(unavailable("the etcd client stopped")),
        }
    }

    /// Every record under the prefix, and the revision they were read at.
    async fn read_all(
        client: Client,
    ) -> Result<(Vec<(String, String, i64)>, i64), etcd_client::Error> {
        let response = client
            .kv_client()
            .max_decoding_message_size(MAX_ANSWER)
            .get(PREFIX, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let kvs = response
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = kv.key_str().ok()?.strip_prefix(PREFIX)?.to_string();
                Some((key, kv.value_str().ok()?.to_string(), kv.mod_revision()))
            })
            .collect();
        Ok((kvs, revision))
    }

    /// Starts the watch and the lease (on the store's runtime). Remote changes are sent to the
    /// receiver [`Store::remote_changes`] hands out.
    fn start_background(&self) {
        let shared = self.shared.clone();
        let client = self.client.clone();
        let sender = self.sender.clone();
        self.runtime().spawn(watch(shared, client, sender));
        let client = self.client.clone();
        let host = self.shared.host_id.clone();
        self.runtime()
            .spawn(keep_lease(client, host, self.lease_ttl));
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

/// Follows every write under the prefix, from the last revision seen; reconnects after an
/// error (resuming after that revision), re-reads everything when the mirror is stale.
async fn watch(shared: Arc<Shared>, client: Client, sender: mpsc::UnboundedSender<()>) {
    loop {
        let (stale, start) = tokio::task::block_in_place(|| {
            let m = shared.mirror.lock().expect("not poisoned");
            (m.stale, m.revision + 1)
        });
        if stale {
            match EtcdStore::read_all(client.clone()).await {
                Ok((kvs, revision)) => {
                    // The mirror's lock may be held by a save waiting on this runtime.
                    let changed = tokio::task::block_in_place(|| shared.replace(kvs, revision));
                    tracing::info!(revision, "caught up with etcd");
                    if changed && sender.send(()).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "etcd unreachable");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
            continue;
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let mut watcher = client.watch_client().max_decoding_message_size(MAX_ANSWER);
        let mut stream = match watcher.watch(PREFIX, Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "etcd watch not started");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        tracing::info!(from = start, "watching etcd");
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    if response.compact_revision() > 0 || response.canceled() {
                        tracing::warn!("the watch's history was compacted: re-reading etcd");
                        tokio::task::block_in_place(|| {
                            shared.mirror.lock().expect("not poisoned").stale = true;
                        });
                        break;
                    }
                    let events = response
                        .events()
                        .iter()
                        .filter_map(|event| {
                            let kv = event.kv()?;
                            let key = kv.key_str().ok()?.strip_prefix(PREFIX)?.to_string();
                            let put = event.event_type() == EventType::Put;
                            let value = kv.value_str().unwrap_or("").to_string();
                            Some((key, put, value, kv.mod_revision()))
                        })
                        .collect();
                    let changed = tokio::task::block_in_place(|| shared.apply(events));
                    if changed && sender.send(()).is_err() {
                        return;
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::warn!("the etcd watch ended; resuming after the last revision seen");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Keeps this host's liveness key `h/<host>` on a lease of `ttl` seconds, renewed at a third of
/// it; after an outage longer than the lease a new one is granted and the key written again.
async fn keep_lease(mut client: Client, host: String, ttl: i64) {
    let key = format!("{PREFIX}h/{host}");
    let period = Duration::from_millis((ttl.max(1) as u64) * 1000 / 3);
    loop {
        let lease = match client.lease_grant(ttl, None).await {
            Ok(lease) => lease.id(),
            Err(_) => {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        let options = PutOptions::new().with_lease(lease);
        if client.put(key.as_str(), "", Some(options)).await.is_err() {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        let Ok((mut keeper, mut answers)) = client.lease_keep_alive(lease).await else {
            continue;
        };
        loop {
            tokio::time::sleep(period).await;
            let renewal = async {
                keeper.keep_alive().await?;
                answers.message().await
            };
            let renewed = matches!(
                tokio::time::timeout(REQUEST_TIMEOUT, renewal).await,
                Ok(Ok(Some(answer))) if answer.ttl() > 0
            );
            if !renewed {
                tracing::warn!(host, "the host's lease lapsed; registering again");
                break;
            }
        }
    }
}

impl Store for EtcdStore {
    /// The state in etcd; when etcd is unreachable, the cached last known state (the watch then
    /// catches up once etcd answers).
    fn load(&self) -> Result<Vec<State>, StoreError> {
        let cached = self.shared.cache.load()?;
        let states = {
            let mut m = self.shared.mirror.lock().expect("not poisoned");
            m.states = cached.iter().map(|s| (scope_of(s), s.clone())).collect();
            m.stale = true;
            m.states.clone()
        };
        match self.run(EtcdStore::read_all(self.client.clone())) {
            Ok((kvs, revision)) => {
                self.shared.replace(kvs, revision);
                // The agent starts from what this returns.
                self.shared
                    .mirror
                    .lock()
                    .expect("not poisoned")
                    .dirty
                    .clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "etcd is unreachable: enforcing the cached state");
                let mut states: Vec<State> = states.into_values().collect();
                for state in &mut states {
                    // Which hosts are alive is not known yet.
                    self.shared.mark(None, state);
                }
                self.start_background();
                return Ok(states);
            }
        }
        self.start_background();
        let m = self.shared.mirror.lock().expect("not poisoned");
        Ok(m.states.values().cloned().collect())
    }

    fn save(&self, before: Option<&State>, after: &State) -> Result<(), StoreError> {
        let scope_key = format!("s/{}", scope_of(after));
        // Held until the mirror has this save's writes: the watch then skips their events.
        let mut m = self.shared.mirror.lock().expect("not poisoned");
        if m.stale {
            return Err(unavailable(
                "etcd has not been reached since the agent started",
            ));
        }
        if m.dirty.contains(&scope_of(after)) {
            // Another agent's change the agent has not taken yet: `before` is out of date.
            return Err(StoreError::Conflict);
        }
        let expected = m.records.get(&scope_key).map_or(0, |(_, rev)| *rev);
        let changes = records::changes(&m.positions, before, after)?;
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
        let condition =
            Compare::mod_revision(format!("{PREFIX}{scope_key}"), CompareOp::Equal, expected);
        let txn = Txn::new().when([condition]).and_then(operations);
        let mut client = self.client.clone();
        let response = self.run(async move { client.txn(txn).await })?;
        if !response.succeeded() {
            return Err(StoreError::Conflict);
        }
        let revision = response.header().map_or(0, |h| h.revision());
        for write in &changes.writes {
            match write {
                Write::Put(key, value) => {
                    m.records.insert(key.clone(), (value.clone(), revision));
                }
                Write::Delete(key) => {
                    m.records.remove(key);
                }
            }
        }
        m.positions.commit(changes);
        let scope = scope_of(after);
        if let Err(e) = self.shared.cache.save(m.states.get(&scope), after) {
            tracing::warn!(error = %e, "the local cache of the state could not be written");
        }
        m.states.insert(scope, after.clone());
        Ok(())
    }

    fn load_dataplane_ids(&self) -> Result<Option<Ids>, StoreError> {
        self.shared.cache.load_dataplane_ids()
    }

    fn save_dataplane_ids(&self, ids: &Ids) -> Result<(), StoreError> {
        self.shared.cache.save_dataplane_ids(ids)
    }

    fn host_id(&self) -> Option<&str> {
        Some(&self.shared.host_id)
    }

    fn refresh(&self) -> Result<bool, StoreError> {
        let (kvs, revision) = self.run(EtcdStore::read_all(self.client.clone()))?;
        self.shared.replace(kvs, revision);
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
}

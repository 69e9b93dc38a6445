//! The etcd store's background work, on its own runtime: the watch that follows other agents'
//! writes, the paged full read it falls back to, and this host's liveness lease.

use std::{sync::Arc, time::Duration};

use etcd_client::{Client, EventType, GetOptions, PutOptions, WatchOptions};
use tokio::sync::mpsc;

use super::etcd_mirror::{Event, Shared};

/// Every key this agent reads and writes starts with it.
pub(super) const PREFIX: &str = "/firewall-agent/v1/";
/// The pause between two attempts to reach etcd again.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// The largest answer read (gRPC's default is 4 MiB; a watch response holds one transaction).
pub(super) const MAX_ANSWER: usize = 1 << 30;
/// Records per page of a full read: a record is a few hundred bytes, so a page stays well
/// under 1 MiB.
const PAGE: i64 = 2000;
/// How long one request to etcd may take before the store reports it unavailable.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The end of the range of keys under `prefix` (its last byte plus one).
fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("a prefix") += 1;
    end
}

/// Every record under the prefix at one revision (that of the first page), page by page, and
/// that revision.
pub(super) async fn read_paged(client: Client) -> Result<(Vec<Event>, i64), etcd_client::Error> {
    let mut kv = client.kv_client().max_decoding_message_size(MAX_ANSWER);
    let mut start = PREFIX.as_bytes().to_vec();
    let mut revision = 0;
    let mut events = Vec::new();
    loop {
        let mut options = GetOptions::new()
            .with_range(range_end(PREFIX))
            .with_limit(PAGE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let page = kv.get(start.clone(), Some(options)).await?;
        if revision == 0 {
            revision = page.header().map_or(0, |h| h.revision());
        }
        for record in page.kvs() {
            let Some(key) = record.key_str().ok().and_then(|k| k.strip_prefix(PREFIX)) else {
                continue;
            };
            let value = record.value_str().unwrap_or("").to_string();
            events.push((key.to_string(), Some(value), record.mod_revision()));
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok((events, revision)),
        }
    }
}

/// etcd's current revision (one key read).
pub(super) async fn current_revision(client: Client) -> Result<i64, etcd_client::Error> {
    let mut kv = client.kv_client();
    let answer = kv
        .get(
            format!("{PREFIX}s/"),
            Some(GetOptions::new().with_count_only()),
        )
        .await?;
    Ok(answer.header().map_or(0, |h| h.revision()))
}

/// Follows every write under the prefix, from the last revision applied; reconnects after an
/// error (resuming after that revision), reads everything (paged, diffed against the mirror)
/// when the mirror is stale.
pub(super) async fn watch(shared: Arc<Shared>, client: Client, sender: mpsc::UnboundedSender<()>) {
    loop {
        let (stale, start) = tokio::task::block_in_place(|| {
            let m = shared.mirror.lock().expect("not poisoned");
            (m.stale, m.revision + 1)
        });
        if stale {
            match read_paged(client.clone()).await {
                Ok((events, revision)) => {
                    let records = events.len();
                    // The mirror's lock may be held by a save waiting on this runtime.
                    tokio::task::block_in_place(|| {
                        shared.apply(events, revision, true, || {
                            let _ = sender.send(());
                        })
                    });
                    tracing::info!(revision, records, "read etcd whole");
                    if sender.is_closed() {
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
            let message = stream.message().await;
            match message {
                Ok(Some(response)) => {
                    if response.compact_revision() > 0 || response.canceled() {
                        tracing::warn!(
                            compacted = response.compact_revision(),
                            "the watch's history was compacted: reading etcd again"
                        );
                        tokio::task::block_in_place(|| {
                            shared.mirror.lock().expect("not poisoned").stale = true;
                            shared.applied.notify_all();
                        });
                        break;
                    }
                    if response.created() {
                        continue;
                    }
                    let events: Vec<Event> = response
                        .events()
                        .iter()
                        .filter_map(|event| {
                            let kv = event.kv()?;
                            let key = kv.key_str().ok()?.strip_prefix(PREFIX)?.to_string();
                            let value = (event.event_type() == EventType::Put)
                                .then(|| kv.value_str().unwrap_or("").to_string());
                            Some((key, value, kv.mod_revision()))
                        })
                        .collect();
                    // The watch has sent everything up to the newest of them (a watch catching
                    // up sends its history in several responses, each with etcd's current
                    // revision in its header, so that is not a bound).
                    let Some(revision) = events.iter().map(|e| e.2).max() else {
                        continue;
                    };
                    tokio::task::block_in_place(|| {
                        shared.apply(events, revision, false, || {
                            let _ = sender.send(());
                        })
                    });
                    if sender.is_closed() {
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
pub(super) async fn keep_lease(shared: Arc<Shared>, mut client: Client, ttl: i64) {
    let key = format!("{PREFIX}h/{}", shared.host_id);
    let period = Duration::from_millis((ttl.max(1) as u64) * 1000 / 3);
    loop {
        let lease = match client.lease_grant(ttl, None).await {
            Ok(lease) => lease.id(),
            Err(_) => {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        *shared.lease.lock().expect("not poisoned") = Some(lease);
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
                tracing::warn!(
                    host = shared.host_id,
                    "the host's lease lapsed; registering again"
                );
                break;
            }
        }
    }
}

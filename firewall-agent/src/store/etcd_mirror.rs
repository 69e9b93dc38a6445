//! What an agent on etcd knows of etcd's content, kept decoded: every record's mod revision,
//! the states the records make, the live hosts. A watched event updates the records it names
//! and the objects they hold (`patch.rs`), writes those records to the cache, and marks the
//! scopes it changed for the agent; nothing is re-read or re-assembled whole. A full read (no
//! cache, or the watch's history compacted) is diffed against the mirror: a record whose mod
//! revision it already has costs nothing.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Condvar, Mutex},
    time::Duration,
};

use super::{
    StoreError,
    etcd_cache::{CachedWrite, EtcdCache},
    patch::{self, RecordWrite},
};
use crate::model::{Instance, State, TableExt};

/// One watched or read record: key (without the prefix), value (`None`: deleted), mod
/// revision.
pub(super) type Event = (String, Option<String>, i64);

#[derive(Default)]
pub(super) struct Mirror {
    /// Record key → mod revision, liveness keys (`h/<host>`) included.
    pub revisions: HashMap<String, i64>,
    /// Records deleted at a revision the watch has not passed yet (by this agent's saves, or
    /// watched): an older put of theirs still to come (the agent's own, on its way through
    /// the watch, or in a full read at an older revision) is not applied again.
    pub tombstones: HashMap<String, i64>,
    /// Every event up to it is applied: the watch resumes after it.
    pub revision: i64,
    /// The states the records make, by `<account>/<region>`.
    pub states: BTreeMap<String, State>,
    pub live_hosts: BTreeSet<String>,
    /// Scopes other agents changed since the agent last took them.
    pub dirty: BTreeSet<String>,
    /// Set while the mirror may miss writes it cannot get from the watch (nothing cached, or
    /// the watch's history compacted): the next connection reads everything.
    pub stale: bool,
}

pub(super) struct Shared {
    pub mirror: Mutex<Mirror>,
    /// Notified whenever events are applied (a save that lost a race waits on it).
    pub applied: Condvar,
    pub cache: EtcdCache,
    /// Taken before the mirror's lock is released and held through a cache write, so the cache
    /// is written in the mirror's order while the agent already reads the mirror.
    pub cache_order: Mutex<()>,
    pub host_id: String,
    /// This host's lease, once granted (revoked when the agent stops).
    pub lease: Mutex<Option<i64>>,
}

impl Shared {
    /// Marks the instances other hosts own, and those whose host is gone (with `live_hosts`
    /// unknown, none is marked gone); true when a mark changed.
    pub fn mark(&self, live_hosts: Option<&BTreeSet<String>>, state: &mut State) -> bool {
        let marks = |instance: &Instance| {
            let host = instance.host.as_deref();
            let remote = host.is_some_and(|h| h != self.host_id);
            let lost = host.is_some_and(|h| live_hosts.is_some_and(|live| !live.contains(h)));
            (remote, lost)
        };
        let mut changed = false;
        state.instances.edit_where(
            |instance| marks(instance) != (instance.remote, instance.host_lost),
            |instance| {
                (instance.remote, instance.host_lost) = marks(instance);
                changed = true;
            },
        );
        changed
    }

    /// Applies `events` at `revision` (etcd's revision when they were read or watched); when
    /// a scope changed for the agent, calls `changed` once the mirror is free to read (before
    /// the records go to the cache). Events this agent's own saves already applied are skipped
    /// by their mod revision. `whole`: the events are a full read, and a record the mirror has
    /// that they lack was deleted.
    pub fn apply(&self, events: Vec<Event>, revision: i64, whole: bool, changed: impl FnOnce()) {
        let mut m = self.mirror.lock().expect("not poisoned");
        let mut writes: Vec<RecordWrite> = Vec::new();
        let mut cached: Vec<CachedWrite> = Vec::new();
        let mut hosts_changed = false;
        let mut seen = BTreeSet::new();
        for (key, value, rev) in events {
            if whole {
                seen.insert(key.clone());
            }
            let known = m.revisions.get(&key).copied();
            let newer = match value {
                Some(_) => known
                    .or_else(|| m.tombstones.get(&key).copied())
                    .is_none_or(|r| r < rev),
                None => known.is_some_and(|r| r < rev),
            };
            if !newer {
                continue;
            }
            match &value {
                Some(_) => {
                    m.tombstones.remove(&key);
                    m.revisions.insert(key.clone(), rev);
                }
                None => {
                    m.revisions.remove(&key);
                    m.tombstones.insert(key.clone(), rev);
                }
            }
            cached.push((key.clone(), value.clone().map(|v| (v, rev))));
            if let Some(host) = key.strip_prefix("h/") {
                hosts_changed |= match value {
                    Some(_) => m.live_hosts.insert(host.to_string()),
                    None => m.live_hosts.remove(host),
                };
                continue;
            }
            writes.push((key, value));
        }
        if whole {
            // Not in the read: deleted, unless written after the read's revision.
            let gone: Vec<String> = m
                .revisions
                .iter()
                .filter(|(k, r)| !seen.contains(*k) && **r <= revision)
                .map(|(k, _)| k.clone())
                .collect();
            for key in gone {
                m.revisions.remove(&key);
                cached.push((key.clone(), None));
                match key.strip_prefix("h/") {
                    Some(host) => hosts_changed |= m.live_hosts.remove(host),
                    None => writes.push((key, None)),
                }
            }
            m.stale = false;
        }
        m.revision = m.revision.max(revision);
        let passed = m.revision;
        m.tombstones.retain(|_, r| *r > passed);
        let any = self.patch(&mut m, writes, hosts_changed);
        self.applied.notify_all();
        let revision = m.revision;
        let order = self.cache_order.lock().expect("not poisoned");
        drop(m);
        if any {
            changed();
        }
        self.write_cache(order, &cached, revision);
    }

    /// Writes records to the cache in the mirror's order (`order` was taken under its lock).
    pub fn write_cache(
        &self,
        order: std::sync::MutexGuard<'_, ()>,
        cached: &[CachedWrite],
        revision: i64,
    ) {
        if let Err(e) = self.cache.write(cached, revision, false) {
            tracing::warn!(error = %e, "the local cache of etcd's records could not be written");
        }
        drop(order);
    }

    /// Applies record writes to the states and marks what changed dirty; true when any did.
    fn patch(&self, m: &mut Mirror, writes: Vec<RecordWrite>, hosts_changed: bool) -> bool {
        let mut changed = match patch::apply(&mut m.states, writes) {
            Ok(changed) => changed,
            Err(e) => {
                tracing::error!(error = %e, "a record in etcd is not readable; reading etcd again");
                m.stale = true;
                return false;
            }
        };
        let live = m.live_hosts.clone();
        for (scope, state) in &mut m.states {
            // Marks follow the records and liveness (a host came or went).
            if (hosts_changed || changed.contains(scope)) && self.mark(Some(&live), state) {
                changed.insert(scope.clone());
            }
        }
        let any = !changed.is_empty();
        m.dirty.extend(changed);
        any
    }

    /// Starts the mirror from the cache: its records, enforced at once; `false` when nothing
    /// was cached (the mirror is then stale).
    pub fn load_cache(&self) -> Result<bool, StoreError> {
        let Some((records, revision)) = self.cache.load()? else {
            self.mirror.lock().expect("not poisoned").stale = true;
            return Ok(false);
        };
        let mut m = self.mirror.lock().expect("not poisoned");
        let mut writes = Vec::new();
        for (key, value, rev) in records {
            m.revisions.insert(key.clone(), rev);
            match key.strip_prefix("h/") {
                Some(host) => {
                    m.live_hosts.insert(host.to_string());
                }
                None => writes.push((key, Some(value))),
            }
        }
        patch::apply(&mut m.states, writes)?;
        m.revision = revision;
        for state in m.states.values_mut() {
            // Which hosts are alive is not known until the watch catches up.
            self.mark(None, state);
        }
        Ok(true)
    }

    /// Waits until the mirror has `key` at `revision` or later (0: until it has no `key`), as
    /// the watch (or a full read) brings it, at most `timeout`, or until the mirror is found
    /// stale when `until_stale`; false when it did not come.
    pub fn wait_for(&self, key: &str, revision: i64, timeout: Duration, until_stale: bool) -> bool {
        let arrived = |m: &Mirror| match m.revisions.get(key) {
            Some(r) => revision > 0 && *r >= revision,
            None => revision == 0,
        };
        let m = self.mirror.lock().expect("not poisoned");
        let (m, _) = self
            .applied
            .wait_timeout_while(m, timeout, |m| !(arrived(m) || until_stale && m.stale))
            .expect("not poisoned");
        arrived(&m)
    }
}

#[cfg(test)]
#[path = "etcd_mirror_tests.rs"]
mod tests;

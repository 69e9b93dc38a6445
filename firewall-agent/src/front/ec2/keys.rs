//! The keys the EC2 endpoint and the console accept, reloaded while the agent runs: on SIGHUP
//! (`systemctl reload firewall-agent`) and when the credentials file changes (its modification
//! time, size or inode: an editor's rename counts too). Every request reads the keys in force
//! at that moment, so a removed key is refused from the reload on, and so is a rotated key's old
//! secret; console sessions check their key at each request ([`Keys::still_valid`]), so those of
//! a removed or rotated key end at once. A file that no longer parses keeps the keys in force
//! (and says why in the log): a typo must not lock every client out.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use super::credentials::{Credentials, CredentialsError};

/// The file's identity as far as a change goes: inode, size, modification time.
type Stamp = (u64, u64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()))
}

/// The keys in force, shared by the front ends (cheap to clone).
#[derive(Clone)]
pub struct Keys {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    current: RwLock<Arc<Credentials>>,
    loaded: Mutex<Option<Stamp>>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Access keys that are new.
    pub added: Vec<String>,
    /// Access keys gone from the file.
    pub removed: Vec<String>,
    /// Access keys whose secret or account changed.
    pub changed: Vec<String>,
}

impl Keys {
    /// The keys `credentials`, read from `path` (which later reloads read again).
    pub fn new(credentials: Credentials, path: &Path) -> Keys {
        Keys {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                current: RwLock::new(Arc::new(credentials)),
                loaded: Mutex::new(stamp(path)),
            }),
        }
    }

    /// The keys in force now.
    pub fn get(&self) -> Arc<Credentials> {
        self.inner.current.read().expect("keys lock").clone()
    }

    /// The credentials file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Reads the file again and puts its keys in force; on an error the keys stay as they were.
    pub fn reload(&self) -> Result<Reloaded, CredentialsError> {
        // Recorded whether or not it parses: a file that stays broken is reported once, not at
        // every look.
        *self.inner.loaded.lock().expect("keys lock") = stamp(&self.inner.path);
        let new = Credentials::load(&self.inner.path)?;
        let old = std::mem::replace(
            &mut *self.inner.current.write().expect("keys lock"),
            Arc::new(new.clone()),
        );
        let mut reloaded = Reloaded::default();
        for key in new.access_keys() {
            match old.key(key) {
                None => reloaded.added.push(key.to_string()),
                Some(was) if Some(was) != new.key(key) => reloaded.changed.push(key.to_string()),
                Some(_) => {}
            }
        }
        for key in old.access_keys() {
            if new.key(key).is_none() {
                reloaded.removed.push(key.to_string());
            }
        }
        for list in [
            &mut reloaded.added,
            &mut reloaded.removed,
            &mut reloaded.changed,
        ] {
            list.sort();
        }
        Ok(reloaded)
    }

    /// [`Keys::reload`] if the file changed since the keys in force were read.
    pub fn reload_if_changed(&self) -> Option<Result<Reloaded, CredentialsError>> {
        let now = stamp(&self.inner.path);
        if now.is_none() || now == *self.inner.loaded.lock().expect("keys lock") {
            return None;
        }
        Some(self.reload())
    }

    /// A fingerprint of `access_key`'s secret and account as they are now (for a session to
    /// remember which version of its key it signed in with), if the key is in force.
    pub fn fingerprint(&self, access_key: &str) -> Option<[u8; 32]> {
        self.get().key(access_key).map(|key| key.fingerprint())
    }

    /// Whether `access_key` is still in force with the secret and account of `fingerprint`.
    pub fn still_valid(&self, access_key: &str, fingerprint: &[u8; 32]) -> bool {
        self.fingerprint(access_key)
            .is_some_and(|now| &now == fingerprint)
    }
}

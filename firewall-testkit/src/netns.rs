//! Network namespaces: named ones deleted on drop (also when a test panics), threads that enter
//! them, and private unnamed ones for a single thread (the packet tests and benchmark sections).

use std::{os::fd::AsRawFd as _, process::Command, thread::JoinHandle};

use crate::shell::{ns_sh, sh, unique};

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A namespace named `prefix` + a unique suffix, its `lo` up and no duplicate address
    /// detection (interfaces created later are usable at once).
    pub fn new(prefix: &str) -> Netns {
        Self::named(&unique(prefix))
    }

    /// A namespace named exactly `name` (which must be free), set up like [`Netns::new`]'s.
    pub fn named(name: &str) -> Netns {
        let name = name.to_string();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns_sh(&ns.name, &["ip", "link", "set", "lo", "up"]);
        ns_sh(
            &ns.name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ],
        );
        ns
    }

    /// Takes charge of an existing namespace (one the agent built): deleted on drop like ours.
    pub fn adopt(name: &str) -> Netns {
        Netns { name: name.into() }
    }

    /// Whether the namespace still exists.
    pub fn exists(&self) -> bool {
        std::path::Path::new("/run/netns").join(&self.name).exists()
    }

    /// Runs `f` on a thread that has entered this namespace; sockets it creates stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("thread in namespace panicked")
    }

    /// Like [`Netns::run`] but returns at once; the thread keeps running.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.exists() {
            return; // an adopted one its owner already removed
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `f` on a thread inside a fresh, unnamed network namespace (gone when the thread ends),
/// and returns what it returns.
pub fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: affects only this thread, which never returns to the caller's namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) (needs root): {}",
            std::io::Error::last_os_error()
        );
        f()
    })
    .join()
    .expect("thread in a private namespace")
}

/// Runs `ip` in the calling thread's (private) network namespace.
pub fn ip_here(args: &[&str]) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let netns = format!("--net=/proc/{}/task/{tid}/ns/net", std::process::id());
    let status = Command::new("nsenter")
        .arg(&netns)
        .arg("ip")
        .args(args)
        .status()
        .expect("nsenter");
    assert!(status.success(), "ip {args:?}");
}

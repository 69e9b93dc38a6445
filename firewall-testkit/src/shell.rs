//! Names unique to a test, and running commands (in the caller's namespace or inside a named
//! one), panicking with the command's stderr when it fails.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

/// A short name unique to this process and call, usable in interface names (≤ 15 bytes).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:04x}{n:x}", std::process::id() & 0xffff)
}

/// Runs a command, panics with its stderr when it fails, and returns its stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command inside a named namespace (see [`sh`]).
pub fn ns_sh(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    sh(&all)
}

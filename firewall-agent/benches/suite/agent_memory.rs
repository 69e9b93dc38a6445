//! B8, the agent's side: what each of the agent's structures keeps per rule, counted by the
//! suite's allocator (bytes live after a structure is built, less those live before; exact and
//! repeatable, unlike RSS). The state of `rules` generated rules (5 groups on 4 workloads), the
//! incremental compiler built on it, the data plane's copy of what the maps hold, the store's
//! records on a real redb file, and the states read back from it with redb's page cache.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::BTreeMap,
    net::Ipv4Addr,
    sync::atomic::{AtomicIsize, Ordering},
    time::Instant,
};

use firewall_agent::{
    compiler::{Ids, Incremental},
    store::{RedbStore, Store as _},
};

use crate::{
    common::{WorkloadSpec, build_state},
    report::Report,
};

/// The system allocator, counting the bytes it has handed out and not had back.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as `GlobalAlloc::realloc` requires, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes live now.
fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// What `build` returns and the bytes it keeps live.
fn kept<T>(build: impl FnOnce() -> T) -> (T, f64) {
    let before = live();
    let value = build();
    (value, (live() - before) as f64)
}

pub fn run(report: &mut Report) {
    for rules in [10_000, 100_000] {
        let workloads: Vec<WorkloadSpec> = (0..4)
            .map(|i| WorkloadSpec {
                interface: "lo",
                ip: Ipv4Addr::new(172, 31, 0, 10 + i),
                ip6: None,
            })
            .collect();
        let (state, state_bytes) = kept(|| build_state(rules, 42, &workloads));
        let stored_rules: usize = state
            .groups
            .values()
            .map(|g| g.ingress.len() + g.egress.len())
            .sum();
        let states = BTreeMap::from([(state.scope(), state.clone())]);
        let started = Instant::now();
        let (compiler, compiler_bytes) = kept(|| Incremental::new(&states, Ids::default()));
        let first_compile = started.elapsed();
        // A restart's: the same state with the IDs the first compile assigned.
        let saved = compiler.ids().clone();
        let started = Instant::now();
        drop(Incremental::new(&states, saved));
        let restart_compile = started.elapsed();
        let (copy, copy_bytes) = kept(|| compiler.desired().clone());
        let dir = std::env::temp_dir().join(format!("fw-bench-memory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("state.redb");
        {
            let store = RedbStore::open(&path).expect("open");
            store.save(None, &state).expect("save");
        }
        let file = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64;
        let started = Instant::now();
        let ((store, loaded), read_bytes) = kept(|| {
            let store = RedbStore::open(&path).expect("open");
            let loaded = store.load().expect("load");
            (store, loaded)
        });
        let read = started.elapsed();
        // What the read keeps beside the states it returns (what dropping them frees): redb's
        // page cache.
        let before_drop = live();
        drop(loaded);
        let cache_bytes = read_bytes - (before_drop - live()) as f64;
        let per_rule = |bytes: f64| bytes / stored_rules as f64;
        for (what, bytes) in [
            ("state (groups, rules, instances)", state_bytes),
            (
                "incremental compiler (index, IDs, what it compiled)",
                compiler_bytes,
            ),
            ("the data plane's copy of what the maps hold", copy_bytes),
            ("store: redb's page cache after the first read", cache_bytes),
            ("store: the redb file on disk", file),
        ] {
            report.row(
                "B8 agent memory",
                format!("{what} at {rules} rules, per rule"),
                "–",
                per_rule(bytes),
                "B",
                None,
            );
        }
        report.row(
            "B8 agent memory",
            format!("the above, less the file, at {rules} rules"),
            "≤ 100 MiB at 100k",
            (state_bytes + compiler_bytes + copy_bytes + cache_bytes) / (1024.0 * 1024.0),
            "MiB",
            None,
        );
        for (what, took) in [
            ("the whole compile of a first start", first_compile),
            (
                "the whole compile of a restart (saved IDs)",
                restart_compile,
            ),
            ("the store read and decoded (redb)", read),
        ] {
            report.row(
                "B8 agent start",
                format!("{what} at {rules} rules, in process"),
                "–",
                took.as_secs_f64() * 1e3,
                "ms",
                None,
            );
        }
        drop((store, copy, compiler, states, state));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

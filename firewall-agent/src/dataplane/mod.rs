//! The kernel side. [`Dataplane`] is what the agent needs of it; [`KernelDataplane`] does it
//! through aya (loads the embedded eBPF object, attaches its programs to each workload's
//! host-side veth with tcx, falling back to netlink `clsact`, or XDP for what the workload sends, writes the compiler's map contents
//! as a make-before-break diff, garbage-collects expired conntrack entries), [`MemoryDataplane`]
//! keeps the same entries in memory, for tests without root.
//!
//! One module per concern: `load` (object, maps, options), `maps` (the typed map handles),
//! `pins` (pinning, takeover), `owner` (whose network namespace the pins are), `migrate` (taking
//! over the previous map layout's pins), `attach`
//! (tcx / clsact / XDP), `apply` (the diff), `readback` (the maps read back and compared),
//! `conntrack`, `counters`.

use std::{io, path::PathBuf};

use aya::{maps::MapError, programs::ProgramError};

use firewall_common::{CtKey, CtValue};

use crate::compiler::{Delta, Desired, RuleSlots};

mod apply;
mod attach;
mod batch;
mod bpffs;
mod compare;
mod conntrack;
mod counters;
mod kernel;
mod load;
mod lookup;
mod maps;
mod memory;
#[cfg(not(feature = "previous-layout"))]
mod migrate;
mod owner;
mod pins;
mod readback;

pub use attach::{AttachMode, ifindex};
pub use bpffs::{leave_private_mount_namespace, pin_dir};
pub use counters::{Counters, InterfaceCounters, RawCounters};
pub use kernel::KernelDataplane;
pub use load::{EBPF_OBJECT, LoadOptions};
pub use lookup::{Answer, Probe, TrackedFlow};
pub use memory::MemoryDataplane;
/// A tracked inbound TCP flow, as the kernel records it, for tests.
#[cfg(test)]
pub(crate) use memory::tests::inbound_tcp;
pub use readback::differences;

/// [`Dataplane::flow_counter`]'s count, to run later on any thread.
pub type FlowCounter = Box<dyn FnOnce() -> usize + Send>;

/// What the agent needs of the data plane.
pub trait Dataplane: Send {
    /// Makes the maps hold `desired`: new port sets, then peers, then interfaces (attaching new
    /// ones), and only then deletes what is no longer wanted, so no packet ever meets a
    /// half-applied change. An interface that cannot be enforced does not stop the others; the
    /// first such error is returned.
    fn apply(&mut self, desired: &Desired) -> Result<()>;

    /// Writes the change the incremental compiler worked out against what the maps hold (the
    /// last `desired` applied), in the same order as [`Dataplane::apply`].
    fn apply_delta(&mut self, delta: &Delta) -> Result<()>;

    /// Deletes the tracked flows on enforced workloads that `desired` would not admit as new
    /// flows (the explicit "cut what the change no longer allows"; AWS itself keeps them).
    /// Returns how many.
    fn flush_disallowed_flows(&mut self, desired: &Desired) -> Result<usize>;

    /// Removes expired conntrack entries (the kernel only expires entries it meets again);
    /// returns how many.
    fn collect_expired_flows(&mut self) -> Result<usize>;

    /// Whether tracked flows of stopped or detached workloads wait to be deleted (see
    /// [`Dataplane::flush_queued_flows`]).
    fn flows_queued(&self) -> bool {
        false
    }

    /// Deletes the tracked flows of the workloads a change stopped or detached. A change only
    /// queues them: the interface drops all traffic (stopped) or meets no program (detached)
    /// from the change on, so no packet reads those entries, and reading `CONNTRACK` through
    /// (one `BPF_MAP_GET_NEXT_KEY` walks every bucket of a 2^18-bucket table even when it is
    /// empty) is left to the agent's next turn, after the answer. Every change, flush and
    /// collection deletes what is queued first, so a workload started again never finds its
    /// old flows. Returns how many were deleted.
    fn flush_queued_flows(&mut self) -> Result<usize> {
        Ok(0)
    }

    /// What the policy maps (`IFACES`, `PEERS`, `PORTS`) hold, read back now: for comparing with
    /// what the state compiles to. Rule slots are left empty.
    fn read_back(&self) -> Result<Desired>;

    /// The tracked flows [`Dataplane::flush_disallowed_flows`] would delete for `desired`,
    /// deleting none.
    fn disallowed_flows(&self, desired: &Desired) -> Result<Vec<TrackedFlow>>;

    /// What the maps decide for `probe` on `interface`, in the programs' order: its `IFACES`
    /// slot, a live `CONNTRACK` entry, then the `PEERS`/`PORTS` lookups.
    fn lookup(&self, interface: &str, probe: &Probe) -> Result<Answer>;

    /// The `sgr-` rule a hit-counter slot counts for.
    fn rule_of_slot(&self, slot: u32) -> Option<String>;

    /// Number of conntrack entries.
    fn tracked_flows(&self) -> usize;

    /// Counts the conntrack entries when called, from any thread. Counting walks the table
    /// (one `BPF_MAP_GET_NEXT_KEY` per entry, and every bucket), so a scrape runs it after
    /// letting the agent go.
    fn flow_counter(&self) -> FlowCounter {
        let flows = self.tracked_flows();
        Box::new(move || flows)
    }

    /// How many entries the conntrack table holds at most.
    fn conntrack_capacity(&self) -> u32;

    /// Whether an interface called `name` exists where the data plane attaches (the agent's
    /// network namespace): a workload can only be enforced on an interface that exists.
    fn has_interface(&self, name: &str) -> bool;

    /// Drop, pass and rule-hit counters summed over CPUs, the hits still by slot (with the
    /// slots' rules, taken in O(1)): what a scrape reads under the agent's lock.
    fn raw_counters(&self) -> Result<RawCounters>;

    /// Drop, pass and rule-hit counters summed over CPUs, each rule's hits by its ID.
    fn counters(&self) -> Result<Counters> {
        Ok(self.raw_counters()?.named())
    }

    /// Whether this data plane took over maps and links pinned by a previous agent.
    fn restored(&self) -> bool;

    /// The highest policy and port-set IDs in the maps (new IDs must start above them).
    fn highest_ids(&self) -> (u32, u32);

    /// Tells the data plane which rule each hit-counter slot already counts for (after a
    /// restart), so those counters are kept rather than reset.
    fn assume_rule_slots(&mut self, slots: RuleSlots);

    /// The kernel's flow-log event ring buffer, once (for the flow-log writer); `None` after, or
    /// without a kernel.
    fn take_flow_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        None
    }

    /// Flow-log events the kernel could not queue (the ring buffer was full), summed over CPUs.
    fn flow_log_lost(&self) -> u64 {
        0
    }

    /// The conntrack entry of `key` as the kernel holds it now (its per-flow counters).
    fn tracked_flow(&self, _key: &CtKey) -> Option<CtValue> {
        None
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock of the kernel's timestamps.
pub fn monotonic_ns() -> u64 {
    conntrack::monotonic_ns()
}

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the eBPF object failed")]
    Load(#[from] aya::EbpfError),
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map {name} is missing from the eBPF object")]
    MissingMap { name: &'static str },
    #[error("map {name}: batch stopped after {done} elements: {source}")]
    Batch {
        name: &'static str,
        done: usize,
        #[source]
        source: io::Error,
    },
    #[error("interface {name}: {source}")]
    Interface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("bpffs at {path}: {source}")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pinning {path}: {message}")]
    Pin { path: PathBuf, message: String },
}

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// Programs by direction, for tests that run them through `BPF_PROG_TEST_RUN`.
pub mod programs {
    /// Sees packets delivered to the workload (attached at tc egress of the host veth).
    pub const TO_WORKLOAD: &str = "sg_to_workload";
    /// Sees packets the workload sends (attached at tc ingress of the host veth).
    pub const FROM_WORKLOAD: &str = "sg_from_workload";
    /// The same program at the host veth's XDP hook (`--attach xdp`).
    pub const FROM_WORKLOAD_XDP: &str = "sg_from_workload_xdp";
}

//! The security-group data plane: one TC program per direction on each workload's host-side veth
//! (or, with `--attach xdp`, an XDP program for what the workload sends).
//!
//! Path of a packet: parse (`parse`) → traffic AWS never filters passes → conntrack hit passes
//! (`conntrack`) → policy lookup (`compose` walks the workload's chains, `policy` looks in one)
//! → a new allowed flow is tracked. Every decision is counted by reason in `PASSES` / `DROPS`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod bench;
#[cfg(all(target_arch = "bpf", not(feature = "previous-layout")))]
mod compose;
#[cfg(target_arch = "bpf")]
mod conntrack;
#[cfg(target_arch = "bpf")]
mod flowlog;
#[cfg(target_arch = "bpf")]
mod frame;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod policy;
#[cfg(target_arch = "bpf")]
mod program;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

//! Compiles the desired state into what enforces it (pure, no I/O), in two stages:
//!
//! * the front end, [`resolve`], turns the state into policies: per distinct set of attached
//!   groups and per direction, the peer prefixes with what each rule allows of them;
//! * the back ends consume those policies: [`ebpf`] into the exact contents of the data plane's
//!   maps ([`compile`], with stable [`Ids`]), [`nft`] into an nftables ruleset; [`evaluate`]
//!   mirrors the kernel's lookups on compiled map contents;
//! * [`Incremental`] keeps the eBPF back end's output and recompiles, per change, only what the
//!   change touches, giving the map writes ([`Delta`]); the whole compile is its reference.

pub mod ebpf;
mod evaluate;
mod ids_records;
mod incremental;
pub mod nft;
mod prefixes;
pub mod resolve;
#[cfg(test)]
mod tests;

pub use ebpf::{Desired, Ids, LpmKey, RuleSlots, compile, range_to_prefixes};
pub use evaluate::{PolicyLookup, evaluate};
pub use ids_records::IdRecord;
pub use incremental::Incremental;
pub use prefixes::Delta;

//! Map layout versions. Pinned maps live under `v<VERSION>/`: an agent never opens maps pinned
//! by a layout it does not know. [`previous`] describes the layout before this one and its
//! conversion, so an agent of this layout can take over from an agent of the previous one
//! (make-before-break, in the agent's `dataplane/migrate.rs`).
//!
//! Changing a persistent map's key or value layout:
//! 1. describe in [`previous`] what changes (the types as they are now, or the map that is
//!    new), its [`previous::VERSION`] the current [`VERSION`], and how `upgrade` converts it;
//! 2. change the types in the crate root and bump [`VERSION`];
//! 3. the feature `previous-layout` builds the data plane and the agent of [`previous`]'s
//!    layout (the upgrade test's starting point, `tests/tests/upgrade.rs`).

/// The layout of the maps this build creates and reads.
#[cfg(not(feature = "previous-layout"))]
pub const VERSION: u32 = 5;
#[cfg(feature = "previous-layout")]
pub const VERSION: u32 = previous::VERSION;

/// Whether policies compose per-group chains through `POLICIES` (layout 5). Without it (layout
/// 4), a policy is one chain of its own: `IfaceConfig::policy_id` is the `PEERS` key's ID and
/// the chain holds the rules of all its groups.
pub const COMPOSED: bool = cfg!(not(feature = "previous-layout"));

/// Layout 4, the one before [`VERSION`] 5: no `POLICIES` map. A policy (a set of attached
/// groups) was compiled whole into `PEERS` under its own ID, the one in `IFACES`; every other
/// map has the same key and value types.
pub mod previous {
    use crate::{POLICY_CHAINS, PolicyValue};

    pub const VERSION: u32 = 4;

    /// The `POLICIES` entry that makes a layout-4 policy enforce as before: a composition of
    /// one chain, its own `PEERS` entries.
    pub const fn upgrade(policy_id: u32) -> PolicyValue {
        let mut chains = [0; POLICY_CHAINS];
        chains[0] = policy_id;
        PolicyValue { chains }
    }
}

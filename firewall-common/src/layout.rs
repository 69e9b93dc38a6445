//! Map layout versions. Pinned maps live under `v<VERSION>/`: an agent never opens maps pinned
//! by a layout it does not know. [`previous`] keeps the types of the layout before this one and
//! their conversion, so an agent of this layout can take over from an agent of the previous
//! one (make-before-break, in the agent's `dataplane/migrate.rs`).
//!
//! Changing a persistent map's key or value layout:
//! 1. replace [`previous`]'s types with the ones being changed (as they are now), its
//!    [`previous::VERSION`] with the current [`VERSION`], and make `upgrade` convert them;
//! 2. change the types in the crate root and bump [`VERSION`];
//! 3. the feature `previous-layout` builds the data plane and the agent with [`previous`]'s
//!    types and version (the upgrade test's starting point, `tests/tests/upgrade.rs`).

/// The layout of the maps this build creates and reads.
#[cfg(not(feature = "previous-layout"))]
pub const VERSION: u32 = 4;
#[cfg(feature = "previous-layout")]
pub const VERSION: u32 = previous::VERSION;

/// Layout 3, the one before [`VERSION`] 4: `CONNTRACK` values without per-flow counters. Every
/// other map is unchanged (same key and value types).
pub mod previous {
    use crate::Direction;

    pub const VERSION: u32 = 3;

    /// Layout 3's connection-tracking value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    pub struct CtValue {
        /// `bpf_ktime_get_coarse_ns()` of the last packet.
        pub last_seen_ns: u64,
        /// Which normalised endpoint opened the flow: 0 = `lo`, 1 = `hi`.
        pub origin_is_hi: u8,
        /// [`Direction`] of the packet that opened the flow, as its `u8`.
        pub origin_direction: u8,
        /// One of [`crate::ct_state`].
        pub state: u8,
        /// [`crate::CT_FLAG_REPLIED`], [`crate::CT_FLAG_STREAM`].
        pub flags: u8,
        pub _pad: [u8; 4],
    }
    const _: () = assert!(core::mem::size_of::<CtValue>() == 16);

    /// The same constructor and counting as the current value; layout 3 counts nothing.
    impl CtValue {
        #[inline(always)]
        pub const fn opened(
            now_ns: u64,
            origin_is_hi: bool,
            origin_direction: Direction,
            state: u8,
            _len: u32,
            _tcp_flags: u8,
        ) -> CtValue {
            CtValue {
                last_seen_ns: now_ns,
                origin_is_hi: origin_is_hi as u8,
                origin_direction: origin_direction.as_u8(),
                state,
                flags: 0,
                _pad: [0; 4],
            }
        }

        #[inline(always)]
        pub fn count(&mut self, _is_reply: bool, _len: u32, _tcp_flags: u8) {}
    }

    /// A layout-3 entry as a current one: its counters start at zero at the upgrade.
    #[cfg(not(feature = "previous-layout"))]
    pub const fn upgrade(old: &CtValue) -> crate::CtValue {
        let CtValue {
            last_seen_ns,
            origin_is_hi,
            origin_direction,
            state,
            flags,
            _pad,
        } = *old;
        crate::CtValue {
            last_seen_ns,
            origin_is_hi,
            origin_direction,
            state,
            flags,
            tcp_flags: [0; 2],
            _pad: [0; 2],
            packets: [0; 2],
            bytes: [0; 2],
        }
    }

    #[cfg(feature = "user")]
    // SAFETY: #[repr(C)] with no implicit padding (size asserted above).
    unsafe impl aya::Pod for CtValue {}
}

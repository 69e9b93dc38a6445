//! A policy composes chains (layout 5): `POLICIES[policy_id]` lists the `PEERS` chains of the
//! workload's attached groups, and a packet is allowed when one of them allows it.
//!
//! The walk over the chains is a `bpf_loop` (kernel ≥ 5.17) whose callback looks in one chain:
//! the verifier checks that callback once per call site, where an inlined loop over
//! [`POLICY_CHAINS`] chains of up to 8 port sets each exceeds its budget of one million
//! instructions. The callback reads the packet and the policy through pointers kept on the
//! caller's stack (the verifier keeps spilled pointer types there).

use aya_ebpf::{cty::c_void, helpers::generated::bpf_loop, macros::map, maps::HashMap};
use firewall_common::{Direction, POLICY_CHAINS, PolicyValue, capacity};

use crate::{
    parse::Packet,
    policy::{self, ZeroRules},
};

/// The chains each policy composes, by the `policy_id` of `IFACES`.
#[map]
static POLICIES: HashMap<u32, PolicyValue> = HashMap::with_max_entries(capacity::POLICIES, 0);

/// What one walk reads and answers; lives on the caller's stack.
#[repr(C)]
struct Walk {
    pkt: *const Packet,
    policy: *const PolicyValue,
    /// [`Direction`] as its `u8`.
    dir: u8,
    /// A chain allowed the packet: `slot` is its rule's counter.
    found: bool,
    _pad: [u8; 2],
    slot: u32,
    zero: ZeroRules,
}

/// `bpf_loop`'s callback answers 0 to go on with the next index, 1 to stop.
const NEXT: i64 = 0;
const STOP: i64 = 1;

/// The rule slot of the first chain of the policy that allows the packet, if any.
#[inline(always)]
pub fn first_allowing(policy_id: u32, dir: Direction, pkt: &Packet) -> Option<u32> {
    let mut walk = walk(policy_id, dir, pkt)?;
    run(&mut walk, allow_step);
    walk.found.then_some(walk.slot)
}

/// What the `/0` rules of every chain of the policy allow of the packet.
#[inline(always)]
pub fn zero_rules(policy_id: u32, dir: Direction, pkt: &Packet) -> ZeroRules {
    match walk(policy_id, dir, pkt) {
        Some(mut walk) => {
            run(&mut walk, zero_step);
            walk.zero
        }
        None => ZeroRules::default(),
    }
}

#[inline(always)]
fn walk(policy_id: u32, dir: Direction, pkt: &Packet) -> Option<Walk> {
    // SAFETY: a hash value, read only; an unknown policy allows nothing.
    let policy = unsafe { POLICIES.get(&policy_id) }?;
    Some(Walk {
        pkt,
        policy,
        dir: dir.as_u8(),
        found: false,
        _pad: [0; 2],
        slot: 0,
        zero: ZeroRules::default(),
    })
}

#[inline(always)]
fn run(walk: &mut Walk, step: unsafe extern "C" fn(u64, *mut c_void) -> i64) {
    // SAFETY: `step` is a callback of bpf_loop's signature; `walk` outlives the call.
    unsafe {
        bpf_loop(
            POLICY_CHAINS as u32,
            step as *mut c_void,
            (walk as *mut Walk).cast(),
            0,
        );
    }
}

/// The chain at `index` of the walk's policy, and the walk; `None` past the last chain.
#[inline(always)]
unsafe fn chain_at<'a>(index: u64, ctx: *mut c_void) -> Option<(u32, Direction, &'a mut Walk)> {
    // SAFETY: `ctx` is the `Walk` that `run` passed, on the caller's stack.
    let walk = unsafe { &mut *ctx.cast::<Walk>() };
    // SAFETY: a map value pointer checked when the walk was made.
    let policy = unsafe { &*walk.policy };
    let chain = *policy.chains.get(index as usize)?;
    let dir = Direction::from_u8(walk.dir)?;
    (chain != 0).then_some((chain, dir, walk))
}

#[inline(never)]
unsafe extern "C" fn allow_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: called by bpf_loop with the walk `run` passed.
    let Some((chain, dir, walk)) = (unsafe { chain_at(index, ctx) }) else {
        return STOP;
    };
    // SAFETY: the parsed packet in `SCRATCH`, alive for the whole program run.
    let pkt = unsafe { &*walk.pkt };
    match policy::lookup(chain, dir, pkt) {
        Some(slot) => {
            walk.slot = slot;
            walk.found = true;
            STOP
        }
        None => NEXT,
    }
}

#[inline(never)]
unsafe extern "C" fn zero_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: called by bpf_loop with the walk `run` passed.
    let Some((chain, dir, walk)) = (unsafe { chain_at(index, ctx) }) else {
        return STOP;
    };
    // SAFETY: as in `allow_step`.
    let pkt = unsafe { &*walk.pkt };
    walk.zero.add(chain, dir, pkt);
    NEXT
}

//! Entry points, interface lookup, exemptions and the single place where a decision becomes a
//! verdict and a counter. The TC and XDP entry points run the same code over [`Frame`].

use aya_ebpf::{
    bindings::{
        TC_ACT_SHOT,
        tcx_action_base::TCX_NEXT,
        xdp_action::{XDP_DROP, XDP_PASS},
    },
    macros::{classifier, map, xdp},
    maps::{Array, PerCpuArray, PerCpuHashMap},
    programs::{TcContext, XdpContext},
};
use firewall_common::{
    CtKey, Direction, DropReason, IFACE_ENFORCING, IFACE_MANAGED, IFACE_UNTRACKED_V4,
    IFACE_UNTRACKED_V6, IfaceConfig, IfaceCounters, PassReason, capacity, family, proto,
};

use crate::{
    conntrack, flowlog,
    frame::Frame,
    parse::{self, Fragment, Packet},
    policy,
};

#[map]
pub(crate) static IFACES: Array<IfaceConfig> = Array::with_max_entries(capacity::IFACES, 0);

/// Per-CPU working memory for one packet: the BPF stack (512 bytes) is too small to hold the
/// parsed packet, the flow key and the lookup keys at once.
pub(crate) struct Scratch {
    pub(crate) pkt: Packet,
    key: CtKey,
}

#[map]
pub(crate) static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DropReason::COUNT, 0);

#[map]
static PASSES: PerCpuArray<u64> = PerCpuArray::with_max_entries(PassReason::COUNT, 0);

/// The same counts per interface, in the entries the agent creates on attach.
#[map]
static IFACE_COUNTERS: PerCpuHashMap<u32, IfaceCounters> =
    PerCpuHashMap::with_max_entries(capacity::IFACE_COUNTERS, 0);

/// Packets delivered to the workload (tc egress of its host-side veth): inbound rules.
#[classifier]
pub fn sg_to_workload(ctx: TcContext) -> i32 {
    if verdict(&ctx, Direction::Inbound) {
        TCX_NEXT
    } else {
        TC_ACT_SHOT as i32
    }
}

/// Packets sent by the workload (tc ingress of its host-side veth): outbound rules.
#[classifier]
pub fn sg_from_workload(ctx: TcContext) -> i32 {
    if verdict(&ctx, Direction::Outbound) {
        TCX_NEXT
    } else {
        TC_ACT_SHOT as i32
    }
}

/// The same as `sg_from_workload` at the host-side veth's XDP hook (`--attach xdp`): the
/// workload's frames before the host builds an skb for them. Loaded without `xdp.frags`: a veth
/// whose MTU needs more than one page refuses it, and keeps `sg_from_workload`.
#[xdp]
pub fn sg_from_workload_xdp(ctx: XdpContext) -> u32 {
    if verdict(&ctx, Direction::Outbound) {
        XDP_PASS
    } else {
        XDP_DROP
    }
}

/// Whether the frame may go on (passed, or not ours to judge); counted either way.
#[inline(always)]
fn verdict<F: Frame>(ctx: &F, dir: Direction) -> bool {
    let ifindex = ctx.ifindex();
    match decide(ctx, ifindex, dir) {
        Ok(Some(reason)) => {
            if reason == PassReason::Rule {
                flowlog::rule_pass(ifindex, dir);
            }
            bump(&PASSES, reason as u32);
            bump_interface(ifindex, |c| c.passes.get_mut(reason as usize));
            true
        }
        Ok(None) => true,
        Err(reason) => {
            flowlog::dropped(ifindex, dir, reason);
            bump(&DROPS, reason as u32);
            bump_interface(ifindex, |c| c.drops.get_mut(reason as usize));
            false
        }
    }
}

/// Counts into this interface's `IFACE_COUNTERS` entry, if the agent created one.
#[inline(always)]
fn bump_interface(ifindex: u32, counter: impl FnOnce(&mut IfaceCounters) -> Option<&mut u64>) {
    if let Some(counters) = IFACE_COUNTERS.get_ptr_mut(&ifindex) {
        // SAFETY: this CPU's value, no other writer on this CPU while the program runs.
        if let Some(count) = counter(unsafe { &mut *counters }) {
            *count += 1;
        }
    }
}

#[inline(always)]
fn bump(counters: &PerCpuArray<u64>, index: u32) {
    if let Some(counter) = counters.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no other writer on this CPU while the program runs.
        unsafe { *counter += 1 };
    }
}

/// `Ok(Some(reason))`: pass and count; `Ok(None)`: not ours to judge; `Err`: drop.
#[inline(always)]
fn decide<F: Frame>(
    ctx: &F,
    ifindex: u32,
    dir: Direction,
) -> Result<Option<PassReason>, DropReason> {
    // An array lookup: the verifier inlines it.
    let Some(iface) = IFACES.get(ifindex).copied() else {
        return Ok(None);
    };
    if iface.flags & IFACE_MANAGED == 0 {
        return Ok(None);
    }
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return Err(DropReason::Malformed);
    };
    // SAFETY: this CPU's slot; nothing else uses it while the program runs.
    let Scratch { pkt, key } = unsafe { &mut *scratch };
    if !parse::parse(ctx, pkt)? {
        return Ok(Some(PassReason::Exempt));
    }
    let pkt = &*pkt;
    if iface.flags & IFACE_ENFORCING == 0 {
        return Err(DropReason::NotRunning);
    }
    if is_exempt(pkt) {
        // Its later fragments follow it like those of any first fragment that passed.
        if pkt.fragment == Fragment::First {
            conntrack::remember_first_fragment(ifindex, pkt);
        }
        return Ok(Some(PassReason::Exempt));
    }
    if pkt.fragment == Fragment::Later {
        return if conntrack::later_fragment_allowed(ifindex, pkt) {
            Ok(Some(PassReason::Fragment))
        } else {
            Err(DropReason::Fragment)
        };
    }
    let pass = judge(ifindex, &iface, dir, pkt, key)?;
    if pkt.fragment == Fragment::First {
        conntrack::remember_first_fragment(ifindex, pkt);
    }
    Ok(Some(pass))
}

/// Conntrack, related ICMP errors, then policy: the pass reason, or why the packet drops.
#[inline(always)]
fn judge(
    ifindex: u32,
    iface: &IfaceConfig,
    dir: Direction,
    pkt: &Packet,
    key: &mut CtKey,
) -> Result<PassReason, DropReason> {
    let policy_id = iface.policy_id;
    if pkt.icmp_error {
        conntrack::related_key(ifindex, pkt, key);
        if conntrack::is_live(key) {
            return Ok(PassReason::Related);
        }
        // Unrelated errors are judged by the rules like any packet; they never open a flow.
        return if policy::allows(policy_id, dir, pkt) {
            Ok(PassReason::Rule)
        } else {
            Err(DropReason::NoRule)
        };
    }
    let tracked = matches!(pkt.proto, proto::TCP | proto::UDP)
        || parse::is_icmp_echo(pkt.proto, pkt.icmp_type)
        || !matches!(pkt.proto, proto::ICMP | proto::ICMPV6);
    let from_hi = conntrack::flow_key(ifindex, pkt, key);
    if tracked && conntrack::track_existing(key, from_hi, pkt) {
        return Ok(PassReason::Conntrack);
    }
    if !policy::allows(policy_id, dir, pkt) {
        return Err(DropReason::NoRule);
    }
    if tracked && conntrack::opens_flow(pkt) && !untracked(iface, dir, pkt) {
        conntrack::track_new(key, from_hi, dir, pkt)?;
    }
    Ok(PassReason::Rule)
}

/// A TCP or UDP flow AWS leaves untracked (`policy::untracked`), looked for only where the
/// policy has `/0` rules of the packet's family both ways.
#[inline(always)]
fn untracked(iface: &IfaceConfig, dir: Direction, pkt: &Packet) -> bool {
    let flag = if pkt.family == family::IPV4 {
        IFACE_UNTRACKED_V4
    } else {
        IFACE_UNTRACKED_V6
    };
    matches!(pkt.proto, proto::TCP | proto::UDP)
        && iface.flags & flag != 0
        && policy::untracked(iface.policy_id, dir, pkt)
}

/// Traffic security groups never filter on AWS because the platform provides it: IPv6 neighbour
/// discovery and MLD, DHCPv4 and DHCPv6.
#[inline(always)]
fn is_exempt(pkt: &Packet) -> bool {
    match pkt.proto {
        proto::ICMPV6 => matches!(pkt.icmp_type, 130..=137 | 143),
        proto::UDP => {
            let sport = u16::from_be_bytes(pkt.sport);
            let dport = u16::from_be_bytes(pkt.dport);
            matches!(
                (sport, dport),
                (68, 67) | (67, 68) | (546, 547) | (547, 546)
            )
        }
        _ => false,
    }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

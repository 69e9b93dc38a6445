//! Flow-log events: on an interface with [`IFACE_FLOW_LOG`], every packet a rule judges (it opens
//! a tracked flow, or passes untracked) and every dropped packet is copied into the `FLOW_EVENTS`
//! ring buffer for the agent to aggregate. Packets of tracked flows send nothing (their counts
//! are in the flow's conntrack entry), so the tracked path costs the same with flow logs on.
//!
//! A full ring buffer loses the event, never the packet: the loss is counted in `FLOW_LOG_LOST`.

use aya_ebpf::{
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use firewall_common::{
    Direction, DropReason, FLOW_EVENT_DROP, FLOW_EVENT_RULE_PASS, FlowEvent, IFACE_FLOW_LOG,
    capacity,
};

use crate::{
    conntrack::now_ns,
    parse::{Packet, addr_bytes},
    program::{IFACES, SCRATCH},
};

#[map]
static FLOW_EVENTS: RingBuf = RingBuf::with_byte_size(capacity::FLOW_EVENTS_BYTES, 0);

/// Events the ring buffer had no room for (slot 0), per CPU.
#[map]
static FLOW_LOG_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// A rule passed this packet.
#[inline(always)]
pub fn rule_pass(ifindex: u32, dir: Direction) {
    record(ifindex, dir, FLOW_EVENT_RULE_PASS, 0);
}

/// The packet is dropped. Malformed packets carry no reliable addresses and are only counted.
#[inline(always)]
pub fn dropped(ifindex: u32, dir: Direction, reason: DropReason) {
    if reason != DropReason::Malformed {
        record(ifindex, dir, FLOW_EVENT_DROP, reason as u8);
    }
}

#[inline(always)]
fn record(ifindex: u32, dir: Direction, kind: u8, reason: u8) {
    let Some(iface) = IFACES.get(ifindex) else {
        return;
    };
    if iface.flags & IFACE_FLOW_LOG == 0 {
        return;
    }
    let Some(scratch) = SCRATCH.get_ptr(0) else {
        return;
    };
    // SAFETY: this CPU's slot, filled by the parse of the packet being judged.
    let pkt: &Packet = unsafe { &(*scratch).pkt };
    let Some(mut entry) = FLOW_EVENTS.reserve::<FlowEvent>(0) else {
        if let Some(lost) = FLOW_LOG_LOST.get_ptr_mut(0) {
            // SAFETY: per-CPU slot, no other writer on this CPU while the program runs.
            unsafe { *lost += 1 };
        }
        return;
    };
    entry.write(FlowEvent {
        time_ns: now_ns(),
        ifindex,
        len: pkt.len,
        kind,
        reason,
        direction: dir.as_u8(),
        family: pkt.family,
        proto: pkt.proto,
        tcp_flags: pkt.tcp_flags,
        icmp_type: pkt.icmp_type,
        icmp_code: pkt.icmp_code,
        src: addr_bytes(&pkt.src),
        dst: addr_bytes(&pkt.dst),
        sport: pkt.sport,
        dport: pkt.dport,
        _pad2: [0; 4],
    });
    entry.submit(0);
}

//! Connection tracking, per workload interface: one normalised entry per flow admits both
//! directions; entries expire after the AWS idle timeouts; a full table fails closed for new flows.
//!
//! Races between CPUs updating the same entry only ever move `last_seen_ns` or the state forward by
//! one packet; the worst outcome is a state that lags one packet, never a wrong verdict for an
//! established flow. The per-flow packet, byte and TCP-flag counters are updated the same way
//! (plain additions on the entry already looked up): statistics that may miss a concurrent
//! increment.

use aya_ebpf::{
    helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns},
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray},
};
use firewall_common::{
    CT_FLAG_REPLIED, CT_FLAG_STREAM, CtKey, CtTimeouts, CtValue, Direction, DropReason, FragKey,
    capacity, ct_state, proto,
};

use crate::parse::{Addr, Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, addr_bytes};

#[map]
static CONNTRACK: HashMap<CtKey, CtValue> = HashMap::with_max_entries(capacity::CONNTRACK, 0);

/// Idle timeouts, set by the agent at load time.
#[unsafe(no_mangle)]
static CT_TIMEOUTS: aya_ebpf::Global<CtTimeouts> = aya_ebpf::Global::new(CtTimeouts::AWS_DEFAULT);

/// The last coarse clock reading on this CPU and the jiffies value it was taken at.
struct ClockCache {
    jiffies: u64,
    ns: u64,
}

/// Per CPU, not pinned: a fresh program starts with an empty cache.
#[map]
static CLOCK: PerCpuArray<ClockCache> = PerCpuArray::with_max_entries(1, 0);

/// `bpf_ktime_get_coarse_ns()`, called at most once per tick on each CPU. The tick that
/// advances jiffies also advances CLOCK_MONOTONIC_COARSE, so while jiffies stays the same the
/// coarse clock does too (at worst the cached reading lags by one tick). `bpf_jiffies64` is
/// inlined by the verifier on 64-bit JITs; the coarse-clock helper is a real call.
#[inline(always)]
pub fn now_ns() -> u64 {
    let jiffies = unsafe { bpf_jiffies64() };
    let Some(cache) = CLOCK.get_ptr_mut(0) else {
        return unsafe { bpf_ktime_get_coarse_ns() };
    };
    // SAFETY: this CPU's slot; nothing else uses it while the program runs.
    let cache = unsafe { &mut *cache };
    if cache.jiffies != jiffies || cache.ns == 0 {
        cache.ns = unsafe { bpf_ktime_get_coarse_ns() };
        cache.jiffies = jiffies;
    }
    cache.ns
}

const BPF_NOEXIST: u64 = 1;
const EEXIST: i32 = 17;

/// Writes the flow key of a packet into `key`; returns whether the packet travels from the `hi`
/// endpoint. Written in place: the key lives in the per-CPU scratch slot, not on the stack.
#[inline(always)]
pub fn flow_key(ifindex: u32, pkt: &Packet, key: &mut CtKey) -> bool {
    write_key(
        ifindex, pkt.family, pkt.proto, &pkt.src, &pkt.sport, &pkt.dst, &pkt.dport, key,
    )
}

/// The key of the flow an ICMP error is about (its embedded packet).
#[inline(always)]
pub fn related_key(ifindex: u32, pkt: &Packet, key: &mut CtKey) {
    let inner = &pkt.inner;
    write_key(
        ifindex,
        pkt.family,
        inner.proto,
        &inner.src,
        &inner.sport,
        &inner.dst,
        &inner.dport,
        key,
    );
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn write_key(
    ifindex: u32,
    family: u8,
    protocol: u8,
    src: &Addr,
    sport: &[u8; 2],
    dst: &Addr,
    dport: &[u8; 2],
    key: &mut CtKey,
) -> bool {
    let from_hi = endpoint_greater(src, sport, dst, dport);
    key.ifindex = ifindex;
    key.family = family;
    key.proto = protocol;
    key._pad = [0; 2];
    if from_hi {
        key.addr_lo = addr_bytes(dst);
        key.addr_hi = addr_bytes(src);
        key.port_lo = *dport;
        key.port_hi = *sport;
    } else {
        key.addr_lo = addr_bytes(src);
        key.addr_hi = addr_bytes(dst);
        key.port_lo = *sport;
        key.port_hi = *dport;
    }
    from_hi
}

/// Whether a live (unexpired) entry exists, without touching it: ICMP errors never refresh or
/// create flows.
#[inline(always)]
pub fn is_live(key: &CtKey) -> bool {
    // SAFETY: read-only access to a hash-map value.
    let Some(entry) = (unsafe { CONNTRACK.get(key) }) else {
        return false;
    };
    let now = now_ns();
    now.saturating_sub(entry.last_seen_ns) <= CT_TIMEOUTS.load().idle_timeout_ns(key.proto, entry)
}

/// Lexicographic `(a_addr, a_port) > (b_addr, b_port)` over the address bytes, a word at a time
/// (in network order), written as a loop so no `memcmp` is emitted.
#[inline(always)]
fn endpoint_greater(a: &Addr, a_port: &[u8; 2], b: &Addr, b_port: &[u8; 2]) -> bool {
    for i in 0..4 {
        if a[i] != b[i] {
            return u32::from_be(a[i]) > u32::from_be(b[i]);
        }
    }
    u16::from_be_bytes(*a_port) > u16::from_be_bytes(*b_port)
}

/// Looks the flow up; on a live entry advances its state and returns true. An expired entry is
/// deleted and reported as a miss.
#[inline(always)]
pub fn track_existing(key: &CtKey, from_hi: bool, pkt: &Packet) -> bool {
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else {
        return false;
    };
    let now = now_ns();
    // SAFETY: a pointer to a live hash-map value; concurrent writers are tolerated (module docs).
    let entry = unsafe { &mut *entry };
    // A volatile read: the loader patches this global, so it must not be constant-folded.
    let timeouts = CT_TIMEOUTS.load();
    if now.saturating_sub(entry.last_seen_ns) > timeouts.idle_timeout_ns(pkt.proto, entry) {
        let _ = CONNTRACK.remove(key);
        return false;
    }
    let is_reply = (from_hi as u8) != entry.origin_is_hi;
    entry.last_seen_ns = now;
    entry.count(is_reply, pkt.len, pkt.tcp_flags);
    match pkt.proto {
        proto::TCP => entry.state = next_tcp_state(entry.state, pkt.tcp_flags, is_reply),
        proto::UDP => {
            if is_reply {
                entry.flags |= CT_FLAG_REPLIED;
            } else if entry.flags & CT_FLAG_REPLIED != 0 {
                entry.flags |= CT_FLAG_STREAM;
            }
        }
        _ => {
            if is_reply {
                entry.flags |= CT_FLAG_REPLIED;
            }
        }
    }
    true
}

#[inline(always)]
fn next_tcp_state(state: u8, flags: u8, is_reply: bool) -> u8 {
    if flags & TCP_RST != 0 {
        ct_state::TCP_RESET
    } else if flags & TCP_FIN != 0 {
        ct_state::TCP_CLOSING
    } else if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 && !is_reply {
        // A new connection on a tuple whose previous one closed.
        if state == ct_state::TCP_ESTABLISHED {
            state
        } else {
            ct_state::TCP_SYN
        }
    } else if state == ct_state::TCP_SYN && is_reply {
        ct_state::TCP_ESTABLISHED
    } else {
        state
    }
}

/// Whether a packet a rule allows may open a tracked flow: a TCP SYN (no ACK, no RST), an ICMP
/// echo request, and any UDP or other-protocol packet. A mid-stream TCP segment or an echo reply
/// that misses conntrack is judged by the rules alone and tracks nothing, so a flow that was cut
/// (flushed, expired) cannot be revived by the other side's outbound rule.
#[inline(always)]
pub fn opens_flow(pkt: &Packet) -> bool {
    match pkt.proto {
        proto::TCP => pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN,
        proto::ICMP => pkt.icmp_type == 8,
        proto::ICMPV6 => pkt.icmp_type == 128,
        _ => true,
    }
}

/// Records a new flow admitted by policy. A full table is an error: the flow is refused rather
/// than an established one evicted.
#[inline(always)]
pub fn track_new(
    key: &CtKey,
    from_hi: bool,
    direction: Direction,
    pkt: &Packet,
) -> Result<(), DropReason> {
    // Only a SYN opens a TCP flow (see `opens_flow`).
    let state = if pkt.proto == proto::TCP {
        ct_state::TCP_SYN
    } else {
        ct_state::OPEN
    };
    let now = now_ns();
    let value = CtValue::opened(now, from_hi, direction, state, pkt.len, pkt.tcp_flags);
    match CONNTRACK.insert(key, &value, BPF_NOEXIST) {
        Ok(()) => Ok(()),
        // Another CPU created it first: the flow is tracked either way.
        Err(e) if e == -EEXIST => Ok(()),
        Err(_) => Err(DropReason::CtFull),
    }
}

/// Fragments of datagrams whose first fragment passed, so the later ones (which carry no L4
/// header) can follow it. LRU: a forgotten datagram only loses its remaining fragments.
#[map]
static FRAGMENTS: LruHashMap<FragKey, u64> = LruHashMap::with_max_entries(capacity::FRAGMENTS, 0);

/// IPv4 reassembly gives up after 30 s; so do we.
const FRAGMENT_TIMEOUT_NS: u64 = 30_000_000_000;

#[inline(always)]
fn fragment_key(ifindex: u32, pkt: &Packet) -> FragKey {
    FragKey {
        ifindex,
        family: pkt.family,
        proto: pkt.proto,
        _pad: [0; 2],
        id: pkt.frag_id,
        src: addr_bytes(&pkt.src),
        dst: addr_bytes(&pkt.dst),
    }
}

/// Remembers that the first fragment of this datagram passed.
#[inline(always)]
pub fn remember_first_fragment(ifindex: u32, pkt: &Packet) {
    let now = now_ns();
    let _ = FRAGMENTS.insert(&fragment_key(ifindex, pkt), &now, 0);
}

/// Whether a later fragment belongs to a datagram whose first fragment passed.
#[inline(always)]
pub fn later_fragment_allowed(ifindex: u32, pkt: &Packet) -> bool {
    // SAFETY: read-only access to a hash-map value.
    match unsafe { FRAGMENTS.get(&fragment_key(ifindex, pkt)) } {
        Some(first_seen) => now_ns().saturating_sub(*first_seen) <= FRAGMENT_TIMEOUT_NS,
        None => false,
    }
}

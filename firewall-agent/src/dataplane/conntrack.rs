//! `CONNTRACK` from the agent's side: which tracked flows to cut after a change, which have
//! expired, and deleting them. The kernel deletes an expired entry only when a packet meets it,
//! so the agent collects the rest (every 10 s).

use std::{collections::BTreeMap, net::IpAddr};

use aya::maps::{HashMap, MapData};
use firewall_common::{CtKey, CtTimeouts, CtValue, Direction, family, proto};

use crate::compiler::{self, Desired};

/// Deletes the entries `doomed` selects; returns how many.
pub(super) fn flush(
    conntrack: &mut HashMap<MapData, CtKey, CtValue>,
    doomed: impl Fn(&CtKey, &CtValue) -> bool,
) -> usize {
    let victims: Vec<CtKey> = conntrack
        .iter()
        .filter_map(|entry| entry.ok())
        .filter(|(k, v)| doomed(k, v))
        .map(|(k, _)| k)
        .collect();
    for key in &victims {
        // Deleted concurrently by the kernel on expiry: fine.
        let _ = conntrack.remove(key);
    }
    victims.len()
}

/// The entries of the interface with this ifindex.
pub(super) fn on_interface(index: u32) -> impl Fn(&CtKey, &CtValue) -> bool {
    move |key, _| key.ifindex == index
}

/// The flows whose opening packet `desired` would refuse, on the enforced interfaces
/// (`attached`: ifindex by interface name). Flows on other interfaces are kept.
pub(super) fn disallowed<'a>(
    desired: &'a Desired,
    attached: impl Iterator<Item = (&'a String, u32)>,
) -> impl Fn(&CtKey, &CtValue) -> bool + 'a {
    let policies: BTreeMap<u32, u32> = attached
        .filter_map(|(name, index)| desired.ifaces.get(name).map(|c| (index, c.policy_id)))
        .collect();
    move |key, value| {
        let Some(policy) = policies.get(&key.ifindex) else {
            return false;
        };
        // A direction the compiler never writes matches no rule.
        let Some(direction) = Direction::from_u8(value.origin_direction) else {
            return true;
        };
        let (peer, proto, port) = origin_packet(key, direction, value);
        compiler::evaluate(desired, *policy, direction, peer, proto, port).is_none()
    }
}

/// The entries idle for longer than their timeout at `now_ns` (CLOCK_MONOTONIC_COARSE).
pub(super) fn expired(timeouts: CtTimeouts, now_ns: u64) -> impl Fn(&CtKey, &CtValue) -> bool {
    move |key, value| {
        now_ns.saturating_sub(value.last_seen_ns) > timeouts.idle_timeout_ns(key.proto, value)
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock of `bpf_ktime_get_coarse_ns`.
pub(super) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What the rules saw of the packet that opened a tracked flow: the peer address (the initiator
/// for inbound flows, the responder for outbound ones), the protocol and the matched port.
fn origin_packet(key: &CtKey, direction: Direction, value: &CtValue) -> (IpAddr, u8, u16) {
    let origin_is_hi = value.origin_is_hi != 0;
    let (initiator, responder, responder_port) = if origin_is_hi {
        (key.addr_hi, key.addr_lo, key.port_lo)
    } else {
        (key.addr_lo, key.addr_hi, key.port_hi)
    };
    let peer_bytes = match direction {
        Direction::Inbound => initiator,
        Direction::Outbound => responder,
    };
    let peer = if key.family == family::IPV4 {
        IpAddr::from([peer_bytes[0], peer_bytes[1], peer_bytes[2], peer_bytes[3]])
    } else {
        IpAddr::from(peer_bytes)
    };
    let port = match key.proto {
        proto::TCP | proto::UDP => u16::from_be_bytes(responder_port),
        proto::ICMP => 8 << 8,     // echo request, code 0
        proto::ICMPV6 => 128 << 8, // echo request, code 0
        _ => 0,
    };
    (peer, key.proto, port)
}

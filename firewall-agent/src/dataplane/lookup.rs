//! Asking the maps what they decide for one packet, in the programs' order (`IFACES`, then
//! `CONNTRACK`, then `PEERS`/`PORTS`), for `explain-verdict`; and the tracked flows as the API
//! lists them (the preview of a change's flush).

use std::net::IpAddr;

use aya::maps::lpm_trie::Key;
use firewall_common::{
    CtKey, CtValue, Direction, IFACE_ENFORCING, IFACE_MANAGED, IfaceConfig, PEER_KEY_FIXED_BITS,
    PORT_KEY_PROTO_BITS, PeerKey, PeerValue, PolicyValue, PortKey, PortValue, family, proto,
};

use super::maps::Maps;
use crate::compiler::{self, PolicyLookup};

/// One packet as `explain-verdict` asks about it, seen from the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Inbound: sent by `peer` to the workload; outbound: sent by the workload to `peer`.
    pub direction: Direction,
    /// The workload's own address (of the peer's family).
    pub local: IpAddr,
    pub peer: IpAddr,
    pub proto: u8,
    /// The port on the flow's responder side that the rules match: the workload's port inbound,
    /// the peer's outbound; `type << 8 | code` for ICMP; 0 for other protocols.
    pub port: u16,
    /// The other endpoint's port (TCP/UDP), which finds a tracked flow; `None` looks for none.
    pub other_port: Option<u16>,
}

/// What the maps decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The interface has no managed `IFACES` slot: the programs give no verdict.
    Unmanaged,
    /// The workload is stopped: everything drops.
    NotRunning,
    /// A live conntrack entry passes the packet, whatever the rules say.
    Tracked(TrackedFlow),
    /// A rule allows it as a new flow: its slot.
    Rule(u32),
    /// No rule allows it.
    NoRule,
}

/// A tracked flow as the API lists it: the interface and the opening packet's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrackedFlow {
    pub interface: String,
    /// The direction of the packet that opened it.
    pub direction: Direction,
    pub proto: u8,
    pub source: IpAddr,
    pub source_port: u16,
    pub destination: IpAddr,
    pub destination_port: u16,
}

fn addr_bytes(addr: IpAddr) -> (u8, [u8; 16]) {
    match addr {
        IpAddr::V4(a) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.octets());
            (family::IPV4, bytes)
        }
        IpAddr::V6(a) => (family::IPV6, a.octets()),
    }
}

fn addr_from(fam: u8, bytes: [u8; 16]) -> IpAddr {
    if fam == family::IPV4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(bytes)
    }
}

/// The conntrack key of the probe's flow on `ifindex`, normalised as the programs do (the lower
/// `(address, port)` endpoint first); `None` where no key can be built (ICMP needs the echo id).
pub(super) fn flow_key(ifindex: u32, probe: &Probe) -> Option<CtKey> {
    let (fam, local) = addr_bytes(probe.local);
    let (_, peer) = addr_bytes(probe.peer);
    let (local_port, peer_port) = match probe.proto {
        proto::TCP | proto::UDP => {
            let other = probe.other_port?;
            match probe.direction {
                Direction::Inbound => (probe.port, other),
                Direction::Outbound => (other, probe.port),
            }
        }
        proto::ICMP | proto::ICMPV6 => return None,
        _ => (0, 0),
    };
    let a = (local, local_port.to_be_bytes());
    let b = (peer, peer_port.to_be_bytes());
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some(CtKey {
        ifindex,
        family: fam,
        proto: probe.proto,
        _pad: [0; 2],
        addr_lo: lo.0,
        addr_hi: hi.0,
        port_lo: lo.1,
        port_hi: hi.1,
    })
}

/// The programs' decision for `probe` on the interface `ifindex` whose `IFACES` slot is `iface`:
/// `live` answers whether a conntrack entry is live, `policy` the two LPM lookups.
pub(super) fn answer(
    interface: &str,
    ifindex: u32,
    iface: Option<IfaceConfig>,
    probe: &Probe,
    live: impl Fn(&CtKey) -> Option<CtValue>,
    policy: &impl PolicyLookup,
) -> Answer {
    let Some(iface) = iface.filter(|c| c.flags & IFACE_MANAGED != 0) else {
        return Answer::Unmanaged;
    };
    if iface.flags & IFACE_ENFORCING == 0 {
        return Answer::NotRunning;
    }
    if let Some(key) = flow_key(ifindex, probe)
        && let Some(value) = live(&key)
    {
        return Answer::Tracked(listed(interface, &key, &value));
    }
    let (peer, port) = (probe.peer, probe.port);
    match compiler::evaluate(
        policy,
        iface.policy_id,
        probe.direction,
        peer,
        probe.proto,
        port,
    ) {
        Some(slot) => Answer::Rule(slot),
        None => Answer::NoRule,
    }
}

/// A conntrack entry as the API lists it.
pub(super) fn listed(interface: &str, key: &CtKey, value: &CtValue) -> TrackedFlow {
    let lo = (
        addr_from(key.family, key.addr_lo),
        u16::from_be_bytes(key.port_lo),
    );
    let hi = (
        addr_from(key.family, key.addr_hi),
        u16::from_be_bytes(key.port_hi),
    );
    let (source, destination) = if value.origin_is_hi != 0 {
        (hi, lo)
    } else {
        (lo, hi)
    };
    TrackedFlow {
        interface: interface.to_string(),
        direction: Direction::from_u8(value.origin_direction).unwrap_or(Direction::Inbound),
        proto: key.proto,
        source: source.0,
        source_port: source.1,
        destination: destination.0,
        destination_port: destination.1,
    }
}

/// The kernel's own `PEERS` and `PORTS`: each lookup a `BPF_MAP_LOOKUP_ELEM` with the
/// full-length key, which the LPM trie answers with its longest matching prefix.
pub(super) struct KernelPolicy<'a>(pub &'a Maps);

impl PolicyLookup for KernelPolicy<'_> {
    fn policy(&self, policy_id: u32) -> Option<PolicyValue> {
        self.0.policies.as_ref()?.get(&policy_id, 0).ok()
    }

    fn peer(&self, key: PeerKey, width: u32) -> Option<PeerValue> {
        self.0
            .peers
            .get(&Key::new(PEER_KEY_FIXED_BITS + width, key), 0)
            .ok()
    }

    fn port(&self, key: PortKey) -> Option<PortValue> {
        self.0
            .ports
            .get(&Key::new(PORT_KEY_PROTO_BITS + 16, key), 0)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_of_a_flow_build_the_same_key() {
        let inbound = Probe {
            direction: Direction::Inbound,
            local: "10.0.0.2".parse().unwrap(),
            peer: "10.0.0.9".parse().unwrap(),
            proto: proto::TCP,
            port: 22,
            other_port: Some(40000),
        };
        let key = flow_key(3, &inbound).unwrap();
        assert_eq!(key.addr_lo[..4], [10, 0, 0, 2]);
        assert_eq!(u16::from_be_bytes(key.port_lo), 22);
        let outbound = Probe {
            direction: Direction::Outbound,
            port: 40000,
            other_port: Some(22),
            ..inbound
        };
        assert_eq!(flow_key(3, &outbound), Some(key));
    }
}

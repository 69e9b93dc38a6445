//! The userspace mirror of the kernel's policy lookups (`firewall-ebpf/src/policy.rs`), run on
//! compiled map contents: what a packet opening a new flow would meet. Used to flush the tracked
//! flows a change no longer allows, and by tests to check the compiler.

use std::net::IpAddr;

use firewall_common::{
    Direction, PEER_KEY_FIXED_BITS, PORT_KEY_PROTO_BITS, PORT_KEY_SET_BITS, PeerKey, PortKey,
    family,
};

use super::Desired;

/// What the kernel's lookups answer for a packet, evaluated on compiled contents: the rule
/// slot of the allowing entry, or `None` (no rule). `port` is the destination port, or
/// `type << 8 | code` for ICMP.
pub fn evaluate(
    d: &Desired,
    policy_id: u32,
    direction: Direction,
    addr: IpAddr,
    proto: u8,
    port: u16,
) -> Option<u32> {
    let (fam, bytes, width) = match addr {
        IpAddr::V4(a) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.octets());
            (family::IPV4, bytes, 32u32)
        }
        IpAddr::V6(a) => (family::IPV6, a.octets(), 128),
    };
    let peer = (0..=width).rev().find_map(|bits| {
        let key = PeerKey {
            policy_id: policy_id.to_be_bytes(),
            direction: direction.as_u8(),
            family: fam,
            addr: mask(bytes, bits),
            _pad: [0; 2],
        };
        d.peers.get(&(PEER_KEY_FIXED_BITS + bits, key))
    })?;
    peer.port_sets
        .iter()
        .take_while(|set| **set != 0)
        .find_map(|set| {
            let port_key = |proto: u8, port: u16| PortKey {
                port_set: set.to_be_bytes(),
                proto,
                port: port.to_be_bytes(),
                _pad: 0,
            };
            (0..=16u32)
                .rev()
                .find_map(|bits| {
                    let masked = if bits == 0 {
                        0
                    } else {
                        port & (u16::MAX << (16 - bits))
                    };
                    d.ports
                        .get(&(PORT_KEY_PROTO_BITS + bits, port_key(proto, masked)))
                })
                .or_else(|| d.ports.get(&(PORT_KEY_SET_BITS, port_key(0, 0))))
                .map(|v| v.rule_slot)
        })
}

fn mask(mut bytes: [u8; 16], bits: u32) -> [u8; 16] {
    for (i, byte) in bytes.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    bytes
}

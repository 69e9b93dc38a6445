//! The userspace mirror of the kernel's policy lookups (`firewall-ebpf/src/policy.rs`), run on
//! compiled map contents or on the kernel's maps themselves: what a packet opening a new flow
//! would meet. Used to flush the tracked flows a change no longer allows, by `explain-verdict`,
//! and by tests to check the compiler.

use std::net::IpAddr;

use firewall_common::{
    Direction, PEER_KEY_FIXED_BITS, PORT_KEY_PROTO_BITS, PORT_KEY_SET_BITS, PeerKey, PeerValue,
    PolicyValue, PortKey, PortValue, family, layout,
};

use super::Desired;

/// The lookups the kernel's programs make: `POLICIES`, then the two longest-prefix ones per
/// chain. [`Desired`] answers them from compiled contents (trying prefixes longest first); the
/// kernel maps answer them themselves (`BPF_MAP_LOOKUP_ELEM` on an LPM trie is a
/// longest-prefix match).
pub trait PolicyLookup {
    /// `POLICIES[policy_id]`.
    fn policy(&self, policy_id: u32) -> Option<PolicyValue>;
    /// `PEERS` with the full-length key of `key` (prefix `48 + width`).
    fn peer(&self, key: PeerKey, width: u32) -> Option<PeerValue>;
    /// `PORTS` with the full-length key of `key` (prefix 56).
    fn port(&self, key: PortKey) -> Option<PortValue>;
}

impl PolicyLookup for Desired {
    fn policy(&self, policy_id: u32) -> Option<PolicyValue> {
        self.policies.get(&policy_id).copied()
    }

    fn peer(&self, key: PeerKey, width: u32) -> Option<PeerValue> {
        (0..=width).rev().find_map(|bits| {
            let masked = PeerKey {
                addr: mask(key.addr, bits),
                ..key
            };
            self.peers
                .get(&(PEER_KEY_FIXED_BITS + bits, masked))
                .copied()
        })
    }

    fn port(&self, key: PortKey) -> Option<PortValue> {
        let port = u16::from_be_bytes(key.port);
        (0..=16u32)
            .rev()
            .find_map(|bits| {
                let masked = if bits == 0 {
                    0
                } else {
                    port & (u16::MAX << (16 - bits))
                };
                let masked = PortKey {
                    port: masked.to_be_bytes(),
                    ..key
                };
                self.ports.get(&(PORT_KEY_PROTO_BITS + bits, masked))
            })
            .or_else(|| {
                let set_only = PortKey {
                    proto: 0,
                    port: [0, 0],
                    ..key
                };
                self.ports.get(&(PORT_KEY_SET_BITS, set_only))
            })
            .copied()
    }
}

/// What the kernel's lookups answer for a packet opening a new flow: the rule slot of the
/// allowing entry, or `None` (no rule). `port` is the destination port, or `type << 8 | code`
/// for ICMP.
pub fn evaluate(
    maps: &impl PolicyLookup,
    policy_id: u32,
    direction: Direction,
    addr: IpAddr,
    proto: u8,
    port: u16,
) -> Option<u32> {
    let chains = if layout::COMPOSED {
        maps.policy(policy_id)?.iter().collect()
    } else {
        vec![policy_id]
    };
    // The first chain that allows decides, as in the kernel.
    chains
        .into_iter()
        .find_map(|chain| evaluate_chain(maps, chain, direction, addr, proto, port))
}

/// One chain's lookups: `PEERS`, then `PORTS` along the chain of port sets.
fn evaluate_chain(
    maps: &impl PolicyLookup,
    chain: u32,
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
    let key = PeerKey {
        policy_id: chain.to_be_bytes(),
        direction: direction.as_u8(),
        family: fam,
        addr: bytes,
        _pad: [0; 2],
    };
    let peer = maps.peer(key, width)?;
    // Nearest prefix first: the first set that answers holds the most specific allowing rule.
    peer.port_sets
        .iter()
        .take_while(|set| **set != 0)
        .find_map(|set| {
            maps.port(PortKey {
                port_set: set.to_be_bytes(),
                proto,
                port: port.to_be_bytes(),
                _pad: 0,
            })
        })
        .map(|v| v.rule_slot)
}

fn mask(mut bytes: [u8; 16], bits: u32) -> [u8; 16] {
    for (i, byte) in bytes.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i as u32 * 8).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    bytes
}

//! Policy lookup: per chain (one attached group's rules, see `compose` for how a policy walks
//! its chains), one `PEERS` and at most 8 `PORTS` lookups decide whether any of its rules
//! allows a new flow (see `firewall_common` for the key design and how the compiler builds each
//! chain).

use aya_ebpf::{
    macros::map,
    maps::{LpmTrie, PerCpuArray, lpm_trie::Key},
};
use firewall_common::{
    Direction, PEER_KEY_FIXED_BITS, PORT_KEY_PROTO_BITS, PeerKey, PeerValue, PortKey, PortValue,
    capacity, family, proto,
};

#[cfg(not(feature = "previous-layout"))]
use crate::compose;
use crate::parse::{Packet, addr_bytes};

#[map]
static PEERS: LpmTrie<PeerKey, PeerValue> = LpmTrie::with_max_entries(capacity::PEERS, 0);

#[map]
static PORTS: LpmTrie<PortKey, PortValue> = LpmTrie::with_max_entries(capacity::PORTS, 0);

/// Per-rule hit counters (packets admitted by a rule, i.e. not by conntrack), indexed by the
/// slot the agent maps to an `sgr-` ID.
#[map]
static RULE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(capacity::RULE_HITS, 0);

/// Whether a rule of the workload's policy allows this packet in this direction; counts the hit.
#[inline(always)]
pub fn allows(policy_id: u32, dir: Direction, pkt: &Packet) -> bool {
    #[cfg(feature = "previous-layout")]
    let found = lookup(policy_id, dir, pkt);
    #[cfg(not(feature = "previous-layout"))]
    let found = compose::first_allowing(policy_id, dir, pkt);
    match found {
        Some(slot) => {
            if let Some(hits) = RULE_HITS.get_ptr_mut(slot) {
                // SAFETY: per-CPU slot, no other writer on this CPU while the program runs.
                unsafe { *hits += 1 };
            }
            true
        }
        None => false,
    }
}

/// Whether this TCP or UDP packet, which a rule allows, belongs to a flow AWS does not track: a
/// `0.0.0.0/0` (`::/0`) rule in its direction allows it and a `/0` rule in the other direction
/// allows every port of its protocol, or the same with the directions swapped (the flow seen
/// from its other end), so both directions of a flow get the same answer. Such a flow gets no
/// conntrack entry: every packet is judged by the rules, and removing either rule cuts it. The
/// `/0` rules may be in different groups of the policy: every chain's are looked at.
#[inline(always)]
pub fn untracked(policy_id: u32, dir: Direction, pkt: &Packet) -> bool {
    #[cfg(feature = "previous-layout")]
    let zero = {
        let mut zero = ZeroRules::default();
        zero.add(policy_id, dir, pkt);
        zero
    };
    #[cfg(not(feature = "previous-layout"))]
    let zero = compose::zero_rules(policy_id, dir, pkt);
    (zero.there_any_port && zero.here_port) || (zero.here_any_port && zero.there_port)
}

/// What the `/0` rules of a policy's chains allow of one packet: "here" is its direction,
/// "there" the other one.
#[derive(Default)]
#[repr(C)]
pub(crate) struct ZeroRules {
    here_port: bool,
    here_any_port: bool,
    there_port: bool,
    there_any_port: bool,
}

impl ZeroRules {
    /// Adds what one chain's `/0` rules allow.
    #[inline(always)]
    pub(crate) fn add(&mut self, chain: u32, dir: Direction, pkt: &Packet) {
        let any_port = PORT_KEY_PROTO_BITS;
        let one_port = PORT_KEY_PROTO_BITS + 16;
        if let Some(here) = zero_prefix_set(chain, dir, pkt.family) {
            self.here_port |= set_allows(here, pkt.proto, pkt.dport, one_port);
            self.here_any_port |= set_allows(here, pkt.proto, [0, 0], any_port);
        }
        if let Some(there) = zero_prefix_set(chain, dir.reverse(), pkt.family) {
            self.there_port |= set_allows(there, pkt.proto, pkt.sport, one_port);
            self.there_any_port |= set_allows(there, pkt.proto, [0, 0], any_port);
        }
    }
}

/// The port set of the chain direction's `/0` peer: a lookup bounded to the key's fixed
/// 48 bits only matches the entry of prefix length 0, whose chain is its own set alone.
#[inline(always)]
fn zero_prefix_set(chain: u32, dir: Direction, fam: u8) -> Option<u32> {
    let key = PeerKey {
        policy_id: chain.to_be_bytes(),
        direction: dir.as_u8(),
        family: fam,
        addr: [0; 16],
        _pad: [0; 2],
    };
    let set = PEERS.get(Key::new(PEER_KEY_FIXED_BITS, key))?.port_sets[0];
    (set != 0).then_some(set)
}

/// Whether a port set has an entry for `proto`/`port` within `bits` of its key: with
/// [`PORT_KEY_PROTO_BITS`] only "any protocol" and "this protocol, any port" entries answer.
#[inline(always)]
fn set_allows(set: u32, proto: u8, port: [u8; 2], bits: u32) -> bool {
    let key = PortKey {
        port_set: set.to_be_bytes(),
        proto,
        port,
        _pad: 0,
    };
    PORTS.get(Key::new(bits, key)).is_some()
}

/// One `PEERS` lookup, then `PORTS` along the chain: the rule slot of the allowing entry, if any.
#[inline(always)]
pub(crate) fn lookup(chain: u32, dir: Direction, pkt: &Packet) -> Option<u32> {
    let peer = if dir == Direction::Inbound {
        pkt.src
    } else {
        pkt.dst
    };
    let addr_bits = if pkt.family == family::IPV4 { 32 } else { 128 };
    let peer_key = PeerKey {
        policy_id: chain.to_be_bytes(),
        direction: dir.as_u8(),
        family: pkt.family,
        addr: addr_bytes(&peer),
        _pad: [0; 2],
    };
    let chain = PEERS
        .get(Key::new(PEER_KEY_FIXED_BITS + addr_bits, peer_key))?
        .port_sets;
    let port = match pkt.proto {
        proto::TCP | proto::UDP => pkt.dport,
        proto::ICMP | proto::ICMPV6 => [pkt.icmp_type, pkt.icmp_code],
        _ => [0, 0],
    };
    // Nearest prefix first: the first set that answers holds the most specific allowing rule.
    for set in chain {
        if set == 0 {
            return None;
        }
        let port_key = PortKey {
            port_set: set.to_be_bytes(),
            proto: pkt.proto,
            port,
            _pad: 0,
        };
        if let Some(value) = PORTS.get(Key::new(PORT_KEY_PROTO_BITS + 16, port_key)) {
            return Some(value.rule_slot);
        }
    }
    None
}

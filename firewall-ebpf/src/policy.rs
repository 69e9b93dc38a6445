//! Policy lookup: two LPM lookups decide whether any rule of any attached group allows a new
//! flow (see `firewall_common` for the key design and how the compiler builds the closure).

use aya_ebpf::{
    macros::map,
    maps::{LpmTrie, PerCpuArray, lpm_trie::Key},
};
use firewall_common::{
    Direction, PEER_KEY_FIXED_BITS, PORT_KEY_PROTO_BITS, PeerKey, PeerValue, PortKey, PortValue,
    capacity, family, proto,
};

use crate::parse::Packet;

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
    match lookup(policy_id, dir, pkt) {
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

/// One `PEERS` lookup, then `PORTS` along the chain: the rule slot of the allowing entry, if any.
#[inline(always)]
fn lookup(policy_id: u32, dir: Direction, pkt: &Packet) -> Option<u32> {
    let peer = if dir == Direction::Inbound {
        pkt.src
    } else {
        pkt.dst
    };
    let addr_bits = if pkt.family == family::IPV4 { 32 } else { 128 };
    let peer_key = PeerKey {
        policy_id: policy_id.to_be_bytes(),
        direction: dir.as_u8(),
        family: pkt.family,
        addr: peer,
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

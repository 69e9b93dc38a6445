//! The reference evaluator: what a security group means, written for clarity and sharing no code
//! with the compiler or the data plane, for differential tests against the kernel.
//!
//! A frame is parsed from its bytes as docs/architecture.md describes ("The path of a packet"),
//! then judged: non-IP passes; a read past the end drops; ND/MLD and DHCP pass; a later fragment
//! follows its first fragment; an ICMP error passes when the flow it quotes is tracked; a tracked
//! flow passes whatever the rules say; otherwise a new packet passes when any rule of any group
//! attached to the workload, in its direction, matches its protocol, ports and peer. Only a TCP
//! SYN, an ICMP echo request or a UDP/other-protocol packet a rule allows opens a flow, unless
//! the flow is untracked as AWS documents it: a TCP or UDP flow that a `0.0.0.0/0` (`::/0`)
//! rule allows, while a `/0` rule in the other direction allows all ports of its protocol (the
//! response traffic), is not tracked; this is judged from either end of the flow.
//!
//! Timeouts are not modelled: the differential test loads the data plane with idle timeouts far
//! longer than it runs.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use firewall_agent::model::{InstanceState, NetworkInterface, Peer, Protocol, Rule, State};
use firewall_common::Direction;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// IPv6 extension headers walked before the L4 header.
const MAX_EXTENSION_HEADERS: usize = 8;

/// One end of a flow: address and port (the echo identifier for ICMP echo, 0 for protocols
/// without ports).
type Endpoint = (IpAddr, u16);

/// A flow regardless of direction: the protocol and its two endpoints, lower first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Flow {
    proto: u8,
    ends: (Endpoint, Endpoint),
}

impl Flow {
    fn new(proto: u8, a: Endpoint, b: Endpoint) -> Flow {
        Flow {
            proto,
            ends: if a <= b { (a, b) } else { (b, a) },
        }
    }
}

/// A datagram that fragments belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Datagram {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment {
    None,
    First,
    Later,
}

/// What the rules and the flow table look at in one IP packet.
#[derive(Debug)]
struct Packet {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    fragment: Fragment,
    frag_id: u32,
    /// TCP/UDP: the ports. ICMP: type and code. Zero for later fragments and other protocols.
    sport: u16,
    dport: u16,
    tcp_flags: u8,
    /// ICMP echo request or reply: its identifier.
    echo_id: Option<u16>,
    /// ICMP error whose quoted packet could be read: the quoted flow.
    quoted: Option<Flow>,
}

impl Packet {
    fn icmp_type(&self) -> u8 {
        (self.sport >> 8) as u8
    }

    /// The flow this packet belongs to, if it belongs to one: TCP, UDP, ICMP echo, and every
    /// protocol other than ICMP (by addresses alone).
    fn flow(&self) -> Option<Flow> {
        let (sport, dport) = match (self.proto, self.echo_id) {
            (TCP | UDP, _) => (self.sport, self.dport),
            (ICMP | ICMPV6, Some(id)) => (id, id),
            (ICMP | ICMPV6, None) => return None,
            _ => (0, 0),
        };
        Some(Flow::new(self.proto, (self.src, sport), (self.dst, dport)))
    }

    fn opens_flow(&self) -> bool {
        match self.proto {
            TCP => self.tcp_flags & SYN != 0 && self.tcp_flags & (ACK | RST) == 0,
            ICMP => self.echo_id.is_some() && self.icmp_type() == 8,
            ICMPV6 => self.echo_id.is_some() && self.icmp_type() == 128,
            _ => true,
        }
    }

    /// Traffic AWS's platform provides and security groups never filter.
    fn exempt(&self) -> bool {
        let nd = self.proto == ICMPV6 && matches!(self.icmp_type(), 130..=137 | 143);
        let dhcp = self.proto == UDP
            && matches!(
                (self.sport, self.dport),
                (68, 67) | (67, 68) | (546, 547) | (547, 546)
            );
        self.fragment != Fragment::Later && (nd || dhcp)
    }

    fn datagram(&self) -> Datagram {
        Datagram {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            id: self.frag_id,
        }
    }
}

/// Why a frame is not judged by the rules.
#[derive(Debug)]
struct Malformed;

/// Reads `len` bytes at `at`, or fails as a read past the end.
fn read(frame: &[u8], at: usize, len: usize) -> Result<&[u8], Malformed> {
    frame.get(at..at + len).ok_or(Malformed)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn v6(b: &[u8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))
}

fn v4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// The IP packet of an Ethernet frame; `Ok(None)` for frames that are not IP.
fn parse(frame: &[u8]) -> Result<Option<Packet>, Malformed> {
    let (mut pkt, l4) = match be16(read(frame, 12, 2)?) {
        0x0800 => parse_ipv4(frame, 14)?,
        0x86dd => parse_ipv6(frame, 14)?,
        _ => return Ok(None),
    };
    // A later fragment carries no L4 header.
    if pkt.fragment != Fragment::Later {
        parse_l4(frame, l4, &mut pkt)?;
    }
    Ok(Some(pkt))
}

fn packet(src: IpAddr, dst: IpAddr, proto: u8, fragment: Fragment, frag_id: u32) -> Packet {
    Packet {
        src,
        dst,
        proto,
        fragment,
        frag_id,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        echo_id: None,
        quoted: None,
    }
}

fn fragment(offset: u16, more: bool) -> Fragment {
    match (offset, more) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    }
}

/// The IPv4 header (version 4, IHL of at least 5) and where its payload starts.
fn parse_ipv4(frame: &[u8], at: usize) -> Result<(Packet, usize), Malformed> {
    let h = read(frame, at, 20)?;
    let ihl = usize::from(h[0] & 0x0f);
    if h[0] >> 4 != 4 || ihl < 5 {
        return Err(Malformed);
    }
    let flags = be16(&h[6..8]);
    let frag = fragment(flags & 0x1fff, flags & 0x2000 != 0);
    let pkt = packet(
        v4(&h[12..16]),
        v4(&h[16..20]),
        h[9],
        frag,
        be16(&h[4..6]).into(),
    );
    Ok((pkt, at + ihl * 4))
}

/// The IPv6 header and its extension headers (hop-by-hop, routing, destination options,
/// authentication, fragment), and where the L4 header starts.
fn parse_ipv6(frame: &[u8], at: usize) -> Result<(Packet, usize), Malformed> {
    let h = read(frame, at, 40)?;
    if h[0] >> 4 != 6 {
        return Err(Malformed);
    }
    let mut pkt = packet(v6(&h[8..24]), v6(&h[24..40]), 0, Fragment::None, 0);
    let mut next = h[6];
    let mut offset = at + 40;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        let length = match next {
            0 | 43 | 60 => (usize::from(read(frame, offset, 2)?[1]) + 1) * 8,
            51 => (usize::from(read(frame, offset, 2)?[1]) + 2) * 4,
            44 => {
                let f = read(frame, offset, 8)?;
                pkt.fragment = fragment(be16(&f[2..4]) & 0xfff8, f[3] & 1 != 0);
                pkt.frag_id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                8
            }
            l4 => {
                pkt.proto = l4;
                return Ok((pkt, offset));
            }
        };
        next = read(frame, offset, 1)?[0];
        offset += length;
    }
    Err(Malformed)
}

fn is_echo(proto: u8, icmp_type: u8) -> bool {
    matches!((proto, icmp_type), (ICMP, 0 | 8) | (ICMPV6, 128 | 129))
}

fn is_error(proto: u8, icmp_type: u8) -> bool {
    matches!((proto, icmp_type), (ICMP, 3 | 11 | 12) | (ICMPV6, 1..=4))
}

/// TCP up to its flags, UDP's ports, ICMP's 8-byte header (and an error's quoted packet).
fn parse_l4(frame: &[u8], at: usize, pkt: &mut Packet) -> Result<(), Malformed> {
    match pkt.proto {
        TCP => {
            let h = read(frame, at, 14)?;
            (pkt.sport, pkt.dport, pkt.tcp_flags) = (be16(&h[0..2]), be16(&h[2..4]), h[13]);
        }
        UDP => {
            let h = read(frame, at, 4)?;
            (pkt.sport, pkt.dport) = (be16(&h[0..2]), be16(&h[2..4]));
        }
        ICMP | ICMPV6 => {
            let h = read(frame, at, 8)?;
            // Type and code, as rules see them.
            pkt.sport = be16(&h[0..2]);
            if is_echo(pkt.proto, h[0]) {
                pkt.echo_id = Some(be16(&h[4..6]));
            } else if is_error(pkt.proto, h[0]) {
                // A quoted packet that cannot be read quotes no flow.
                pkt.quoted = quoted_flow(frame, at + 8, pkt.src.is_ipv4());
            }
        }
        _ => {}
    }
    Ok(())
}

/// The flow of the packet an ICMP error quotes: its IP header (no extension headers) and the
/// first 8 bytes of its L4 header, of the error's own family.
fn quoted_flow(frame: &[u8], at: usize, ipv4: bool) -> Option<Flow> {
    let (inner, l4) = if ipv4 {
        parse_ipv4(frame, at).ok()?
    } else {
        let h = read(frame, at, 40).ok()?;
        if h[0] >> 4 != 6 {
            return None;
        }
        let inner = packet(v6(&h[8..24]), v6(&h[24..40]), h[6], Fragment::None, 0);
        (inner, at + 40)
    };
    let h = read(frame, l4, 8).ok()?;
    let (sport, dport) = match inner.proto {
        TCP | UDP => (be16(&h[0..2]), be16(&h[2..4])),
        p if is_echo(p, h[0]) => (be16(&h[4..6]), be16(&h[4..6])),
        _ => (0, 0),
    };
    Some(Flow::new(
        inner.proto,
        (inner.src, sport),
        (inner.dst, dport),
    ))
}

/// Whether `rule` allows a new packet whose remote end is `peer`.
fn rule_allows(state: &State, rule: &Rule, pkt: &Packet, peer: IpAddr) -> bool {
    let protocol = match rule.protocol {
        Protocol::All => true,
        Protocol::Number(p) => p == pkt.proto,
    };
    let ports = match (rule.protocol, rule.ports) {
        (Protocol::Number(TCP | UDP), Some((from, to))) => {
            (from..=to).contains(&i32::from(pkt.dport))
        }
        (Protocol::Number(ICMP | ICMPV6), Some((icmp_type, code))) => {
            let (t, c) = (i32::from(pkt.sport >> 8), i32::from(pkt.sport & 0xff));
            (icmp_type == -1 || icmp_type == t) && (code == -1 || code == c)
        }
        _ => true,
    };
    protocol && ports && peer_matches(state, &rule.peer, peer)
}

fn peer_matches(state: &State, peer: &Peer, addr: IpAddr) -> bool {
    match (peer, addr) {
        (Peer::Cidr4(net), IpAddr::V4(a)) => net.contains(&a),
        (Peer::Cidr6(net), IpAddr::V6(a)) => net.contains(&a),
        (Peer::Cidr4(_) | Peer::Cidr6(_), _) => false,
        (Peer::Group(group), _) => state.network_interfaces.values().any(|i| {
            running_instance_of(state, i)
                && i.group_ids.contains(group)
                && (IpAddr::V4(i.private_ip) == addr || i.ipv6.map(IpAddr::V6) == Some(addr))
        }),
        (Peer::PrefixList(id), _) => state.prefix_lists[id]
            .entries()
            .iter()
            .any(|e| e.cidr.contains(&addr)),
    }
}

/// The reference data plane for one workload: its flow table and the first fragments that passed.
#[derive(Default)]
pub struct Reference {
    flows: HashSet<Flow>,
    first_fragments: HashSet<Datagram>,
}

impl Reference {
    /// Whether `frame`, delivered to (`Inbound`) or sent by (`Outbound`) the workload on
    /// interface `interface`, passes; updates the flow table as the data plane would.
    pub fn passes(&mut self, state: &State, interface: &str, dir: Direction, frame: &[u8]) -> bool {
        let pkt = match parse(frame) {
            Ok(Some(pkt)) => pkt,
            Ok(None) => return true,
            Err(Malformed) => return false,
        };
        if pkt.exempt() {
            self.remember_first_fragment(&pkt);
            return true;
        }
        if pkt.fragment == Fragment::Later {
            return self.first_fragments.contains(&pkt.datagram());
        }
        let passes = self.judge(state, interface, dir, &pkt);
        if passes {
            self.remember_first_fragment(&pkt);
        }
        passes
    }

    fn remember_first_fragment(&mut self, pkt: &Packet) {
        if pkt.fragment == Fragment::First {
            self.first_fragments.insert(pkt.datagram());
        }
    }

    fn judge(&mut self, state: &State, interface: &str, dir: Direction, pkt: &Packet) -> bool {
        if let Some(quoted) = &pkt.quoted {
            // An error about a live flow passes; any other is judged by the rules alone.
            return self.flows.contains(quoted) || allowed_by_rules(state, interface, dir, pkt);
        }
        let flow = pkt.flow();
        if flow.as_ref().is_some_and(|f| self.flows.contains(f)) {
            return true;
        }
        if !allowed_by_rules(state, interface, dir, pkt) {
            return false;
        }
        if let Some(flow) = flow.filter(|_| pkt.opens_flow())
            && !untracked(state, interface, dir, pkt)
        {
            self.flows.insert(flow);
        }
        true
    }
}

/// AWS's untracked flows: TCP or UDP, allowed by a `/0` rule in one direction while a `/0` rule
/// in the other allows every port of the protocol; either end of the flow may be the one whose
/// port the first rule names.
fn untracked(state: &State, interface: &str, dir: Direction, pkt: &Packet) -> bool {
    if !matches!(pkt.proto, TCP | UDP) {
        return false;
    }
    let back = match dir {
        Direction::Inbound => Direction::Outbound,
        Direction::Outbound => Direction::Inbound,
    };
    let zero = |d: Direction, port: Option<u16>| zero_rule_allows(state, interface, d, pkt, port);
    (zero(dir, Some(pkt.dport)) && zero(back, None))
        || (zero(dir, None) && zero(back, Some(pkt.sport)))
}

/// Whether a rule with the peer `0.0.0.0/0` (`::/0`, or a prefix list holding it) of the
/// packet's family, in direction `dir`, allows its protocol on `port` (`None`: on every port).
fn zero_rule_allows(
    state: &State,
    interface: &str,
    dir: Direction,
    pkt: &Packet,
    port: Option<u16>,
) -> bool {
    let v4 = pkt.src.is_ipv4();
    let zero_peer = |peer: &Peer| match peer {
        Peer::Cidr4(net) => v4 && net.prefix_len() == 0,
        Peer::Cidr6(net) => !v4 && net.prefix_len() == 0,
        Peer::Group(_) => false,
        Peer::PrefixList(id) => state.prefix_lists[id]
            .entries()
            .iter()
            .any(|e| e.cidr.prefix_len() == 0 && e.cidr.addr().is_ipv4() == v4),
    };
    workload_rules(state, interface, dir).any(|rule| {
        zero_peer(&rule.peer)
            && match rule.protocol {
                Protocol::All => true,
                Protocol::Number(p) if p == pkt.proto => match (rule.ports, port) {
                    (None, _) => true,
                    (Some((from, to)), None) => from == 0 && to == 65535,
                    (Some((from, to)), Some(port)) => (from..=to).contains(&i32::from(port)),
                },
                Protocol::Number(_) => false,
            }
    })
}

/// Whether the network interface is attached to a running instance.
fn running_instance_of(state: &State, eni: &NetworkInterface) -> bool {
    eni.attachment
        .as_ref()
        .and_then(|a| state.instances.get(&a.instance_id))
        .is_some_and(|i| i.state == InstanceState::Running)
}

/// The network interface of a running instance whose host-side veth is `interface`.
fn interface_on<'a>(state: &'a State, interface: &str) -> &'a NetworkInterface {
    state
        .network_interfaces
        .values()
        .find(|i| i.host_interface == interface && running_instance_of(state, i))
        .expect("a running workload on the interface")
}

/// The rules of every group attached to the running workload on `interface`, in `dir`.
fn workload_rules<'a>(
    state: &'a State,
    interface: &str,
    dir: Direction,
) -> impl Iterator<Item = &'a Rule> + 'a {
    let workload = interface_on(state, interface);
    workload
        .group_ids
        .iter()
        .flat_map(move |g| state.groups[g].rules(dir).iter().map(|r| &**r))
}

/// Whether any rule of any group attached to the workload, in the packet's direction, allows it.
fn allowed_by_rules(state: &State, interface: &str, dir: Direction, pkt: &Packet) -> bool {
    let peer = match dir {
        Direction::Inbound => pkt.src,
        Direction::Outbound => pkt.dst,
    };
    let workload = interface_on(state, interface);
    workload.group_ids.iter().any(|g| {
        state.groups[g]
            .rules(dir)
            .iter()
            .any(|rule| rule_allows(state, rule, pkt, peer))
    })
}

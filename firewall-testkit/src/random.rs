//! A seeded generator for differential tests: addresses near a few anchors (so rules and packets
//! overlap), rules as API permissions, and frames of every kind the data plane parses — well
//! formed, fragmented, quoting other frames, or broken.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use crate::frame::{self, Frame};

/// splitmix64: tiny, seedable, good enough to explore a state space.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Ports rules and packets gather around (DHCP's among them, for the exemptions).
const PORTS: &[u16] = &[0, 22, 53, 67, 68, 80, 443, 546, 547, 1024, 8080, 65535];
/// Protocols without ports, including ICMP numbers in the other family and IPv6's hop-by-hop.
const OTHER_PROTOCOLS: &[u8] = &[47, 50, 132, 59, 0, 255, 1, 58];
/// ICMP types: echo, errors, ND (exempt), and a few others.
const ICMP_TYPES: &[u8] = &[0, 8, 3, 11, 12, 5, 13];
const ICMPV6_TYPES: &[u8] = &[128, 129, 1, 2, 3, 4, 133, 135, 143, 139];

/// The addresses of one scenario: anchors that rules' CIDRs and packets' peers are drawn near.
pub struct Universe {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    pub workload4: Ipv4Addr,
    pub workload6: Ipv6Addr,
}

impl Universe {
    /// Anchors: the given addresses (members of the VPC) plus random ones.
    pub fn new(
        rng: &mut Rng,
        workload: (Ipv4Addr, Ipv6Addr),
        members: &[(Ipv4Addr, Ipv6Addr)],
    ) -> Self {
        let mut v4: Vec<_> = members.iter().map(|m| m.0).collect();
        let mut v6: Vec<_> = members.iter().map(|m| m.1).collect();
        v4.extend((0..3).map(|_| Ipv4Addr::from(rng.next_u64() as u32)));
        v4.push(Ipv4Addr::new(192, 0, 2, rng.next_u64() as u8));
        v6.extend(
            (0..2).map(|_| {
                Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(rng.next_u64() as u32))
            }),
        );
        v6.push(Ipv6Addr::from(
            rng.next_u64() as u128 | u128::from(rng.next_u64()) << 64,
        ));
        Universe {
            v4,
            v6,
            workload4: workload.0,
            workload6: workload.1,
        }
    }

    /// An address near an anchor: its low bits (a random number of them) randomised.
    pub fn near(&self, rng: &mut Rng, ipv4: bool) -> IpAddr {
        if ipv4 {
            let bits = rng.below(33) as u32;
            let base = u32::from(rng.pick(&self.v4));
            let mask = u32::MAX.checked_shr(32 - bits).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(
                (base & !mask) | (rng.next_u64() as u32 & mask),
            ))
        } else {
            let bits = rng.below(129) as u32;
            let base = u128::from(rng.pick(&self.v6));
            let mask = u128::MAX.checked_shr(128 - bits).unwrap_or(0);
            let noise = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            IpAddr::V6(Ipv6Addr::from((base & !mask) | (noise & mask)))
        }
    }

    fn workload(&self, ipv4: bool) -> IpAddr {
        if ipv4 {
            self.workload4.into()
        } else {
            self.workload6.into()
        }
    }

    /// A CIDR around an anchor, of any length.
    pub fn cidr(&self, rng: &mut Rng, ipv4: bool) -> String {
        let len = rng.below(if ipv4 { 33 } else { 129 });
        format!("{}/{len}", self.near(rng, ipv4))
    }
}

fn port_near(rng: &mut Rng) -> u16 {
    if rng.one_in(5) {
        return rng.next_u64() as u16;
    }
    let anchor = rng.pick(PORTS);
    match rng.below(3) {
        0 => anchor.saturating_sub(1),
        1 => anchor.saturating_add(1),
        _ => anchor,
    }
}

/// The peers a rule may name: CIDRs of the universe, groups, prefix lists.
pub struct Peers<'a> {
    pub universe: &'a Universe,
    pub groups: &'a [String],
    pub prefix_lists: &'a [String],
}

/// One random permission, as `IpPermissions` carries it.
pub fn permission(rng: &mut Rng, peers: &Peers) -> Value {
    let ipv4 = rng.one_in(2);
    let protocol = rng.pick(&[
        "tcp", "udp", "icmp", "icmpv6", "-1", "47", "6", "UDP", "132",
    ]);
    let mut p = json!({"IpProtocol": protocol});
    match protocol {
        "tcp" | "udp" | "6" | "UDP" if rng.one_in(8) => {
            p["FromPort"] = json!(-1);
            p["ToPort"] = json!(-1);
        }
        "tcp" | "udp" | "6" | "UDP" => {
            let from = port_near(rng);
            let span = rng.pick(&[0u16, 0, 1, 2, 10, 1000, 65535]);
            p["FromPort"] = json!(from);
            p["ToPort"] = json!(from.saturating_add(span));
        }
        "icmp" | "icmpv6" if !(protocol == "icmpv6" && rng.one_in(4)) => {
            let types = if protocol == "icmp" {
                ICMP_TYPES
            } else {
                ICMPV6_TYPES
            };
            let icmp_type = if rng.one_in(4) {
                -1
            } else {
                i32::from(rng.pick(types))
            };
            let code = if icmp_type == -1 || rng.one_in(2) {
                -1
            } else {
                rng.pick(&[0, 1, 4])
            };
            p["FromPort"] = json!(icmp_type);
            p["ToPort"] = json!(code);
        }
        _ => {}
    }
    match rng.below(10) {
        0 | 1 if !peers.groups.is_empty() => {
            p["UserIdGroupPairs"] = json!([{"GroupId": rng.pick(peers.groups)}]);
        }
        2 if !peers.prefix_lists.is_empty() => {
            p["PrefixListIds"] = json!([{"PrefixListId": rng.pick(peers.prefix_lists)}]);
        }
        _ if ipv4 => p["IpRanges"] = json!([{"CidrIp": peers.universe.cidr(rng, true)}]),
        _ => p["Ipv6Ranges"] = json!([{"CidrIpv6": peers.universe.cidr(rng, false)}]),
    }
    p
}

/// A permission as `ModifySecurityGroupRules` spells it (`SecurityGroupRule`).
pub fn rule_request(permission: &Value) -> Value {
    let mut rule = json!({"IpProtocol": permission["IpProtocol"]});
    for key in ["FromPort", "ToPort"] {
        if let Some(port) = permission.get(key) {
            rule[key] = port.clone();
        }
    }
    let (key, value) = if let Some(r) = permission.get("IpRanges") {
        ("CidrIpv4", &r[0]["CidrIp"])
    } else if let Some(r) = permission.get("Ipv6Ranges") {
        ("CidrIpv6", &r[0]["CidrIpv6"])
    } else if let Some(r) = permission.get("UserIdGroupPairs") {
        ("ReferencedGroupId", &r[0]["GroupId"])
    } else {
        (
            "PrefixListId",
            &permission["PrefixListIds"][0]["PrefixListId"],
        )
    };
    rule[key] = value.clone();
    rule
}

/// One frame to run, the direction it travels, and what it is (for reports).
#[derive(Clone)]
pub struct Probe {
    pub inbound: bool,
    pub frame: Frame,
    pub bytes: Vec<u8>,
    pub kind: &'static str,
}

impl Probe {
    fn new(inbound: bool, frame: Frame, kind: &'static str) -> Probe {
        let bytes = frame.bytes();
        Probe {
            inbound,
            frame,
            bytes,
            kind,
        }
    }
}

/// Frames of every kind, many of them answers to, repeats of or errors about earlier ones.
pub struct Packets {
    history: Vec<Probe>,
}

impl Default for Packets {
    fn default() -> Self {
        Packets {
            history: Vec::with_capacity(64),
        }
    }
}

impl Packets {
    pub fn next(&mut self, rng: &mut Rng, universe: &Universe) -> Probe {
        let earlier = (!self.history.is_empty()).then(|| rng.pick(&self.history));
        let probe = match (rng.below(20), earlier) {
            (0..=5, Some(e)) => reply(rng, &e),
            (6..=7, Some(e)) => Probe::new(e.inbound, with_new_flags(rng, e.frame), "repeat"),
            (8..=9, Some(e)) => icmp_error(rng, universe, &e),
            (10..=11, _) => {
                let whole = fresh(rng, universe);
                fragment(rng, whole)
            }
            (12..=14, _) => {
                let whole = fresh(rng, universe);
                malformed(rng, whole)
            }
            _ => fresh(rng, universe),
        };
        if self.history.len() == 64 {
            self.history.swap_remove(rng.below(64) as usize);
        }
        self.history.push(probe.clone());
        probe
    }
}

fn tcp_flags(rng: &mut Rng) -> u8 {
    let any = rng.next_u64() as u8;
    rng.pick(&[0x02, 0x02, 0x12, 0x10, 0x04, 0x11, 0x06, any])
}

/// A new packet between the workload and a peer near an anchor.
fn fresh(rng: &mut Rng, universe: &Universe) -> Probe {
    let inbound = rng.one_in(2);
    let ipv4 = rng.below(5) < 3;
    let peer = universe.near(rng, ipv4).to_string();
    let workload = universe.workload(ipv4).to_string();
    let (src, dst) = if inbound {
        (&peer, &workload)
    } else {
        (&workload, &peer)
    };
    let (icmp, types) = if ipv4 {
        (1, ICMP_TYPES)
    } else {
        (58, ICMPV6_TYPES)
    };
    let (sport, dport) = (port_near(rng), port_near(rng));
    let frame = match rng.below(8) {
        0..=2 => frame::tcp(src, sport, dst, dport, tcp_flags(rng)),
        3..=4 => frame::udp(src, sport, dst, dport),
        5..=6 => {
            let (any_type, any_code) = (rng.next_u64() as u8, rng.next_u64() as u8);
            let icmp_type = if rng.one_in(6) {
                any_type
            } else {
                rng.pick(types)
            };
            let code = rng.pick(&[0, 0, 1, 4, any_code]);
            frame::icmp(src, dst, icmp, icmp_type, code, rng.pick(&[1, 77, sport]))
        }
        _ => frame::frame(src, dst, rng.pick(OTHER_PROTOCOLS), vec![0u8; 8]),
    };
    Probe::new(inbound, frame, "fresh")
}

fn with_new_flags(rng: &mut Rng, mut frame: Frame) -> Frame {
    if frame.proto == 6 && frame.l4.len() >= 14 {
        frame.l4[13] = tcp_flags(rng);
    }
    frame
}

/// The other direction of an earlier frame: addresses and ports swapped, an echo answered.
fn reply(rng: &mut Rng, earlier: &Probe) -> Probe {
    let mut f = earlier.frame.clone();
    std::mem::swap(&mut f.src, &mut f.dst);
    match f.proto {
        6 | 17 if f.l4.len() >= 4 => {
            let (sport, dport) = ([f.l4[0], f.l4[1]], [f.l4[2], f.l4[3]]);
            f.l4[0..2].copy_from_slice(&dport);
            f.l4[2..4].copy_from_slice(&sport);
        }
        1 | 58 if !f.l4.is_empty() => {
            f.l4[0] = match f.l4[0] {
                8 => 0,
                128 => 129,
                other => other,
            };
        }
        _ => {}
    }
    Probe::new(!earlier.inbound, with_new_flags(rng, f), "reply")
}

/// An ICMP error quoting an earlier frame (as its sender sent it, or the other way round), to
/// or from the workload; sometimes with the quote cut short.
fn icmp_error(rng: &mut Rng, universe: &Universe, earlier: &Probe) -> Probe {
    let mut quoted = if rng.one_in(3) {
        reply(rng, earlier)
    } else {
        earlier.clone()
    };
    // Routers quote the IP header and 8 bytes of payload.
    let len = quoted.frame.l4.len().max(8);
    quoted.frame.l4.resize(len, 0);
    let ipv4 = quoted.frame.src.is_ipv4();
    let inbound = if rng.one_in(4) {
        quoted.inbound
    } else {
        !quoted.inbound
    };
    let router = universe.near(rng, ipv4).to_string();
    let workload = universe.workload(ipv4).to_string();
    let (from, to) = if inbound {
        (&router, &workload)
    } else {
        (&workload, &router)
    };
    let (proto, icmp_type) = if ipv4 {
        (1, rng.pick(&[3, 11, 12]))
    } else {
        (58, rng.pick(&[1, 2, 3, 4]))
    };
    let code = rng.pick(&[0, 4]);
    let mut error = frame::icmp_error(from, to, proto, icmp_type, code, &quoted.frame);
    if rng.one_in(6) {
        let keep = rng.below(error.l4.len() as u64) as usize;
        error.l4.truncate(keep);
    }
    Probe::new(inbound, error, "icmp-error")
}

/// A first or later fragment of a frame (later ones carry payload, no L4 header), of one of a
/// few datagram IDs so that fragments of one datagram arrive in any order.
fn fragment(rng: &mut Rng, probe: Probe) -> Probe {
    let mut f = probe.frame;
    let later = rng.one_in(2);
    if later {
        let len = rng.below(24) as usize;
        f.l4 = rng.bytes(len);
    }
    let offset = if later {
        8 * (1 + rng.below(200) as u16)
    } else {
        0
    };
    let id = rng.below(3) as u16;
    let kind = if later {
        "later-fragment"
    } else {
        "first-fragment"
    };
    if f.src.is_ipv4() {
        f.fragment_offset = offset;
        f.more_fragments = !later || rng.one_in(2);
        let mut probe = Probe::new(probe.inbound, f, kind);
        probe.bytes[18..20].copy_from_slice(&id.to_be_bytes());
        return probe;
    }
    let more = u16::from(!later || rng.one_in(2));
    let header = [
        vec![0],
        (offset | more).to_be_bytes().to_vec(),
        vec![0, 0, 0],
        vec![id as u8],
    ]
    .concat();
    let bytes = with_extensions(&f.bytes(), &[(44, header)]);
    Probe {
        inbound: probe.inbound,
        frame: f,
        bytes,
        kind,
    }
}

/// Inserts IPv6 extension headers (type, body after the next-header byte) after the fixed header.
fn with_extensions(bytes: &[u8], chain: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = bytes[..54].to_vec();
    let mut next_at = 20;
    for (kind, body) in chain {
        let next = out[next_at];
        out[next_at] = *kind;
        next_at = out.len();
        out.push(next);
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&bytes[54..]);
    let payload = (out.len() - 54) as u16;
    out[18..20].copy_from_slice(&payload.to_be_bytes());
    out
}

/// A random extension header: hop-by-hop, routing, destination options (8-byte units), the
/// authentication header (4-byte units) or a fragment header (an unfragmented one).
fn extension(rng: &mut Rng) -> (u8, Vec<u8>) {
    match rng.pick(&[0, 43, 60, 51, 44]) {
        44 => (44, vec![0; 7]),
        51 => {
            let units = rng.below(4) as u8;
            (
                51,
                [vec![units], vec![0; (usize::from(units) + 2) * 4 - 2]].concat(),
            )
        }
        kind => {
            let units = rng.below(3) as u8;
            (
                kind,
                [vec![units], vec![0; (usize::from(units) + 1) * 8 - 2]].concat(),
            )
        }
    }
}

/// A frame broken one way: cut short, a bad IHL or version, a long extension-header chain, a
/// non-IP ethertype, or a random byte changed.
fn malformed(rng: &mut Rng, probe: Probe) -> Probe {
    let mut bytes = probe.bytes;
    let ipv4 = bytes[12..14] == [0x08, 0x00];
    // BPF_PROG_TEST_RUN refuses frames shorter than Ethernet and the fixed IP header.
    let min = if ipv4 { 34 } else { 54 };
    let kind = match rng.below(6) {
        0 => {
            let len = min + rng.below((bytes.len() - min) as u64) as usize;
            bytes.truncate(len);
            "truncated"
        }
        1 if ipv4 => {
            bytes[14] = 0x40 | rng.below(16) as u8;
            "ihl"
        }
        2 => {
            bytes[14] = (rng.below(16) as u8) << 4 | (bytes[14] & 0x0f);
            "version"
        }
        3 if !ipv4 => {
            let chain: Vec<_> = (0..rng.below(11)).map(|_| extension(rng)).collect();
            bytes = with_extensions(&bytes, &chain);
            "extension-chain"
        }
        4 => {
            bytes[12..14].copy_from_slice(&rng.pick(&[[0x08, 0x06], [0x81, 0x00], [0x88, 0xcc]]));
            "not-ip"
        }
        _ => {
            let at = 14 + rng.below((bytes.len() - 14) as u64) as usize;
            bytes[at] = rng.next_u64() as u8;
            "byte"
        }
    };
    Probe {
        inbound: probe.inbound,
        frame: probe.frame,
        bytes,
        kind,
    }
}

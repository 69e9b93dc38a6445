//! The one frame builder: Ethernet, then IPv4 (valid header checksum) or IPv6 (with extension
//! headers), then TCP, UDP or ICMP; fragments, and ICMP errors quoting another frame. Used by
//! the packet tests (BPF_PROG_TEST_RUN) and the benchmarks.

use std::net::IpAddr;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

/// The destination MAC address unless [`Frame::with_dst_mac`] sets another one.
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// The source MAC address of every frame.
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

#[derive(Clone)]
pub struct Frame {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub l4: Vec<u8>,
    pub ipv6_ext: Vec<u8>,
    pub fragment_offset: u16,
    pub more_fragments: bool,
    /// IPv4's don't-fragment flag.
    pub dont_fragment: bool,
    pub dst_mac: [u8; 6],
}

pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Frame {
    let mut l4 = vec![0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 5 << 4;
    l4[13] = flags;
    frame(src, dst, 6, l4)
}

pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Frame {
    let mut l4 = vec![0u8; 8];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&8u16.to_be_bytes());
    frame(src, dst, 17, l4)
}

pub fn icmp(src: &str, dst: &str, proto: u8, icmp_type: u8, code: u8, id: u16) -> Frame {
    let mut l4 = vec![icmp_type, code, 0, 0, 0, 0, 0, 1];
    l4[4..6].copy_from_slice(&id.to_be_bytes());
    frame(src, dst, proto, l4)
}

pub fn frame(src: &str, dst: &str, proto: u8, l4: Vec<u8>) -> Frame {
    Frame {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto,
        l4,
        ipv6_ext: Vec::new(),
        fragment_offset: 0,
        more_fragments: false,
        dont_fragment: false,
        dst_mac: DST_MAC,
    }
}

/// An ICMP error from `router` to `to` quoting the first bytes of `quoted` (its IP header and
/// 8 bytes of L4), as routers send them.
pub fn icmp_error(
    router: &str,
    to: &str,
    proto: u8,
    icmp_type: u8,
    code: u8,
    quoted: &Frame,
) -> Frame {
    let bytes = quoted.bytes();
    let ip_len = if quoted.src.is_ipv4() { 20 } else { 40 };
    let mut l4 = vec![icmp_type, code, 0, 0, 0, 0, 0x05, 0xdc];
    l4.extend_from_slice(&bytes[14..14 + ip_len + 8]);
    frame(router, to, proto, l4)
}

impl Frame {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.dst_mac.to_vec();
        out.extend_from_slice(&SRC_MAC);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                out.extend_from_slice(&[0x08, 0x00]);
                let total = (20 + self.l4.len()) as u16;
                let frag = (self.fragment_offset / 8)
                    | if self.more_fragments { 0x2000 } else { 0 }
                    | if self.dont_fragment { 0x4000 } else { 0 };
                out.extend_from_slice(&[0x45, 0]);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&[0, 1]);
                out.extend_from_slice(&frag.to_be_bytes());
                out.extend_from_slice(&[64, self.proto, 0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                // A valid header checksum: the stack checks it on the forwarding path.
                let sum = ipv4_checksum(&out[14..34]);
                out[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                out.extend_from_slice(&[0x86, 0xdd]);
                let payload = (self.ipv6_ext.len() + self.l4.len()) as u16;
                let next = if self.ipv6_ext.is_empty() {
                    self.proto
                } else {
                    0
                };
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&payload.to_be_bytes());
                out.extend_from_slice(&[next, 64]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                out.extend_from_slice(&self.ipv6_ext);
            }
            _ => panic!("mixed families"),
        }
        out.extend_from_slice(&self.l4);
        out
    }

    /// Puts a hop-by-hop options header (8 bytes, PadN) in front of the L4 header.
    pub fn with_hop_by_hop(mut self) -> Frame {
        self.ipv6_ext = vec![self.proto, 0, 1, 4, 0, 0, 0, 0];
        self
    }

    /// Sets IPv4's don't-fragment flag.
    pub fn dont_fragment(mut self) -> Frame {
        self.dont_fragment = true;
        self
    }

    /// Sends the frame to another MAC address.
    pub fn with_dst_mac(mut self, mac: [u8; 6]) -> Frame {
        self.dst_mac = mac;
        self
    }

    /// Appends `len` zero bytes of UDP payload (and counts them in the UDP length).
    pub fn with_udp_payload(mut self, len: usize) -> Frame {
        self.l4.resize(self.l4.len() + len, 0);
        let udp_len = self.l4.len() as u16;
        self.l4[4..6].copy_from_slice(&udp_len.to_be_bytes());
        self
    }
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

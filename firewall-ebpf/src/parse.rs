//! Packet parsing: Ethernet, IPv4 / IPv6 (extension headers walked), TCP / UDP / ICMP / ICMPv6.
//!
//! Every read goes through `load`: direct packet access where the linear part holds the bytes
//! (bounds-checked next to the access), the hook's own copy otherwise (`Frame::load_beyond`:
//! `bpf_skb_load_bytes` for non-linear skbs; XDP frames are linear); a short read is a malformed
//! packet. Headers are read as 32- and 16-bit words (one load each, not
//! one per byte): the verifier allows unaligned packet reads where the CPU has efficient unaligned
//! access (x86-64, arm64), and elsewhere the IP header is 4-byte aligned (`NET_IP_ALIGN`).

use firewall_common::{DropReason, family, proto};

use crate::frame::Frame;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
/// Extension headers walked before giving up (Cilium walks a similar constant number).
const IPV6_MAX_EXT_HEADERS: usize = 8;

/// Whether the packet is a fragment, and which.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    None,
    First,
    Later,
}

/// An address as it is on the wire (network order), in four words; IPv4 uses the first.
pub type Addr = [u32; 4];

/// The bytes of an address as map keys hold them.
#[inline(always)]
pub fn addr_bytes(addr: &Addr) -> [u8; 16] {
    // SAFETY: [u32; 4] and [u8; 16] are plain data of the same size; the words hold the bytes in
    // wire order.
    unsafe { core::mem::transmute::<Addr, [u8; 16]>(*addr) }
}

/// What the policy and conntrack need to know about one IP packet.
#[derive(Clone, Copy)]
pub struct Packet {
    pub family: u8,
    pub proto: u8,
    pub src: Addr,
    pub dst: Addr,
    /// TCP/UDP ports; the echo identifier (both) for ICMP echo; zero otherwise.
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub tcp_flags: u8,
    /// The frame's length from the Ethernet header on (the per-flow byte counters).
    pub len: u32,
    pub fragment: Fragment,
    /// IPv4 identification or IPv6 fragment identification (fragments only).
    pub frag_id: u32,
    /// An ICMP/ICMPv6 error (destination unreachable, packet too big, time exceeded, parameter
    /// problem) whose embedded packet was parsed into `inner`.
    pub icmp_error: bool,
    pub inner: InnerFlow,
}

/// The flow of the packet embedded in an ICMP error, as the original sender sent it.
#[derive(Clone, Copy)]
pub struct InnerFlow {
    pub proto: u8,
    pub src: Addr,
    pub dst: Addr,
    pub sport: [u8; 2],
    pub dport: [u8; 2],
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Fills `pkt` (which lives in the per-CPU scratch slot); `Ok(false)` for frames that are not IP
/// (ARP and friends pass untouched, as on AWS).
#[inline(always)]
pub fn parse<F: Frame>(ctx: &F, pkt: &mut Packet) -> Result<bool, DropReason> {
    // Addresses are written by the IP parsers (not zeroed here: a 32-byte memset is a call).
    let ethertype: u16 = load(ctx, 12)?;
    pkt.sport = [0; 2];
    pkt.dport = [0; 2];
    pkt.icmp_type = 0;
    pkt.icmp_code = 0;
    pkt.tcp_flags = 0;
    pkt.len = ctx.len();
    pkt.fragment = Fragment::None;
    pkt.frag_id = 0;
    pkt.icmp_error = false;
    let l4_offset = match u16::from_be(ethertype) {
        ETH_P_IP => parse_ipv4(ctx, pkt)?,
        ETH_P_IPV6 => parse_ipv6(ctx, pkt)?,
        _ => return Ok(false),
    };
    if pkt.fragment != Fragment::Later {
        parse_l4(ctx, pkt, l4_offset)?;
    }
    Ok(true)
}

#[inline(always)]
fn load<T, F: Frame>(ctx: &F, offset: usize) -> Result<T, DropReason> {
    // Direct access to the linear part, bounds-checked right here; past it (a non-linear skb)
    // the hook copies from the fragments.
    let start = ctx.data();
    let end = ctx.data_end();
    if offset <= 0xffff && start + offset + core::mem::size_of::<T>() <= end {
        // SAFETY: within [data, data_end), checked just above; plain data. A read as wide as
        // `T`'s words (see the module docs on alignment).
        return Ok(unsafe { core::ptr::read((start + offset) as *const T) });
    }
    ctx.load_beyond::<T>(offset)
        .map_err(|()| DropReason::Malformed)
}

#[inline(always)]
fn parse_ipv4<F: Frame>(ctx: &F, pkt: &mut Packet) -> Result<usize, DropReason> {
    let hdr: [u32; 5] = load(ctx, ETH_HLEN)?;
    let first = hdr[0].to_ne_bytes();
    if first[0] >> 4 != 4 {
        return Err(DropReason::Malformed);
    }
    let ihl = (first[0] & 0x0f) as usize;
    if ihl < 5 {
        return Err(DropReason::Malformed);
    }
    let [id_hi, id_lo, frag_hi, frag_lo] = hdr[1].to_ne_bytes();
    pkt.family = family::IPV4;
    pkt.proto = hdr[2].to_ne_bytes()[1];
    pkt.src = [hdr[3], 0, 0, 0];
    pkt.dst = [hdr[4], 0, 0, 0];
    pkt.frag_id = u32::from(u16::from_be_bytes([id_hi, id_lo]));
    let frag = u16::from_be_bytes([frag_hi, frag_lo]);
    let more_fragments = frag & 0x2000 != 0;
    pkt.fragment = match (frag & 0x1fff, more_fragments) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    Ok(ETH_HLEN + ihl * 4)
}

#[inline(always)]
fn parse_ipv6<F: Frame>(ctx: &F, pkt: &mut Packet) -> Result<usize, DropReason> {
    let hdr: [u32; 2] = load(ctx, ETH_HLEN)?;
    if hdr[0].to_ne_bytes()[0] >> 4 != 6 {
        return Err(DropReason::Malformed);
    }
    pkt.family = family::IPV6;
    pkt.src = load(ctx, ETH_HLEN + 8)?;
    pkt.dst = load(ctx, ETH_HLEN + 24)?;
    let mut next = hdr[1].to_ne_bytes()[2];
    let mut offset = ETH_HLEN + 40;
    // One more round than there are extension headers to walk: the one that finds the L4 header.
    for _ in 0..=IPV6_MAX_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units, excluding the first.
            0 | 43 | 60 => {
                let ext: [u8; 2] = load(ctx, offset)?;
                next = ext[0];
                offset += (ext[1] as usize + 1) * 8;
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let ext: [u8; 2] = load(ctx, offset)?;
                next = ext[0];
                offset += (ext[1] as usize + 2) * 4;
            }
            44 => {
                let ext: [u8; 8] = load(ctx, offset)?;
                next = ext[0];
                let fragment_offset = u16::from_be_bytes([ext[2], ext[3]]) & 0xfff8;
                let more_fragments = ext[3] & 1 != 0;
                pkt.frag_id = u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]);
                pkt.fragment = match (fragment_offset, more_fragments) {
                    (0, false) => Fragment::None,
                    (0, true) => Fragment::First,
                    _ => Fragment::Later,
                };
                offset += 8;
            }
            _ => {
                pkt.proto = next;
                return Ok(offset);
            }
        }
    }
    // More extension headers than any sane packet carries.
    Err(DropReason::Malformed)
}

#[inline(always)]
fn parse_l4<F: Frame>(ctx: &F, pkt: &mut Packet, offset: usize) -> Result<(), DropReason> {
    match pkt.proto {
        proto::TCP => {
            // Ports, sequence and acknowledgement numbers, then the data offset and the flags:
            // the first 14 bytes, as the reference reads them.
            let ports: u32 = load(ctx, offset)?;
            let flags: u16 = load(ctx, offset + 12)?;
            let [s0, s1, d0, d1] = ports.to_ne_bytes();
            pkt.sport = [s0, s1];
            pkt.dport = [d0, d1];
            pkt.tcp_flags = flags.to_ne_bytes()[1];
        }
        proto::UDP => {
            let ports: u32 = load(ctx, offset)?;
            let [s0, s1, d0, d1] = ports.to_ne_bytes();
            pkt.sport = [s0, s1];
            pkt.dport = [d0, d1];
        }
        proto::ICMP | proto::ICMPV6 => {
            let hdr: [u32; 2] = load(ctx, offset)?;
            let [icmp_type, icmp_code, _, _] = hdr[0].to_ne_bytes();
            let [id0, id1, _, _] = hdr[1].to_ne_bytes();
            pkt.icmp_type = icmp_type;
            pkt.icmp_code = icmp_code;
            if is_icmp_echo(pkt.proto, pkt.icmp_type) {
                pkt.sport = [id0, id1];
                pkt.dport = [id0, id1];
            } else if is_icmp_error(pkt.proto, pkt.icmp_type) {
                // A truncated embedded packet just leaves the error unrelated to any flow.
                pkt.icmp_error = parse_embedded(ctx, pkt, offset + 8).is_ok();
            }
        }
        _ => {}
    }
    Ok(())
}

/// ICMPv4 3 (unreachable, incl. fragmentation needed), 11, 12; ICMPv6 1–4 (incl. packet too big).
#[inline(always)]
pub fn is_icmp_error(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        proto::ICMP => matches!(icmp_type, 3 | 11 | 12),
        proto::ICMPV6 => matches!(icmp_type, 1..=4),
        _ => false,
    }
}

/// Parses the IP header and the first 8 bytes of L4 that an ICMP error carries.
#[inline(always)]
fn parse_embedded<F: Frame>(ctx: &F, pkt: &mut Packet, offset: usize) -> Result<(), DropReason> {
    let inner_l4 = if pkt.family == family::IPV4 {
        let hdr: [u8; 20] = load(ctx, offset)?;
        let ihl = (hdr[0] & 0x0f) as usize;
        if hdr[0] >> 4 != 4 || ihl < 5 {
            return Err(DropReason::Malformed);
        }
        pkt.inner.proto = hdr[9];
        let word = |i: usize| u32::from_ne_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
        pkt.inner.src = [word(12), 0, 0, 0];
        pkt.inner.dst = [word(16), 0, 0, 0];
        offset + ihl * 4
    } else {
        let hdr: [u8; 8] = load(ctx, offset)?;
        if hdr[0] >> 4 != 6 {
            return Err(DropReason::Malformed);
        }
        pkt.inner.proto = hdr[6];
        pkt.inner.src = load(ctx, offset + 8)?;
        pkt.inner.dst = load(ctx, offset + 24)?;
        offset + 40
    };
    let l4: [u8; 8] = load(ctx, inner_l4)?;
    match pkt.inner.proto {
        proto::TCP | proto::UDP => {
            pkt.inner.sport = [l4[0], l4[1]];
            pkt.inner.dport = [l4[2], l4[3]];
        }
        p if is_icmp_echo(p, l4[0]) => {
            pkt.inner.sport = [l4[4], l4[5]];
            pkt.inner.dport = [l4[4], l4[5]];
        }
        _ => {
            pkt.inner.sport = [0; 2];
            pkt.inner.dport = [0; 2];
        }
    }
    Ok(())
}

/// Echo request or reply: the only ICMP messages that open or continue a tracked flow.
#[inline(always)]
pub fn is_icmp_echo(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        proto::ICMP => icmp_type == 8 || icmp_type == 0,
        proto::ICMPV6 => icmp_type == 128 || icmp_type == 129,
        _ => false,
    }
}

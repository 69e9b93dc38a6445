//! Packet parsing: Ethernet, IPv4 / IPv6 (extension headers walked), TCP / UDP / ICMP / ICMPv6.
//!
//! Every read goes through `load`: direct packet access where the linear part holds the bytes
//! (bounds-checked next to the access), `bpf_skb_load_bytes` otherwise (non-linear skbs); a
//! short read is a malformed packet.

use aya_ebpf::programs::TcContext;
use firewall_common::{DropReason, family, proto};

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

/// What the policy and conntrack need to know about one IP packet.
#[derive(Clone, Copy)]
pub struct Packet {
    pub family: u8,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// TCP/UDP ports; the echo identifier (both) for ICMP echo; zero otherwise.
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub tcp_flags: u8,
    /// `skb->len`: the frame's length from the Ethernet header on (the per-flow byte counters).
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
    pub src: [u8; 16],
    pub dst: [u8; 16],
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
pub fn parse(ctx: &TcContext, pkt: &mut Packet) -> Result<bool, DropReason> {
    let ethertype: [u8; 2] = load(ctx, 12)?;
    pkt.src = [0; 16];
    pkt.dst = [0; 16];
    pkt.sport = [0; 2];
    pkt.dport = [0; 2];
    pkt.icmp_type = 0;
    pkt.icmp_code = 0;
    pkt.tcp_flags = 0;
    pkt.len = ctx.len();
    pkt.fragment = Fragment::None;
    pkt.frag_id = 0;
    pkt.icmp_error = false;
    let l4_offset = match u16::from_be_bytes(ethertype) {
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
fn load<T>(ctx: &TcContext, offset: usize) -> Result<T, DropReason> {
    // Direct access to the linear part of the skb, bounds-checked right here; past it (a
    // non-linear skb) the helper copies from the fragments.
    let start = ctx.data();
    let end = ctx.data_end();
    if offset <= 0xffff && start + offset + core::mem::size_of::<T>() <= end {
        // SAFETY: within [data, data_end), checked just above; unaligned read of plain bytes.
        return Ok(unsafe { core::ptr::read_unaligned((start + offset) as *const T) });
    }
    ctx.load::<T>(offset).map_err(|_| DropReason::Malformed)
}

#[inline(always)]
fn parse_ipv4(ctx: &TcContext, pkt: &mut Packet) -> Result<usize, DropReason> {
    let hdr: [u8; 20] = load(ctx, ETH_HLEN)?;
    if hdr[0] >> 4 != 4 {
        return Err(DropReason::Malformed);
    }
    let ihl = (hdr[0] & 0x0f) as usize;
    if ihl < 5 {
        return Err(DropReason::Malformed);
    }
    pkt.family = family::IPV4;
    pkt.proto = hdr[9];
    pkt.src[..4].copy_from_slice(&hdr[12..16]);
    pkt.dst[..4].copy_from_slice(&hdr[16..20]);
    pkt.frag_id = u32::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    let more_fragments = frag & 0x2000 != 0;
    pkt.fragment = match (frag & 0x1fff, more_fragments) {
        (0, false) => Fragment::None,
        (0, true) => Fragment::First,
        _ => Fragment::Later,
    };
    Ok(ETH_HLEN + ihl * 4)
}

#[inline(always)]
fn parse_ipv6(ctx: &TcContext, pkt: &mut Packet) -> Result<usize, DropReason> {
    let hdr: [u8; 8] = load(ctx, ETH_HLEN)?;
    if hdr[0] >> 4 != 6 {
        return Err(DropReason::Malformed);
    }
    pkt.family = family::IPV6;
    pkt.src = load(ctx, ETH_HLEN + 8)?;
    pkt.dst = load(ctx, ETH_HLEN + 24)?;
    let mut next = hdr[6];
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
fn parse_l4(ctx: &TcContext, pkt: &mut Packet, offset: usize) -> Result<(), DropReason> {
    match pkt.proto {
        proto::TCP => {
            let hdr: [u8; 14] = load(ctx, offset)?;
            pkt.sport = [hdr[0], hdr[1]];
            pkt.dport = [hdr[2], hdr[3]];
            pkt.tcp_flags = hdr[13];
        }
        proto::UDP => {
            let hdr: [u8; 4] = load(ctx, offset)?;
            pkt.sport = [hdr[0], hdr[1]];
            pkt.dport = [hdr[2], hdr[3]];
        }
        proto::ICMP | proto::ICMPV6 => {
            let hdr: [u8; 8] = load(ctx, offset)?;
            pkt.icmp_type = hdr[0];
            pkt.icmp_code = hdr[1];
            if is_icmp_echo(pkt.proto, pkt.icmp_type) {
                pkt.sport = [hdr[4], hdr[5]];
                pkt.dport = [hdr[4], hdr[5]];
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
fn parse_embedded(ctx: &TcContext, pkt: &mut Packet, offset: usize) -> Result<(), DropReason> {
    let inner_l4 = if pkt.family == family::IPV4 {
        let hdr: [u8; 20] = load(ctx, offset)?;
        let ihl = (hdr[0] & 0x0f) as usize;
        if hdr[0] >> 4 != 4 || ihl < 5 {
            return Err(DropReason::Malformed);
        }
        pkt.inner.proto = hdr[9];
        pkt.inner.src = [0; 16];
        pkt.inner.dst = [0; 16];
        pkt.inner.src[..4].copy_from_slice(&hdr[12..16]);
        pkt.inner.dst[..4].copy_from_slice(&hdr[16..20]);
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

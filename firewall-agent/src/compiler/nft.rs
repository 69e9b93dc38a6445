//! The desired state as an nftables ruleset (`firewall-agent export --format nftables`): the same
//! groups enforced by netfilter instead of eBPF, for users who want it and for honest benchmarks.
//!
//! One `inet` table on the forward hook of the host (workload traffic is routed by the host):
//! established/related flows are accepted first (conntrack), then a packet must pass the
//! sender's outbound chain (`iifname` = its veth) and the receiver's inbound chain (`oifname`).
//! Each policy chain `return`s on a match and drops otherwise. With `Layout::Sets` every policy
//! direction is a handful of lookups in interval sets (pipapo for concatenations); with
//! `Layout::Linear` it is one rule per (rule, peer prefix), evaluated in order.
//!
//! Everything rendered comes from validated values (canonical CIDRs, numbers, interface names
//! checked at `run-instances`), so nothing user-written reaches the ruleset unescaped. The
//! policies and their peer prefixes come from the front end (`resolve`), as for eBPF.

use std::{collections::BTreeMap, fmt::Write as _};

use firewall_common::Direction;
use ipnet::IpNet;

use super::resolve::{self, Grant, Policy, PortItem};
use crate::model::State;

/// How each policy's rules are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Interval sets per policy, direction and match shape.
    Sets,
    /// One rule per rule and peer prefix.
    Linear,
}

pub const TABLE: &str = "firewall_agent";

/// One allowed (peer, protocol, ports) tuple, in the shape nftables matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    /// Protocol -1: any packet to or from the peer.
    All(IpNet),
    /// TCP/UDP (or any protocol number with ports): peer . protocol . port range.
    Ports(IpNet, u8, u16, u16),
    /// A protocol without ports: peer . protocol.
    Proto(IpNet, u8),
    /// ICMP / ICMPv6: peer . type range . code range.
    Icmp(IpNet, u8, (u8, u8), (u8, u8)),
}

impl From<&Grant> for Match {
    fn from(grant: &Grant) -> Match {
        let net = grant.prefix;
        match grant.item {
            PortItem::All => Match::All(net),
            PortItem::Ports { proto, from, to } => Match::Ports(net, proto, from, to),
            PortItem::Proto(proto) => Match::Proto(net, proto),
            PortItem::Icmp {
                proto,
                types,
                codes,
            } => Match::Icmp(net, proto, types, codes),
        }
    }
}

fn net_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn range_text(from: u16, to: u16) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from}-{to}")
    }
}

fn byte_range(r: (u8, u8)) -> String {
    if r.0 == r.1 {
        r.0.to_string()
    } else {
        format!("{}-{}", r.0, r.1)
    }
}

/// Renders the ruleset for every running workload of `state`.
pub fn render(state: &State, layout: Layout) -> String {
    let resolved = resolve::resolve(state);
    // Chains are numbered by the first running workload of each policy.
    let mut numbers: BTreeMap<usize, usize> = BTreeMap::new();
    let mut interfaces: Vec<(&str, usize)> = Vec::new();
    for workload in resolved.workloads.iter().filter(|w| w.running) {
        let next = numbers.len();
        let id = *numbers.entry(workload.policy).or_insert(next);
        interfaces.push((&workload.interface, id));
    }
    let mut policies: Vec<(&Policy, usize)> = numbers
        .iter()
        .map(|(index, id)| (&resolved.policies[*index], *id))
        .collect();
    policies.sort_by(|a, b| a.0.groups.cmp(&b.0.groups));
    let mut out = String::new();
    let _ = writeln!(out, "table inet {TABLE} {{");
    let mut chains = String::new();
    for (policy, id) in policies {
        for (dir, direction) in [("in", Direction::Inbound), ("out", Direction::Outbound)] {
            let mut all: Vec<Match> = policy.grants(direction).iter().map(Match::from).collect();
            all.sort();
            all.dedup();
            let chain = format!("p{id}_{dir}");
            let peer = if direction.is_egress() {
                "daddr"
            } else {
                "saddr"
            };
            let _ = writeln!(chains, "  chain {chain} {{");
            match layout {
                Layout::Sets => render_sets(&mut out, &mut chains, &chain, peer, &all),
                Layout::Linear => render_linear(&mut chains, peer, &all),
            }
            let _ = writeln!(chains, "    drop\n  }}");
        }
    }
    out.push_str(&chains);
    let _ = writeln!(out, "  chain forward {{");
    let _ = writeln!(
        out,
        "    type filter hook forward priority filter; policy accept;"
    );
    let _ = writeln!(out, "    ct state established,related accept");
    let _ = writeln!(out, "    ct state invalid drop");
    // Never filtered: IPv6 neighbour discovery (routed ND does not occur, but be explicit).
    for (interface, id) in &interfaces {
        let _ = writeln!(out, "    iifname \"{interface}\" jump p{id}_out");
    }
    for (interface, id) in &interfaces {
        let _ = writeln!(out, "    oifname \"{interface}\" jump p{id}_in");
    }
    let _ = writeln!(out, "  }}\n}}");
    out
}

/// What one address interval allows, after merging: ports per protocol, whole protocols, ICMP
/// (type << 8 | code) ranges per protocol, or everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Allowed {
    all: bool,
    /// (protocol, from, to), disjoint and sorted per protocol.
    ports: Vec<(u8, u16, u16)>,
    protos: Vec<u8>,
    /// (protocol, from, to) over `type << 8 | code`.
    icmp: Vec<(u8, u16, u16)>,
}

fn coalesce(mut ranges: Vec<(u8, u16, u16)>) -> Vec<(u8, u16, u16)> {
    ranges.sort();
    let mut out: Vec<(u8, u16, u16)> = Vec::new();
    for (p, lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if last.0 == p && u32::from(lo) <= u32::from(last.2) + 1 => {
                last.2 = last.2.max(hi)
            }
            _ => out.push((p, lo, hi)),
        }
    }
    out
}

impl Allowed {
    fn from_matches(items: &[&Match]) -> Allowed {
        let mut a = Allowed::default();
        for m in items {
            match m {
                Match::All(_) => a.all = true,
                Match::Ports(_, p, lo, hi) => a.ports.push((*p, *lo, *hi)),
                Match::Proto(_, p) => a.protos.push(*p),
                Match::Icmp(_, p, t, c) => {
                    for ty in t.0..=t.1 {
                        a.icmp.push((
                            *p,
                            (u16::from(ty) << 8) | u16::from(c.0),
                            (u16::from(ty) << 8) | u16::from(c.1),
                        ));
                    }
                }
            }
        }
        if a.all {
            return Allowed {
                all: true,
                ..Allowed::default()
            };
        }
        a.protos.sort();
        a.protos.dedup();
        let protos = a.protos.clone();
        a.ports = coalesce(
            a.ports
                .into_iter()
                .filter(|(p, ..)| !protos.contains(p))
                .collect(),
        );
        a.icmp = coalesce(
            a.icmp
                .into_iter()
                .filter(|(p, ..)| !protos.contains(p))
                .collect(),
        );
        a
    }
}

fn matched_net(m: &Match) -> IpNet {
    match m {
        Match::All(n) | Match::Ports(n, ..) | Match::Proto(n, _) | Match::Icmp(n, ..) => *n,
    }
}

/// Address of one family as a number, and back as text.
fn addr_bounds(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

fn addr_text(v4: bool, a: u128) -> String {
    if v4 {
        std::net::Ipv4Addr::from(a as u32).to_string()
    } else {
        std::net::Ipv6Addr::from(a).to_string()
    }
}

fn interval_text(v4: bool, lo: u128, hi: u128) -> String {
    if lo == hi {
        addr_text(v4, lo)
    } else {
        format!("{}-{}", addr_text(v4, lo), addr_text(v4, hi))
    }
}

/// Disjoint address intervals, each with everything the rules covering it allow. Nested and
/// overlapping prefixes are what security groups are made of, and nftables interval sets
/// (pipapo for concatenations) refuse elements that overlap in every field.
fn disjoint_intervals(all: &[Match], v4: bool) -> Vec<(u128, u128, Allowed)> {
    let items: Vec<(u128, u128, &Match)> = all
        .iter()
        .filter(|m| matched_net(m).addr().is_ipv4() == v4)
        .map(|m| {
            let (lo, hi) = addr_bounds(&matched_net(m));
            (lo, hi, m)
        })
        .collect();
    // Interval starts; the segment after the last one runs to the top of the address space.
    let mut cuts: Vec<u128> = items
        .iter()
        .flat_map(|(lo, hi, _)| [Some(*lo), hi.checked_add(1)])
        .flatten()
        .collect();
    cuts.sort();
    cuts.dedup();
    let top = if v4 { u128::from(u32::MAX) } else { u128::MAX };
    let segments: Vec<(u128, u128)> = cuts
        .iter()
        .enumerate()
        .map(|(i, lo)| (*lo, cuts.get(i + 1).map(|next| next - 1).unwrap_or(top)))
        .collect();
    let mut by_start: Vec<&(u128, u128, &Match)> = items.iter().collect();
    by_start.sort_by_key(|(lo, hi, _)| (*lo, std::cmp::Reverse(*hi)));
    let mut out: Vec<(u128, u128, Allowed)> = Vec::new();
    let mut next = 0;
    let mut active: Vec<&(u128, u128, &Match)> = Vec::new();
    for (lo, hi) in segments {
        while next < by_start.len() && by_start[next].0 <= lo {
            active.push(by_start[next]);
            next += 1;
        }
        active.retain(|(_, end, _)| *end >= lo);
        let covering: Vec<&Match> = active
            .iter()
            .filter(|(s, e, _)| *s <= lo && *e >= hi)
            .map(|(_, _, m)| *m)
            .collect();
        if covering.is_empty() {
            continue;
        }
        let allowed = Allowed::from_matches(&covering);
        match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(lo) && last.2 == allowed => last.1 = hi,
            _ => out.push((lo, hi, allowed)),
        }
    }
    out
}

/// Sets: per family, disjoint intervals rendered into one set per match shape, one lookup rule
/// per set.
fn render_sets(sets: &mut String, chain_body: &mut String, chain: &str, peer: &str, all: &[Match]) {
    for v4 in [true, false] {
        let (family, addr_type, icmp_word, icmp_types) = if v4 {
            ("ip", "ipv4_addr", "icmp", "icmp_type . icmp_code")
        } else {
            ("ip6", "ipv6_addr", "icmpv6", "icmpv6_type . icmpv6_code")
        };
        let intervals = disjoint_intervals(all, v4);
        let mut shapes: [(String, String, Vec<String>); 4] = [
            (
                addr_type.to_string(),
                format!("{family} {peer}"),
                Vec::new(),
            ),
            (
                format!("{addr_type} . inet_proto . inet_service"),
                format!("{family} {peer} . meta l4proto . th dport"),
                Vec::new(),
            ),
            (
                format!("{addr_type} . inet_proto"),
                format!("{family} {peer} . meta l4proto"),
                Vec::new(),
            ),
            (
                format!("{addr_type} . {icmp_types}"),
                format!("{family} {peer} . {icmp_word} type . {icmp_word} code"),
                Vec::new(),
            ),
        ];
        for (lo, hi, allowed) in &intervals {
            let addr = interval_text(v4, *lo, *hi);
            if allowed.all {
                shapes[0].2.push(addr.clone());
            }
            for (p, from, to) in &allowed.ports {
                shapes[1]
                    .2
                    .push(format!("{addr} . {p} . {}", range_text(*from, *to)));
            }
            for p in &allowed.protos {
                shapes[2].2.push(format!("{addr} . {p}"));
            }
            for (p, from, to) in &allowed.icmp {
                if (*p == 1) != v4 {
                    continue; // ICMP rules match only their own family
                }
                // Split a type<<8|code range into per-type boxes.
                let (mut t, last) = (from >> 8, to >> 8);
                while t <= last {
                    let c_lo = if t == from >> 8 { from & 0xff } else { 0 };
                    let c_hi = if t == last { to & 0xff } else { 255 };
                    shapes[3]
                        .2
                        .push(format!("{addr} . {t} . {}", range_text(c_lo, c_hi)));
                    t += 1;
                }
            }
        }
        for (index, (set_type, expr, elements)) in shapes.iter().enumerate() {
            if elements.is_empty() {
                continue;
            }
            let set = format!("{chain}_{family}_{index}");
            let _ = writeln!(
                sets,
                "  set {set} {{\n    type {set_type}\n    flags interval"
            );
            let _ = writeln!(sets, "    elements = {{ {} }}\n  }}", elements.join(", "));
            let _ = writeln!(chain_body, "    {expr} @{set} return");
        }
    }
}

/// Linear: one rule per match.
fn render_linear(chain_body: &mut String, peer: &str, all: &[Match]) {
    for m in all {
        let (net, rest) = match m {
            Match::All(net) => (net, String::new()),
            Match::Ports(net, p, from, to) => (
                net,
                format!(" meta l4proto {p} th dport {}", range_text(*from, *to)),
            ),
            Match::Proto(net, p) => (net, format!(" meta l4proto {p}")),
            Match::Icmp(net, p, t, c) => {
                let word = if *p == 1 { "icmp" } else { "icmpv6" };
                (
                    net,
                    format!(
                        " {word} type {} {word} code {}",
                        byte_range(*t),
                        byte_range(*c)
                    ),
                )
            }
        };
        let family = if net.addr().is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(
            chain_body,
            "    {family} {peer} {}{rest} return",
            net_text(net)
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{api::catalogue::call_json as dispatch, model::testing::SeqIds};

    #[test]
    fn sets_and_linear_layouts_render_every_rule_shape() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let web = dispatch(
            &mut state,
            &mut ids,
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "d"}),
        )
        .unwrap()["GroupId"]
            .as_str()
            .unwrap()
            .to_string();
        dispatch(&mut state, &mut ids, "AuthorizeSecurityGroupIngress", json!({"GroupId": web, "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 90, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "47", "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}]})).unwrap();
        dispatch(&mut state, &mut ids, "RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.5", "HostInterface": "veth-web"})).unwrap();
        let sets = render(&state, Layout::Sets);
        for expected in [
            "10.0.0.0-10.255.255.255 . 6 . 80-90",
            "0.0.0.0-9.255.255.255 . 8 . 0-255",
            "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff . 47",
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "iifname \"veth-web\" jump p0_out",
        ] {
            assert!(sets.contains(expected), "{expected}: {sets}");
        }
        let linear = render(&state, Layout::Linear);
        assert!(
            linear.contains("ip saddr 10.0.0.0/8 meta l4proto 6 th dport 80-90 return"),
            "{linear}"
        );
        assert!(
            linear.contains("ip daddr 0.0.0.0/0 return"),
            "default egress: {linear}"
        );
    }
}

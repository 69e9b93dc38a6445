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
//! checked at `run-instances`), so nothing user-written reaches the ruleset unescaped.

use std::{collections::BTreeMap, fmt::Write as _};

use ipnet::IpNet;

use crate::model::{InstanceState, Peer, Protocol, Rule, State};

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

fn peer_prefixes(state: &State, peer: &Peer) -> Vec<IpNet> {
    match peer {
        Peer::Cidr4(net) => vec![IpNet::V4(*net)],
        Peer::Cidr6(net) => vec![IpNet::V6(*net)],
        Peer::Group(id) => state
            .members_of(id)
            .flat_map(|i| {
                let mut nets = vec![IpNet::from(std::net::IpAddr::V4(i.private_ip))];
                nets.extend(i.ipv6.map(|a| IpNet::from(std::net::IpAddr::V6(a))));
                nets
            })
            .collect(),
        Peer::PrefixList(id) => state
            .prefix_lists
            .get(id)
            .map(|l| l.entries().iter().map(|e| e.cidr).collect())
            .unwrap_or_default(),
    }
}

fn matches_of(state: &State, rule: &Rule) -> Vec<Match> {
    let range = |v: i32| {
        if v < 0 {
            (0u8, 255u8)
        } else {
            (v as u8, v as u8)
        }
    };
    peer_prefixes(state, &rule.peer)
        .into_iter()
        .map(|net| match (rule.protocol, rule.ports) {
            (Protocol::All, _) => Match::All(net),
            (Protocol::Number(p @ (1 | 58)), Some((t, c))) => {
                let codes = if t < 0 { (0, 255) } else { range(c) };
                Match::Icmp(net, p, range(t), codes)
            }
            (Protocol::Number(p), Some((from, to))) => Match::Ports(net, p, from as u16, to as u16),
            (Protocol::Number(p), None) => Match::Proto(net, p),
        })
        .collect()
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
    // Policies: one per distinct sorted group set, as in the eBPF compiler.
    let mut policies: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut interfaces: Vec<(&str, usize)> = Vec::new();
    for instance in state
        .instances
        .values()
        .filter(|i| i.state == InstanceState::Running)
    {
        let mut groups = instance.group_ids.clone();
        groups.sort();
        let next = policies.len();
        let id = *policies.entry(groups).or_insert(next);
        interfaces.push((&instance.interface, id));
    }
    let mut out = String::new();
    let _ = writeln!(out, "table inet {TABLE} {{");
    let mut chains = String::new();
    for (groups, id) in &policies {
        for (dir, egress) in [("in", false), ("out", true)] {
            let mut all: Vec<Match> = groups
                .iter()
                .filter_map(|g| state.groups.get(g))
                .flat_map(|g| g.rules(egress))
                .flat_map(|r| matches_of(state, r))
                .collect();
            all.sort();
            all.dedup();
            let chain = format!("p{id}_{dir}");
            let peer = if egress { "daddr" } else { "saddr" };
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

/// Sets: element lists per (family, shape), one lookup rule each.
fn render_sets(sets: &mut String, chain_body: &mut String, chain: &str, peer: &str, all: &[Match]) {
    type Shape = (&'static str, &'static str, &'static str);
    // (family keyword, set type, match expression) per shape.
    let shapes: [(Shape, bool); 8] = [
        (("ip", "ipv4_addr", "ip {peer}"), true),
        (("ip6", "ipv6_addr", "ip6 {peer}"), false),
        (
            (
                "ip",
                "ipv4_addr . inet_proto . inet_service",
                "ip {peer} . meta l4proto . th dport",
            ),
            true,
        ),
        (
            (
                "ip6",
                "ipv6_addr . inet_proto . inet_service",
                "ip6 {peer} . meta l4proto . th dport",
            ),
            false,
        ),
        (
            ("ip", "ipv4_addr . inet_proto", "ip {peer} . meta l4proto"),
            true,
        ),
        (
            ("ip6", "ipv6_addr . inet_proto", "ip6 {peer} . meta l4proto"),
            false,
        ),
        (
            (
                "ip",
                "ipv4_addr . icmp_type . icmp_code",
                "ip {peer} . icmp type . icmp code",
            ),
            true,
        ),
        (
            (
                "ip6",
                "ipv6_addr . icmpv6_type . icmpv6_code",
                "ip6 {peer} . icmpv6 type . icmpv6 code",
            ),
            false,
        ),
    ];
    for (index, ((_, set_type, expr), v4)) in shapes.iter().enumerate() {
        let elements: Vec<String> = all
            .iter()
            .filter_map(|m| {
                let (net, text) = match m {
                    Match::All(net) if index < 2 => (net, net_text(net)),
                    Match::Ports(net, p, from, to) if (2..4).contains(&index) => (
                        net,
                        format!("{} . {p} . {}", net_text(net), range_text(*from, *to)),
                    ),
                    Match::Proto(net, p) if (4..6).contains(&index) => {
                        (net, format!("{} . {p}", net_text(net)))
                    }
                    Match::Icmp(net, _, t, c) if index >= 6 => (
                        net,
                        format!(
                            "{} . {} . {}",
                            net_text(net),
                            byte_range(*t),
                            byte_range(*c)
                        ),
                    ),
                    _ => return None,
                };
                (net.addr().is_ipv4() == *v4).then_some(text)
            })
            .collect();
        if elements.is_empty() {
            continue;
        }
        let set = format!("{chain}_{index}");
        let _ = writeln!(
            sets,
            "  set {set} {{\n    type {set_type}\n    flags interval"
        );
        let _ = writeln!(sets, "    elements = {{ {} }}\n  }}", elements.join(", "));
        let _ = writeln!(
            chain_body,
            "    {} @{set} return",
            expr.replace("{peer}", peer)
        );
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
    use crate::model::{ops::dispatch, testing::SeqIds};

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
        assert!(
            sets.contains("elements = { 10.0.0.0/8 . 6 . 80-90 }"),
            "{sets}"
        );
        assert!(
            sets.contains("elements = { 0.0.0.0/0 . 8 . 0-255 }"),
            "{sets}"
        );
        assert!(sets.contains("elements = { 2001:db8::/32 . 47 }"), "{sets}");
        assert!(sets.contains("iifname \"veth-web\" jump p0_out"), "{sets}");
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

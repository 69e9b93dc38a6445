//! The B2 baseline "iptables + ipset", rendered from the same policies as ours and nftables
//! (`compiler::resolve`), IPv4 only (the benchmark's traffic): on the host's FORWARD chain,
//! established/related flows accepted first (conntrack), then the sender's outbound chain
//! (`-i` its veth) and the receiver's inbound chain (`-o`). In each policy chain, one rule per
//! distinct port item matching an ipset `hash:net` of the item's peer prefixes (a /0 peer is a
//! rule without a set, which `hash:net` cannot hold), `RETURN` on a match, `DROP` at the end.
//! Loaded with `ipset restore` and `iptables-legacy-restore` (xtables, not the nft back end).

use std::{collections::BTreeMap, fmt::Write as _};

use firewall_agent::{
    compiler::resolve::{self, PortItem},
    model::State,
};
use firewall_common::Direction;
use ipnet::IpNet;

/// The ipset and iptables-restore inputs for `state`.
pub fn render(state: &State) -> (String, String) {
    let resolved = resolve::resolve(state);
    let mut sets = String::new();
    let mut rules = String::from("*filter\n:FORWARD ACCEPT [0:0]\n");
    let mut body = String::new();
    for (id, policy) in resolved.policies.iter().enumerate() {
        for (dir, direction) in [("in", Direction::Inbound), ("out", Direction::Outbound)] {
            let chain = format!("p{id}_{dir}");
            let _ = writeln!(rules, ":{chain} - [0:0]");
            let peer = if direction.is_egress() { "dst" } else { "src" };
            let mut by_item: BTreeMap<PortItem, Vec<IpNet>> = BTreeMap::new();
            for grant in policy.grants(direction) {
                if let IpNet::V4(_) = grant.prefix {
                    by_item.entry(grant.item).or_default().push(grant.prefix);
                }
            }
            for (n, (item, prefixes)) in by_item.iter().enumerate() {
                let set = format!("{chain}_{n}");
                let any = prefixes.iter().any(|p| p.prefix_len() == 0);
                let matcher = if any {
                    String::new()
                } else {
                    let _ = writeln!(sets, "create {set} hash:net family inet");
                    for prefix in prefixes {
                        let _ = writeln!(sets, "add {set} {prefix} -exist");
                    }
                    format!("-m set --match-set {set} {peer} ")
                };
                for spec in item_specs(item) {
                    let _ = writeln!(body, "-A {chain} {matcher}{spec}-j RETURN");
                }
            }
            let _ = writeln!(body, "-A {chain} -j DROP");
        }
    }
    rules.push_str(&body);
    let _ = writeln!(rules, "-A FORWARD");
    let _ = writeln!(
        rules,
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"
    );
    let _ = writeln!(rules, "-A FORWARD -m conntrack --ctstate INVALID -j DROP");
    for w in &resolved.workloads {
        let _ = writeln!(rules, "-A FORWARD -i {} -j p{}_out", w.interface, w.policy);
    }
    for w in &resolved.workloads {
        let _ = writeln!(rules, "-A FORWARD -o {} -j p{}_in", w.interface, w.policy);
    }
    rules.push_str("COMMIT\n");
    (sets, rules)
}

/// The protocol/port matches of one item (several for ICMP type ranges with codes).
fn item_specs(item: &PortItem) -> Vec<String> {
    match *item {
        PortItem::All => vec![String::new()],
        PortItem::Proto(p) => vec![format!("-p {p} ")],
        PortItem::Ports { proto, from, to } if proto == 6 || proto == 17 => {
            vec![format!("-p {proto} --dport {from}:{to} ")]
        }
        PortItem::Ports { proto, .. } => vec![format!("-p {proto} ")],
        PortItem::Icmp {
            proto,
            types,
            codes,
        } => {
            if proto != 1 {
                return Vec::new();
            }
            if types == (0, 255) {
                return vec!["-p icmp ".into()];
            }
            let mut specs = Vec::new();
            for t in types.0..=types.1 {
                if codes == (0, 255) {
                    specs.push(format!("-p icmp --icmp-type {t} "));
                } else {
                    for c in codes.0..=codes.1 {
                        specs.push(format!("-p icmp --icmp-type {t}/{c} "));
                    }
                }
            }
            specs
        }
    }
}

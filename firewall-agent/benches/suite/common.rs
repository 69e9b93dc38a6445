//! Shared by the benchmark sections: the seeded AWS-shaped rule generator, the benchmarks' probe
//! frames, statistics, and the kernel's own accounting of map and nftables memory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use firewall_agent::{
    api::catalogue::call_json as dispatch,
    model::{RandomIds, State},
};
use firewall_testkit::{
    frame::{tcp, udp},
    model::{call, initial_state},
    shell::{ns_sh, sh},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};

pub const GROUPS: usize = 5;

/// AWS-shaped rules (B6): references to other groups, CIDRs of every length (v4 and v6), single
/// ports and ranges, tcp/udp/icmp/-1.
pub fn generate_permissions(rng: &mut StdRng, count: usize, referenced: &[String]) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let (proto, from, to) = match rng.random_range(0..10) {
                0..=4 => {
                    let p = rng.random_range(1..60000);
                    ("tcp", p, p)
                }
                5 => {
                    let p = rng.random_range(1024..60000);
                    ("tcp", p, p + rng.random_range(1..2000))
                }
                6 | 7 => {
                    let p = rng.random_range(1..60000);
                    ("udp", p, p + rng.random_range(0..10))
                }
                8 => ("icmp", rng.random_range(0..16), -1),
                _ => ("-1", 0, 0),
            };
            let mut permission = match rng.random_range(0..10) {
                0..=5 => {
                    let len = rng.random_range(8..=32u8);
                    // Keep clear of the benchmark's own addresses (10.1/16, 172.31/16, 192.0.2/24).
                    let addr = Ipv4Addr::from(
                        (rng.random::<u32>() & 0x00ff_ffff)
                            | (u32::from(rng.random_range(20..120u8)) << 24),
                    );
                    json!({"IpRanges": [{"CidrIp": format!("{addr}/{len}")}]})
                }
                6 | 7 => {
                    let len = rng.random_range(32..=128u8);
                    let addr = Ipv6Addr::from(rng.random::<u128>() | (0x2a00u128 << 112));
                    json!({"Ipv6Ranges": [{"CidrIpv6": format!("{addr}/{len}")}]})
                }
                _ => json!({"UserIdGroupPairs": [{"GroupId": referenced[i % referenced.len()]}]}),
            };
            permission["IpProtocol"] = json!(proto);
            if proto != "-1" {
                permission["FromPort"] = json!(from);
                permission["ToPort"] = json!(to);
            }
            permission
        })
        .collect()
}

/// A workload of the generated state.
pub struct WorkloadSpec<'a> {
    pub interface: &'a str,
    pub ip: Ipv4Addr,
    pub ip6: Option<&'a str>,
}

/// The generated state: `rules` inbound rules over `GROUPS` groups attached to every workload,
/// plus the measured rules (tcp/443 from 10.1.0.0/16 and 2001:db8::/32, tcp/5432 from the
/// members of group 1, udp/9 from 172.31.0.0/16), and 20 running members of group 1
/// (172.31.1.0–19) whose interfaces do not exist.
pub fn build_state(rules: usize, seed: u64, workloads: &[WorkloadSpec]) -> State {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = initial_state();
    state.quotas.rules_per_group = usize::MAX;
    let groups: Vec<String> = (0..GROUPS)
        .map(|g| {
            call(
                &mut state,
                "CreateSecurityGroup",
                json!({"GroupName": format!("g{g}"), "Description": "bench"}),
            )["GroupId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    call(
        &mut state,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": groups[0], "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.1.0.0/16"}], "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": groups[1]}]},
        {"IpProtocol": "udp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": "172.31.0.0/16"}]}]}),
    );
    let permissions = generate_permissions(&mut rng, rules.saturating_sub(4), &groups);
    let per_group = permissions.len().div_ceil(GROUPS).max(1);
    for (i, chunk) in permissions.chunks(per_group).enumerate() {
        for permission in chunk {
            // The rare random duplicate is refused; it just does not count.
            let _ = dispatch(
                &mut state,
                &mut RandomIds,
                "AuthorizeSecurityGroupIngress",
                json!({"GroupId": groups[i], "IpPermissions": [permission]}),
            );
        }
    }
    let mut add = |id: String,
                   interface: String,
                   ip: Ipv4Addr,
                   ip6: Option<Ipv6Addr>,
                   groups: Vec<String>| {
        state.put_workload(&id, &interface, ip, ip6, groups);
    };
    for (n, w) in workloads.iter().enumerate() {
        add(
            format!("i-{n:017x}"),
            w.interface.to_string(),
            w.ip,
            w.ip6.map(|a| a.parse().unwrap()),
            groups.clone(),
        );
    }
    for m in 0..20u8 {
        add(
            format!("i-{:017x}", 0x100 + u32::from(m)),
            format!("member{m}"),
            Ipv4Addr::new(172, 31, 1, m),
            None,
            vec![groups[1].clone()],
        );
    }
    state
}

/// Ethernet + IPv4 (don't fragment)/IPv6 + TCP (`flags`) or UDP (`flags` = None), 64 bytes or
/// more.
pub fn frame(
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    tcp_flags: Option<u8>,
) -> Vec<u8> {
    let (src, dst) = (&src.to_string(), &dst.to_string());
    match tcp_flags {
        Some(flags) => tcp(src, sport, dst, dport, flags),
        None => udp(src, sport, dst, dport).with_udp_payload(10),
    }
    .with_dst_mac(dst_mac)
    .dont_fragment()
    .bytes()
}

/// `bytes_memlock` of every live map with this name (the kernel's own accounting).
pub fn map_memory(name: &str) -> u64 {
    let out = sh(&["bpftool", "-j", "map", "show"]);
    let maps: Value = serde_json::from_str(&out).unwrap_or(json!([]));
    maps.as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["name"] == name)
        .filter_map(|m| m["bytes_memlock"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Median of samples.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The p-th percentile (0–100) of samples.
pub fn percentile(mut samples: Vec<f64>, p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    if samples.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[i]
}

/// Loads an nftables ruleset in a namespace; returns how long `nft -f` took, in ms.
pub fn load_nft(ns: &str, ruleset: &str) -> f64 {
    let file = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&file, ruleset).expect("ruleset file");
    let started = std::time::Instant::now();
    ns_sh(ns, &["nft", "-f", &file.display().to_string()]);
    let took = started.elapsed().as_secs_f64() * 1e3;
    let _ = std::fs::remove_file(&file);
    took
}

/// The ID of the generated group with this name.
pub fn group_id(state: &State, name: &str) -> String {
    state
        .groups
        .values()
        .find(|g| g.name == name)
        .expect("generated group")
        .id
        .clone()
}

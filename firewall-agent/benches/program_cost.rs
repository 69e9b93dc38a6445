//! Program cost (method M1): BPF_PROG_TEST_RUN with `repeat` on crafted packets, the maps filled
//! by the real compiler from a seeded, AWS-shaped rule set, at several rule counts.
//!
//! `cargo bench -p firewall-agent --bench program_cost [-- --quick]` (as root). Prints a table of
//! ns per packet (the kernel's average over `repeat` runs; median of the trials) and the compile
//! and apply times.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use aya::programs::{TestRun as _, TestRunOptions};
use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{Dataplane, programs},
    model::{RandomIds, State, ops::dispatch},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};

const WORKLOAD: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 5);
const WORKLOAD6: &str = "fd00:ec2::5";
const GROUPS: usize = 5;

/// AWS-shaped rules: a mix of protocols, single ports and ranges, CIDRs of every length,
/// v4 and v6, and references to other groups.
fn generate_permissions(rng: &mut StdRng, count: usize, referenced: &[String]) -> Vec<Value> {
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
            let peer = match rng.random_range(0..10) {
                0..=6 => {
                    let len = rng.random_range(8..=32u8);
                    let addr = Ipv4Addr::from(rng.random::<u32>() | 0x0100_0000);
                    json!({"IpRanges": [{"CidrIp": format!("{addr}/{len}")}]})
                }
                7 | 8 => {
                    let len = rng.random_range(32..=128u8);
                    let addr = Ipv6Addr::from(rng.random::<u128>() | (0x2001u128 << 112));
                    json!({"Ipv6Ranges": [{"CidrIpv6": format!("{addr}/{len}")}]})
                }
                _ => json!({"UserIdGroupPairs": [{"GroupId": referenced[i % referenced.len()]}]}),
            };
            let mut permission = peer;
            permission["IpProtocol"] = json!(proto);
            if proto != "-1" {
                permission["FromPort"] = json!(from);
                permission["ToPort"] = json!(to);
            }
            permission
        })
        .collect()
}

/// A frame: Ethernet + IPv4/IPv6 + TCP with `flags`.
fn tcp_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut l4 = vec![0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 5 << 4;
    l4[13] = flags;
    let mut out = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            out.extend_from_slice(&40u16.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 0, 64, 6, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            out.extend_from_slice(&20u16.to_be_bytes());
            out.extend_from_slice(&[6, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => unreachable!("same family"),
    }
    out.extend_from_slice(&l4);
    out
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

struct Setup {
    dataplane: Dataplane,
    compile: Duration,
    apply: Duration,
    peers: usize,
    ports: usize,
}

fn setup(rules: usize, seed: u64) -> Setup {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = State::initial(&mut RandomIds);
    state.quotas.rules_per_group = usize::MAX;
    let call = |state: &mut State, action: &str, request: Value| {
        dispatch(state, &mut RandomIds, action, request).unwrap_or_else(|e| panic!("{action}: {e}"))
    };
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
    // The measured rules: tcp/443 from 10.1.0.0/16 (v4) and 2001:db8::/32 (v6), the rest random.
    call(
        &mut state,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": groups[0], "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.1.0.0/16"}], "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}]}),
    );
    let mut permissions = generate_permissions(&mut rng, rules.saturating_sub(2), &groups);
    let mut dedup = std::collections::BTreeSet::new();
    permissions.retain(|p| dedup.insert(p.to_string()));
    for (i, chunk) in permissions
        .chunks(permissions.len().div_ceil(GROUPS).max(1))
        .enumerate()
    {
        // Skip the rare random duplicate of an existing rule.
        for permission in chunk {
            let _ = dispatch(
                &mut state,
                &mut RandomIds,
                "AuthorizeSecurityGroupIngress",
                json!({"GroupId": groups[i], "IpPermissions": [permission]}),
            );
        }
    }
    call(
        &mut state,
        "RunInstances",
        json!({"SecurityGroupIds": groups, "PrivateIpAddress": WORKLOAD.to_string(),
        "Ipv6Addresses": [{"Ipv6Address": WORKLOAD6}], "HostInterface": "lo"}),
    );
    // Running members of the referenced groups elsewhere in the VPC: their interfaces do not
    // exist in this namespace, so only their addresses matter.
    for m in 0..20u8 {
        let mut member = state.instances.values().next().unwrap().clone();
        member.id = format!("i-{m:017x}");
        member.interface = format!("bench{m}");
        member.private_ip = Ipv4Addr::new(172, 31, 1, m);
        member.ipv6 = None;
        state.instances.insert(member.id.clone(), member);
    }
    let mut ids = Ids::default();
    let started = Instant::now();
    let desired = compiler::compile(&state, &mut ids);
    let compile = started.elapsed();
    let mut dataplane = Dataplane::load(&Default::default()).expect("load");
    let started = Instant::now();
    match dataplane.apply(&desired) {
        // Every entry is written; only the members' (absent) interfaces could not be attached.
        Ok(()) | Err(firewall_agent::dataplane::DataplaneError::Interface { .. }) => {}
        Err(e) => panic!("apply: {e}"),
    }
    let apply = started.elapsed();
    Setup {
        dataplane,
        compile,
        apply,
        peers: desired.peers.len(),
        ports: desired.ports.len(),
    }
}

/// Median over `trials` of the kernel's average ns per run.
fn ns_per_run(
    dataplane: &mut Dataplane,
    program: &'static str,
    frame: &[u8],
    repeat: u32,
    trials: usize,
) -> (f64, u32) {
    let mut out = vec![0u8; frame.len() + 256];
    let mut samples = Vec::new();
    let mut verdict = 0;
    for _ in 0..trials {
        let opts = TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::default()
        };
        let result = dataplane.program(program).test_run(opts).expect("test run");
        verdict = result.return_value;
        samples.push(result.duration.as_nanos() as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], verdict)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (repeat, trials) = if quick { (200_000, 3) } else { (1_000_000, 5) };
    let counts: &[usize] = if quick {
        &[10, 1_000, 10_000]
    } else {
        &[10, 100, 1_000, 10_000]
    };
    let results = std::thread::spawn(move || {
        // SAFETY: only this thread moves to a private network namespace (its `lo` is the workload).
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare (needs root)"
        );
        let mut rows = Vec::new();
        for &rules in counts {
            let mut s = setup(rules, 42);
            let client: IpAddr = Ipv4Addr::new(10, 1, 2, 3).into();
            let me: IpAddr = WORKLOAD.into();
            let client6: IpAddr = "2001:db8::3".parse().unwrap();
            let me6: IpAddr = WORKLOAD6.parse().unwrap();
            // Open a tracked flow, then measure its packets.
            let syn = tcp_frame(client, me, 50000, 443, SYN);
            ns_per_run(&mut s.dataplane, programs::TO_WORKLOAD, &syn, 1, 1);
            let cases = [
                ("conntrack hit (v4)", tcp_frame(client, me, 50000, 443, ACK)),
                (
                    "rule allows, CIDR+port (v4)",
                    tcp_frame(client, me, 50001, 443, ACK),
                ),
                (
                    "rule allows, CIDR+port (v6)",
                    tcp_frame(client6, me6, 50001, 443, ACK),
                ),
                (
                    "no rule, dropped (v4)",
                    tcp_frame(Ipv4Addr::new(192, 0, 2, 1).into(), me, 50002, 444, ACK),
                ),
            ];
            for (name, frame) in cases {
                let (ns, verdict) = ns_per_run(
                    &mut s.dataplane,
                    programs::TO_WORKLOAD,
                    &frame,
                    repeat,
                    trials,
                );
                rows.push((
                    rules,
                    name.to_string(),
                    ns,
                    verdict,
                    s.compile,
                    s.apply,
                    s.peers,
                    s.ports,
                ));
            }
        }
        // The floor: the same program on a packet for an interface it does not manage.
        let mut s = setup(10, 1);
        s.dataplane
            .apply(&compiler::Desired::default())
            .expect("detach");
        let frame = tcp_frame(
            Ipv4Addr::new(10, 1, 2, 3).into(),
            WORKLOAD.into(),
            1,
            443,
            ACK,
        );
        let (floor, _) = ns_per_run(
            &mut s.dataplane,
            programs::TO_WORKLOAD,
            &frame,
            repeat,
            trials,
        );
        (rows, floor)
    })
    .join()
    .expect("bench thread");
    let (rows, floor) = results;
    println!("| rules | packet | ns/pkt | × floor | verdict | compile | apply | PEERS | PORTS |");
    println!("|---:|---|---:|---:|---|---:|---:|---:|---:|");
    for (rules, name, ns, verdict, compile, apply, peers, ports) in rows {
        let verdict = if verdict == u32::MAX { "pass" } else { "drop" };
        println!(
            "| {rules} | {name} | {ns:.0} | {:.2} | {verdict} | {:.1} ms | {:.1} ms | {peers} | {ports} |",
            ns / floor,
            compile.as_secs_f64() * 1e3,
            apply.as_secs_f64() * 1e3
        );
    }
    println!("\nfloor (program entry, unmanaged interface): {floor:.0} ns/pkt");
}

//! B1 (method M1): the program's cost per packet through BPF_PROG_TEST_RUN with `repeat`, at
//! several rule counts, against floors measured in the same run: an empty TC program and a bare
//! hash and a bare LPM lookup with as many entries. Also B8: map memory per rule and per flow.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Instant,
};

use aya::{
    EbpfLoader,
    maps::{HashMap, LpmTrie, lpm_trie::Key},
    programs::{SchedClassifier, TestRun as _, TestRunOptions},
};
use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{
        Dataplane as _, DataplaneError, EBPF_OBJECT, KernelDataplane, LoadOptions, programs,
    },
};
use firewall_common::CtKey;
use firewall_testkit::frame::{ACK, SYN};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use crate::{
    common::{WorkloadSpec, build_state, frame, map_memory, median},
    report::Report,
};

const ME: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 5);
const ME6: &str = "fd00:ec2::5";

/// Median over `trials` of the kernel's average ns per run.
pub(crate) fn ns_per_run(
    program: &SchedClassifier,
    data: &[u8],
    repeat: u32,
    trials: usize,
) -> (f64, u32) {
    let mut out = vec![0u8; data.len() + 256];
    let mut samples = Vec::new();
    let mut verdict = 0;
    for _ in 0..trials {
        let opts = TestRunOptions {
            data_in: Some(data),
            data_out: Some(&mut out),
            repeat,
            ..TestRunOptions::default()
        };
        let result = program.test_run(opts).expect("test run");
        verdict = result.return_value;
        samples.push(result.duration.as_nanos() as f64);
    }
    (median(samples), verdict)
}

/// The floors of one run, ns per packet.
struct Floors {
    empty: f64,
    /// One hash lookup (4-byte key) with `|PEERS|` entries.
    hash: f64,
    /// One LPM lookup with `|PEERS|` entries.
    lpm: f64,
    /// One hash lookup with the conntrack key (44 bytes) and with a 16-byte key.
    ct44: f64,
    ct16: f64,
    /// One `bpf_ktime_get_coarse_ns` call.
    clock: f64,
}

/// Floors with `entries` map entries.
fn floors(entries: usize, repeat: u32, trials: usize) -> Floors {
    let size = entries.max(16) as u32;
    let mut ebpf = EbpfLoader::new()
        .map_max_entries("BENCH_HASH", size + 1)
        .map_max_entries("BENCH_LPM", size + 1)
        .load(EBPF_OBJECT)
        .expect("load bench programs");
    let probe = Ipv4Addr::new(10, 1, 2, 3);
    let mut rng = StdRng::seed_from_u64(7);
    {
        let mut hash: HashMap<_, u32, u32> =
            HashMap::try_from(ebpf.map_mut("BENCH_HASH").unwrap()).unwrap();
        hash.insert(u32::from_ne_bytes(probe.octets()), 1, 0)
            .unwrap();
        for _ in 1..entries {
            let _ = hash.insert(rng.random::<u32>(), 1, 0);
        }
    }
    {
        let mut lpm: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(ebpf.map_mut("BENCH_LPM").unwrap()).unwrap();
        lpm.insert(&Key::new(32, probe.octets()), 1, 0).unwrap();
        for _ in 1..entries {
            let _ = lpm.insert(&Key::new(32, rng.random::<u32>().to_be_bytes()), 1, 0);
        }
    }
    {
        let mut ct: HashMap<_, CtKey, u64> =
            HashMap::try_from(ebpf.map_mut("BENCH_CT44").unwrap()).unwrap();
        let key = CtKey {
            ifindex: 1,
            family: 0,
            proto: 0,
            _pad: [0; 2],
            addr_lo: [0; 16],
            addr_hi: [0; 16],
            port_lo: [0; 2],
            port_hi: [0; 2],
        };
        ct.insert(key, 1, 0).unwrap();
    }
    {
        let mut ct: HashMap<_, [u32; 4], u64> =
            HashMap::try_from(ebpf.map_mut("BENCH_CT16").unwrap()).unwrap();
        ct.insert([1, 0, 0, 0], 1, 0).unwrap();
    }
    let data = frame(
        [2, 0, 0, 0, 0, 1],
        probe.into(),
        ME.into(),
        1000,
        443,
        Some(ACK),
    );
    let mut run = |name: &str| {
        let program: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
        program.load().unwrap();
        let (ns, verdict) = ns_per_run(program, &data, repeat, trials);
        assert_eq!(verdict, u32::MAX, "{name}: its lookup must hit");
        ns
    };
    Floors {
        empty: run("bench_empty"),
        hash: run("bench_hash"),
        lpm: run("bench_lpm"),
        ct44: run("bench_ct44"),
        ct16: run("bench_ct16"),
        clock: run("bench_clock"),
    }
}

pub fn run(report: &mut Report, quick: bool) {
    let (repeat, trials) = if quick { (200_000, 3) } else { (1_000_000, 5) };
    // `FIREWALL_BENCH_PROGRAM_RULES=10,100000` picks other sizes (the first is the base line).
    let counts: Vec<usize> = match std::env::var("FIREWALL_BENCH_PROGRAM_RULES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("FIREWALL_BENCH_PROGRAM_RULES: numbers")
            })
            .collect(),
        Err(_) if quick => vec![10, 1_000, 10_000],
        Err(_) => vec![10, 100, 1_000, 10_000, 100_000],
    };
    let mut at_10 = None;
    let mut last_new = None;
    for &rules in &counts {
        let state = build_state(
            rules,
            42,
            &[WorkloadSpec {
                interface: "lo",
                ip: ME,
                ip6: Some(ME6),
            }],
        );
        let started = Instant::now();
        let desired = compiler::compile(&state, &mut Ids::default());
        let compile_ms = started.elapsed().as_secs_f64() * 1e3;
        eprintln!(
            "bench: {rules} rules compile to {} PEERS and {} PORTS entries in {compile_ms:.0} ms",
            desired.peers.len(),
            desired.ports.len()
        );
        let options = LoadOptions::default();
        let mut dataplane = KernelDataplane::load(&options).expect("load");
        let started = Instant::now();
        match dataplane.apply(&desired) {
            // Every entry is written; only the members' (absent) interfaces could not be attached.
            Ok(()) | Err(DataplaneError::Interface { .. }) => {}
            Err(e) => panic!("apply: {e} ({:?})", std::error::Error::source(&e)),
        }
        let apply_ms = started.elapsed().as_secs_f64() * 1e3;
        let (peers, ports) = (desired.peers.len(), desired.ports.len());

        let me: IpAddr = ME.into();
        let me6: IpAddr = ME6.parse().unwrap();
        let client: IpAddr = Ipv4Addr::new(10, 1, 2, 3).into();
        let client6: IpAddr = "2001:db8::3".parse().unwrap();
        let member: IpAddr = Ipv4Addr::new(172, 31, 1, 3).into();
        let stranger: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
        let mac = [2, 0, 0, 0, 0, 1];
        let program = dataplane.program(programs::TO_WORKLOAD);
        // Open one tracked flow per family, then measure its packets.
        ns_per_run(
            program,
            &frame(mac, client, me, 50000, 443, Some(SYN)),
            1,
            1,
        );
        ns_per_run(
            program,
            &frame(mac, client6, me6, 50000, 443, Some(SYN)),
            1,
            1,
        );
        // Mid-stream segments never open a flow: every run takes the full policy path.
        let cases = [
            (
                "conntrack hit v4",
                frame(mac, client, me, 50000, 443, Some(ACK)),
                true,
            ),
            (
                "conntrack hit v6",
                frame(mac, client6, me6, 50000, 443, Some(ACK)),
                true,
            ),
            (
                "new, CIDR+port rule v4",
                frame(mac, client, me, 50001, 443, Some(ACK)),
                true,
            ),
            (
                "new, CIDR+port rule v6",
                frame(mac, client6, me6, 50001, 443, Some(ACK)),
                true,
            ),
            (
                "new, group member v4",
                frame(mac, member, me, 50001, 5432, Some(ACK)),
                true,
            ),
            (
                "denied v4",
                frame(mac, stranger, me, 50002, 444, Some(ACK)),
                false,
            ),
        ];
        let mut results = Vec::new();
        for (name, data, allowed) in &cases {
            let (ns, verdict) = ns_per_run(program, data, repeat, trials);
            assert_eq!(
                verdict == u32::MAX,
                *allowed,
                "{name}: wrong verdict at {rules} rules"
            );
            results.push((*name, ns));
            report.point(
                "program cost (ns per packet, BPF_PROG_TEST_RUN)",
                name,
                rules as f64,
                ns,
            );
        }
        let floor = floors(peers, repeat, trials);
        let (empty, hash, lpm) = (floor.empty, floor.hash, floor.lpm);
        if rules == counts[0] {
            report.note(format!(
                "B1 floors at {rules} rules: empty TC {empty:.0} ns; one hash lookup with the \
                 44-byte conntrack key {:.0} ns, with a 16-byte key {:.0} ns; one \
                 bpf_ktime_get_coarse_ns {:.0} ns (each program = empty TC + that one thing).",
                floor.ct44, floor.ct16, floor.clock
            ));
        }
        report.point(
            "program cost (ns per packet, BPF_PROG_TEST_RUN)",
            "floor: empty TC",
            rules as f64,
            empty,
        );
        report.point(
            "program cost (ns per packet, BPF_PROG_TEST_RUN)",
            "floor: bare LPM at |PEERS|",
            rules as f64,
            lpm,
        );
        let hit = results[0].1;
        let new = results[2].1;
        if rules == 10 {
            at_10 = Some(new);
        }
        last_new = Some(new);
        report.row(
            "B1 program",
            format!("conntrack hit, {rules} rules"),
            "≤ 1.2 × (empty TC + 16 B hash) ≈ 70 ns",
            hit,
            "ns",
            Some(("empty TC", empty)),
        );
        report.row(
            "B1 program",
            format!("new flow (CIDR+port) v4, {rules} rules"),
            "≤ 1.5 × its bare lookups",
            new,
            "ns",
            Some((
                "empty TC + hash + LPM",
                empty + (hash - empty) + (lpm - empty),
            )),
        );
        report.row(
            "B1 program",
            format!("new flow v6, {rules} rules"),
            "–",
            results[3].1,
            "ns",
            Some(("v4", new)),
        );
        report.row(
            "B1 program",
            format!("group member v4, {rules} rules"),
            "–",
            results[4].1,
            "ns",
            Some(("CIDR rule", new)),
        );
        report.row(
            "B1 program",
            format!("denied v4, {rules} rules"),
            "–",
            results[5].1,
            "ns",
            Some(("empty TC", empty)),
        );
        report.row(
            "B7 update",
            format!("compile, {rules} rules"),
            "–",
            compile_ms,
            "ms",
            None,
        );
        report.row(
            "B7 update",
            format!("bulk apply (first load), {rules} rules"),
            "10k ≤ 50 ms, 100k ≤ 300 ms",
            apply_ms,
            "ms",
            None,
        );
        let bytes = (map_memory("PEERS") + map_memory("PORTS")) as f64;
        report.row(
            "B8 memory",
            format!("policy maps per rule, {rules} rules ({peers} peers, {ports} ports)"),
            "≤ 64 B per rule",
            bytes / rules as f64,
            "B",
            None,
        );
        if rules == counts[0] {
            let ct = map_memory("CONNTRACK") as f64 / f64::from(options.conntrack_capacity);
            report.row(
                "B8 memory",
                "conntrack per entry (prealloc hash)",
                "≤ 130 B",
                ct,
                "B",
                Some(("Cilium CT (reference)", 130.0)),
            );
        }
        if rules == counts[0] {
            note_program_size(report);
        }
        drop(dataplane);
    }
    if let (Some(small), Some(big)) = (at_10, last_new) {
        report.row(
            "B6 scaling",
            format!("new-flow cost at {} rules vs 10", counts.last().unwrap()),
            "≤ 2 × (flat)",
            big,
            "ns",
            Some(("10 rules", small)),
        );
    }
}

/// Instruction count and sizes of the loaded program, from bpftool.
fn note_program_size(report: &mut Report) {
    let out = firewall_testkit::shell::sh(&["bpftool", "-j", "prog", "show"]);
    if let Ok(serde_json::Value::Array(progs)) = serde_json::from_str::<serde_json::Value>(&out)
        && let Some(p) = progs.iter().rev().find(|p| p["name"] == "sg_to_workload")
    {
        report.note(format!(
            "sg_to_workload: {} bytes xlated ({} instructions), {} bytes jited.",
            p["bytes_xlated"],
            p["bytes_xlated"].as_u64().unwrap_or(0) / 8,
            p["bytes_jited"]
        ));
    }
}

//! B2 (method M2): per-packet cost of the whole receive path with each filter, packets injected
//! in the kernel at a host-side veth by an XDP program run with BPF_F_TEST_XDP_LIVE_FRAMES (no
//! generator process). One UDP flow from workload A is forwarded by the host to workload B, so
//! it passes A's outbound and B's inbound policy. Ours sees a tracked flow after the first
//! packet; nftables, whose conntrack keeps a one-way UDP flow NEW, evaluates its chains for every
//! packet: each system as it handles this traffic. The injector runs with bottom halves off, so
//! the receiving veth's backlog overflows and most packets are dropped at its transmit, after
//! every filter hook: the same for every configuration.

use std::net::Ipv4Addr;

use aya::{
    EbpfLoader,
    programs::{SchedClassifier, TcAttachType, TestRun as _, TestRunAttrs, TestRunOptions, Xdp},
};
use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{self, Dataplane as _, DataplaneError, EBPF_OBJECT, KernelDataplane, LoadOptions},
    nft::{self, Layout},
};
use firewall_testkit::shell::ns_sh;
use serde_json::json;

use crate::{
    common::{frame, median},
    report::Report,
    topo,
};

const A: Ipv4Addr = Ipv4Addr::new(172, 31, 80, 10);
const B: Ipv4Addr = Ipv4Addr::new(172, 31, 81, 10);

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let text = ns_sh(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    let mut mac = [0u8; 6];
    for (i, part) in text.trim().split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    mac
}

/// Median ns per injected packet (runs inside the host namespace).
fn inject(ingress: &str, data: &[u8], repeat: u32, trials: usize) -> f64 {
    let mut ebpf = EbpfLoader::new().load(EBPF_OBJECT).expect("load injector");
    let program: &mut Xdp = ebpf
        .program_mut("bench_inject")
        .unwrap()
        .try_into()
        .unwrap();
    program.load().unwrap();
    let index = dataplane::ifindex(ingress).expect("ingress interface");
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }:
    // data_end must be the frame's length.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(data.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&index.to_ne_bytes());
    let samples = (0..trials)
        .map(|_| {
            let opts = TestRunOptions {
                data_in: Some(data),
                ctx_in: Some(&ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(64),
                ..TestRunOptions::default()
            };
            program
                .test_run(opts)
                .expect("live frames")
                .duration
                .as_nanos() as f64
        })
        .collect();
    median(samples)
}

pub fn run(report: &mut Report, quick: bool) {
    let trials = if quick { 3 } else { 5 };
    let counts: &[usize] = if quick {
        &[10, 1_000]
    } else {
        &[10, 1_000, 10_000]
    };
    let topo = topo::topology(&[A, B]);
    let (a_if, b_if) = (
        topo.workloads[0].host_if.clone(),
        topo.workloads[1].host_if.clone(),
    );
    let b_mac = mac_of(&topo.workloads[1].ns.name, "eth0");
    ns_sh(
        &topo.host.name,
        &[
            "ip",
            "neigh",
            "replace",
            &B.to_string(),
            "lladdr",
            &b_mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            "dev",
            &b_if,
        ],
    );
    let a_mac = mac_of(&topo.host.name, &a_if);
    let data = frame(a_mac, A.into(), B.into(), 40000, 9, None);
    let extra = json!([{"IpProtocol": "udp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": format!("{A}/32")}]}]);

    let repeat = if quick { 200_000 } else { 1_000_000 };
    let (ai, d) = (a_if.clone(), data.clone());
    let none = topo.host.run(move || inject(&ai, &d, repeat, trials));
    let (ai, bi, d) = (a_if.clone(), b_if.clone(), data.clone());
    let empty = topo.host.run(move || {
        let mut ebpf = EbpfLoader::new().load(EBPF_OBJECT).unwrap();
        let program: &mut SchedClassifier =
            ebpf.program_mut("bench_empty").unwrap().try_into().unwrap();
        program.load().unwrap();
        program.attach(&ai, TcAttachType::Ingress).unwrap();
        program.attach(&bi, TcAttachType::Egress).unwrap();
        inject(&ai, &d, repeat, trials)
    });
    report.row(
        "B2 per hook",
        "no filter (inject → forward → veth)",
        "–",
        none,
        "ns",
        None,
    );
    report.row(
        "B2 per hook",
        "empty TC program on both veths",
        "–",
        empty,
        "ns",
        Some(("no filter", none)),
    );
    for &rules in counts {
        let state = topo::state(&topo, rules, extra.clone());
        let (ai, d, st) = (a_if.clone(), data.clone(), state.clone());
        let ours = topo.host.run(move || {
            let mut dp = KernelDataplane::load(&LoadOptions::default()).unwrap();
            match dp.apply(&compiler::compile(&st, &mut Ids::default())) {
                Ok(()) | Err(DataplaneError::Interface { .. }) => {}
                Err(e) => panic!("apply: {e}"),
            }
            inject(&ai, &d, repeat, trials)
        });
        topo::load_nft(&topo, &nft::render(&state, Layout::Sets));
        let (ai, d) = (a_if.clone(), data.clone());
        let tx_before = tx_packets(&topo.host.name, &b_if);
        let sets = topo.host.run(move || inject(&ai, &d, repeat, trials));
        let forwarded = tx_packets(&topo.host.name, &b_if) - tx_before;
        let tracked = ns_sh(&topo.host.name, &["conntrack", "-C"]);
        report.note(format!(
            "B2 check, nft sets at {rules} rules: {forwarded} of {} injected packets left B's veth; conntrack entries: {}.",
            u64::from(repeat) * trials as u64,
            tracked.trim()
        ));
        topo::flush_nft(&topo);
        topo::load_nft(&topo, &nft::render(&state, Layout::Linear));
        let (ai, d) = (a_if.clone(), data.clone());
        // Linear chains are slow at large counts: fewer packets, same method.
        let linear_repeat = (repeat / (rules as u32 / 10).max(1)).max(2_000);
        let linear = topo
            .host
            .run(move || inject(&ai, &d, linear_repeat, trials));
        topo::flush_nft(&topo);
        report.row(
            "B2 per hook",
            format!("ours, {rules} rules (tracked flow)"),
            "≤ +40 ns over empty TC",
            ours,
            "ns",
            Some(("nft sets + conntrack", sets)),
        );
        report.row(
            "B2 per hook",
            format!("ours over the empty-TC floor, {rules} rules"),
            "≤ +40 ns",
            ours - empty,
            "ns",
            None,
        );
        report.row(
            "B2 per hook",
            format!("nft sets, {rules} rules"),
            "–",
            sets,
            "ns",
            Some(("no filter", none)),
        );
        report.row(
            "B2 per hook",
            format!("nft linear, {rules} rules"),
            "–",
            linear,
            "ns",
            Some(("ours", ours)),
        );
        for (name, v) in [
            ("ours", ours),
            ("nft sets", sets),
            ("nft linear", linear),
            ("empty TC", empty),
            ("no filter", none),
        ] {
            report.point(
                "per-packet cost at the hook (ns, M2 injector)",
                name,
                rules as f64,
                v,
            );
        }
    }
}

/// Packets transmitted by an interface (its statistics), in a namespace.
fn tx_packets(ns: &str, dev: &str) -> u64 {
    ns_sh(
        ns,
        &[
            "cat",
            &format!("/sys/class/net/{dev}/statistics/tx_packets"),
        ],
    )
    .trim()
    .parse()
    .unwrap_or(0)
}

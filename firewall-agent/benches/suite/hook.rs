//! B2 (method M2): per-packet cost of the whole forwarding path with each filter. Frames are
//! injected in the kernel at workload A's host-side veth by an XDP program run with
//! BPF_F_TEST_XDP_LIVE_FRAMES (no generator process), routed by the host to workload B's veth:
//! they pass A's outbound and B's inbound policy. Configurations: no filter, an empty TC program
//! on both veths, ours (TC both ways), ours with `--attach xdp`, nftables sets and iptables +
//! ipset (both with conntrack, from the same groups). Live frames go up the stack without
//! meeting the veth's own XDP hook, so in XDP mode the injector tail-calls our XDP program
//! itself: the figure is our program on the injected `xdp_frame`, before an skb exists (a
//! workload's socket sends skbs, which veth first copies into an XDP buffer; not measured here). Traffic variants: one flow; 64k flows (UDP source ports), each seen before; a new
//! flow per packet (the flow tables emptied first).
//!
//! Every trial is verified, not assumed: B's veth must transmit exactly the injected count, and
//! each filter's own counter must see every packet (ours: `PASSES` by conntrack or rule, twice
//! per packet, no drop; nft: a counter rule at the top of its forward chain; iptables: the first
//! FORWARD rule). The injector restores the Ethernet header, TTL and checksum of every frame: the
//! live-frame pages are recycled with the changes the stack made, and forwarding rewrites the
//! Ethernet header (the next hop's MAC) and the TTL in place, so without it only the first batch
//! of fresh pages is received by the host (the earlier version of this benchmark measured
//! frames dropped as "not for this host" at A's IP input). B's neighbour entry points at a MAC B's `eth0`
//! does not own, so B drops the frames at its IP input (after they left its veth) and sends no
//! ICMP back. IPv6 is off on these veths (no neighbour discovery in the counts).
//!
//! Configurations are interleaved round by round; each figure is the median of the rounds, with
//! the range.

use std::{collections::BTreeMap, net::Ipv4Addr};

use aya::{
    Ebpf, EbpfLoader,
    maps::ProgramArray,
    programs::{
        ProgramFd, SchedClassifier, TcAttachType, TestRun as _, TestRunAttrs, TestRunOptions, Xdp,
    },
};
use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{
        self, AttachMode, Dataplane as _, DataplaneError, EBPF_OBJECT, KernelDataplane, LoadOptions,
    },
    model::State,
    nft::{self, Layout},
};
use firewall_testkit::{netns::Netns, shell::ns_sh};
use serde_json::json;

use crate::{
    common::{frame, median},
    flood, iptables,
    report::Report,
    topo,
};

const A: Ipv4Addr = Ipv4Addr::new(172, 31, 80, 10);
const B: Ipv4Addr = Ipv4Addr::new(172, 31, 81, 10);
/// Where the host sends B's frames: no interface has it, so B's stack drops them unanswered.
const NOBODY_MAC: &str = "02:00:00:00:ee:01";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Config {
    None,
    EmptyTc,
    Ours,
    OursXdp,
    NftSets,
    IptablesIpset,
}

impl Config {
    const ALL: [Config; 6] = [
        Config::None,
        Config::EmptyTc,
        Config::Ours,
        Config::OursXdp,
        Config::NftSets,
        Config::IptablesIpset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Config::None => "no filter",
            Config::EmptyTc => "empty TC on both veths",
            Config::Ours => "ours",
            Config::OursXdp => "ours, --attach xdp",
            Config::NftSets => "nft sets + conntrack",
            Config::IptablesIpset => "iptables + ipset + conntrack",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    OneFlow,
    Flows64k,
    NewFlowPerPacket,
}

impl Variant {
    const ALL: [Variant; 3] = [
        Variant::OneFlow,
        Variant::Flows64k,
        Variant::NewFlowPerPacket,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::OneFlow => "one flow",
            Variant::Flows64k => "64k flows",
            Variant::NewFlowPerPacket => "new flow per packet",
        }
    }

    /// The injector's flow count (0: the frame as built).
    fn flows(self) -> u32 {
        match self {
            Variant::OneFlow => 0,
            Variant::Flows64k | Variant::NewFlowPerPacket => 1 << 16,
        }
    }

    /// Packets injected before measuring (the flows seen once), and measured.
    fn packets(self, repeat: u32) -> (u32, u32) {
        match self {
            Variant::OneFlow => (1_000, repeat),
            Variant::Flows64k => (1 << 16, repeat),
            // Fewer than 64k: every measured packet is a new flow.
            Variant::NewFlowPerPacket => (0, 60_000),
        }
    }
}

/// What one trial saw.
struct Trial {
    ns: f64,
    /// (what, expected, seen) for every check that failed.
    failed: Vec<(String, u64, u64)>,
}

/// The bench's fixed parts, moved into the host namespace's thread for each trial.
#[derive(Clone)]
pub struct Setup {
    pub host: String,
    pub a_if: String,
    pub b_if: String,
    /// The allowed frame: UDP from A to B port 9.
    pub data: Vec<u8>,
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let text = ns_sh(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    let mut mac = [0u8; 6];
    for (i, part) in text.trim().split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    mac
}

/// Average ns per injected packet over one run of `repeat` copies of `data` (an Ethernet, IPv4
/// and UDP/TCP frame to A's host-side veth), run on the calling thread, in the host namespace;
/// through the XDP program `then` first, if any.
pub fn inject(
    setup: &Setup,
    data: &[u8],
    flows: u32,
    repeat: u32,
    then: Option<&ProgramFd>,
) -> f64 {
    let word = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
    let head = [word(0), word(4), word(8), word(12)];
    let ip_word = word(22);
    let mut ebpf = EbpfLoader::new()
        .override_global("INJECT_HEAD", &head, true)
        .override_global("INJECT_IP_WORD", &ip_word, true)
        .override_global("INJECT_FLOWS", &flows, true)
        // The injector uses none of the data plane's maps: keep them small.
        .map_max_entries("CONNTRACK", 16)
        .load(EBPF_OBJECT)
        .expect("load injector");
    let program: &mut Xdp = ebpf
        .program_mut("bench_inject")
        .unwrap()
        .try_into()
        .unwrap();
    program.load().unwrap();
    if let Some(then) = then {
        let mut slots: ProgramArray<_> = ebpf.map_mut("INJECT_THEN").unwrap().try_into().unwrap();
        slots.set(0, then, 0).expect("INJECT_THEN");
    }
    let program: &mut Xdp = ebpf
        .program_mut("bench_inject")
        .unwrap()
        .try_into()
        .unwrap();
    let index = dataplane::ifindex(&setup.a_if).expect("ingress interface");
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }:
    // data_end must be the frame's length.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(data.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&index.to_ne_bytes());
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
}

/// Packets transmitted by an interface, in a namespace.
pub fn tx_packets(ns: &str, dev: &str) -> u64 {
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

/// The packets counted by the first `counter packets N` in an nft listing or the first rule of
/// an `iptables -nvxL` listing.
fn nft_counter(host: &str) -> u64 {
    let out = ns_sh(
        host,
        &["nft", "list", "chain", "inet", nft::TABLE, "forward"],
    );
    out.split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn iptables_counter(host: &str) -> u64 {
    let out = ns_sh(host, &["iptables-legacy", "-nvxL", "FORWARD", "1"]);
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A configuration in force in the host namespace (made, used and dropped on its thread).
pub struct Enabled {
    pub config: Config,
    host: String,
    dp: Option<KernelDataplane>,
    _empty: Option<Ebpf>,
}

impl Enabled {
    pub fn new(config: Config, setup: &Setup, state: &State) -> Enabled {
        let host = setup.host.clone();
        let (mut dp, mut empty) = (None, None);
        match config {
            Config::None => {}
            Config::EmptyTc => {
                let mut ebpf = EbpfLoader::new()
                    .map_max_entries("CONNTRACK", 16)
                    .load(EBPF_OBJECT)
                    .unwrap();
                let program: &mut SchedClassifier =
                    ebpf.program_mut("bench_empty").unwrap().try_into().unwrap();
                program.load().unwrap();
                program.attach(&setup.a_if, TcAttachType::Ingress).unwrap();
                program.attach(&setup.b_if, TcAttachType::Egress).unwrap();
                empty = Some(ebpf);
            }
            Config::Ours | Config::OursXdp => {
                let attach = if config == Config::OursXdp {
                    AttachMode::Xdp
                } else {
                    AttachMode::Tc
                };
                let options = LoadOptions {
                    attach,
                    ..LoadOptions::default()
                };
                let mut loaded = KernelDataplane::load(&options).unwrap();
                match loaded.apply(&compiler::compile(state, &mut Ids::default())) {
                    Ok(()) | Err(DataplaneError::Interface { .. }) => {}
                    Err(e) => panic!("apply: {e}"),
                }
                dp = Some(loaded);
            }
            Config::NftSets => {
                crate::common::load_nft(&host, &nft::render(state, Layout::Sets));
                let counter = [
                    "nft",
                    "insert",
                    "rule",
                    "inet",
                    nft::TABLE,
                    "forward",
                    "counter",
                ];
                ns_sh(&host, &counter);
            }
            Config::IptablesIpset => {
                let (sets, rules) = iptables::render(state);
                restore(&host, &["ipset", "restore", "-f"], &sets);
                restore(&host, &["iptables-legacy-restore"], &rules);
            }
        }
        if matches!(config, Config::NftSets | Config::IptablesIpset) {
            ns_sh(&host, &["conntrack", "-F"]);
        }
        Enabled {
            config,
            host,
            dp,
            _empty: empty,
        }
    }

    /// What the injector runs first: our XDP program, in XDP mode.
    pub fn then(&mut self) -> Option<ProgramFd> {
        if self.config != Config::OursXdp {
            return None;
        }
        let program = self.dp.as_mut()?.xdp_program();
        Some(program.fd().ok()?.try_clone().expect("program fd"))
    }

    /// Whether this is one of ours (two verdicts per packet: A's outbound, B's inbound).
    pub fn ours(&self) -> bool {
        matches!(self.config, Config::Ours | Config::OursXdp)
    }

    /// The filter's own counts: packets it saw pass (ours: by conntrack or a rule, on either
    /// veth; nft and iptables: every packet entering their forward chain) and drops (ours).
    pub fn counts(&self) -> Option<(u64, u64)> {
        match self.config {
            Config::Ours | Config::OursXdp => {
                let counters = self.dp.as_ref()?.counters().expect("counters");
                let passed = counters.passes["conntrack"] + counters.passes["rule"];
                Some((passed, counters.drops.values().sum()))
            }
            Config::NftSets => Some((nft_counter(&self.host), 0)),
            Config::IptablesIpset => Some((iptables_counter(&self.host), 0)),
            Config::None | Config::EmptyTc => None,
        }
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        match self.config {
            Config::NftSets => {
                ns_sh(&self.host, &["nft", "flush", "ruleset"]);
            }
            Config::IptablesIpset => {
                ns_sh(&self.host, &["iptables-legacy", "-F"]);
                ns_sh(&self.host, &["iptables-legacy", "-X"]);
                ns_sh(&self.host, &["ipset", "destroy"]);
            }
            _ => {}
        }
    }
}

/// Appends a failed check.
pub fn check(failed: &mut Vec<(String, u64, u64)>, what: &str, expected: u64, seen: u64) {
    if expected != seen {
        failed.push((what.to_string(), expected, seen));
    }
}

/// One measurement of `config` with `variant`: set up, warm up, inject, check, tear down.
fn trial(
    host_ns: &Netns,
    setup: &Setup,
    state: &State,
    config: Config,
    variant: Variant,
    repeat: u32,
) -> Trial {
    let (warm, measured) = variant.packets(repeat);
    let flows = variant.flows();
    let (setup, state) = (setup.clone(), state.clone());
    host_ns.run(move || {
        let mut failed = Vec::new();
        let mut enabled = Enabled::new(config, &setup, &state);
        let then = enabled.then();
        if warm > 0 {
            inject(&setup, &setup.data, flows, warm, then.as_ref());
        }
        let tx_before = tx_packets(&setup.host, &setup.b_if);
        let before = enabled.counts();
        // The kernel reports the average duration of one run: ns per packet.
        let ns = inject(&setup, &setup.data, flows, measured, then.as_ref());
        let injected = u64::from(measured);
        let tx = tx_packets(&setup.host, &setup.b_if) - tx_before;
        check(&mut failed, "packets out of B's veth", injected, tx);
        if let (Some((passed, dropped)), Some((p, d))) = (before, enabled.counts()) {
            // Ours judges each packet twice (A's outbound, B's inbound), the others once.
            let times = if enabled.ours() { 2 } else { 1 };
            check(
                &mut failed,
                "the filter's own count",
                times * injected,
                p - passed,
            );
            check(&mut failed, "its drops", 0, d - dropped);
        }
        drop(enabled);
        Trial { ns, failed }
    })
}

/// Loads a file-fed configuration (`ipset restore -f`, `iptables-legacy-restore`) in a namespace.
fn restore(ns: &str, command: &[&str], input: &str) {
    let file = std::env::temp_dir().join(format!("{ns}.{}", command[0]));
    std::fs::write(&file, input).expect("restore file");
    let path = file.display().to_string();
    ns_sh(ns, &[command, &[path.as_str()]].concat());
    let _ = std::fs::remove_file(&file);
}

pub fn run(report: &mut Report, quick: bool) {
    let rounds = if quick { 3 } else { 5 };
    let repeat = if quick { 200_000 } else { 1_000_000 };
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
    let host = topo.host.name.clone();
    for (ns, dev) in [
        (host.as_str(), a_if.as_str()),
        (host.as_str(), b_if.as_str()),
        (topo.workloads[0].ns.name.as_str(), "eth0"),
        (topo.workloads[1].ns.name.as_str(), "eth0"),
    ] {
        ns_sh(
            ns,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ],
        );
    }
    ns_sh(
        &host,
        &[
            "ip",
            "neigh",
            "replace",
            &B.to_string(),
            "lladdr",
            NOBODY_MAC,
            "dev",
            &b_if,
        ],
    );
    let a_mac = mac_of(&host, &a_if);
    let data = frame(a_mac, A.into(), B.into(), 40000, 9, None);
    let setup = Setup {
        host,
        a_if,
        b_if,
        data,
    };
    let extra = json!([{"IpProtocol": "udp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": format!("{A}/32")}]}]);
    let mut failures = Vec::new();
    let mut trials = 0;
    for &rules in counts {
        let state = topo::state(&topo, rules, extra.clone());
        for variant in Variant::ALL {
            let mut samples: BTreeMap<Config, Vec<f64>> = BTreeMap::new();
            for _ in 0..rounds {
                for config in Config::ALL {
                    let t = trial(&topo.host, &setup, &state, config, variant, repeat);
                    trials += 1;
                    for (what, expected, seen) in t.failed {
                        failures.push(format!(
                            "{}, {}, {rules} rules: {what} {seen} (expected {expected})",
                            config.name(),
                            variant.name()
                        ));
                    }
                    samples.entry(config).or_default().push(t.ns);
                }
            }
            let stats = |c: Config| {
                let s = &samples[&c];
                let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (median(s.clone()), lo, hi)
            };
            let (none, ..) = stats(Config::None);
            let (empty, ..) = stats(Config::EmptyTc);
            let (nft_sets, ..) = stats(Config::NftSets);
            let (ours_tc, ..) = stats(Config::Ours);
            for config in Config::ALL {
                let (m, lo, hi) = stats(config);
                let metric = format!(
                    "{}, {}, {rules} rules (range {lo:.0}–{hi:.0})",
                    config.name(),
                    variant.name()
                );
                let (target, baseline) = match config {
                    Config::None => ("–", None),
                    Config::EmptyTc => ("–", Some(("no filter", none))),
                    Config::Ours => ("≤ nft sets", Some(("nft sets + conntrack", nft_sets))),
                    Config::OursXdp => ("< ours (TC)", Some(("ours", ours_tc))),
                    Config::NftSets | Config::IptablesIpset => ("–", Some(("no filter", none))),
                };
                report.row("B2 per hook", metric, target, m, "ns", baseline);
                report.point(
                    &format!("per-packet cost at the hook, {} (ns)", variant.name()),
                    config.name(),
                    rules as f64,
                    m,
                );
            }
            let (ours, ..) = stats(Config::Ours);
            report.row(
                "B2 per hook",
                format!(
                    "ours over the empty-TC floor, {}, {rules} rules",
                    variant.name()
                ),
                "–",
                ours - empty,
                "ns",
                None,
            );
        }
    }
    let rules = *counts.last().unwrap();
    let state = topo::state(&topo, rules, extra);
    failures.extend(flood::run(report, &topo.host, &setup, &state, rules, quick));
    trials += (4 + 3) * if quick { 3 } else { 5 };
    if failures.is_empty() {
        report.note(format!(
            "B2/B5 checks: in all {trials} trials B's veth transmitted exactly the allowed packets \
             injected and every filter's own counter saw every packet (ours twice per allowed \
             packet, one drop per flood packet)."
        ));
    } else {
        report.note(format!(
            "B2/B5 checks FAILED ({} failures in {trials} trials): {}",
            failures.len(),
            failures.join("; ")
        ));
    }
}

//! B5: a denied flood. Workload A sends TCP SYNs to a port of B that no rule of B allows, a new
//! source port per packet (A's default outbound rule lets them out, B's inbound rules refuse
//! them), injected on CPU 0 as in B2, while A's allowed UDP flow to B is injected on CPU 1. For
//! each filter: the flood's cost per packet (so packets per second dropped on one core), and the
//! allowed flow's cost per packet alone and under the flood. Checked like B2: B's veth transmits
//! exactly the allowed packets, and each filter's counter sees every packet of both (ours: one
//! drop per flood packet). With `--attach xdp` the SYNs pass A's XDP hook (its outbound rules
//! allow them) and are dropped at B's tc egress, as in TC mode. A second flood is refused by A's
//! own outbound rules (they allow only the UDP flow to B): ours drops it at A's hook, in XDP
//! mode before any skb exists.

use std::{net::Ipv4Addr, sync::mpsc, time::Duration};

use aya::programs::ProgramFd;
use firewall_agent::model::State;
use firewall_testkit::model::call;
use firewall_testkit::{frame::SYN, netns::Netns, shell::ns_sh};
use serde_json::json;

use crate::{
    common::{frame, group_id, median},
    hook::{Config, Enabled, Setup, check, inject, tx_packets},
    report::Report,
};

/// The flood's destination port (no rule allows it).
const DENIED_PORT: u16 = 10;

/// Pins the calling thread to one CPU.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// (flood ns/packet, allowed ns/packet alone, allowed ns/packet under the flood, failed checks).
fn trial(
    host_ns: &Netns,
    setup: &Setup,
    state: &State,
    config: Config,
    flood: &[u8],
    repeat: u32,
    refused_by_sender: bool,
) -> (f64, f64, f64, Vec<(String, u64, u64)>) {
    let flood_packets = 2 * repeat;
    let (go_tx, go_rx) = mpsc::channel::<Option<ProgramFd>>();
    let (done_tx, done_rx) = mpsc::channel::<f64>();
    let flooder = {
        let (setup, flood) = (setup.clone(), flood.to_vec());
        host_ns.spawn(move || {
            pin_to(0);
            // Waits for the configuration; gives up if the measuring side panicked.
            if let Ok(then) = go_rx.recv() {
                let ns = inject(&setup, &flood, 1 << 16, flood_packets, then.as_ref());
                let _ = done_tx.send(ns);
            }
        })
    };
    let (setup, state) = (setup.clone(), state.clone());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let result = host_ns.run(move || {
        pin_to(1 % cpus);
        let mut enabled = Enabled::new(config, &setup, &state);
        let then = enabled.then();
        inject(&setup, &setup.data, 0, 1_000, then.as_ref());
        let alone = inject(&setup, &setup.data, 0, repeat, then.as_ref());
        let tx_before = tx_packets(&setup.host, &setup.b_if);
        let before = enabled.counts();
        go_tx.send(enabled.then()).expect("flood thread");
        // Let the flood start first.
        std::thread::sleep(Duration::from_millis(20));
        let during = inject(&setup, &setup.data, 0, repeat, then.as_ref());
        let flood_ns = done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the flood ends");
        let mut failed = Vec::new();
        let tx = tx_packets(&setup.host, &setup.b_if) - tx_before;
        let (allowed, flooded) = (u64::from(repeat), u64::from(flood_packets));
        check(&mut failed, "allowed packets out of B's veth", allowed, tx);
        if let (Some((passed, dropped)), Some((p, d))) = (before, enabled.counts()) {
            if enabled.ours() {
                // Each flood packet passes A's outbound rule or conntrack, then B drops it.
                check(&mut failed, "our drops", flooded, d - dropped);
                let through_a = if refused_by_sender { 0 } else { flooded };
                check(
                    &mut failed,
                    "our passes",
                    2 * allowed + through_a,
                    p - passed,
                );
            } else {
                check(
                    &mut failed,
                    "the chain's counter",
                    allowed + flooded,
                    p - passed,
                );
            }
        }
        (flood_ns, alone, during, failed)
    });
    flooder.join().expect("flood thread");
    result
}

pub fn run(
    report: &mut Report,
    host_ns: &Netns,
    setup: &Setup,
    state: &State,
    rules: usize,
    quick: bool,
) -> Vec<String> {
    let rounds = if quick { 3 } else { 5 };
    let repeat = if quick { 100_000 } else { 500_000 };
    let (a, b) = (
        Ipv4Addr::new(172, 31, 80, 10),
        Ipv4Addr::new(172, 31, 81, 10),
    );
    let mac: [u8; 6] = setup.data[..6].try_into().unwrap();
    let flood = frame(mac, a.into(), b.into(), 40000, DENIED_PORT, Some(SYN));
    // Linux conntrack would call the rewritten SYNs invalid (their TCP checksum is not updated)
    // and drop them early: it checks no checksum here, so every filter judges every SYN.
    ns_sh(
        &setup.host,
        &["sysctl", "-qw", "net.netfilter.nf_conntrack_checksum=0"],
    );
    let configs = [
        Config::Ours,
        Config::OursXdp,
        Config::NftSets,
        Config::IptablesIpset,
    ];
    let mut failures = Vec::new();
    failures.extend(refused_by_sender(
        report, host_ns, setup, state, rules, &flood, rounds, repeat,
    ));
    let mut samples = vec![(Vec::new(), Vec::new(), Vec::new()); configs.len()];
    for _ in 0..rounds {
        for (i, config) in configs.iter().enumerate() {
            let (f, alone, during, failed) =
                trial(host_ns, setup, state, *config, &flood, repeat, false);
            samples[i].0.push(f);
            samples[i].1.push(alone);
            samples[i].2.push(during);
            for (what, expected, seen) in failed {
                failures.push(format!(
                    "flood, {}: {what} {seen} (expected {expected})",
                    config.name()
                ));
            }
        }
    }
    let nft_flood = median(samples[2].0.clone());
    for (i, config) in configs.iter().enumerate() {
        let (f, alone, during) = (
            median(samples[i].0.clone()),
            median(samples[i].1.clone()),
            median(samples[i].2.clone()),
        );
        let name = config.name();
        report.row(
            "B5 flood",
            format!(
                "{name}: denied SYN flood, packets dropped per second on one core, {rules} rules"
            ),
            "above nft",
            1e9 / f,
            "pkt/s",
            matches!(config, Config::Ours | Config::OursXdp)
                .then_some(("nft sets + conntrack", 1e9 / nft_flood)),
        );
        report.row(
            "B5 flood",
            format!("{name}: allowed flow under the flood (other core), {rules} rules"),
            "–",
            during,
            "ns",
            Some(("the same flow alone", alone)),
        );
    }
    failures
}

/// The flood refused by A's own outbound rules (they keep only A's UDP flow to B): ours (both
/// modes) against nft sets; iptables is left out (12k SYNs/s would take minutes).
#[allow(clippy::too_many_arguments)]
fn refused_by_sender(
    report: &mut Report,
    host_ns: &Netns,
    setup: &Setup,
    state: &State,
    rules: usize,
    flood: &[u8],
    rounds: usize,
    repeat: u32,
) -> Vec<String> {
    let mut state = state.clone();
    let client = group_id(&state, "client");
    call(
        &mut state,
        "RevokeSecurityGroupEgress",
        json!({"GroupId": client, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
    );
    call(
        &mut state,
        "AuthorizeSecurityGroupEgress",
        json!({"GroupId": client, "IpPermissions": [{"IpProtocol": "udp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": "172.31.81.10/32"}]}]}),
    );
    let configs = [Config::Ours, Config::OursXdp, Config::NftSets];
    let mut failures = Vec::new();
    let mut samples = vec![(Vec::new(), Vec::new(), Vec::new()); configs.len()];
    for _ in 0..rounds {
        for (i, config) in configs.iter().enumerate() {
            let (f, alone, during, failed) =
                trial(host_ns, setup, &state, *config, flood, repeat, true);
            samples[i].0.push(f);
            samples[i].1.push(alone);
            samples[i].2.push(during);
            for (what, expected, seen) in failed {
                failures.push(format!(
                    "flood refused by the sender, {}: {what} {seen} (expected {expected})",
                    config.name()
                ));
            }
        }
    }
    let nft_flood = median(samples[2].0.clone());
    for (i, config) in configs.iter().enumerate() {
        let f = median(samples[i].0.clone());
        let name = config.name();
        report.row(
            "B5 flood",
            format!(
                "{name}: SYN flood refused by the sender's outbound rules, packets dropped per second on one core, {rules} rules"
            ),
            "above nft",
            1e9 / f,
            "pkt/s",
            (*config != Config::NftSets).then_some(("nft sets + conntrack", 1e9 / nft_flood)),
        );
        report.row(
            "B5 flood",
            format!(
                "{name}: allowed flow under the sender-refused flood (other core), {rules} rules"
            ),
            "–",
            median(samples[i].2.clone()),
            "ns",
            Some(("the same flow alone", median(samples[i].1.clone()))),
        );
    }
    failures
}

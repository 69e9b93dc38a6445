//! Live updates are atomic per packet: while 1000 rule changes are applied, a probe stream runs
//! through the loaded program from another thread, and every verdict must be the verdict of the
//! policy before or after the change in flight, never anything else. Some rules reference a
//! prefix list: their part set is rewritten in place. The same at 100k rules
//! (ignored in the suite, it takes minutes: `cargo test -p firewall-agent --test atomicity --
//! --ignored`).

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
};

use aya::programs::{SchedClassifier, TestRun as _, TestRunOptions};
use firewall_agent::{compiler, dataplane::programs};
use firewall_common::Direction;
use firewall_testkit::{
    frame::*,
    harness::*,
    model::{call, create_group},
    netns::in_private_netns,
};
use serde_json::json;

const CHANGES: usize = 1000;

/// Rules toggled in turn: overlapping CIDRs, ranges and protocols, so every change reshapes the
/// closure of several prefixes at once; two reference the prefix list `list`.
fn rules(list: &str) -> Vec<serde_json::Value> {
    let rule = |proto: &str, from: i64, to: i64, cidr: &str| json!({"IpProtocol": proto, "FromPort": from, "ToPort": to, "IpRanges": [{"CidrIp": cidr}]});
    let listed = |from: i64, to: i64| json!({"IpProtocol": "tcp", "FromPort": from, "ToPort": to, "PrefixListIds": [{"PrefixListId": list}]});
    vec![
        listed(25, 25),
        listed(1400, 1600),
        rule("tcp", 22, 22, "10.0.0.0/8"),
        rule("tcp", 80, 80, "10.1.0.0/16"),
        rule("tcp", 20, 30, "10.1.2.0/24"),
        json!({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.1.2.3/32"}]}),
        rule("tcp", 1000, 2000, "10.0.0.0/8"),
        rule("tcp", 80, 80, "0.0.0.0/0"),
    ]
}

/// Probes that never open a flow (mid-stream TCP segments, echo replies), so every verdict is
/// the policy's.
fn probes() -> Vec<(Frame, IpAddr, u8, u16)> {
    let mut out = Vec::new();
    for src in [
        "10.1.2.3",
        "10.1.2.9",
        "10.1.9.9",
        "10.9.9.9",
        "192.168.0.1",
    ] {
        for port in [22u16, 25, 80, 1500] {
            out.push((
                tcp(src, 40000, WORKLOAD, port, ACK),
                src.parse().unwrap(),
                6,
                port,
            ));
        }
    }
    out.push((
        icmp("10.1.2.3", WORKLOAD, 1, 0, 0, 7),
        "10.1.2.3".parse().unwrap(),
        1,
        0,
    ));
    out
}

#[test]
fn every_probe_verdict_matches_the_policy_before_or_after_the_change_in_flight() {
    changes_under_probes(0, CHANGES);
}

/// 100k rules in a second attached group, rewritten through a `/0` chain on every change.
#[test]
fn at_100k_rules_every_probe_verdict_matches_the_policy_before_or_after_the_change() {
    changes_under_probes(100_000, 20);
}

/// Rules of another attached group, in 20.0.0.0/8 (clear of the probes' peers): every change of a
/// `/0` rule rewrites each of their chains.
fn background(rules: usize) -> serde_json::Value {
    let rules: Vec<_> = (0..rules)
        .map(|i| {
            let port = 1 + (i % 60_000);
            json!({"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                   "IpRanges": [{"CidrIp": format!("20.{}.{}.{}/32", i >> 16 & 255, i >> 8 & 255, i & 255)}]})
        })
        .collect();
    json!(rules)
}

fn changes_under_probes(background_rules: usize, changes: usize) {
    in_private_netns(move || {
        let (mut group, mut list) = (String::new(), String::new());
        let mut h = Harness::new(|s| {
            s.quotas.rules_per_group = background_rules.max(60);
            group = create_group(s, "probed", json!([]));
            let request = json!({"PrefixListName": "probed", "MaxEntries": 4, "AddressFamily": "IPv4",
                                 "Entries": [{"Cidr": "10.1.2.0/24"}, {"Cidr": "10.9.0.0/16"}]});
            let created = call(s, "CreateManagedPrefixList", request);
            list = created["PrefixList"]["PrefixListId"]
                .as_str()
                .unwrap()
                .to_string();
            let mut groups = vec![group.clone()];
            if background_rules > 0 {
                groups.push(create_group(s, "background", background(background_rules)));
            }
            groups
        });
        let policy = h.last.ifaces["lo"].policy_id;
        let probes = probes();
        let verdicts = |d: &compiler::Desired| -> Vec<bool> {
            probes
                .iter()
                .map(|(_, src, proto, port)| {
                    compiler::evaluate(d, policy, Direction::Inbound, *src, *proto, *port).is_some()
                })
                .collect()
        };

        // The probe thread runs the same program, reopened from a pin, while this one changes rules.
        let bpffs = std::env::temp_dir().join(format!("fw-atomicity-{}", std::process::id()));
        std::fs::create_dir_all(&bpffs).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&bpffs)
            .status()
            .unwrap();
        assert!(mounted.success());
        let pin = bpffs.join("prog");
        h.dataplane
            .program(programs::TO_WORKLOAD)
            .pin(&pin)
            .expect("pin program");

        let started = Arc::new(AtomicUsize::new(0));
        let applied = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let frames: Vec<Vec<u8>> = probes.iter().map(|(f, ..)| f.bytes()).collect();
        let prober = {
            let (started, applied, done) = (started.clone(), applied.clone(), done.clone());
            let pin = pin.clone();
            std::thread::spawn(move || {
                let program = SchedClassifier::from_pin(&pin).expect("open pinned program");
                let mut seen = Vec::new();
                let mut out = vec![0u8; 512];
                let mut i = 0usize;
                while !done.load(SeqCst) {
                    let probe = i % frames.len();
                    let lo = applied.load(SeqCst);
                    let opts = TestRunOptions {
                        data_in: Some(&frames[probe]),
                        data_out: Some(&mut out),
                        ..TestRunOptions::default()
                    };
                    let verdict = program.test_run(opts).expect("test run").return_value;
                    let hi = started.load(SeqCst);
                    seen.push((probe, lo, hi, verdict == PASS));
                    i += 1;
                }
                seen
            })
        };

        let rules = rules(&list);
        let mut present = vec![false; rules.len()];
        let mut expected = vec![verdicts(&h.last)];
        for change in 0..changes {
            let which = (change * 7 + change / rules.len()) % rules.len();
            let action = if present[which] {
                "RevokeSecurityGroupIngress"
            } else {
                "AuthorizeSecurityGroupIngress"
            };
            present[which] = !present[which];
            started.store(change + 1, SeqCst);
            h.change(
                action,
                json!({"GroupId": group, "IpPermissions": [rules[which]]}),
            );
            expected.push(verdicts(&h.last));
            applied.store(change + 1, SeqCst);
        }
        done.store(true, SeqCst);
        let seen = prober.join().expect("prober");
        let _ = std::process::Command::new("umount").arg(&bpffs).status();
        let _ = std::fs::remove_dir_all(&bpffs);

        let wrong: Vec<_> = seen
            .iter()
            .filter(|(probe, lo, hi, allowed)| {
                !(*lo..=*hi).any(|v| expected[v][*probe] == *allowed)
            })
            .collect();
        let during_changes = seen.iter().filter(|(_, lo, hi, _)| lo != hi).count();
        eprintln!(
            "{} probes, {} while a change was being applied, {} wrong",
            seen.len(),
            during_changes,
            wrong.len()
        );
        assert!(
            wrong.is_empty(),
            "verdicts matching neither policy: {:?}",
            &wrong[..wrong.len().min(10)]
        );
        assert!(
            during_changes > 100,
            "the probes must overlap the changes ({during_changes})"
        );
        // The changes really flip verdicts: every probe that is ever allowed is also denied at some point.
        let flips = (0..probes.len())
            .filter(|p| expected.iter().any(|v| v[*p]) && expected.iter().any(|v| !v[*p]))
            .count();
        assert!(flips >= 10, "only {flips} probes change verdict");
    });
}

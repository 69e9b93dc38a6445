//! Conntrack under pressure: a flood of distinct new flows through BPF_PROG_TEST_RUN fills the
//! table (capacity `firewall_common::capacity::CONNTRACK`, the agent's default). A full table
//! fails closed: new flows are dropped and counted as `conntrack-full`, nobody is evicted, so
//! flows established before the flood keep passing both ways. Once the flood's flows idle out,
//! the agent's garbage collection (`collect_expired_flows`, what its 10 s tick runs) frees the
//! table and new flows are admitted again.
//!
//! `FIREWALL_FLOOD_FLOWS` sets the flood (default 1,048,576: 16 peers × every source port);
//! the test prints what it measured.

use std::time::{Duration, Instant};

use aya::programs::{TestRun as _, TestRunOptions};
use firewall_agent::dataplane::{Dataplane as _, LoadOptions, programs};
use firewall_common::{CtTimeouts, capacity};
use firewall_testkit::{frame::*, harness::*, model::create_group, netns::in_private_netns};
use serde_json::json;

/// The flood's flows are UDP request/response pairs that never answer: idle after this.
const FLOOD_IDLE_SECONDS: u32 = 2;
/// Flows established before the flood.
const ESTABLISHED: u16 = 16;
const SERVER: &str = "192.0.2.200";

fn flood_flows() -> u32 {
    std::env::var("FIREWALL_FLOOD_FLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16 << 16)
}

/// The reply from the server of established flow `i`: only conntrack lets it in (the workload
/// has no inbound rule).
fn reply(i: u16) -> Frame {
    tcp(SERVER, 443, WORKLOAD, 40_000 + i, ACK)
}

fn request(i: u16) -> Frame {
    tcp(WORKLOAD, 40_000 + i, SERVER, 443, ACK)
}

/// Every established flow still passes in both directions.
fn established_flows_pass(h: &mut Harness) -> bool {
    (0..ESTABLISHED).all(|i| h.inbound(&reply(i)) == PASS && h.outbound(&request(i)) == PASS)
}

fn conntrack_full_drops(h: &Harness) -> u64 {
    h.dataplane.counters().expect("counters").drops["conntrack-full"]
}

#[test]
fn a_flood_of_new_flows_fills_the_table_fails_closed_keeps_established_flows_and_gc_recovers() {
    in_private_netns(|| {
        let options = LoadOptions {
            timeouts: CtTimeouts {
                udp: FLOOD_IDLE_SECONDS,
                ..CtTimeouts::AWS_DEFAULT
            },
            pins: None,
            conntrack_capacity: capacity::CONNTRACK,
            ..LoadOptions::default()
        };
        // Outbound anywhere (the default egress rule), nothing inbound.
        let mut h = Harness::with_options(&options, |s| vec![create_group(s, "client", json!([]))]);
        for i in 0..ESTABLISHED {
            let syn = tcp(WORKLOAD, 40_000 + i, SERVER, 443, SYN);
            assert_eq!(h.outbound(&syn), PASS);
            assert_eq!(
                h.inbound(&tcp(SERVER, 443, WORKLOAD, 40_000 + i, SYN | ACK)),
                PASS
            );
            assert_eq!(h.outbound(&request(i)), PASS);
        }
        assert_eq!(
            h.inbound(&tcp(SERVER, 443, WORKLOAD, 9, SYN)),
            DROP,
            "no inbound rule"
        );

        // The flood: UDP from every source port to 16 peers, one BPF_PROG_TEST_RUN each.
        let flows = flood_flows();
        let peers: Vec<Vec<u8>> = (0..flows.div_ceil(1 << 16))
            .map(|p| udp(WORKLOAD, 0, &format!("198.18.{}.{}", p >> 8, p & 0xff), 53).bytes())
            .collect();
        let started = Instant::now();
        let (mut passed, mut dropped) = (0u64, 0u64);
        for n in 0..flows {
            let mut frame = peers[(n >> 16) as usize].clone();
            frame[34..36].copy_from_slice(&(n as u16).to_be_bytes()); // UDP source port
            let verdict = h
                .dataplane
                .program(programs::FROM_WORKLOAD)
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ..TestRunOptions::default()
                })
                .expect("BPF_PROG_TEST_RUN")
                .return_value;
            match verdict {
                PASS => passed += 1,
                _ => dropped += 1,
            }
            if n % (1 << 16) == 0xffff {
                assert!(
                    established_flows_pass(&mut h),
                    "during the flood, after {n} flows"
                );
            }
        }
        let flood_time = started.elapsed();
        let flood_end = Instant::now();

        let capacity = u64::from(capacity::CONNTRACK);
        let established = u64::from(ESTABLISHED);
        let tracked = h.dataplane.tracked_flows() as u64;
        let refused = conntrack_full_drops(&h);
        println!(
            "flood: {flows} new flows in {flood_time:.1?}: {passed} admitted, {dropped} dropped, \
             {refused} counted conntrack-full; table {tracked}/{capacity}"
        );
        assert_eq!(tracked, capacity, "the flood filled the table");
        assert_eq!(
            passed,
            capacity - established,
            "admitted until the table was full"
        );
        assert_eq!(refused, dropped, "every drop was the full table's");
        assert_eq!(refused, u64::from(flows) - passed);
        assert!(refused > 0);

        let late = tcp(WORKLOAD, 50_000, SERVER, 8443, SYN);
        assert_eq!(h.outbound(&late), DROP, "a full table refuses a new flow");
        assert_eq!(conntrack_full_drops(&h), refused + 1, "and counts it");
        assert!(
            established_flows_pass(&mut h),
            "established flows lost: none"
        );

        // The agent's collection, on its tick, until the flood's flows are gone.
        let (mut collected, mut passes) = (0, 0);
        let deadline = flood_end + Duration::from_secs(u64::from(FLOOD_IDLE_SECONDS) + 6);
        while h.dataplane.tracked_flows() as u64 > established {
            assert!(Instant::now() < deadline, "GC did not recover the table");
            std::thread::sleep(Duration::from_millis(500));
            collected += h.dataplane.collect_expired_flows().expect("GC");
            passes += 1;
        }
        let recovered = flood_end.elapsed();
        println!(
            "GC: {collected} expired flows collected in {passes} pass(es), table back to {} within {recovered:.1?} of \
             the flood's end ({FLOOD_IDLE_SECONDS} s UDP idle timeout)",
            h.dataplane.tracked_flows()
        );
        assert_eq!(collected as u64, capacity - established);
        assert!(
            established_flows_pass(&mut h),
            "established flows survive the GC"
        );
        assert_eq!(h.outbound(&late), PASS, "new flows are admitted again");
        assert_eq!(conntrack_full_drops(&h), refused + 1);
    });
}

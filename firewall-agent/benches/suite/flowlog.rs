//! B1 with flow logs: the program's cost per packet through BPF_PROG_TEST_RUN with the
//! interface's flow-log flag off and on, for a tracked packet (sends no event: the target is
//! +0, at most +20 ns), a packet the rules judge (a rule-pass event) and a dropped one (a drop
//! event). Runs are short enough (10k) for the ring buffer to hold every event, and it is
//! drained between runs, so "on" measures the event being written, not the buffer being full.

use std::net::{IpAddr, Ipv4Addr};

use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{Dataplane as _, DataplaneError, KernelDataplane, LoadOptions, programs},
    model::FlowLog,
};
use firewall_testkit::frame::{ACK, SYN};

use crate::{
    common::{WorkloadSpec, build_state, frame, median},
    program::ns_per_run,
    report::Report,
};

const ME: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 5);
const REPEAT: u32 = 10_000;

pub fn run(report: &mut Report, quick: bool) {
    let trials = if quick { 15 } else { 61 };
    let base = build_state(
        10,
        42,
        &[WorkloadSpec {
            interface: "lo",
            ip: ME,
            ip6: None,
        }],
    );
    let mut dataplane = KernelDataplane::load(&LoadOptions::default()).expect("load");
    let mut ring = dataplane.take_flow_events().expect("the ring buffer");
    let mut ids = Ids::default();
    let me: IpAddr = ME.into();
    let client: IpAddr = Ipv4Addr::new(10, 1, 2, 3).into();
    let stranger: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let mac = [2, 0, 0, 0, 0, 1];
    let cases = [
        (
            "tracked packet",
            frame(mac, client, me, 50000, 443, Some(ACK)),
            true,
        ),
        (
            "rule-judged packet",
            frame(mac, client, me, 50001, 443, Some(ACK)),
            true,
        ),
        (
            "denied packet",
            frame(mac, stranger, me, 50002, 444, Some(ACK)),
            false,
        ),
    ];
    let mut logged = base.clone();
    let vpc = logged.default_vpc().expect("default VPC").id.clone();
    logged.flow_logs.insert(
        "fl-bench".into(),
        FlowLog {
            id: "fl-bench".into(),
            resource_id: vpc,
            traffic_type: "ALL".into(),
            destination_type: "stdout".into(),
            destination: None,
            log_format: firewall_agent::model::flow_log::DEFAULT_FORMAT.into(),
            max_aggregation_interval: 60,
            creation_time: String::new(),
            tags: Vec::new(),
        },
    );
    // The same entries but the interface's flow-log flag.
    let desired = [
        compiler::compile(&base, &mut ids),
        compiler::compile(&logged, &mut ids),
    ];
    // samples[on][case]; off and on alternate within each trial, so load drifts hit both.
    let mut samples = vec![vec![Vec::new(); cases.len()]; 2];
    for trial in 0..trials {
        for (on, desired) in desired.iter().enumerate() {
            match dataplane.apply(desired) {
                Ok(()) | Err(DataplaneError::Interface { .. }) => {}
                Err(e) => panic!("apply: {e}"),
            }
            if trial == 0 {
                let program = dataplane.program(programs::TO_WORKLOAD);
                ns_per_run(
                    program,
                    &frame(mac, client, me, 50000, 443, Some(SYN)),
                    1,
                    1,
                );
            }
            for (index, (name, data, allowed)) in cases.iter().enumerate() {
                let program = dataplane.program(programs::TO_WORKLOAD);
                let (ns, verdict) = ns_per_run(program, data, REPEAT, 1);
                assert_eq!(verdict == u32::MAX, *allowed, "{name}: wrong verdict");
                samples[on][index].push(ns);
                while ring.next().is_some() {}
            }
        }
    }
    for (index, (name, _, _)) in cases.iter().enumerate() {
        let off = median(samples[0][index].clone());
        let on = median(samples[1][index].clone());
        for (label, ns) in [("flow log off", off), ("flow log on", on)] {
            report.point(
                "program cost with flow logs (ns per packet, BPF_PROG_TEST_RUN)",
                &format!("{name}, {label}"),
                10.0,
                ns,
            );
        }
        report.row(
            "B1 flow logs",
            format!("{name}, flow log on (10 rules)"),
            if index == 0 { "≤ off + 20 ns" } else { "–" },
            on,
            "ns",
            Some(("flow log off", off)),
        );
    }
    assert_eq!(dataplane.flow_log_lost(), 0, "the ring buffer never filled");
}

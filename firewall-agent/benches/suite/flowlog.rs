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
    let mut off = Vec::new();
    for on in [false, true] {
        let mut state = base.clone();
        if on {
            let vpc = state.default_vpc().expect("default VPC").id.clone();
            state.flow_logs.insert(
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
        }
        let desired = compiler::compile(&state, &mut ids);
        match dataplane.apply(&desired) {
            Ok(()) | Err(DataplaneError::Interface { .. }) => {}
            Err(e) => panic!("apply: {e}"),
        }
        let program = dataplane.program(programs::TO_WORKLOAD);
        ns_per_run(
            program,
            &frame(mac, client, me, 50000, 443, Some(SYN)),
            1,
            1,
        );
        for (index, (name, data, allowed)) in cases.iter().enumerate() {
            let mut samples = Vec::new();
            for _ in 0..trials {
                let program = dataplane.program(programs::TO_WORKLOAD);
                let (ns, verdict) = ns_per_run(program, data, REPEAT, 1);
                assert_eq!(verdict == u32::MAX, *allowed, "{name}: wrong verdict");
                samples.push(ns);
                while ring.next().is_some() {}
            }
            let ns = median(samples);
            let label = if on { "flow log on" } else { "flow log off" };
            report.point(
                "program cost with flow logs (ns per packet, BPF_PROG_TEST_RUN)",
                &format!("{name}, {label}"),
                10.0,
                ns,
            );
            if on {
                report.row(
                    "B1 flow logs",
                    format!("{name}, flow log on (10 rules)"),
                    if index == 0 { "≤ off + 20 ns" } else { "–" },
                    ns,
                    "ns",
                    Some(("flow log off", off[index])),
                );
            } else {
                off.push(ns);
            }
        }
    }
    assert_eq!(dataplane.flow_log_lost(), 0, "the ring buffer never filled");
}

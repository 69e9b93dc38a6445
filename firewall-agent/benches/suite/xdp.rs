//! B1 at the two hooks for what a workload sends (method M1): the XDP entry
//! (`sg_from_workload_xdp`, `--attach xdp`) against the TC entry (`sg_from_workload`) through
//! BPF_PROG_TEST_RUN with `repeat`, on the same maps, rounds alternating, with each hook's empty
//! program as its floor. Cases: a tracked packet, a new flow's packet a rule allows (a
//! mid-stream segment: it opens nothing, so every run takes the policy path), a denied one.

use std::net::{IpAddr, Ipv4Addr};

use aya::{
    EbpfLoader,
    programs::{SchedClassifier, TestRun as _, TestRunOptions, Xdp},
};
use firewall_agent::dataplane::{EBPF_OBJECT, programs};
use firewall_testkit::{
    frame::{ACK, SYN},
    harness::{Harness, WORKLOAD},
    model::{call, create_group},
};
use serde_json::json;

use crate::{
    common::{frame, median},
    program::ns_per_run,
    report::Report,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Median over `trials` of the kernel's average ns per run of the XDP program.
fn xdp_ns_per_run(program: &Xdp, data: &[u8], repeat: u32, trials: usize) -> (f64, u32) {
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
        let result = program.test_run(opts).expect("XDP test run");
        verdict = result.return_value;
        samples.push(result.duration.as_nanos() as f64);
    }
    (median(samples), verdict)
}

/// Runs in a private network namespace (the workload is on its `lo`).
pub fn run(report: &mut Report, quick: bool) {
    let (repeat, rounds) = if quick { (200_000, 3) } else { (1_000_000, 5) };
    // The workload may send TCP to 10.0.0.0/8 port 443 only.
    let mut h = Harness::new(|s| {
        let group = create_group(s, "client", json!([]));
        call(
            s,
            "RevokeSecurityGroupEgress",
            json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
        );
        call(
            s,
            "AuthorizeSecurityGroupEgress",
            json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
        );
        vec![group]
    });
    let me: IpAddr = WORKLOAD.parse().unwrap();
    let server: IpAddr = Ipv4Addr::new(10, 1, 2, 3).into();
    let stranger: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let mac = [2, 0, 0, 0, 0, 1];
    ns_per_run(
        h.dataplane.program(programs::FROM_WORKLOAD),
        &frame(mac, me, server, 50000, 443, Some(SYN)),
        1,
        1,
    );
    let cases = [
        (
            "tracked packet",
            frame(mac, me, server, 50000, 443, Some(ACK)),
            true,
        ),
        (
            "new flow (rule)",
            frame(mac, me, server, 50001, 443, Some(ACK)),
            true,
        ),
        (
            "denied",
            frame(mac, me, stranger, 50002, 444, Some(ACK)),
            false,
        ),
    ];
    let mut floors = EbpfLoader::new()
        .map_max_entries("CONNTRACK", 16)
        .load(EBPF_OBJECT)
        .expect("load bench programs");
    {
        let empty: &mut SchedClassifier = floors
            .program_mut("bench_empty")
            .unwrap()
            .try_into()
            .unwrap();
        empty.load().unwrap();
        let empty: &mut Xdp = floors
            .program_mut("bench_empty_xdp")
            .unwrap()
            .try_into()
            .unwrap();
        empty.load().unwrap();
    }
    let (mut tc, mut xdp) = (vec![Vec::new(); cases.len()], vec![Vec::new(); cases.len()]);
    let (mut tc_floor, mut xdp_floor) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (i, (name, data, allowed)) in cases.iter().enumerate() {
            let (ns, verdict) = ns_per_run(
                h.dataplane.program(programs::FROM_WORKLOAD),
                data,
                repeat,
                1,
            );
            assert_eq!(verdict == u32::MAX, *allowed, "TC, {name}");
            tc[i].push(ns);
            let (ns, verdict) = xdp_ns_per_run(h.dataplane.xdp_program(), data, repeat, 1);
            let expected = if *allowed { XDP_PASS } else { XDP_DROP };
            assert_eq!(verdict, expected, "XDP, {name}");
            xdp[i].push(ns);
        }
        let empty: &SchedClassifier = floors.program("bench_empty").unwrap().try_into().unwrap();
        tc_floor.push(ns_per_run(empty, &cases[0].1, repeat, 1).0);
        let empty: &Xdp = floors
            .program("bench_empty_xdp")
            .unwrap()
            .try_into()
            .unwrap();
        xdp_floor.push(xdp_ns_per_run(empty, &cases[0].1, repeat, 1).0);
    }
    let (tc_floor, xdp_floor) = (median(tc_floor), median(xdp_floor));
    for (i, (name, ..)) in cases.iter().enumerate() {
        let (tc, xdp) = (median(tc[i].clone()), median(xdp[i].clone()));
        report.row(
            "B1 XDP vs TC",
            format!("outbound, {name}: XDP entry"),
            "< TC entry",
            xdp,
            "ns",
            Some(("TC entry", tc)),
        );
        report.point(
            "outbound program cost by hook (ns, PROG_TEST_RUN)",
            "TC",
            i as f64,
            tc,
        );
        report.point(
            "outbound program cost by hook (ns, PROG_TEST_RUN)",
            "XDP",
            i as f64,
            xdp,
        );
    }
    report.note(format!(
        "B1 XDP vs TC floors: empty TC {tc_floor:.0} ns, empty XDP {xdp_floor:.0} ns (same run; \
         {rounds} alternating rounds of {repeat} runs, medians)."
    ));
}

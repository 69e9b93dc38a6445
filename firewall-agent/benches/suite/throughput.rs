//! B3 (method M3): iperf3 through veths between namespaces, the host routing between two
//! workloads: single-stream TCP and 64-byte UDP, with no filter, with ours and with nftables
//! (the same groups, exported), and the CPU the whole machine spent (`/proc/stat`).

use std::{net::Ipv4Addr, process::Command, time::Duration};

use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{Dataplane as _, DataplaneError, KernelDataplane, LoadOptions},
    nft::{self, Layout},
};
use firewall_testkit::topology::Topology;
use serde_json::{Value, json};

use crate::{common::median, report::Report, topo};

const A: Ipv4Addr = Ipv4Addr::new(172, 31, 90, 10);
const B: Ipv4Addr = Ipv4Addr::new(172, 31, 91, 10);

/// (busy, total) jiffies over all CPUs.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// One iperf3 run from A to B: (Gbit/s or packets/s, CPU busy fraction, CPU ns per packet for
/// UDP).
fn iperf(topo: &Topology, udp: bool, seconds: u32) -> (f64, f64, f64) {
    let server_ns = topo.workloads[1].ns.name.clone();
    let mut server = Command::new("ip")
        .args([
            "netns", "exec", &server_ns, "iperf3", "-s", "-1", "-p", "5201",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let (busy0, total0) = cpu_jiffies();
    let mut args = vec![
        "netns".to_string(),
        "exec".into(),
        topo.workloads[0].ns.name.clone(),
        "iperf3".into(),
        "-c".into(),
        B.to_string(),
        "-p".into(),
        "5201".into(),
        "-t".into(),
        seconds.to_string(),
        "-J".into(),
    ];
    if udp {
        args.extend(["-u", "-l", "64", "-b", "0"].map(String::from));
    }
    let out = Command::new("ip")
        .args(&args)
        .output()
        .expect("iperf3 client");
    let (busy1, total1) = cpu_jiffies();
    let _ = server.kill();
    let _ = server.wait();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let cpu = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let busy_ns = (busy1 - busy0) as f64 * 1e9 / ticks_per_second;
    if udp {
        let sum = &json["end"]["sum"];
        let received =
            sum["packets"].as_f64().unwrap_or(0.0) - sum["lost_packets"].as_f64().unwrap_or(0.0);
        let pps = received
            / sum["seconds"]
                .as_f64()
                .unwrap_or(f64::from(seconds))
                .max(0.001);
        (pps, cpu, busy_ns / received.max(1.0))
    } else {
        (
            json["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e9,
            cpu,
            f64::NAN,
        )
    }
}

pub fn run(report: &mut Report, quick: bool) {
    let (seconds, trials) = if quick { (3, 1) } else { (10, 3) };
    let rules = 1_000;
    let topo = topo::topology(&[A, B]);
    let extra = json!([{"IpProtocol": "tcp", "FromPort": 5201, "ToPort": 5201, "IpRanges": [{"CidrIp": format!("{A}/32")}]},
                       {"IpProtocol": "udp", "FromPort": 5201, "ToPort": 5201, "IpRanges": [{"CidrIp": format!("{A}/32")}]}]);
    let state = topo::state(&topo, rules, extra);
    let measure = |topo: &Topology| -> [(f64, f64, f64); 2] {
        [false, true].map(|udp| {
            let runs: Vec<(f64, f64, f64)> =
                (0..trials).map(|_| iperf(topo, udp, seconds)).collect();
            (
                median(runs.iter().map(|r| r.0).collect()),
                median(runs.iter().map(|r| r.1).collect()),
                median(runs.iter().map(|r| r.2).collect()),
            )
        })
    };
    let none = measure(&topo);
    // Ours: the data plane attached on the host veths, held while iperf3 runs.
    let st = state.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let holder = topo.host.spawn(move || {
        let mut dp = KernelDataplane::load(&LoadOptions::default()).unwrap();
        match dp.apply(&compiler::compile(&st, &mut Ids::default())) {
            Ok(()) | Err(DataplaneError::Interface { .. }) => {}
            Err(e) => panic!("apply: {e}"),
        }
        ready_tx.send(()).unwrap();
        let _ = rx.recv();
    });
    ready_rx.recv().unwrap();
    let ours = measure(&topo);
    tx.send(()).unwrap();
    holder.join().unwrap();
    topo::load_nft(&topo, &nft::render(&state, Layout::Sets));
    let nft = measure(&topo);
    topo::flush_nft(&topo);

    report.row(
        "B3 throughput",
        format!("TCP 1 stream, {rules} rules"),
        "≥ 97 % of no filter, above nft",
        ours[0].0,
        "Gbit/s",
        Some(("no filter", none[0].0)),
    );
    report.row(
        "B3 throughput",
        format!("TCP 1 stream vs nft sets, {rules} rules"),
        "above nft",
        ours[0].0,
        "Gbit/s",
        Some(("nft sets", nft[0].0)),
    );
    report.row(
        "B3 throughput",
        format!("UDP 64 B, {rules} rules"),
        "≥ 95 % of no filter",
        ours[1].0,
        "pkt/s",
        Some(("no filter", none[1].0)),
    );
    report.row(
        "B3 throughput",
        format!("UDP 64 B vs nft sets, {rules} rules"),
        "above nft",
        ours[1].0,
        "pkt/s",
        Some(("nft sets", nft[1].0)),
    );
    report.row(
        "B3 throughput",
        "CPU per packet, UDP 64 B (whole machine)",
        "within +10 % of no filter",
        ours[1].2,
        "ns",
        Some(("no filter", none[1].2)),
    );
    report.row(
        "B3 throughput",
        "CPU per packet, UDP 64 B, vs nft sets",
        "–",
        ours[1].2,
        "ns",
        Some(("nft sets", nft[1].2)),
    );
    report.row(
        "B3 throughput",
        "CPU busy during TCP (both CPUs)",
        "within +10 % of no filter",
        ours[0].1 * 100.0,
        "%",
        Some(("no filter", none[0].1 * 100.0)),
    );
    for (name, r) in [("no filter", none), ("ours", ours), ("nft sets", nft)] {
        report.point(
            "iperf3 TCP single stream (Gbit/s)",
            name,
            1.0 + ["no filter", "ours", "nft sets"]
                .iter()
                .position(|n| *n == name)
                .unwrap() as f64,
            r[0].0,
        );
    }
}

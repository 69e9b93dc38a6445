//! `cargo xtask bench [--quick]`: the benchmark suite (methods and targets from
//! `performance.md`). Writes `target/bench/report.md`, `results.json` and PNG plots, and prints
//! the summary table. Needs root; never part of the test suite.

mod agent_memory;
mod api;
mod cni;
mod common;
mod e2e;
mod fleet;
mod flood;
mod flowlog;
mod hook;
mod iptables;
mod multihost;
mod program;
mod report;
mod throughput;
mod topo;
mod update;
mod xdp;

use std::path::PathBuf;

use firewall_testkit::netns::in_private_netns;

/// Counts live bytes for the agent-memory section (B8); the system allocator otherwise.
#[global_allocator]
static ALLOCATOR: agent_memory::Counting = agent_memory::Counting;

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    report::register_font()?;
    let mut report = report::Report::default();
    let started = std::time::Instant::now();
    if wanted("program") {
        eprintln!("bench: program cost and memory (B1, B6, B8)");
        report = in_private_netns(move || {
            program::run(&mut report, quick);
            report
        });
        eprintln!("bench: the XDP entry against the TC entry (B1)");
        report = in_private_netns(move || {
            xdp::run(&mut report, quick);
            report
        });
    }
    if wanted("flowlog") {
        eprintln!("bench: program cost with flow logs off and on (B1)");
        report = in_private_netns(move || {
            flowlog::run(&mut report, quick);
            report
        });
    }
    if wanted("memory") {
        eprintln!("bench: what the agent's structures keep per rule (B8)");
        agent_memory::run(&mut report);
    }
    if wanted("update") {
        eprintln!("bench: update latency (B7)");
        report = in_private_netns(move || {
            update::run(&mut report, quick);
            report
        });
    }
    if wanted("hook") {
        eprintln!("bench: per-hook cost against nftables (B2)");
        hook::run(&mut report, quick);
    }
    if wanted("api") {
        eprintln!("bench: latency through the EC2 API (B9)");
        api::run(&mut report, quick);
    }
    if wanted("e2e") {
        eprintln!("bench: change → enforced from a client through the socket (B11)");
        e2e::run(&mut report, quick);
    }
    if wanted("hosts") {
        eprintln!("bench: three hosts on etcd: change → enforced on the others (B12)");
        multihost::run(&mut report, quick);
        eprintln!("bench: a fleet on one etcd, measured by packets (B13)");
        fleet::run(&mut report, quick);
    }
    if wanted("cni") {
        eprintln!("bench: container start overhead of the CNI plugin (B10)");
        cni::run(&mut report, quick);
    }
    if wanted("throughput") {
        eprintln!("bench: throughput (B3)");
        throughput::run(&mut report, quick);
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let header = format!(
        "# Benchmark report\n\ncommit {commit}, kernel {}, {} CPUs ({model}), {} run, {:.0} s. Reproduce: `cargo xtask bench{}`.",
        kernel.trim(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        if quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        if quick { " --quick" } else { "" },
    );
    report.write(&out_dir, &header)?;
    println!("{}", report.table());
    println!("report: {}", out_dir.join("report.md").display());
    Ok(())
}

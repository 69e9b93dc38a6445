//! B10: the container start overhead of the `firewall-sg` CNI plugin: `podman run --rm` of a
//! trivial command on a bridge network with and without firewall-sg chained, interleaved in
//! the same run (same podman, same image, same agent), medians compared. Each start with the
//! plugin pays its ADD (describe + run-instances on the agent, attach) and, at `--rm`, its DEL.

use std::time::Instant;

use firewall_testkit::{agent::Agent, netns::Netns, podman::Podman};
use serde_json::json;

use crate::{common::percentile, report::Report};

pub fn run(report: &mut Report, quick: bool) {
    let host = Netns::new("fwbc");
    let agent = Agent::start(&host);
    let web = agent.create_group("web");
    let podman = Podman::new(&host);
    let plain = podman.network("172.31.220.0/24", None);
    let chained = podman.network(
        "172.31.221.0/24",
        Some(
            json!({"type": "firewall-sg", "securityGroupIds": [web], "agentSocket": agent.socket}),
        ),
    );
    let runs = if quick { 5 } else { 21 };
    let start = |network: &str| {
        let began = Instant::now();
        podman.run(&[
            "run",
            "--rm",
            "--network",
            network,
            firewall_testkit::podman::IMAGE,
            "true",
        ]);
        began.elapsed().as_secs_f64() * 1e3
    };
    // One of each first: podman's own first-run work is not counted.
    start(&plain);
    start(&chained);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        without.push(start(&plain));
        with.push(start(&chained));
    }
    let (base, ours) = (percentile(without, 50.0), percentile(with, 50.0));
    report.row(
        "B10 CNI",
        format!("podman run --rm with firewall-sg chained, p50 ({runs} runs)"),
        "–",
        ours,
        "ms",
        Some(("bridge alone", base)),
    );
    report.row(
        "B10 CNI",
        "container start overhead of firewall-sg (p50 difference)",
        "–",
        ours - base,
        "ms",
        None,
    );
}

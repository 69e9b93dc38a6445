//! B9: latency through the EC2 Query endpoint, from the client: boto3 calls, the AWS CLI run
//! in-process (its own parsing and printing, no interpreter start) and as a process per call,
//! for DescribeSecurityGroups and AuthorizeSecurityGroupIngress, against the release agent in a
//! namespace of its own (`api_latency.py`).

use std::path::PathBuf;

use firewall_testkit::{aws::start_agent_with, netns::Netns};
use serde_json::Value;

use crate::{common::percentile, report::Report};

pub fn run(report: &mut Report, quick: bool) {
    let ns = Netns::new("fwapi");
    let (agent, aws) = start_agent_with(&ns, &["--rules-per-group", "2000"]);
    let (calls, processes) = if quick { ("50", "5") } else { ("300", "30") };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/suite/api_latency.py");
    let out = aws.python(&script, &[calls, processes]);
    assert!(
        out.success(),
        "api_latency.py: {out}\nagent log:\n{}",
        agent.log()
    );
    let results: Value = serde_json::from_str(out.stdout.trim()).expect("latency JSON");
    for (name, samples) in results.as_object().expect("an object") {
        let samples: Vec<f64> = samples
            .as_array()
            .expect("samples")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
            report.row(
                "B9 API",
                format!("{name}, {label} ({} calls)", samples.len()),
                "–",
                percentile(samples.clone(), p),
                "ms",
                None,
            );
        }
    }
}

//! boto3 (from `target/venv`) against the agent's EC2 Query endpoint: `tests/boto3/scenario.py`
//! runs inside the agent's namespace and checks groups, rules, paginators, error codes, a second
//! region, our HostInterface member refused (an operator's act, socket only) and a local instance
//! launched through its whole life; it exits non-zero on the
//! first failed check, and its output is shown.

use firewall_testkit::{
    aws::{self, ACCOUNT_ID, start_agent},
    topology::Topology,
};

#[test]
fn boto3_scenario_passes_against_the_endpoint() {
    let topo = Topology::new(&["172.31.70.10"]);
    let w = &topo.workloads[0];
    let (agent, aws) = start_agent(&topo.host);
    let ip = w.ip.to_string();
    let out = aws.python(
        &aws::boto3_dir().join("scenario.py"),
        &[
            "--account",
            ACCOUNT_ID,
            "--host-interface",
            &w.host_if,
            "--private-ip",
            &ip,
        ],
    );
    println!("{out}");
    assert!(
        out.success() && out.stdout.contains("scenario passed"),
        "scenario.py failed: {out}\nagent log:\n{}",
        agent.log()
    );
}

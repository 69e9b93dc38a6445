//! `firewall-agent export --format nftables` enforces the same policy as the data plane: the
//! exported ruleset, loaded with `nft -f` in place of the eBPF programs, gives the same verdicts
//! on real traffic (which is what makes the nftables benchmarks a fair comparison).

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    shell::{ns_sh, unique},
    topology::Topology,
    traffic::{EchoServer, eventually, ping, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);
/// How long an allowed path may take to work the first time (neighbour resolution through the
/// host on a loaded machine); a refused one is judged in [`SHORT`].
const SETTLE: Duration = Duration::from_secs(5);

fn same_verdicts_under_nftables(linear: bool) {
    let topo = Topology::new(&["172.31.50.10", "172.31.51.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [ga, gb] = agent.create_groups(["a", "b"]);
    agent.authorize_ingress(&gb, "tcp", "8080", &a.cidr());
    // (The shorthand `--protocol icmp --port 8` would mean type 8 *code 8*, as in the AWS CLI.)
    let echo_from_a = format!(
        r#"[{{"IpProtocol":"icmp","FromPort":8,"ToPort":-1,"UserIdGroupPairs":[{{"GroupId":"{ga}"}}]}}]"#
    );
    agent.cli(&[
        "authorize-security-group-ingress",
        "--group-id",
        &gb,
        "--ip-permissions",
        &echo_from_a,
    ]);
    agent.authorize_ingress(&ga, "tcp", "7000-7100", &gb);
    agent.run_instance(a, &[&ga]);
    agent.run_instance(b, &[&gb]);
    let mut export = vec!["export", "--format", "nftables"];
    if linear {
        export.push("--linear");
    }
    let ruleset = agent.cli_raw(&export);
    drop(agent); // the eBPF programs go with it
    let file = std::env::temp_dir().join(unique("fw-nft-"));
    std::fs::write(&file, &ruleset).unwrap();
    ns_sh(&topo.host.name, &["nft", "-f", &file.display().to_string()]);
    let _ = std::fs::remove_file(&file);

    let _s = [
        EchoServer::tcp(&b.ns, b.ip, 8080),
        EchoServer::tcp(&b.ns, b.ip, 9090),
        EchoServer::tcp(&a.ns, a.ip, 7050),
    ];
    assert!(
        eventually(SETTLE, || tcp_round_trip(&a.ns, b.ip, 8080, SHORT)).is_some(),
        "A→B:8080\n{ruleset}"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 9090, SHORT),
        "A→B:9090\n{ruleset}"
    );
    assert!(
        eventually(SETTLE, || tcp_round_trip(&b.ns, a.ip, 7050, SHORT)).is_some(),
        "B→A:7050 via the group reference"
    );
    assert!(
        eventually(SETTLE, || ping(&a.ns, b.ip, SHORT)).is_some(),
        "icmp type 8, any code, from group a"
    );
    assert!(!ping(&b.ns, a.ip, SHORT), "A allows no ICMP");
}

#[test]
fn the_exported_set_ruleset_enforces_the_same_policy() {
    same_verdicts_under_nftables(false);
}

#[test]
fn the_exported_linear_ruleset_enforces_the_same_policy() {
    same_verdicts_under_nftables(true);
}

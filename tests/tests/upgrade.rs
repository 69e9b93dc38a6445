//! An agent of the previous map layout, enforcing running traffic, replaced by an agent of the
//! current one: the new agent migrates the pinned maps and swaps its programs into the old
//! pinned tcx links, so no packet of a continuous stream is lost, the tracked flows go on, denied
//! stays denied, nothing is attached twice, and the old layout's pins are gone.
//!
//! The previous layout's agent is this source built with `--features previous-layout`
//! (`cargo xtask test` builds it into `target/previous-layout/`).
//!
//! And the state of the release before subnets and network interfaces (the records it wrote,
//! `firewall-agent/tests/fixtures/records_before_interfaces.json`), in the state file an agent
//! of this release starts on: every instance enforced on a primary interface made from what
//! it held.

use std::{
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, TcAttachType};
use firewall_testkit::{
    agent::{Agent, previous_layout_binary},
    netns::Netns,
    shell::{sh, unique},
    topology::Topology,
    traffic::{EchoServer, echoes, tcp_connect, tcp_round_trip},
};
use serde_json::Value;

const SHORT: Duration = Duration::from_millis(700);
/// The ping stream: 100 echo requests a second for 7 s (or longer), the takeover in the middle.
const PINGS: u32 = 700;

#[test]
fn an_agent_of_the_next_layout_takes_over_running_traffic_without_losing_a_packet_or_a_flow() {
    let topo = Topology::new(&["172.31.40.10", "172.31.41.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let old = Agent::start_binary(&topo.host, previous_layout_binary());
    let [client, server, admin] = old.create_groups(["client", "server", "admin"]);
    // A has no inbound rule: what comes back to it passes only as part of a tracked flow.
    old.authorize_ingress(&server, "tcp", "443", &a.cidr());
    // B has two groups: the new layout composes their chains where the old had one of both.
    old.authorize_ingress(&admin, "tcp", "445", &a.cidr());
    let echo_requests = format!(
        r#"[{{"IpProtocol":"icmp","FromPort":8,"ToPort":-1,"IpRanges":[{{"CidrIp":"{}"}}]}}]"#,
        a.cidr()
    );
    old.cli(&[
        "authorize-security-group-ingress",
        "--group-id",
        &server,
        "--ip-permissions",
        &echo_requests,
    ]);
    old.run_instance(a, &[&client]);
    old.run_instance(b, &[&server, &admin]);
    let _https = EchoServer::tcp(&b.ns, b.ip, 443);
    let _admin = EchoServer::tcp(&b.ns, b.ip, 445);
    let _denied_on_b = EchoServer::tcp(&b.ns, b.ip, 444);
    let _denied_on_a = EchoServer::tcp(&a.ns, a.ip, 7000);
    let established = tcp_connect(&a.ns, b.ip, 443, SHORT).expect("A→B:443");
    let old_pins = old.bpffs().join("firewall-agent/v4");
    let new_pins = old.bpffs().join("firewall-agent/v5");
    assert!(old_pins.join("maps/CONNTRACK").exists(), "{}", old.log());
    let hooks_before = [&a.host_if, &b.host_if].map(|i| hooks(&topo.host, i, &old_pins));
    for hook in hooks_before.iter().flatten() {
        assert_eq!(
            hook.programs.len(),
            1,
            "one program per hook: {hooks_before:?}"
        );
    }

    let echo_loop = EchoLoop::start(established);
    let mut ping = Command::new("ip")
        .args([
            "netns", "exec", &a.ns.name, "ping", "-n", "-q", "-i", "0.01",
        ])
        .args(["-W", "1", "-c", &PINGS.to_string(), &b.ip.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(2));
    let drops_before = total(&old.cli(&["get-dataplane-statistics"])["Drops"]);
    let tracked_before = old.cli(&["get-dataplane-statistics"])["TrackedFlows"]
        .as_u64()
        .expect("TrackedFlows");

    let takeover = Instant::now();
    let dir = old.stop();
    let new = Agent::start_in(&topo.host, dir);
    let took = takeover.elapsed();
    assert!(
        ping.try_wait().expect("ping").is_none(),
        "the takeover ({took:?}) happened inside the ping stream"
    );
    let log = new.log();
    assert!(
        log.contains("migrated the pinned maps and links of the previous layout"),
        "{log}"
    );

    let ping = ping.wait_with_output().expect("ping ends");
    let ping_summary = String::from_utf8_lossy(&ping.stdout).into_owned();
    let (echoes_ok, echoes_failed, echo_loop) = echo_loop.stop();
    let stats = new.cli(&["get-dataplane-statistics"]);
    let dropped = total(&stats["Drops"]) - drops_before;
    let received = received(&ping_summary);
    println!(
        "upgrade v4 → v5: takeover (stop + start + migration) {took:?}; ping stream \
         {received}/{PINGS} answered; TCP echoes over the established flow {echoes_ok} ok, \
         {echoes_failed} failed; packets the data plane dropped meanwhile: {dropped}"
    );
    assert_eq!(
        received, PINGS,
        "no echo request or reply lost: {ping_summary}"
    );
    assert_eq!(echoes_failed, 0, "the established flow never stalled");
    assert!(echoes_ok > 0);
    assert_eq!(dropped, 0, "the data plane dropped nothing: {stats}");
    assert!(
        stats["TrackedFlows"].as_u64().unwrap() >= tracked_before,
        "the tracked flows were carried over: {stats}"
    );

    let mut established = echo_loop;
    assert!(
        echoes(&mut established, "after the upgrade\n"),
        "the established flow continues"
    );
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 444, SHORT),
        "denied stays denied"
    );
    assert!(
        tcp_round_trip(&a.ns, b.ip, 445, SHORT),
        "the rule of B's second group applies through its own chain"
    );
    let verified = new.cli(&["verify-dataplane"]);
    assert_eq!(verified["InSync"], true, "{verified}");
    assert!(
        !tcp_round_trip(&b.ns, a.ip, 7000, SHORT),
        "A still admits only its own flows' replies"
    );
    for (interface, before) in [&a.host_if, &b.host_if].into_iter().zip(&hooks_before) {
        let after = hooks(&topo.host, interface, &new_pins);
        for (hook, old_hook) in after.iter().zip(before) {
            assert_eq!(hook.programs.len(), 1, "nothing attached twice: {after:?}");
            assert_eq!(hook.link_id, old_hook.link_id, "the same link: {after:?}");
            assert_ne!(
                hook.programs, old_hook.programs,
                "the new program: {after:?}"
            );
        }
    }
    assert!(!old_pins.exists(), "the previous layout's pins are gone");
    for pin in ["maps/CONNTRACK", "maps/PEERS", "maps/POLICIES", "links"] {
        assert!(new_pins.join(pin).exists(), "{pin} pinned in v5");
    }
    let link_pins = std::fs::read_dir(new_pins.join("links")).unwrap().count();
    assert_eq!(link_pins, 4, "both hooks of both workloads moved to v5");
}

/// The records the release before network interfaces wrote: a default VPC and one of its own,
/// lb (tcp/80 of web admits it), web, app (in the other VPC) and a terminated instance.
const OLD_RECORDS: &str =
    include_str!("../../firewall-agent/tests/fixtures/records_before_interfaces.json");
const OLD_LB: (&str, &str) = ("i-00000000000000016", "eni-00000000000000018");
const OLD_WEB_ENI: &str = "eni-0000000000000001b";
const OLD_LB_GROUP: &str = "sg-0000000000000000e";
const OLD_WEB_GROUP: &str = "sg-0000000000000000b";

/// The old records, with the veth names they held replaced by `veths`, written to the state
/// file of an agent directory.
fn old_state_dir(veths: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("fw-agent-"));
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    let mut text = OLD_RECORDS.to_string();
    for (old, new) in veths {
        text = text.replace(&format!("\"{old}\""), &format!("\"{new}\""));
    }
    let records: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("fixture");
    let db = redb::Database::create(dir.join("state/state.redb")).expect("redb file");
    let table = redb::TableDefinition::<&str, &str>::new("records");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(table).expect("records table");
        for (key, value) in &records {
            table
                .insert(key.as_str(), value.to_string().as_str())
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    dir
}

#[test]
fn the_state_of_the_release_before_network_interfaces_is_enforced_on_a_primary_interface_each() {
    let topo = Topology::new(&["172.31.40.10", "172.31.41.10", "10.40.0.10"]);
    let (lb, web, app) = (&topo.workloads[0], &topo.workloads[1], &topo.workloads[2]);
    let dir = old_state_dir(&[
        ("fwold-lb", &lb.host_if),
        ("fwold-web", &web.host_if),
        ("fwold-app", &app.host_if),
    ]);
    let agent = Agent::start_in(&topo.host, dir);

    let described = agent.cli(&["describe-instances", "--instance-ids", OLD_LB.0]);
    let instance = &described["Reservations"][0]["Instances"][0];
    let default_subnet = agent.cli(&[
        "describe-subnets",
        "--filters",
        "Name=default-for-az,Values=true",
        "Name=vpc-id,Values=vpc-00000000000000001",
    ])["Subnets"][0]["SubnetId"]
        .clone();
    assert_eq!(instance["SubnetId"], default_subnet, "{described}");
    let eni = &instance["NetworkInterfaces"][0];
    assert_eq!(eni["NetworkInterfaceId"], OLD_LB.1, "{described}");
    assert_eq!(eni["Attachment"]["DeviceIndex"], 0);
    assert_eq!(eni["PrivateIpAddress"], "172.31.40.10");
    assert_eq!(eni["Groups"][0]["GroupId"], OLD_LB_GROUP);
    let members = agent.cli(&[
        "describe-network-interfaces",
        "--filters",
        &format!("Name=group-id,Values={OLD_WEB_GROUP}"),
    ]);
    let ids: Vec<&str> = members["NetworkInterfaces"]
        .as_array()
        .expect("NetworkInterfaces")
        .iter()
        .map(|e| e["NetworkInterfaceId"].as_str().expect("ID"))
        .collect();
    assert_eq!(ids, [OLD_WEB_ENI], "the terminated instance's is gone");

    let _web80 = EchoServer::tcp(&web.ns, web.ip, 80);
    let _web81 = EchoServer::tcp(&web.ns, web.ip, 81);
    let _lb80 = EchoServer::tcp(&lb.ns, lb.ip, 80);
    assert!(
        tcp_round_trip(&lb.ns, web.ip, 80, SHORT),
        "web admits tcp/80 from the lb group"
    );
    assert!(
        !tcp_round_trip(&lb.ns, web.ip, 81, SHORT),
        "and no other port"
    );
    assert!(
        !tcp_round_trip(&web.ns, lb.ip, 80, SHORT),
        "lb admits nothing"
    );

    let mut held = tcp_connect(&lb.ns, web.ip, 80, SHORT).expect("lb→web:80");
    assert!(echoes(&mut held, "before the restart\n"));
    let dir = agent.stop();
    let agent = Agent::start_in(&topo.host, dir);
    assert!(
        echoes(&mut held, "after the restart\n"),
        "the flow lives on across a restart on the upgraded state"
    );
    let verified = agent.cli(&["verify-dataplane"]);
    assert_eq!(verified["InSync"], true, "{verified}");
    assert_eq!(verified["Interfaces"], 3, "{verified}");

    agent.cli(&[
        "modify-network-interface-attribute",
        "--network-interface-id",
        OLD_WEB_ENI,
        "--groups",
        OLD_LB_GROUP,
    ]);
    assert!(
        !tcp_round_trip(&lb.ns, web.ip, 80, SHORT),
        "the upgraded interface's groups change like any other's"
    );
}

/// Echoes a line over an established connection every 10 ms until stopped (at most 2000 times).
struct EchoLoop {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u32, u32, TcpStream)>,
}

impl EchoLoop {
    fn start(mut stream: TcpStream) -> EchoLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            for i in 0..2000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if echoes(&mut stream, &format!("echo {i}\n")) {
                    ok += 1;
                } else {
                    failed += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (ok, failed, stream)
        });
        EchoLoop { stop, thread }
    }

    /// Successful and failed echoes, and the connection.
    fn stop(self) -> (u32, u32, TcpStream) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("echo loop")
    }
}

/// One hook's tcx chain on an interface: the programs on it, and the link pinned for it.
#[derive(Debug, PartialEq)]
struct Hook {
    programs: Vec<u32>,
    /// `bpftool link show pinned` of the pin: the link's ID.
    link_id: u32,
}

/// Both hooks (egress, ingress) of `interface` in namespace `ns`, with their link pins in `pins`.
fn hooks(ns: &Netns, interface: &str, pins: &Path) -> [Hook; 2] {
    [
        (TcAttachType::Egress, "egress"),
        (TcAttachType::Ingress, "ingress"),
    ]
    .map(|(hook, name)| {
        let owned = interface.to_string();
        let programs = ns.run(move || {
            let (_, programs) = SchedClassifier::query_tcx(&owned, hook).expect("query tcx");
            programs.iter().map(|p| p.id()).collect()
        });
        let pin = pins.join(format!("links/{interface}@{name}"));
        let shown = sh(&[
            "bpftool",
            "link",
            "show",
            "pinned",
            &pin.display().to_string(),
        ]);
        let link_id = shown
            .split(':')
            .next()
            .and_then(|id| id.trim().parse().ok())
            .unwrap_or_else(|| panic!("no link ID in {shown:?}"));
        Hook { programs, link_id }
    })
}

/// The sum of a statistics object's counters.
fn total(counters: &Value) -> u64 {
    counters
        .as_object()
        .expect("counters")
        .values()
        .map(|v| v.as_u64().expect("a count"))
        .sum()
}

/// The replies counted in ping's summary (`N packets transmitted, M received, …`).
fn received(summary: &str) -> u32 {
    summary
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary in {summary:?}"))
}

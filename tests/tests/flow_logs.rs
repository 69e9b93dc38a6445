//! Flow logs on real traffic: accepted and rejected packets between two workloads come out as
//! records with the right fields, in AWS's default v2 format and in a custom format with the
//! later fields and ours; under a flood of rejected packets every packet the kernel dropped is
//! either in a record or counted as lost, never silently missing.

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    time::Duration,
};

use firewall_testkit::{
    agent::Agent,
    metrics::{self, DEFAULT_ADDRESS},
    shell::unique,
    topology::Topology,
    traffic::{EchoServer, eventually, tcp_round_trip},
};
use serde_json::Value;

const SHORT: Duration = Duration::from_millis(700);
/// Records are written every second in these tests (`--flow-log-flush-interval 1`).
const WRITTEN_WITHIN: Duration = Duration::from_secs(15);

/// A log file of the test's own: a name in the default account's directory of the agent's
/// flow-log directory (the default `--flow-log-dir`, `flow-logs` in its state directory, which
/// goes with the agent).
struct LogFile {
    name: String,
    path: PathBuf,
}

impl LogFile {
    fn new(agent: &Agent) -> LogFile {
        let name = unique("fw-flowlog-") + ".log";
        let path = agent.dir.join("state/flow-logs/000000000000").join(&name);
        LogFile { name, path }
    }
    /// The `--log-destination`.
    fn name(&self) -> &str {
        &self.name
    }
    /// The records written so far, each split into its fields.
    fn records(&self) -> Vec<Vec<String>> {
        read_records(&self.path)
    }
}

fn read_records(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

fn eni_of(agent: &Agent, instance: &str) -> String {
    let out = agent.cli(&["describe-instances", "--instance-ids", instance]);
    out["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
        .as_str()
        .expect("an eni- ID")
        .to_string()
}

fn rule_id(authorized: &Value) -> String {
    authorized["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .expect("a rule ID")
        .to_string()
}

fn create_flow_log(agent: &Agent, args: &[&str]) -> String {
    let mut all = vec!["create-flow-logs"];
    all.extend_from_slice(args);
    let out = agent.cli(&all);
    assert_eq!(out["Unsuccessful"], serde_json::json!([]), "{out}");
    out["FlowLogIds"][0].as_str().expect("a fl- ID").to_string()
}

#[test]
fn accepted_and_rejected_traffic_is_logged_in_the_default_v2_format() {
    let topo = Topology::new(&["172.31.50.10", "172.31.51.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_with(&topo.host, &["--flow-log-flush-interval", "1"]);
    let [client, server] = agent.create_groups(["client", "server"]);
    agent.authorize_ingress(&server, "tcp", "8080", &a.cidr());
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let eni = eni_of(&agent, &b_id);
    let log = LogFile::new(&agent);
    let id = create_flow_log(
        &agent,
        &[
            "--resource-type",
            "NetworkInterface",
            "--resource-ids",
            &eni,
            "--traffic-type",
            "ALL",
            "--log-destination-type",
            "file",
            "--log-destination",
            log.name(),
            "--max-aggregation-interval",
            "60",
        ],
    );
    assert!(id.starts_with("fl-"));
    let described = agent.cli(&["describe-flow-logs", "--flow-log-ids", &id]);
    let flow_log = &described["FlowLogs"][0];
    assert_eq!(flow_log["ResourceId"], eni.as_str());
    assert_eq!(flow_log["TrafficType"], "ALL");
    assert_eq!(flow_log["LogDestinationType"], "file");
    assert_eq!(flow_log["MaxAggregationInterval"], 60);
    assert!(
        flow_log["LogFormat"]
            .as_str()
            .unwrap()
            .starts_with("${version} ${account-id}")
    );
    let _allowed = EchoServer::tcp(&b.ns, b.ip, 8080);
    let _denied = EchoServer::tcp(&b.ns, b.ip, 8081);

    assert!(tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "8080 is allowed");
    assert!(!tcp_round_trip(&a.ns, b.ip, 8081, SHORT), "8081 is not");

    let (a_ip, b_ip) = (a.ip.to_string(), b.ip.to_string());
    let find = |src: &str, dst: &str, port_field: usize, port: &str, action: &str| {
        log.records().into_iter().find(|r| {
            r.len() == 14 && r[3] == src && r[4] == dst && r[port_field] == port && r[12] == action
        })
    };
    let written = eventually(WRITTEN_WITHIN, || {
        find(&a_ip, &b_ip, 6, "8080", "ACCEPT").is_some()
            && find(&b_ip, &a_ip, 5, "8080", "ACCEPT").is_some()
            && find(&a_ip, &b_ip, 6, "8081", "REJECT").is_some()
    });
    assert!(
        written.is_some(),
        "records: {:?}\nagent log:\n{}",
        log.records(),
        agent.log()
    );

    let request = find(&a_ip, &b_ip, 6, "8080", "ACCEPT").unwrap();
    let reply = find(&b_ip, &a_ip, 5, "8080", "ACCEPT").unwrap();
    let rejected = find(&a_ip, &b_ip, 6, "8081", "REJECT").unwrap();
    for record in [&request, &reply, &rejected] {
        assert_eq!(record[0], "2", "version: {record:?}");
        assert_eq!(record[1], "000000000000", "account-id: {record:?}");
        assert_eq!(record[2], eni, "interface-id: {record:?}");
        assert_eq!(record[7], "6", "protocol: {record:?}");
        let packets: u64 = record[8].parse().unwrap();
        let bytes: u64 = record[9].parse().unwrap();
        assert!(
            packets >= 1 && bytes >= packets * 54,
            "packets/bytes: {record:?}"
        );
        let (start, end): (u64, u64) = (record[10].parse().unwrap(), record[11].parse().unwrap());
        assert!(
            start <= end && start > 1_700_000_000,
            "start/end: {record:?}"
        );
        assert_eq!(record[13], "OK", "log-status: {record:?}");
    }
    // The handshake, the echo and the close: several packets each way.
    assert!(request[8].parse::<u64>().unwrap() >= 3, "{request:?}");
    assert!(reply[8].parse::<u64>().unwrap() >= 2, "{reply:?}");

    let deleted = agent.cli(&[
        "delete-flow-logs",
        "--flow-log-ids",
        &id,
        "fl-00000000000000000",
    ]);
    assert_eq!(
        deleted["Unsuccessful"][0]["Error"]["Code"], "InvalidFlowLogId.NotFound",
        "{deleted}"
    );
    assert_eq!(deleted["Unsuccessful"].as_array().unwrap().len(), 1);
    let left = agent.cli(&["describe-flow-logs"]);
    assert_eq!(left["FlowLogs"], serde_json::json!([]));
}

#[test]
fn a_custom_format_gives_direction_flags_instance_vpc_the_admitting_rule_and_the_drop_reason() {
    let topo = Topology::new(&["172.31.52.10", "172.31.53.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_with(&topo.host, &["--flow-log-flush-interval", "1"]);
    let [client, server] = agent.create_groups(["client", "server"]);
    let rule = rule_id(&agent.authorize_ingress(&server, "tcp", "8080", &a.cidr()));
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let eni = eni_of(&agent, &b_id);
    let vpc = agent.cli(&["describe-vpcs"])["Vpcs"][0]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let log = LogFile::new(&agent);
    let format = "${version} ${interface-id} ${instance-id} ${vpc-id} ${flow-direction} \
                  ${pkt-srcaddr} ${pkt-dstaddr} ${dstport} ${tcp-flags} ${action} \
                  ${security-group-rule-id} ${reject-reason} ${type}";
    create_flow_log(
        &agent,
        &[
            "--resource-type",
            "VPC",
            "--resource-ids",
            &vpc,
            "--traffic-type",
            "ALL",
            "--log-destination-type",
            "file",
            "--log-destination",
            log.name(),
            "--log-format",
            format,
        ],
    );
    let _allowed = EchoServer::tcp(&b.ns, b.ip, 8080);
    assert!(tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "8080 is allowed");
    assert!(!tcp_round_trip(&a.ns, b.ip, 8081, SHORT), "8081 is not");

    let (a_ip, b_ip) = (a.ip.to_string(), b.ip.to_string());
    let on_b = |direction: &str, dport: &str, action: &str| {
        log.records().into_iter().find(|r| {
            r.len() == 13 && r[1] == eni && r[4] == direction && r[7] == dport && r[9] == action
        })
    };
    let written = eventually(WRITTEN_WITHIN, || {
        on_b("ingress", "8080", "ACCEPT").is_some() && on_b("ingress", "8081", "REJECT").is_some()
    });
    assert!(
        written.is_some(),
        "records: {:?}\nagent log:\n{}",
        log.records(),
        agent.log()
    );
    let accepted = on_b("ingress", "8080", "ACCEPT").unwrap();
    assert_eq!(
        accepted[0], "8",
        "the highest field version (reject-reason): {accepted:?}"
    );
    assert_eq!(accepted[2], b_id);
    assert_eq!(accepted[3], vpc);
    assert_eq!(
        (accepted[5].as_str(), accepted[6].as_str()),
        (a_ip.as_str(), b_ip.as_str())
    );
    // The OR of the flags of the client's packets: its SYN, then ACKs (AWS's `tcp-flags`).
    let flags: u8 = accepted[8].parse().unwrap();
    assert_eq!(flags & 0x12, 0x12, "SYN and ACK: {accepted:?}");
    assert_eq!(accepted[10], rule, "the admitting rule: {accepted:?}");
    assert_eq!(accepted[11], "-");
    assert_eq!(accepted[12], "IPv4");
    let rejected = on_b("ingress", "8081", "REJECT").unwrap();
    assert_eq!(rejected[10], "-");
    assert_eq!(rejected[11], "no-rule", "{rejected:?}");
    // The VPC's flow log covers the client's interface too: its request leaves it (egress).
    let records = log.records();
    assert!(
        records.iter().any(|r| r[4] == "egress"
            && r[5] == a_ip
            && r[7] == "8080"
            && r[9] == "ACCEPT"
            && r[1] != eni),
        "{records:?}"
    );
}

#[test]
fn a_flood_of_rejected_packets_is_recorded_or_counted_as_lost() {
    let topo = Topology::new(&["172.31.54.10", "172.31.55.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start_with(&topo.host, &["--flow-log-flush-interval", "1"]);
    let [client, server] = agent.create_groups(["client", "server"]);
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let eni = eni_of(&agent, &b_id);
    let log = LogFile::new(&agent);
    create_flow_log(
        &agent,
        &[
            "--resource-type",
            "NetworkInterface",
            "--resource-ids",
            &eni,
            "--traffic-type",
            "REJECT",
            "--log-destination-type",
            "file",
            "--log-destination",
            log.name(),
            "--log-format",
            "${srcport} ${packets} ${action} ${reject-reason}",
        ],
    );
    let (a_ip, b_ip) = (a.ip, b.ip);
    let socket = a.ns.run(move || UdpSocket::bind((a_ip, 0)).expect("bind"));
    let flood = |packets: u64| {
        for i in 0..packets {
            // A denied port. A full socket buffer drops before tc: those are not counted.
            let _ = socket.send_to(&i.to_le_bytes(), (b_ip, 9999));
        }
    };
    let drops = |samples: &metrics::Samples| {
        samples.sum(
            "firewall_interface_drops_total",
            &[("interface", b.host_if.as_str()), ("reason", "no-rule")],
        )
    };
    let lost = |samples: &metrics::Samples| samples.sum("firewall_flow_log_lost_events_total", &[]);
    let logged = || -> u64 {
        log.records()
            .iter()
            .filter(|r| r.len() == 4 && r[2] == "REJECT" && r[3] == "no-rule")
            .map(|r| r[1].parse::<u64>().unwrap())
            .sum()
    };
    // Every packet the kernel dropped is in a record or counted as lost, once written.
    let balance = |what: &str| -> (f64, f64) {
        let mut last = (0.0, 0.0, 0);
        let balanced = eventually(WRITTEN_WITHIN, || {
            let now = metrics::scrape(&topo.host, DEFAULT_ADDRESS);
            last = (drops(&now), lost(&now), logged());
            last.0 > 0.0 && last.2 as f64 + last.1 == last.0
        });
        let (dropped, lost, recorded) = last;
        println!(
            "flood ({what}): {dropped} dropped by the kernel, {recorded} in records, {lost} lost"
        );
        assert!(
            balanced.is_some(),
            "{what}: dropped {dropped} = recorded {recorded} + lost {lost}?\nagent log:\n{}",
            agent.log()
        );
        (dropped, lost)
    };
    const FLOOD: u64 = 200_000;
    flood(FLOOD);
    let (_, lost_live) = balance("agent reading");

    // With the agent suspended, the ring buffer (16384 events) fills: the rest is lost, counted.
    {
        let _paused = agent.pause();
        flood(FLOOD);
    }
    let (dropped, lost_total) = balance("agent suspended");
    assert!(
        dropped >= 2.0 * FLOOD as f64 * 0.9,
        "most of the flood reached tc"
    );
    assert!(
        lost_total - lost_live >= FLOOD as f64 / 2.0,
        "the ring buffer could not hold a suspended agent's flood: {lost_total} lost"
    );
    let statistics = agent.cli(&["get-dataplane-statistics"]);
    assert_eq!(
        statistics["FlowLogLostRecords"].as_f64().unwrap(),
        lost_total
    );
}

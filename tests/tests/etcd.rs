//! Several hosts, one set of security groups: each host a network namespace with its own agent
//! (`serve --etcd-endpoints`), joined by a bridge, sharing a real etcd started on that bridge
//! inside the test's fabric namespace. Changes made through one agent reach the others' traffic;
//! a referenced group admits its members wherever they run; concurrent writers lose nothing;
//! an etcd outage keeps enforcement (and tracked flows) and refuses writes.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    hosts::{ETCD_IP, Etcd, Hosts},
    topology::Workload,
    traffic::{EchoServer, eventually, tcp_connect, tcp_round_trip},
};

const PROPAGATION: Duration = Duration::from_secs(10);
const PROBE: Duration = Duration::from_millis(300);

/// An agent on host `index` of `hosts`, sharing `etcd`.
fn agent_on(hosts: &Hosts, index: usize, etcd: &Etcd) -> Agent {
    let url = etcd.url();
    let host_id = format!("host-{index}");
    Agent::start_with(
        &hosts.hosts[index].host,
        &[
            "--etcd-endpoints",
            &url,
            "--host-id",
            &host_id,
            "--host-lease-ttl",
            "2",
        ],
    )
}

/// Waits until `agent` knows the group `group` (created through another agent).
fn sees_group(agent: &Agent, group: &str) {
    let seen = eventually(PROPAGATION, || {
        agent
            .try_cli(&["describe-security-groups", "--group-ids", group])
            .is_ok()
    });
    assert!(seen.is_some(), "{group} never reached the agent");
}

fn reachable(from: &Workload, to: &Workload) -> bool {
    tcp_round_trip(&from.ns, to.ip, 80, PROBE)
}

#[test]
fn a_change_on_one_host_reaches_traffic_on_the_others_and_admits_members_of_every_host() {
    let hosts = Hosts::new(&[
        &["172.31.1.10", "172.31.1.11"],
        &["172.31.2.10"],
        &["172.31.3.10"],
    ]);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let a = agent_on(&hosts, 0, &etcd);
    let b = agent_on(&hosts, 1, &etcd);
    let c = agent_on(&hosts, 2, &etcd);
    let [web, client, other] = a.create_groups(["web", "client", "other"]);
    for agent in [&b, &c] {
        sees_group(agent, &other);
    }
    let (a1, stranger) = (&hosts.hosts[0].workloads[0], &hosts.hosts[0].workloads[1]);
    let (b1, c1) = (&hosts.hosts[1].workloads[0], &hosts.hosts[2].workloads[0]);
    a.run_instance(a1, &[&client]);
    a.run_instance(stranger, &[&other]);
    b.run_instance(b1, &[&web]);
    c.run_instance(c1, &[&web]);
    let _servers = [b1, c1].map(|w| EchoServer::tcp(&w.ns, w.ip, 80));
    assert!(!reachable(a1, b1), "web admits nobody yet");
    assert!(!reachable(a1, c1));

    // A rule referencing the client group, made on host A: its member on host A is admitted
    // on hosts B and C, whose agents enforce their own instances.
    a.authorize_ingress(&web, "tcp", "80", &client);
    let on_b = eventually(PROPAGATION, || reachable(a1, b1));
    let on_c = eventually(PROPAGATION, || reachable(a1, c1));
    eprintln!("change on A → admitted on B after {on_b:?}, on C after {on_c:?}");
    assert!(
        on_b.is_some() && on_c.is_some(),
        "the rule never reached B and C"
    );
    assert!(
        !reachable(stranger, b1),
        "only members of the referenced group are admitted"
    );

    // The stranger joins the client group through host B's agent: host A enforces its new
    // groups, hosts B and C admit it.
    let stranger_id = a.cli(&["describe-instances"])["Reservations"]
        .as_array()
        .expect("reservations")
        .iter()
        .flat_map(|r| r["Instances"].as_array().expect("instances").clone())
        .find(|i| i["PrivateIpAddress"] == stranger.ip.to_string())
        .expect("the stranger")["InstanceId"]
        .as_str()
        .expect("id")
        .to_string();
    b.modify_instance_groups(&stranger_id, &[&client]);
    assert!(
        eventually(PROPAGATION, || reachable(stranger, c1)).is_some(),
        "a membership change made on B never reached A's and C's enforcement"
    );

    // Host C disappears: after its lease, its instance is marked, not dropped.
    drop(c);
    let marked = eventually(PROPAGATION, || {
        let described = a.cli(&["describe-instances"]).to_string();
        described.contains("Server.HostLost")
    });
    assert!(marked.is_some(), "host C's instance was never marked");
    assert!(reachable(a1, b1), "host B still admits the client");
}

#[test]
fn two_agents_writing_concurrently_lose_nothing() {
    let hosts = Hosts::new(&[&[], &[]]);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let a = agent_on(&hosts, 0, &etcd);
    let b = agent_on(&hosts, 1, &etcd);
    let group = a.create_group("shared");
    sees_group(&b, &group);
    const EACH: u16 = 15;
    std::thread::scope(|scope| {
        for (agent, base) in [(&a, 1000u16), (&b, 2000u16)] {
            let group = &group;
            scope.spawn(move || {
                for port in base..base + EACH {
                    agent.authorize_ingress(group, "tcp", &port.to_string(), "10.0.0.0/8");
                }
            });
        }
    });
    let ports = |agent: &Agent| {
        let answer = agent.cli(&["describe-security-groups", "--group-ids", &group]);
        answer["SecurityGroups"][0]["IpPermissions"]
            .as_array()
            .map_or(0, Vec::len)
    };
    for agent in [&a, &b] {
        let all = eventually(PROPAGATION, || ports(agent) == 2 * EACH as usize);
        assert!(
            all.is_some(),
            "an agent sees {} of {} rules",
            ports(agent),
            2 * EACH
        );
    }
}

#[test]
fn an_etcd_outage_keeps_enforcement_and_flows_refuses_writes_and_catches_up() {
    let hosts = Hosts::new(&[&["172.31.1.10"], &["172.31.2.10"]]);
    let mut etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let a = agent_on(&hosts, 0, &etcd);
    let b = agent_on(&hosts, 1, &etcd);
    let [web, client] = a.create_groups(["web", "client"]);
    sees_group(&b, &client);
    let (a1, b1) = (&hosts.hosts[0].workloads[0], &hosts.hosts[1].workloads[0]);
    a.run_instance(a1, &[&client]);
    b.run_instance(b1, &[&web]);
    let _servers = [80, 81].map(|port| EchoServer::tcp(&b1.ns, b1.ip, port));
    a.authorize_ingress(&web, "tcp", "80", &client);
    assert!(eventually(PROPAGATION, || reachable(a1, b1)).is_some());
    let mut flow = tcp_connect(&a1.ns, b1.ip, 80, PROBE).expect("a tracked flow");

    etcd.kill();
    let refused = a
        .try_authorize_ingress(&web, "tcp", "81", &client)
        .expect_err("a write while etcd is down");
    assert_eq!(refused.code(), "Unavailable", "{}", refused.stderr);
    assert!(
        firewall_testkit::traffic::echoes(&mut flow, "still"),
        "the tracked flow survives the outage"
    );
    assert!(
        reachable(a1, b1),
        "new flows are still judged by the last state"
    );
    // B restarted during the outage enforces its last known state.
    let dir = b.stop();
    let _b = Agent::start_in_with(
        &hosts.hosts[1].host,
        dir,
        &["--etcd-endpoints", &etcd.url(), "--host-id", "host-1"],
    );
    assert!(
        reachable(a1, b1),
        "B enforces its cached state after a restart"
    );
    assert!(!tcp_round_trip(&a1.ns, b1.ip, 81, PROBE));

    etcd.restart();
    let written = eventually(PROPAGATION, || {
        a.try_authorize_ingress(&web, "tcp", "81", &client).is_ok()
    });
    assert!(written.is_some(), "writes work again once etcd is back");
    assert!(
        eventually(PROPAGATION, || tcp_round_trip(&a1.ns, b1.ip, 81, PROBE)).is_some(),
        "B caught up with the change made after the outage"
    );
    assert!(
        firewall_testkit::traffic::echoes(&mut flow, "after"),
        "the tracked flow outlived the outage"
    );
}

/// etcd here refuses clients without a certificate of its CA (`--client-cert-auth`).
#[test]
fn agents_reach_an_etcd_that_requires_tls_client_certificates() {
    let hosts = Hosts::new(&[&[], &[]]);
    let etcd = Etcd::start_tls(&hosts.fabric, ETCD_IP);
    let tls = etcd.client_tls();
    let (ca, cert, key) = (
        tls.ca.display().to_string(),
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    let url = etcd.url();
    let start = |index: usize| {
        let host_id = format!("host-{index}");
        Agent::start_with(
            &hosts.hosts[index].host,
            &[
                "--etcd-endpoints",
                &url,
                "--etcd-cacert",
                &ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
                "--host-id",
                &host_id,
            ],
        )
    };
    let a = start(0);
    let b = start(1);
    let group = a.create_group("over-tls");
    sees_group(&b, &group);
}

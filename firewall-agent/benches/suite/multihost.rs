//! B12: several hosts sharing one etcd. Three agents (each in a host namespace of
//! `firewall_testkit::hosts`, etcd on their bridge): a rule added through host A's socket, then
//! the time until hosts B and C enforce it. An agent answers a read only after it has applied
//! every change it took from the watch (one lock: the watch's apply compiles and writes the
//! maps before releasing it), so the first read of B (and C) that lists the rule marks its
//! enforcement. Also the write path's cost: the same change answered by an agent on etcd and
//! by one on the embedded redb.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use firewall_agent::{
    api::{Call, Scope},
    client,
};
use firewall_testkit::{
    agent::Agent,
    hosts::{ETCD_IP, Etcd, Hosts},
    netns::Netns,
};
use serde_json::{Value, json};

use crate::{common::percentile, report::Report};

fn call(rt: &tokio::runtime::Runtime, socket: &Path, action: &str, members: Value) -> Value {
    crate::fleet::call_at(rt, socket, action, members).unwrap_or_else(|e| panic!("{action}: {e}"))
}

fn rule(group: &str, port: u16) -> Value {
    json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.77.0.1/32"}]}]})
}

/// Whether the agent at `socket` lists a rule for `port` in `group`.
fn lists(rt: &tokio::runtime::Runtime, socket: &Path, group: &str, port: u16) -> bool {
    let answer = call(
        rt,
        socket,
        "DescribeSecurityGroups",
        json!({"GroupIds": [group]}),
    );
    answer["SecurityGroups"][0]["IpPermissions"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["FromPort"] == port))
}

/// Milliseconds until every socket lists the rule (at most 5 s each).
fn until_listed(rt: &tokio::runtime::Runtime, sockets: &[&Path], group: &str, port: u16) -> f64 {
    let t0 = Instant::now();
    for socket in sockets {
        while !lists(rt, socket, group, port) {
            assert!(t0.elapsed() < Duration::from_secs(5), "never propagated");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    t0.elapsed().as_secs_f64() * 1e3
}

fn create_group(rt: &tokio::runtime::Runtime, socket: &Path) -> String {
    let answer = call(
        rt,
        socket,
        "CreateSecurityGroup",
        json!({"GroupName": "bench", "Description": "bench"}),
    );
    answer["GroupId"].as_str().expect("GroupId").to_string()
}

pub fn run(report: &mut Report, quick: bool) {
    let trials: u16 = if quick { 20 } else { 100 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hosts = Hosts::new(&[&[], &[], &[]]);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let agents: Vec<Agent> = (0..3)
        .map(|i| {
            let host = format!("host-{i}");
            let url = etcd.url();
            let options = [
                "--etcd-endpoints",
                &url,
                "--host-id",
                &host,
                "--rules-per-group",
                "1000",
            ];
            Agent::start_with(&hosts.hosts[i].host, &options)
        })
        .collect();
    let group = create_group(&rt, &agents[0].socket);
    for agent in &agents[1..] {
        let describe = Call::from_members(
            "DescribeSecurityGroups",
            json!({"GroupIds": [group]}),
            Scope::local(),
        )
        .expect("a known action");
        let t0 = Instant::now();
        while !matches!(
            rt.block_on(client::call(&agent.socket, &describe)),
            Ok(Ok(_))
        ) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the group never arrived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (mut propagation, mut etcd_writes) = (Vec::new(), Vec::new());
    for port in 1..=trials {
        let t0 = Instant::now();
        call(
            &rt,
            &agents[0].socket,
            "AuthorizeSecurityGroupIngress",
            rule(&group, port),
        );
        etcd_writes.push(t0.elapsed().as_secs_f64() * 1e3);
        let others = [agents[1].socket.as_path(), agents[2].socket.as_path()];
        propagation
            .push(t0.elapsed().as_secs_f64() * 1e3 + until_listed(&rt, &others, &group, port));
    }
    drop(agents);
    drop(etcd);

    let ns = Netns::new("fwmh");
    let local = Agent::start_with(&ns, &["--rules-per-group", "1000"]);
    let group = create_group(&rt, &local.socket);
    let mut redb_writes = Vec::new();
    for port in 1..=trials {
        let t0 = Instant::now();
        call(
            &rt,
            &local.socket,
            "AuthorizeSecurityGroupIngress",
            rule(&group, port),
        );
        redb_writes.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        report.row(
            "B12 hosts",
            format!("rule added on host A → enforced on B and C (3 agents, etcd), {label}"),
            if p > 50.0 { "≤ 100 ms" } else { "–" },
            percentile(propagation.clone(), p),
            "ms",
            None,
        );
        report.row(
            "B12 hosts",
            format!("add rule, client → answer, etcd store, {label}"),
            "–",
            percentile(etcd_writes.clone(), p),
            "ms",
            Some(("redb", percentile(redb_writes.clone(), p))),
        );
    }
}

//! B11: change → enforced as a client sees it: the release agent in a namespace of its own, 5
//! groups attached to 4 instances (veth pairs inside the namespace), the seeded rules loaded through the socket
//! 500 per request, then each change timed from the client's request to its answer (the agent
//! answers after the store's fsync and the map writes). Also the bulk load's time and the agent's
//! restart time and RSS at that size.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use firewall_agent::{
    api::{Call, Scope},
    client,
};
use firewall_testkit::{agent::Agent, netns::Netns, shell::ns_sh};
use rand::{SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};

use crate::{
    common::{GROUPS, generate_permissions, percentile},
    report::Report,
};

const INSTANCES: usize = 4;
/// Permissions per authorize request of the bulk load.
const BATCH: usize = 500;

/// One call through the socket; panics on an API error (the bench's calls are all valid).
fn call(rt: &tokio::runtime::Runtime, socket: &Path, action: &str, members: Value) -> Value {
    let call = Call::from_members(action, members, Scope::local()).expect("a known action");
    match rt.block_on(client::call(socket, &call)) {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => panic!("{action}: {} {}", e.code, e.message),
        Err(e) => panic!("{action}: {e}"),
    }
}

/// Milliseconds `f` takes.
fn timed(f: impl FnOnce()) -> f64 {
    let t0 = Instant::now();
    f();
    t0.elapsed().as_secs_f64() * 1e3
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn run(report: &mut Report, quick: bool) {
    let trials = if quick { 10 } else { 30 };
    let sizes: &[usize] = if quick {
        &[10, 10_000]
    } else {
        &[10, 10_000, 100_000]
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for &rules in sizes {
        let ns = Netns::new("fwe2e");
        for i in 0..INSTANCES {
            let (name, peer) = (format!("w{i}"), format!("w{i}p"));
            ns_sh(
                &ns.name,
                &[
                    "ip", "link", "add", &name, "type", "veth", "peer", "name", &peer,
                ],
            );
        }
        let agent = Agent::start_with(
            &ns,
            &["--rules-per-group", "1000000", "--groups-per-instance", "5"],
        );
        let socket = agent.socket.clone();
        let groups: Vec<String> = (0..GROUPS)
            .map(|g| {
                let answer = call(
                    &rt,
                    &socket,
                    "CreateSecurityGroup",
                    json!({"GroupName": format!("g{g}"), "Description": "bench"}),
                );
                answer["GroupId"].as_str().expect("GroupId").to_string()
            })
            .collect();
        let mut instances = Vec::new();
        for i in 0..INSTANCES {
            let answer = call(
                &rt,
                &socket,
                "RunInstances",
                json!({"PrivateIpAddress": format!("172.31.0.{}", 10 + i), "HostInterface": format!("w{i}"), "SecurityGroupIds": groups}),
            );
            instances.push(
                answer["Instances"][0]["InstanceId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let mut rng = StdRng::seed_from_u64(42);
        // The generator's rare exact duplicates would have their whole request refused.
        let mut seen = std::collections::HashSet::new();
        let permissions: Vec<Value> = generate_permissions(&mut rng, rules, &groups)
            .into_iter()
            .filter(|p| seen.insert(p.to_string()))
            .collect();
        let mut loaded = 0;
        let bulk = timed(|| {
            for (i, chunk) in permissions.chunks(BATCH).enumerate() {
                let members = json!({"GroupId": groups[i % GROUPS], "IpPermissions": chunk});
                let call =
                    Call::from_members("AuthorizeSecurityGroupIngress", members, Scope::local())
                        .unwrap();
                // A chunk with a random duplicate is refused whole; it just does not count.
                match rt.block_on(client::call(&socket, &call)) {
                    Ok(Ok(_)) => loaded += chunk.len(),
                    Ok(Err(e)) => eprintln!("chunk {i} refused: {} {}", e.code, e.message),
                    Err(e) => eprintln!("chunk {i}: {e}"),
                }
            }
        });
        report.row(
            "B11 e2e",
            format!("load {rules} rules through the socket ({BATCH} per request, {loaded} kept)"),
            "–",
            bulk,
            "ms",
            None,
        );
        let rule = |g: &str| json!({"GroupId": g, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 7777, "ToPort": 7777, "IpRanges": [{"CidrIp": "10.77.0.1/32"}]}]});
        let (mut add, mut remove, mut join, mut leave) = (vec![], vec![], vec![], vec![]);
        // The last instance leaves and rejoins group 1, which every rule "from group 1" names.
        let joiner = &instances[INSTANCES - 1];
        let without_g1: Vec<&String> = groups.iter().filter(|g| **g != groups[1]).collect();
        for _ in 0..trials {
            add.push(timed(|| {
                call(
                    &rt,
                    &socket,
                    "AuthorizeSecurityGroupIngress",
                    rule(&groups[0]),
                );
            }));
            remove.push(timed(|| {
                call(&rt, &socket, "RevokeSecurityGroupIngress", rule(&groups[0]));
            }));
            leave.push(timed(|| {
                call(
                    &rt,
                    &socket,
                    "ModifyInstanceAttribute",
                    json!({"InstanceId": joiner, "Groups": without_g1}),
                );
            }));
            join.push(timed(|| {
                call(
                    &rt,
                    &socket,
                    "ModifyInstanceAttribute",
                    json!({"InstanceId": joiner, "Groups": groups}),
                );
            }));
        }
        for (name, samples) in [
            ("add rule", add),
            ("remove rule", remove),
            ("member leaves a referenced group", leave),
            ("member joins a referenced group", join),
        ] {
            for (label, p, target) in [("p50", 50.0, "≤ 1 ms"), ("p99", 99.0, "≤ 5 ms")] {
                report.row(
                    "B11 e2e",
                    format!("{name} at {rules} rules, client → answer (enforced), {label}"),
                    if rules >= 10_000 { target } else { "–" },
                    percentile(samples.clone(), p),
                    "ms",
                    None,
                );
            }
        }
        let dir = agent.stop();
        let t0 = Instant::now();
        let agent = Agent::start_in_with(
            &ns,
            dir,
            &["--rules-per-group", "1000000", "--groups-per-instance", "5"],
        );
        // Started once it answers a read.
        call(&rt, &agent.socket, "DescribeSecurityGroups", json!({}));
        let start = t0.elapsed();
        report.row(
            "B11 e2e",
            format!("agent restart at {rules} rules (to the first answer)"),
            if rules >= 100_000 { "≤ 1 s" } else { "–" },
            start.as_secs_f64() * 1e3,
            "ms",
            None,
        );
        std::thread::sleep(Duration::from_millis(100));
        report.row(
            "B11 e2e",
            format!("agent RSS at {rules} rules"),
            "–",
            rss_mib(agent.pid()),
            "MiB",
            None,
        );
    }
}

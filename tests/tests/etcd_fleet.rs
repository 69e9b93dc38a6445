//! Fleets of agents on one etcd (each host a network namespace with its own agent, etcd on the
//! hosts' bridge in the test's fabric namespace): agents started at the same moment on an
//! empty etcd all run; a graceful stop ends the host's liveness at once; quotas stay each
//! host's own; a restarted agent resumes from its cache, and from a compacted history by
//! reading etcd again; eight agents at 10k rules converge after seeded random changes made
//! through random agents, some at the same moment.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    hosts::{ETCD_IP, Etcd, Hosts},
    topology::Workload,
    traffic::{EchoServer, eventually, tcp_round_trip},
};
use serde_json::{Value, json};

const PROPAGATION: Duration = Duration::from_secs(15);
const PROBE: Duration = Duration::from_millis(300);

/// An agent on host `index` of `hosts`, sharing `etcd`, with `extra` options.
fn agent_on(hosts: &Hosts, index: usize, etcd: &Etcd, extra: &[&str]) -> Agent {
    let url = etcd.url();
    let host_id = format!("host-{index}");
    let mut options = vec!["--etcd-endpoints", &url, "--host-id", &host_id];
    options.extend_from_slice(extra);
    Agent::start_with(&hosts.hosts[index].host, &options)
}

fn default_vpc(agent: &Agent) -> String {
    let vpcs = agent.cli(&["describe-vpcs", "--filters", "Name=is-default,Values=true"]);
    vpcs["Vpcs"][0]["VpcId"]
        .as_str()
        .expect("a default VPC")
        .to_string()
}

fn reachable(from: &Workload, to: &Workload, port: u16) -> bool {
    tcp_round_trip(&from.ns, to.ip, port, PROBE)
}

#[test]
fn agents_started_at_the_same_moment_on_an_empty_etcd_all_run_on_one_set_of_defaults() {
    for round in 0..3 {
        let hosts = Hosts::new(&[&[], &[], &[], &[]]);
        let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
        let agents: Vec<Agent> = std::thread::scope(|scope| {
            let started: Vec<_> = (0..hosts.hosts.len())
                .map(|i| {
                    let (hosts, etcd) = (&hosts, &etcd);
                    scope.spawn(move || agent_on(hosts, i, etcd, &[]))
                })
                .collect();
            started
                .into_iter()
                .map(|s| s.join().expect("started"))
                .collect()
        });
        let vpcs: Vec<String> = agents.iter().map(default_vpc).collect();
        assert!(
            vpcs.iter().all(|v| *v == vpcs[0]),
            "round {round}: the agents run on different default VPCs: {vpcs:?}"
        );
    }
}

#[test]
fn a_graceful_stop_ends_the_hosts_liveness_at_once_and_quotas_stay_each_hosts_own() {
    let hosts = Hosts::new(&[&[], &["172.31.2.10"]]);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    // A lease of a minute: only the revocation can mark host B's instance this soon.
    let lease = ["--host-lease-ttl", "60"];
    let a = agent_on(
        &hosts,
        0,
        &etcd,
        &[&lease[..], &["--rules-per-group", "2"]].concat(),
    );
    let b = agent_on(&hosts, 1, &etcd, &lease);
    let group = a.create_group("shared");
    let seen = eventually(PROPAGATION, || {
        b.try_cli(&["describe-security-groups", "--group-ids", &group])
            .is_ok()
    });
    assert!(seen.is_some(), "the group never reached B");
    b.run_instance(&hosts.hosts[1].workloads[0], &[&group]);

    // B allows 60 rules per group, A only 2: B's third rule is accepted, A refuses a fourth.
    for port in ["1", "2", "3"] {
        b.authorize_ingress(&group, "tcp", port, "10.0.0.0/8");
    }
    let listed = eventually(PROPAGATION, || {
        let described = a.cli(&["describe-security-groups", "--group-ids", &group]);
        described["SecurityGroups"][0]["IpPermissions"]
            .as_array()
            .is_some_and(|p| p.len() == 3)
    });
    assert!(listed.is_some(), "B's rules never reached A");
    let refused = a
        .try_authorize_ingress(&group, "tcp", "4", "10.0.0.0/8")
        .expect_err("over A's quota");
    assert_eq!(refused.code(), "RulesPerSecurityGroupLimitExceeded");
    b.authorize_ingress(&group, "tcp", "5", "10.0.0.0/8");

    drop(b);
    let marked = eventually(Duration::from_secs(10), || {
        a.cli(&["describe-instances"])
            .to_string()
            .contains("Server.HostLost")
    });
    assert!(
        marked.is_some(),
        "host B stopped, but its lease of a minute was not revoked"
    );
}

#[test]
fn a_restarted_agent_resumes_from_its_cache_and_after_a_compaction_reads_etcd_again() {
    let hosts = Hosts::new(&[&["172.31.1.10"], &["172.31.2.10"]]);
    let mut etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let a = agent_on(&hosts, 0, &etcd, &[]);
    let b = agent_on(&hosts, 1, &etcd, &[]);
    let [web, client] = a.create_groups(["web", "client"]);
    let (a1, b1) = (&hosts.hosts[0].workloads[0], &hosts.hosts[1].workloads[0]);
    a.run_instance(a1, &[&client]);
    let seen = eventually(PROPAGATION, || {
        b.try_cli(&["describe-security-groups", "--group-ids", &web])
            .is_ok()
    });
    assert!(seen.is_some());
    b.run_instance(b1, &[&web]);
    let _servers = [80, 81, 82].map(|port| EchoServer::tcp(&b1.ns, b1.ip, port));
    a.authorize_ingress(&web, "tcp", "80", &client);
    assert!(eventually(PROPAGATION, || reachable(a1, b1, 80)).is_some());

    // Killed, a change made meanwhile, restarted: the watch resumes after the cached
    // revision; etcd is not read whole.
    // Its log goes on in the same file: what the restarted agent writes comes after this.
    let logged = b.log().len();
    let dir = b.kill9();
    a.authorize_ingress(&web, "tcp", "81", &client);
    let b = Agent::start_in_with(
        &hosts.hosts[1].host,
        dir,
        &["--etcd-endpoints", &etcd.url(), "--host-id", "host-1"],
    );
    // It answers only once current: its first answer has the change made while it was down.
    let listed = b
        .cli(&["describe-security-groups", "--group-ids", &web])
        .to_string();
    assert!(listed.contains("\"FromPort\":81"), "{listed}");
    assert!(reachable(a1, b1, 80), "enforced from the cache at once");
    assert!(
        eventually(PROPAGATION, || reachable(a1, b1, 81)).is_some(),
        "the change made while B was down never reached it"
    );
    let log = b.log()[logged..].to_string();
    assert!(log.contains("watching etcd"), "{log}");
    assert!(!log.contains("read etcd whole"), "read etcd whole: {log}");

    // B's watch broken (etcd restarted) while B is paused, and the history it needs compacted
    // meanwhile: B reads etcd again, page by page, and catches up.
    {
        let _paused = b.pause();
        // Restarted first: nothing of the changes below can wait in B's old connection.
        etcd.restart();
        let changed = eventually(PROPAGATION, || {
            a.try_revoke_ingress(&web, "tcp", "80", &client).is_ok()
        });
        assert!(changed.is_some(), "A never reached the restarted etcd");
        a.authorize_ingress(&web, "tcp", "82", &client);
        etcd.compact();
    }
    let caught_up = eventually(PROPAGATION, || {
        reachable(a1, b1, 82) && !reachable(a1, b1, 80)
    });
    assert!(
        caught_up.is_some(),
        "B never caught up after the compaction"
    );
    let log = b.log();
    assert!(log.contains("the watch's history was compacted"), "{log}");
    assert!(log.contains("read etcd whole"), "{log}");
}

/// 100 rules of `group`, each a port from `base` and a /24.
fn hundred_rules(base: u16, octet: u16) -> String {
    let permissions: Vec<Value> = (0..100)
        .map(|i| {
            json!({"IpProtocol": "tcp", "FromPort": base + i, "ToPort": base + i,
                "IpRanges": [{"CidrIp": format!("10.{}.{}.0/24", octet % 250, i)}]})
        })
        .collect();
    Value::Array(permissions).to_string()
}

/// Seeded random numbers (xorshift), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What an agent lists of every group, in one canonical form.
fn groups_of(agent: &Agent) -> String {
    let mut groups = agent.cli(&["describe-security-groups"])["SecurityGroups"]
        .as_array()
        .expect("groups")
        .clone();
    groups.sort_by_key(|g| g["GroupId"].to_string());
    for group in &mut groups {
        for key in ["IpPermissions", "IpPermissionsEgress"] {
            if let Some(permissions) = group[key].as_array_mut() {
                permissions.sort_by_key(Value::to_string);
            }
        }
    }
    Value::Array(groups).to_string()
}

#[test]
fn eight_agents_at_10k_rules_converge_after_random_changes_through_random_agents() {
    const HOSTS: usize = 8;
    const GROUPS: usize = 10;
    let addresses: Vec<String> = (1..=HOSTS).map(|h| format!("172.31.{h}.10")).collect();
    let workloads: Vec<[&str; 1]> = addresses.iter().map(|a| [a.as_str()]).collect();
    let workloads: Vec<&[&str]> = workloads.iter().map(|w| &w[..]).collect();
    let hosts = Hosts::new(&workloads);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let options = ["--rules-per-group", "1200"];
    let agents: Vec<Agent> = (0..HOSTS)
        .map(|i| agent_on(&hosts, i, &etcd, &options))
        .collect();
    let groups: Vec<String> = (0..GROUPS)
        .map(|g| agents[0].create_group(&format!("g{g}")))
        .collect();
    // 10 groups of 1000 CIDR rules, 100 per request through agent 0; each group also admits
    // the next one (a reference: its members' addresses).
    for (g, group) in groups.iter().enumerate() {
        for block in 0..10u16 {
            let rules = hundred_rules(1000 + block * 100, g as u16 * 10 + block);
            agents[0].cli(&[
                "authorize-security-group-ingress",
                "--group-id",
                group,
                "--ip-permissions",
                &rules,
            ]);
        }
        agents[0].authorize_ingress(group, "tcp", "80", &groups[(g + 1) % GROUPS]);
    }
    let mut instances = Vec::new();
    for (h, agent) in agents.iter().enumerate() {
        let group = &groups[h % GROUPS];
        let seen = eventually(PROPAGATION, || {
            agent
                .try_cli(&["describe-security-groups", "--group-ids", group])
                .is_ok()
        });
        assert!(seen.is_some(), "host {h} never saw {group}");
        instances.push(agent.run_instance(&hosts.hosts[h].workloads[0], &[group]));
    }

    let mut rng = Rng(0x5eed_f1ee7);
    for round in 0..15 {
        // Four changes at the same moment, each through another random agent.
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let agent = &agents[rng.below(HOSTS)];
                let group = groups[rng.below(GROUPS)].clone();
                let port = (5000 + rng.below(40)).to_string();
                let other = groups[rng.below(GROUPS)].clone();
                let instance = instances[rng.below(HOSTS)].clone();
                let kind = rng.below(4);
                scope.spawn(move || {
                    // Refused changes (a duplicate, a rule not there) change nothing.
                    let _ = match kind {
                        0 => agent.try_authorize_ingress(&group, "tcp", &port, "10.99.0.0/16"),
                        1 => agent.try_revoke_ingress(&group, "tcp", &port, "10.99.0.0/16"),
                        2 => agent.try_authorize_ingress(&group, "tcp", &port, &other),
                        _ => agent.try_cli(&[
                            "modify-instance-attribute",
                            "--instance-id",
                            &instance,
                            "--groups",
                            &group,
                        ]),
                    };
                });
            }
        });
        eprintln!("round {round} done");
    }

    let reference = groups_of(&agents[0]);
    assert!(reference.len() > 1_000_000, "10k rules listed");
    for (h, agent) in agents.iter().enumerate() {
        let same = eventually(PROPAGATION, || groups_of(agent) == reference);
        assert!(same.is_some(), "host {h} lists other groups than host 0");
        let verified = agent.cli(&["verify-dataplane"]);
        assert_eq!(
            verified["InSync"], true,
            "host {h}: the kernel's maps are not its compiled state: {verified}"
        );
        assert_eq!(verified["Interfaces"], 1, "host {h}: {verified}");
    }

    // The last host restarted with its cache removed reads etcd whole: over 10k records, page
    // by page (2000 a page), to the same groups.
    let mut agents = agents;
    let dir = agents.pop().expect("eight").kill9();
    std::fs::remove_file(dir.join("state").join("state.redb")).expect("its cache");
    let url = etcd.url();
    let host_id = format!("host-{}", HOSTS - 1);
    let options = [
        "--etcd-endpoints",
        &url,
        "--host-id",
        &host_id,
        "--rules-per-group",
        "1200",
    ];
    let restarted = Agent::start_in_with(&hosts.hosts[HOSTS - 1].host, dir, &options);
    assert_eq!(groups_of(&restarted), reference, "read whole, page by page");
    assert!(restarted.log().contains("read etcd whole"));
    assert_eq!(restarted.cli(&["verify-dataplane"])["InSync"], true);
}

#[test]
fn an_agent_killed_right_after_its_own_changes_restarts_with_them() {
    let hosts = Hosts::new(&[&[]]);
    let etcd = Etcd::start(&hosts.fabric, ETCD_IP);
    let mut a = agent_on(&hosts, 0, &etcd, &[]);
    let group = a.create_group("web");
    for round in 0..6 {
        let port = (100 + round).to_string();
        a.authorize_ingress(&group, "tcp", &port, "10.0.0.0/8");
        if round % 2 == 0 {
            a.revoke_ingress(&group, "tcp", &port, "10.0.0.0/8");
        }
        // Killed at once: its last cache writes may not be synced.
        let dir = a.kill9();
        a = Agent::start_in_with(
            &hosts.hosts[0].host,
            dir,
            &["--etcd-endpoints", &etcd.url(), "--host-id", "host-0"],
        );
        let listed = a.cli(&["describe-security-groups", "--group-ids", &group]);
        let ports: Vec<i64> = listed["SecurityGroups"][0]["IpPermissions"]
            .as_array()
            .map_or(Vec::new(), |p| {
                p.iter().filter_map(|p| p["FromPort"].as_i64()).collect()
            });
        let expected: Vec<i64> = (0..=round)
            .filter(|r| r % 2 == 1)
            .map(|r| 100 + r)
            .collect();
        assert_eq!(
            ports, expected,
            "round {round}: the restarted agent lists other rules"
        );
    }
}

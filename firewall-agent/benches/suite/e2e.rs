//! B11: change → enforced as a client sees it: the release agent in a namespace of its own, 5
//! groups attached to 4 instances (veth pairs inside the namespace) and a prefix list, the seeded
//! rules loaded through the socket 500 per request, then each change timed from the client's
//! request to its answer (the agent answers after the store's fsync and the map writes): through
//! the socket, and through the EC2 endpoint with boto3 (`e2e_ec2.py`: SigV4, the XML answer).
//! Also the bulk load's time and the agent's restart time and RSS at that size.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use firewall_agent::{
    api::{Call, Scope},
    client,
};
use firewall_testkit::{
    agent::Agent,
    aws::{self, Aws},
    metrics,
    netns::Netns,
    shell::ns_sh,
};
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
fn call(
    rt: &tokio::runtime::Runtime,
    socket: &Path,
    scope: &Scope,
    action: &str,
    members: Value,
) -> Value {
    let call = Call::from_members(action, members, scope.clone()).expect("a known action");
    match rt.block_on(client::call(socket, &call)) {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => panic!("{action}: {} {}", e.code, e.message),
        Err(e) => panic!("{action}: {e}"),
    }
}

/// A generated permission's rule identity: the same protocol, ports and peer, the CIDR
/// canonical (AWS keeps `10.1.2.3/8` as `10.0.0.0/8`).
fn identity(permission: &Value) -> String {
    let mut permission = permission.clone();
    for (list, field) in [("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")] {
        if let Some(cidr) = permission[list][0][field].as_str() {
            let net: ipnet::IpNet = cidr.parse().expect("a generated CIDR");
            permission[list][0][field] = json!(net.trunc().to_string());
        }
    }
    permission.to_string()
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

/// The agent's options: quotas out of the way, and the EC2 endpoint's.
fn options(aws: &Aws) -> Vec<String> {
    let mut all = aws.agent_options();
    all.extend(
        ["--rules-per-group", "1000000", "--groups-per-instance", "5"]
            .iter()
            .map(|o| o.to_string()),
    );
    all
}

/// One change's samples as p50 and p99 rows.
/// The steps of the agent's last start with their times, from its log (`agent_start.rs`: the
/// store read and the data plane loaded side by side, then compiled and written).
fn start_steps(log: &str) -> String {
    // Without the terminal's colours.
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    let steps = [
        "read the store",
        "loaded the data plane",
        "read the data plane's IDs",
        "compiled the state",
        "wrote the difference to the maps",
        "started",
    ];
    let found: Vec<String> = (steps.iter())
        .filter_map(|step| {
            let line = (plain.lines().rev()).find(|l| l.contains(step) && l.contains("took="))?;
            let took = line.split("took=").nth(1)?.split_whitespace().next()?;
            Some(format!("{step} {took}"))
        })
        .collect();
    found.join(", ")
}

fn rows(report: &mut Report, what: &str, rules: usize, samples: &[f64]) {
    for (label, p, target) in [("p50", 50.0, "≤ 1 ms"), ("p99", 99.0, "≤ 5 ms")] {
        report.row(
            "B11 e2e",
            format!("{what} at {rules} rules, {label}"),
            if rules >= 10_000 { target } else { "–" },
            percentile(samples.to_vec(), p),
            "ms",
            None,
        );
    }
}

pub fn run(report: &mut Report, quick: bool) {
    // `FIREWALL_BENCH_E2E_RULES=10000,100000` and `FIREWALL_BENCH_E2E_TRIALS=N` pick other
    // sizes and more trials (for a profile of one size).
    let trials = std::env::var("FIREWALL_BENCH_E2E_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(if quick { 10 } else { 30 });
    let sizes: Vec<usize> = match std::env::var("FIREWALL_BENCH_E2E_RULES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("FIREWALL_BENCH_E2E_RULES: numbers"))
            .collect(),
        Err(_) if quick => vec![10, 10_000],
        Err(_) => vec![10, 10_000, 100_000],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The EC2 key's account and region: the socket's calls act there too.
    let scope = Scope {
        account_id: aws::ACCOUNT_ID.into(),
        region: aws::REGION.into(),
    };
    for &rules in &sizes {
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
        let aws = Aws::new(&ns, aws::free_port());
        let opts = options(&aws);
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        let agent = Agent::start_with(&ns, &opts);
        assert!(
            aws.wait_listening(Duration::from_secs(10)),
            "no EC2 endpoint"
        );
        let socket = agent.socket.clone();
        let call = |action: &str, members: Value| call(&rt, &socket, &scope, action, members);
        let groups: Vec<String> = (0..GROUPS)
            .map(|g| {
                let answer = call(
                    "CreateSecurityGroup",
                    json!({"GroupName": format!("g{g}"), "Description": "bench"}),
                );
                answer["GroupId"].as_str().expect("GroupId").to_string()
            })
            .collect();
        let list = call(
            "CreateManagedPrefixList",
            json!({"PrefixListName": "e2e", "MaxEntries": 20, "AddressFamily": "IPv4",
                   "Entries": [{"Cidr": "192.0.2.128/28"}]}),
        )["PrefixList"]["PrefixListId"]
            .as_str()
            .expect("PrefixListId")
            .to_string();
        // Rules of every group reference the prefix list.
        for group in &groups {
            call(
                "AuthorizeSecurityGroupIngress",
                json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": list}]}]}),
            );
        }
        let mut instances = Vec::new();
        for i in 0..INSTANCES {
            let answer = call(
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
        // Requests of `BATCH` rules, each for one group in turn; a rule the group has already
        // (the same protocol, ports and peer once the CIDR is canonical) is left out, so that
        // no request is refused whole.
        let mut per_group: Vec<Vec<Value>> = vec![Vec::new(); GROUPS];
        let mut seen = std::collections::HashSet::new();
        for (k, permission) in generate_permissions(&mut rng, rules, &groups)
            .into_iter()
            .enumerate()
        {
            let group = (k / BATCH) % GROUPS;
            if seen.insert((group, identity(&permission))) {
                per_group[group].push(permission);
            }
        }
        let requests: Vec<(&String, &[Value])> = (0..)
            .map_while(|round| {
                let chunks: Vec<_> = (0..GROUPS)
                    .filter_map(|g| {
                        let rules = per_group[g].chunks(BATCH).nth(round)?;
                        Some((&groups[g], rules))
                    })
                    .collect();
                (!chunks.is_empty()).then_some(chunks)
            })
            .flatten()
            .collect();
        let mut loaded = 0;
        let mut per_request = Vec::new();
        let bulk = timed(|| {
            for (i, (group, chunk)) in requests.iter().enumerate() {
                let members = json!({"GroupId": group, "IpPermissions": chunk});
                let call =
                    Call::from_members("AuthorizeSecurityGroupIngress", members, scope.clone())
                        .unwrap();
                let t0 = Instant::now();
                match rt.block_on(client::call(&socket, &call)) {
                    Ok(Ok(_)) => loaded += chunk.len(),
                    Ok(Err(e)) => eprintln!("chunk {i} refused: {} {}", e.code, e.message),
                    Err(e) => eprintln!("chunk {i}: {e}"),
                }
                per_request.push(t0.elapsed().as_secs_f64() * 1e3);
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
        report.row(
            "B11 e2e",
            format!("one bulk request of {BATCH} rules at up to {rules} rules, p50"),
            "–",
            percentile(per_request, 50.0),
            "ms",
            None,
        );
        let rule = |g: &str| json!({"GroupId": g, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 7777, "ToPort": 7777, "IpRanges": [{"CidrIp": "10.77.0.1/32"}]}]});
        let names = [
            "add rule",
            "remove rule",
            "member leaves a referenced group (modify-instance-attribute), to a set of groups it had before",
            "member joins a referenced group (modify-instance-attribute)",
            "member leaves every group it is in (stop-instances)",
            "member rejoins (start-instances)",
            "prefix-list entry added",
            "prefix-list entry removed",
            "add rule referencing a group (a part of its group's rules, rewritten in place)",
            "remove rule referencing a group",
            "member moves to a set of groups no workload has (one POLICIES entry composing its groups' chains)",
        ];
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        // The last instance leaves and rejoins group 1, which every rule "from group 1" names.
        let joiner = &instances[INSTANCES - 1];
        let without_g1: Vec<&String> = groups.iter().filter(|g| **g != groups[1]).collect();
        // Sets of groups no workload has had: one per trial.
        let fresh_sets: Vec<Vec<&String>> = (1..(1u32 << GROUPS) - 1)
            .map(|bits| {
                (0..GROUPS)
                    .filter(|g| bits & (1 << g) != 0)
                    .map(|g| &groups[g])
                    .collect::<Vec<_>>()
            })
            .filter(|set: &Vec<&String>| *set != without_g1)
            .collect();
        let mut version = 1;
        let address: &'static str = Box::leak(format!("127.0.0.1:{}", aws.port).into_boxed_str());
        let stages_before = metrics::scrape(&ns, address);
        // A Prometheus scrape every second beside the changes, as in production: a change waits
        // for the kernel's counter reads at most, never for the exposition's text.
        let scraping = AtomicBool::new(true);
        let scrapes = std::thread::scope(|s| {
            let scraper = s.spawn(|| {
                let mut scrapes = 0;
                while scraping.load(Ordering::Relaxed) {
                    metrics::scrape(&ns, address);
                    scrapes += 1;
                    for _ in 0..10 {
                        if scraping.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                scrapes
            });
            for trial in 0..trials {
                let entry = json!([{"Cidr": format!("198.51.100.{}/32", trial % 200)}]);
                let referencing = json!({"GroupId": groups[0], "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 7778, "ToPort": 7778, "UserIdGroupPairs": [{"GroupId": groups[1]}]}]});
                let changes: [(&str, Value); 10] = [
                    ("AuthorizeSecurityGroupIngress", rule(&groups[0])),
                    ("RevokeSecurityGroupIngress", rule(&groups[0])),
                    (
                        "ModifyInstanceAttribute",
                        json!({"InstanceId": joiner, "Groups": without_g1}),
                    ),
                    (
                        "ModifyInstanceAttribute",
                        json!({"InstanceId": joiner, "Groups": groups}),
                    ),
                    ("StopInstances", json!({"InstanceIds": [joiner]})),
                    ("StartInstances", json!({"InstanceIds": [joiner]})),
                    (
                        "ModifyManagedPrefixList",
                        json!({"PrefixListId": list, "CurrentVersion": version, "AddEntries": entry}),
                    ),
                    (
                        "ModifyManagedPrefixList",
                        json!({"PrefixListId": list, "CurrentVersion": version + 1, "RemoveEntries": entry}),
                    ),
                    ("AuthorizeSecurityGroupIngress", referencing.clone()),
                    ("RevokeSecurityGroupIngress", referencing),
                ];
                version += 2;
                for (i, (action, members)) in changes.into_iter().enumerate() {
                    samples[i].push(timed(|| {
                        call(action, members);
                    }));
                }
                if let Some(set) = fresh_sets.get(trial) {
                    let to = json!({"InstanceId": joiner, "Groups": set});
                    samples[10].push(timed(|| {
                        call("ModifyInstanceAttribute", to);
                    }));
                    call(
                        "ModifyInstanceAttribute",
                        json!({"InstanceId": joiner, "Groups": groups}),
                    );
                }
            }
            scraping.store(false, Ordering::Relaxed);
            scraper.join().expect("the scraper")
        });
        report.note(format!(
            "B11 at {rules} rules: {scrapes} scrapes of /metrics ran beside the timed changes (one a second)."
        ));
        for (name, samples) in names.iter().zip(&samples) {
            rows(report, &format!("socket: {name}"), rules, samples);
        }
        // The same add while describe-security-groups of every rule runs back to back beside
        // it: a read takes its snapshot under the agent's lock and builds its answer after.
        let describing = AtomicBool::new(true);
        let (beside_describes, describes) = std::thread::scope(|s| {
            let describer = s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let mut describes = 0;
                while describing.load(Ordering::Relaxed) {
                    self::call(&rt, &socket, &scope, "DescribeSecurityGroups", json!({}));
                    describes += 1;
                }
                describes
            });
            let mut samples = Vec::new();
            for _ in 0..trials {
                std::thread::sleep(Duration::from_millis(20));
                samples.push(timed(|| {
                    call("AuthorizeSecurityGroupIngress", rule(&groups[0]));
                }));
                call("RevokeSecurityGroupIngress", rule(&groups[0]));
            }
            describing.store(false, Ordering::Relaxed);
            (samples, describer.join().expect("the describer"))
        });
        report.note(format!(
            "B11 at {rules} rules: {describes} describe-security-groups of every rule ran back to back beside the {trials} timed adds of the describe row."
        ));
        rows(
            report,
            "socket: add rule with describe-security-groups (every rule) running beside it",
            rules,
            &beside_describes,
        );
        // nftables doing the same changes on the same ruleset (ours, exported), in this run.
        let ruleset = call("ExportNftables", json!({"Format": "nftables"}));
        let ruleset = ruleset["Ruleset"].as_str().expect("Ruleset");
        let nft = crate::update::nft_same_change(ruleset, trials);
        for (what, ours, theirs, verb) in [
            ("add rule", &samples[0], &nft.add, "add"),
            ("remove rule", &samples[1], &nft.delete, "delete"),
        ] {
            report.row(
                "B11 e2e",
                format!(
                    "{what} at {rules} rules, p50: ours (socket, client → enforced) vs nftables"
                ),
                "below nft",
                percentile(ours.clone(), 50.0),
                "ms",
                Some((
                    &format!("nft {verb} element (process start incl.)"),
                    percentile(theirs.clone(), 50.0),
                )),
            );
        }
        report.row(
            "B11 e2e",
            format!("load {rules} rules: ours through the socket vs nft -f of the same ruleset"),
            "–",
            bulk,
            "ms",
            Some(("nft -f", nft.bulk)),
        );
        // The agent's own timing of those changes' steps (its histograms' sums and counts).
        let mut stages_after = None;
        let scrape = timed(|| stages_after = Some(metrics::scrape(&ns, address)));
        let stages_after = stages_after.expect("scraped");
        report.row(
            "B11 e2e",
            format!("GET /metrics (every rule's hit counter) at {rules} rules"),
            "–",
            scrape,
            "ms",
            None,
        );
        for stage in ["parse", "model", "store", "compile", "maps"] {
            let delta = |name: &str| {
                let labels = [("stage", stage)];
                stages_after.sum(name, &labels) - stages_before.sum(name, &labels)
            };
            let (sum, count) = (
                delta("firewall_change_stage_seconds_sum"),
                delta("firewall_change_stage_seconds_count"),
            );
            report.row(
                "B11 e2e",
                format!("in the agent, the socket's changes at {rules} rules: {stage}, mean"),
                "–",
                sum / count.max(1.0) * 1e3,
                "ms",
                None,
            );
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/suite/e2e_ec2.py");
        let all_groups = groups.join(",");
        let (n, version) = (trials.to_string(), version.to_string());
        let out = aws.python(
            &script,
            &[&n, &groups[0], joiner, &all_groups, &list, &version],
        );
        assert!(
            out.success(),
            "e2e_ec2.py: {out}\nagent log:\n{}",
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
            rows(report, &format!("EC2 (boto3): {name}"), rules, &samples);
        }
        let dir = agent.stop();
        let t0 = Instant::now();
        let agent = Agent::start_in_with(&ns, dir, &opts);
        // Started once it answers a read (a small one: the time is the start's).
        let read = |action: &str| {
            rt.block_on(client::call(
                &agent.socket,
                &Call::from_members(action, json!({}), scope.clone()).unwrap(),
            ))
            .expect("socket")
            .expect("answer")
        };
        read("DescribeVpcs");
        let start = t0.elapsed();
        report.note(format!(
            "B11 at {rules} rules, the restart's steps as the agent logs them: {}.",
            start_steps(&agent.log())
        ));
        report.row(
            "B11 e2e",
            format!("agent restart at {rules} rules (to the first answer)"),
            if rules >= 100_000 { "≤ 1 s" } else { "–" },
            start.as_secs_f64() * 1e3,
            "ms",
            None,
        );
        let describe = timed(|| {
            read("DescribeSecurityGroups");
        });
        report.row(
            "B11 e2e",
            format!("describe-security-groups (every rule) at {rules} rules"),
            "–",
            describe,
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

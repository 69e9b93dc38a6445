//! Crash safety: several writers change the state through the JSON socket (the real CLI) while
//! the agent is killed with SIGKILL at a seeded random moment, cycle after cycle. After each
//! restart over the same state directory and pins:
//!
//! - every change that was acknowledged is there;
//! - every request, acknowledged or not, is there entirely or not at all (a request with two
//!   permissions, a group with its tags, tags on two groups);
//! - the kernel's policy maps, read back (`verify-dataplane`), are what the state compiles to.
//!
//! `FIREWALL_CRASH_CYCLES` (default 100) and `FIREWALL_CRASH_SEED` (default 11) choose the run;
//! `cargo xtask crash` runs a longer one.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use firewall_testkit::{
    agent::{Agent, cli_at},
    random::Rng,
    topology::Topology,
};
use serde_json::{Value, json};

const WRITERS: usize = 4;
/// Requests a writer sends in one cycle at most (keeps a writer's group under its rule quota).
const BURST: u32 = 6;
/// The agent is killed this long (at most) after the writers start.
const KILL_WITHIN_MS: u64 = 200;
const OPTIONS: &[&str] = &["--rules-per-group", "1000"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One mutating request a writer sent, and what became of it.
#[derive(Clone, Debug)]
struct Sent {
    writer: usize,
    n: u32,
    kind: Kind,
    /// A success reply came back.
    acknowledged: bool,
    /// The API answered an error (so it must have changed nothing).
    refused: bool,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Two inbound (or outbound) permissions on the writer's group, described `w<w>-n<n>-k<k>`.
    Authorize { egress: bool },
    /// A group `w<w>-n<n>` created with two tags.
    CreateGroup,
    /// Tag `w<w>-n<n>` on two groups this writer created.
    Tag { groups: [String; 2] },
}

fn label(writer: usize, n: u32) -> String {
    format!("w{writer}-n{n}")
}

/// The CLI arguments of request `n` of `writer`, whose group is `group`; `created` holds the
/// groups its acknowledged `CreateGroup`s made.
fn request(writer: usize, n: u32, group: &str, created: &[String]) -> (Kind, Vec<String>) {
    let name = label(writer, n);
    let kind = match n % 4 {
        0 => Kind::Authorize { egress: false },
        1 => Kind::CreateGroup,
        2 if created.len() >= 2 => Kind::Tag {
            groups: [
                created[created.len() - 2].clone(),
                created[created.len() - 1].clone(),
            ],
        },
        _ => Kind::Authorize { egress: true },
    };
    let args: Vec<String> = match &kind {
        Kind::Authorize { egress } => {
            let permissions: Vec<Value> = (0..2)
                .map(|k| {
                    json!({
                        "IpProtocol": "tcp", "FromPort": 1000 + 2 * n + k, "ToPort": 1000 + 2 * n + k,
                        "IpRanges": [{"CidrIp": format!("10.{writer}.0.0/16"), "Description": format!("{name}-k{k}")}],
                    })
                })
                .collect();
            let verb = if *egress {
                "authorize-security-group-egress"
            } else {
                "authorize-security-group-ingress"
            };
            vec![
                verb.into(),
                "--group-id".into(),
                group.into(),
                "--ip-permissions".into(),
                Value::from(permissions).to_string(),
            ]
        }
        Kind::CreateGroup => {
            let tags = json!([{"ResourceType": "security-group", "Tags": [
                {"Key": "request", "Value": name}, {"Key": "second", "Value": name},
            ]}]);
            vec![
                "create-security-group".into(),
                "--group-name".into(),
                name.clone(),
                "--description".into(),
                name.clone(),
                "--tag-specifications".into(),
                tags.to_string(),
            ]
        }
        Kind::Tag { groups } => vec![
            "create-tags".into(),
            "--resources".into(),
            groups[0].clone(),
            groups[1].clone(),
            "--tags".into(),
            format!("Key={name},Value=1"),
        ],
    };
    (kind, args)
}

/// A writer: requests `first..` until the agent dies, `stop` is set or the burst is over.
fn write(
    socket: PathBuf,
    writer: usize,
    group: String,
    first: u32,
    mut created: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (Vec<Sent>, Vec<String>) {
    let mut sent = Vec::new();
    for n in first..first + BURST {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (kind, args) = request(writer, n, &group, &created);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let answer = cli_at(&socket, &args);
        let (acknowledged, refused) = match &answer {
            Ok(_) => (true, false),
            Err(e) => (false, e.status == 254),
        };
        if let (Kind::CreateGroup, Ok(reply)) = (&kind, &answer) {
            created.push(reply["GroupId"].as_str().expect("GroupId").to_string());
        }
        sent.push(Sent {
            writer,
            n,
            kind,
            acknowledged,
            refused,
        });
        if answer.is_err() && !refused {
            break; // the agent is gone
        }
    }
    (sent, created)
}

/// Every `Description` in a group's permissions of one direction.
fn descriptions(group: &Value, direction: &str) -> Vec<String> {
    let mut found = Vec::new();
    for permission in group[direction].as_array().into_iter().flatten() {
        for range in permission["IpRanges"].as_array().into_iter().flatten() {
            if let Some(d) = range["Description"].as_str() {
                found.push(d.to_string());
            }
        }
    }
    found
}

fn has_tag(group: &Value, key: &str, value: &str) -> bool {
    group["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["Key"] == key && t["Value"] == value)
}

/// How many of a request's effects the described groups show, out of how many it has.
fn effects(sent: &Sent, groups: &[Value], own_group: &str) -> (usize, usize) {
    let name = label(sent.writer, sent.n);
    let by_id = |id: &str| groups.iter().find(|g| g["GroupId"] == id);
    match &sent.kind {
        Kind::Authorize { egress } => {
            let direction = if *egress {
                "IpPermissionsEgress"
            } else {
                "IpPermissions"
            };
            let held = by_id(own_group)
                .map(|g| descriptions(g, direction))
                .unwrap_or_default();
            let present = (0..2)
                .filter(|k| held.contains(&format!("{name}-k{k}")))
                .count();
            (present, 2)
        }
        Kind::CreateGroup => match groups.iter().find(|g| g["GroupName"] == name.as_str()) {
            None => (0, 3),
            Some(g) => (
                1 + usize::from(has_tag(g, "request", &name))
                    + usize::from(has_tag(g, "second", &name)),
                3,
            ),
        },
        Kind::Tag { groups: tagged } => {
            let present = tagged
                .iter()
                .filter(|id| by_id(id).is_some_and(|g| has_tag(g, &name, "1")))
                .count();
            (present, 2)
        }
    }
}

/// The checks after a restart (it panics at the first request that fails them).
fn check(agent: &Agent, sent: &[Sent], own_groups: &[String], cycle: u64) {
    let described = agent.cli(&["describe-security-groups"]);
    let groups = described["SecurityGroups"]
        .as_array()
        .expect("SecurityGroups");
    for request in sent {
        let (present, all) = effects(request, groups, &own_groups[request.writer]);
        assert!(
            present == 0 || present == all,
            "cycle {cycle}: request half-applied ({present} of {all} effects): {request:?}"
        );
        if request.acknowledged {
            assert_eq!(
                present, all,
                "cycle {cycle}: an acknowledged change is lost: {request:?}"
            );
        }
        if request.refused {
            assert_eq!(
                present, 0,
                "cycle {cycle}: a refused request changed something: {request:?}"
            );
        }
    }
    let verified = agent.cli(&["verify-dataplane"]);
    assert_eq!(
        verified["InSync"], true,
        "cycle {cycle}: the kernel's maps are not the compiled state: {verified}"
    );
    assert_eq!(verified["Interfaces"], 2, "{verified}");
}

#[test]
fn kill_9_under_concurrent_writers_loses_no_acknowledged_change_and_half_applies_none() {
    let cycles = env_or("FIREWALL_CRASH_CYCLES", 100);
    let seed = env_or("FIREWALL_CRASH_SEED", 11);
    let mut rng = Rng::new(seed);
    let topo = Topology::new(&["172.31.16.10", "172.31.17.10"]);
    let mut agent = Agent::start_with(&topo.host, OPTIONS);
    let own_groups: Vec<String> = (0..WRITERS)
        .map(|w| agent.create_group(&format!("writer-{w}")))
        .collect();
    let group_args: Vec<&str> = own_groups.iter().map(String::as_str).collect();
    for workload in &topo.workloads {
        agent.run_instance(workload, &group_args);
    }
    let started = Instant::now();
    let mut sent: Vec<Sent> = Vec::new();
    let mut created: Vec<Vec<String>> = vec![Vec::new(); WRITERS];
    let mut next: Vec<u32> = vec![0; WRITERS];
    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (socket, group, first, made, stop) = (
                    agent.socket.clone(),
                    own_groups[w].clone(),
                    next[w],
                    created[w].clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || write(socket, w, group, first, made, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.below(KILL_WITHIN_MS)));
        let dir = agent.kill9();
        stop.store(true, Ordering::Relaxed);
        for (w, writer) in writers.into_iter().enumerate() {
            let (requests, made) = writer.join().expect("writer");
            next[w] += requests.len() as u32;
            created[w] = made;
            sent.extend(requests);
        }
        agent = Agent::start_in_with(&topo.host, dir, OPTIONS);
        check(&agent, &sent, &own_groups, cycle);
    }
    let acknowledged = sent.iter().filter(|s| s.acknowledged).count();
    let refused = sent.iter().filter(|s| s.refused).count();
    println!(
        "crash: seed {seed}, {cycles} kill -9 cycles in {:.1?}, {WRITERS} writers: {} requests, \
         {acknowledged} acknowledged (all present), {} unanswered (none half-applied), {refused} \
         refused; acknowledged changes lost: 0",
        started.elapsed(),
        sent.len(),
        sent.len() - acknowledged - refused,
    );
    assert!(acknowledged > 0);
}

//! The flow-log writer (I/O, outside the model): a tokio task reads the kernel's `FLOW_EVENTS`
//! ring buffer, aggregates the events per flow (`aggregate`), and every flush period turns the
//! interval's flows into records, written in each covering flow log's format (`format`) to its
//! file (appended) or to standard output.
//!
//! Files stay in the operator's flow-log directory (`serve --flow-log-dir`, default
//! `<state-dir>/flow-logs`), one subdirectory per account: the model checks a destination's
//! text (`model::flow_log::file_name_in`); here, with the disk, [`check_new`] refuses a new flow
//! log whose file a symbolic link would lead out (before the change is saved), and every flush
//! opens the file beneath its account's directory ([`confined`]), so a link swapped in later is
//! refused too (logged; nothing is written).
//!
//! The flush period is 60 s, the shortest `MaxAggregationInterval` (AWS's is a maximum: a record
//! never spans more than it); `serve --flow-log-flush-interval` shortens it (tests).

pub mod aggregate;
pub mod confined;
pub mod format;

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use firewall_common::FlowEvent;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::Mutex,
};

use crate::{
    agent::Agent,
    api::{ApiError, ApiResult, Scope},
    dataplane::{self, Dataplane, Probe},
    model::{State, flow_log, state::FlowLogDir},
};
use aggregate::{Aggregator, Record, Sources};
use format::Owner;

/// The default flush period: the shortest aggregation interval AWS offers.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(60);

/// Where a flow log's lines go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// `name` (relative, no `..`) in `account`'s flow-log directory.
    File {
        account: String,
        name: String,
    },
    Stdout,
}

/// The agent's flow-log configuration (`serve --flow-log-dir`, `--flow-logs-per-account`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where files go, one subdirectory per account (created 0700 when first written).
    pub dir: FlowLogDir,
    /// Flow logs an account may have, all its regions together (`FlowLogsLimitExceeded`).
    pub per_account: usize,
    /// Bytes the files of an account's directory may hold together: past it, records are
    /// dropped (and logged) until the files shrink (rotated, removed), so no API caller can fill
    /// the host's disk.
    pub bytes_per_account: u64,
}

impl Config {
    /// `serve`'s default quota. AWS has no account-wide one (its 50 flow logs are per network
    /// interface, subnet or VPC); this one bounds the files one account's callers can have the
    /// agent append to.
    pub const PER_ACCOUNT: usize = 50;

    /// `serve`'s default byte budget of an account's directory: 1 GiB.
    pub const BYTES_PER_ACCOUNT: u64 = 1 << 30;

    /// `serve`'s: `--flow-log-dir` (default `<state-dir>/flow-logs`) made if missing (0700),
    /// as its canonical path (what an absolute `LogDestination` must start with).
    pub fn from_args(args: &crate::agent::ServeArgs) -> anyhow::Result<Config> {
        use anyhow::Context as _;
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = args
            .flow_log_dir
            .clone()
            .unwrap_or_else(|| args.state_dir.join("flow-logs"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the flow-log directory {}", dir.display()))?;
        let canonical = dir
            .canonicalize()
            .with_context(|| format!("resolving the flow-log directory {}", dir.display()))?;
        let text = canonical.to_str().with_context(|| {
            format!(
                "the flow-log directory {} is not UTF-8",
                canonical.display()
            )
        })?;
        Ok(Config {
            dir: FlowLogDir::new(text).map_err(anyhow::Error::msg)?,
            per_account: args.flow_logs_per_account,
            bytes_per_account: args.flow_log_bytes_per_account,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: FlowLogDir::default(),
            per_account: Config::PER_ACCOUNT,
            bytes_per_account: Config::BYTES_PER_ACCOUNT,
        }
    }
}

/// Checks the flow logs `next` adds to its scope (`states` holds every scope as it is), before
/// the change is saved: the account's flow logs, all regions together, stay within
/// `config.per_account` (`FlowLogsLimitExceeded`), and nothing on disk leads a new file out of
/// the account's directory (a symbolic link, a non-directory on the way, a file that is not a
/// regular one with a single link: `InvalidParameterValue`). Creates nothing.
pub fn check_new(states: &BTreeMap<Scope, State>, next: &State, config: &Config) -> ApiResult<()> {
    let before = states.get(&next.scope());
    let added: Vec<&crate::model::FlowLog> = next
        .flow_logs
        .values()
        .filter(|f| before.is_none_or(|b| !b.flow_logs.contains_key(&f.id)))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let elsewhere: usize = states
        .iter()
        .filter(|(scope, _)| scope.account_id == next.account_id && **scope != next.scope())
        .map(|(_, state)| state.flow_logs.len())
        .sum();
    let limit = config.per_account;
    if elsewhere + next.flow_logs.len() > limit {
        return Err(ApiError::new(
            "FlowLogsLimitExceeded",
            format!(
                "You've reached the limit on the number of flow logs you can create: {limit} per \
                 account (serve --flow-logs-per-account)."
            ),
        ));
    }
    let account_dir = config.dir.of_account(&next.account_id);
    for flow_log in added {
        let Some(destination) = &flow_log.destination else {
            continue;
        };
        let name = flow_log::file_name_in(&account_dir, destination)?;
        confined::check(config.dir.root().as_ref(), &next.account_id, &name).map_err(|why| {
            ApiError::invalid_value(format!(
                "LogDestination '{destination}' cannot be written: {why}. A flow-log file is a \
                 name in the account's flow-log directory {account_dir}/, which it must not lead \
                 out of."
            ))
        })?;
    }
    Ok(())
}

/// Starts the writer on the agent's ring buffer (none without a kernel data plane).
pub fn spawn(agent: Arc<Mutex<Agent>>, events: RingBuf<MapData>, period: Duration) {
    let aggregator = Arc::new(std::sync::Mutex::new(Aggregator::default()));
    let reader = aggregator.clone();
    tokio::spawn(async move {
        // SAFETY: the ring buffer owns its map fd, which stays open and the same while the
        // AsyncFd owns the ring buffer.
        let mut fd = match unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) } {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "flow logs: the ring buffer cannot be polled");
                return;
            }
        };
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring = guard.get_inner_mut();
            let mut queue = reader.lock().expect("aggregator lock");
            while let Some(item) = ring.next() {
                if item.len() >= size_of::<FlowEvent>() {
                    // SAFETY: the kernel wrote a whole FlowEvent (plain data); read unaligned.
                    let event =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<FlowEvent>()) };
                    queue.push(event);
                }
            }
            drop(queue);
            guard.clear_ready();
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let (lines, root, budget) = {
                let mut agent = agent.lock().await;
                let mut aggregator = aggregator.lock().expect("aggregator lock");
                let config = agent.flow_log_config();
                let (root, budget) = (PathBuf::from(config.dir.root()), config.bytes_per_account);
                (agent.flow_log_lines(&mut aggregator), root, budget)
            };
            write(&root, budget, lines).await;
        }
    });
}

/// The bytes the regular files under `dir` hold (links not followed).
fn usage(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.path().symlink_metadata() {
            Ok(meta) if meta.is_dir() => usage(&entry.path()),
            Ok(meta) if meta.is_file() => meta.len(),
            _ => 0,
        })
        .sum()
}

/// Appends each destination's lines (a file is opened beneath its account's directory under
/// `root`, appended to and closed each flush) while the account's files hold at most `budget`
/// bytes; a file that cannot be, or may not be, written is logged.
async fn write(root: &std::path::Path, budget: u64, lines: BTreeMap<Destination, Vec<String>>) {
    let mut used: BTreeMap<String, u64> = BTreeMap::new();
    for (destination, lines) in lines {
        let mut text = lines.join("\n");
        text.push('\n');
        if let Destination::File { account, .. } = &destination {
            let used = used
                .entry(account.clone())
                .or_insert_with(|| usage(&root.join(account)));
            if *used + text.len() as u64 > budget {
                tracing::warn!(
                    destination = ?destination,
                    budget,
                    records = lines.len(),
                    "flow-log records dropped: the account's files hold their byte budget \
                     (serve --flow-log-bytes-per-account); rotate or remove them"
                );
                continue;
            }
            *used += text.len() as u64;
        }
        let result = match &destination {
            Destination::Stdout => std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .map_err(|e| e.to_string()),
            Destination::File { account, name } => confined::open_append(root, account, name)
                .map_err(|refused| refused.to_string())
                .and_then(|mut f| f.write_all(text.as_bytes()).map_err(|e| e.to_string())),
        };
        if let Err(e) = result {
            tracing::warn!(destination = ?destination, root = %root.display(), error = %e, "flow-log records not written");
        }
    }
}

/// The running system as the aggregation sees it.
struct Live<'a> {
    dataplane: &'a dyn Dataplane,
    interfaces: &'a BTreeMap<u32, String>,
}

impl Sources for Live<'_> {
    fn tracked(&self, key: &firewall_common::CtKey) -> Option<firewall_common::CtValue> {
        self.dataplane.tracked_flow(key)
    }

    fn rule_for(&self, event: &FlowEvent) -> Option<String> {
        let interface = self.interfaces.get(&event.ifindex)?;
        let direction = firewall_common::Direction::from_u8(event.direction)?;
        let v4 = event.family == firewall_common::family::IPV4;
        let ip = |b: [u8; 16]| -> std::net::IpAddr {
            if v4 {
                [b[0], b[1], b[2], b[3]].into()
            } else {
                b.into()
            }
        };
        let (local, peer, port) = match direction {
            firewall_common::Direction::Inbound => (event.dst, event.src, event.dport),
            firewall_common::Direction::Outbound => (event.src, event.dst, event.dport),
        };
        let port = match event.proto {
            firewall_common::proto::ICMP | firewall_common::proto::ICMPV6 => {
                u16::from(event.icmp_type) << 8 | u16::from(event.icmp_code)
            }
            firewall_common::proto::TCP | firewall_common::proto::UDP => u16::from_be_bytes(port),
            _ => 0,
        };
        let probe = Probe {
            direction,
            local: ip(local),
            peer: ip(peer),
            proto: event.proto,
            port,
            other_port: None,
        };
        match self.dataplane.lookup(interface, &probe).ok()? {
            dataplane::Answer::Rule(slot) => self.dataplane.rule_of_slot(slot),
            _ => None,
        }
    }
}

/// The flush: the aggregated records, as lines of every flow log that covers their interface
/// and traffic type, by destination.
pub fn lines(
    states: &BTreeMap<Scope, State>,
    dataplane: &dyn Dataplane,
    aggregator: &mut Aggregator,
    dir: &FlowLogDir,
) -> BTreeMap<Destination, Vec<String>> {
    let mut interfaces = BTreeMap::new();
    for state in states.values() {
        for (eni, _) in state.enforced() {
            if state.flow_logs.values().any(|f| f.covers(eni))
                && let Ok(index) = dataplane::ifindex(&eni.host_interface)
            {
                interfaces.insert(index, eni.host_interface.clone());
            }
        }
    }
    let now = dataplane::monotonic_ns();
    let records: Vec<Record> = aggregator.flush(
        &Live {
            dataplane,
            interfaces: &interfaces,
        },
        now,
    );
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let offset = wall - i128::from(now);
    let mut out: BTreeMap<Destination, Vec<String>> = BTreeMap::new();
    for record in &records {
        let Some(interface) = interfaces.get(&record.ifindex) else {
            continue;
        };
        for state in states.values() {
            let Some((eni, instance)) = state
                .enforced()
                .find(|(eni, _)| &eni.host_interface == interface)
            else {
                continue;
            };
            let owner = Owner {
                account_id: &state.account_id,
                region: &state.region,
                interface_id: &eni.id,
                instance_id: &instance.id,
                vpc_id: &instance.vpc_id,
            };
            for flow_log in state.flow_logs.values().filter(|f| f.covers(eni)) {
                let wanted = if record.accepted {
                    flow_log.logs_accepted()
                } else {
                    flow_log.logs_rejected()
                };
                if !wanted {
                    continue;
                }
                let destination = match &flow_log.destination {
                    None => Destination::Stdout,
                    Some(given) => match flow_log::file_of(dir, &state.account_id, flow_log) {
                        Some(name) => Destination::File {
                            account: state.account_id.clone(),
                            name,
                        },
                        None => {
                            // Stored before `--flow-log-dir` moved (or before files were
                            // confined to it): never written outside it.
                            tracing::warn!(flow_log = %flow_log.id, destination = %given, dir = %dir.of_account(&state.account_id), "flow-log destination outside the account's flow-log directory: records not written");
                            continue;
                        }
                    },
                };
                out.entry(destination).or_default().push(format::line(
                    &flow_log.log_format,
                    record,
                    &owner,
                    offset,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The agent's checks of a new flow log, through `Agent::handle` on a real store and real
    //! files: the account-wide quota, and links on disk leading out refused before anything is
    //! saved.

    use std::{os::unix::fs::symlink, path::PathBuf};

    use firewall_common::CtTimeouts;
    use serde_json::{Value, json};

    use super::Config;
    use crate::{
        agent::Agent,
        api::ApiError,
        dataplane::MemoryDataplane,
        front::json,
        model::{Quotas, state::FlowLogDir},
        store::RedbStore,
    };

    const ACCOUNT: &str = "123456789012";

    /// A temporary directory: the store, the flow-log directory and an `outside` beside it.
    struct Dirs(PathBuf);

    impl Dirs {
        fn new(name: &str) -> Dirs {
            let path =
                std::env::temp_dir().join(format!("fw-flowlogs-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(path.join("flow-logs")).unwrap();
            std::fs::create_dir_all(path.join("outside")).unwrap();
            Dirs(path)
        }
        fn account(&self) -> PathBuf {
            self.0.join("flow-logs").join(ACCOUNT)
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn agent(dirs: &Dirs, per_account: usize) -> Agent {
        let store = RedbStore::open(&dirs.0.join("state.redb")).unwrap();
        let dataplane = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
        let dir = FlowLogDir::new(dirs.0.join("flow-logs").to_str().unwrap()).unwrap();
        Agent::new(Box::new(store), Box::new(dataplane), Quotas::default())
            .unwrap()
            .with_flow_logs(Config {
                dir,
                per_account,
                ..Config::default()
            })
    }

    fn call(agent: &mut Agent, region: &str, action: &str, body: Value) -> Result<Value, ApiError> {
        let call = json::decode(
            action,
            Some(region),
            Some(ACCOUNT),
            body.to_string().as_bytes(),
        )?;
        agent.handle(call)
    }

    /// Creates a flow log of the region's default VPC to `destination`.
    fn create(agent: &mut Agent, region: &str, destination: &str) -> Result<Value, ApiError> {
        let vpcs = call(agent, region, "DescribeVpcs", json!({}))?;
        let vpc = vpcs["Vpcs"][0]["VpcId"].as_str().unwrap().to_string();
        call(
            agent,
            region,
            "CreateFlowLogs",
            json!({"ResourceIds": [vpc], "ResourceType": "VPC", "TrafficType": "ALL",
                   "LogDestinationType": "file", "LogDestination": destination}),
        )
    }

    fn count(agent: &mut Agent, region: &str) -> usize {
        let out = call(agent, region, "DescribeFlowLogs", json!({})).unwrap();
        out["FlowLogs"].as_array().unwrap().len()
    }

    #[test]
    fn an_account_has_at_most_its_quota_of_flow_logs_all_regions_together() {
        let dirs = Dirs::new("quota");
        let mut agent = agent(&dirs, 2);
        create(&mut agent, "us-east-1", "a.log").unwrap();
        create(&mut agent, "eu-west-1", "b.log").unwrap();
        let refused = create(&mut agent, "us-east-1", "c.log").unwrap_err();
        assert_eq!(refused.code, "FlowLogsLimitExceeded", "{refused}");
        assert!(refused.message.contains("2 per account"), "{refused}");
        assert_eq!(count(&mut agent, "us-east-1"), 1);
        // Deleting one makes room again.
        let out = call(&mut agent, "eu-west-1", "DescribeFlowLogs", json!({})).unwrap();
        let id = out["FlowLogs"][0]["FlowLogId"]
            .as_str()
            .unwrap()
            .to_string();
        call(
            &mut agent,
            "eu-west-1",
            "DeleteFlowLogs",
            json!({"FlowLogIds": [id]}),
        )
        .unwrap();
        create(&mut agent, "us-east-1", "c.log").unwrap();
        assert_eq!(count(&mut agent, "us-east-1"), 2);
    }

    #[test]
    fn a_link_in_the_account_directory_leading_out_is_refused_and_nothing_is_saved() {
        let dirs = Dirs::new("links");
        let mut agent = agent(&dirs, 50);
        std::fs::create_dir_all(dirs.account()).unwrap();
        let passwd = dirs.0.join("outside/passwd");
        std::fs::write(&passwd, "root:x:0:0\n").unwrap();
        symlink(&passwd, dirs.account().join("web.log")).unwrap();
        symlink(dirs.0.join("outside"), dirs.account().join("vpc")).unwrap();
        for (destination, why) in [("web.log", "leading out"), ("vpc/all.log", "leading out")] {
            let refused = create(&mut agent, "us-east-1", destination).unwrap_err();
            assert_eq!(refused.code, "InvalidParameterValue", "{refused}");
            assert!(refused.message.contains(why), "{destination}: {refused}");
            assert!(
                refused.message.contains(dirs.account().to_str().unwrap()),
                "names the directory: {refused}"
            );
        }
        assert_eq!(count(&mut agent, "us-east-1"), 0);
        assert_eq!(std::fs::read_to_string(&passwd).unwrap(), "root:x:0:0\n");
        assert_eq!(
            std::fs::read_dir(dirs.0.join("outside")).unwrap().count(),
            1
        );
        // The same names elsewhere in the directory are fine, and checking creates nothing.
        create(&mut agent, "us-east-1", "web2.log").unwrap();
        assert!(!dirs.account().join("web2.log").exists());
    }
}

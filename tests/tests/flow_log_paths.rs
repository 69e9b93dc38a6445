//! Flow-log files stay in the directory the operator chose (`serve --flow-log-dir`), in the
//! caller's account's own subdirectory: `LogDestination` is a name there (`web.log`,
//! `vpc/all.log`) or an absolute path inside it, and
//! - `..`, absolute paths elsewhere (`/etc/passwd`) and another account's directory are refused
//!   with `InvalidParameterValue` naming the account's directory, creating nothing;
//! - a symbolic link planted in the account's directory that leads out is refused at create;
//! - a log file swapped for a link to a file outside after the flow log was created is not
//!   written through: the outside file stays as it was, and the agent logs the refusal;
//! - an account has at most `--flow-logs-per-account` flow logs (`FlowLogsLimitExceeded`).
//!
//! Through the agent's CLI (the default account) and the AWS CLI on the EC2 endpoint (the test
//! key's account), with real files and real traffic.

use std::{
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    time::Duration,
};

use firewall_testkit::{
    agent::Agent,
    aws::{self, start_agent_with},
    netns::Netns,
    shell::unique,
    topology::Topology,
    traffic::{eventually, tcp_round_trip},
};
use serde_json::{Value, json};

/// The account the agent's own CLI acts in.
const CLI_ACCOUNT: &str = "000000000000";
const SHORT: Duration = Duration::from_millis(700);
/// Records are written every second in these tests (`--flow-log-flush-interval 1`).
const WRITTEN_WITHIN: Duration = Duration::from_secs(15);

/// The operator's flow-log directory and, beside it, a directory standing for the rest of the
/// host (with a `passwd` in it); removed on drop.
struct Dirs {
    base: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let base = std::env::temp_dir().join(unique("fw-flowpaths-"));
        std::fs::create_dir_all(base.join("flows")).expect("flow-log directory");
        std::fs::create_dir_all(base.join("outside")).expect("outside directory");
        std::fs::write(base.join("outside/passwd"), PASSWD).expect("passwd");
        // The agent names the directory by its canonical path.
        Dirs {
            base: base.canonicalize().expect("canonical"),
        }
    }
    /// `--flow-log-dir`.
    fn flows(&self) -> PathBuf {
        self.base.join("flows")
    }
    fn account(&self, account: &str) -> PathBuf {
        self.flows().join(account)
    }
    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }
    fn passwd(&self) -> PathBuf {
        self.outside().join("passwd")
    }
    /// `serve` options: this flow-log directory, and more.
    fn options<'a>(&'a self, flows: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut options = vec!["--flow-log-dir", flows];
        options.extend_from_slice(more);
        options
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n";

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// Every entry under `dir`, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(
                tree(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
        out.push(name);
    }
    out.sort();
    out
}

fn default_vpc(agent: &Agent) -> String {
    agent.cli(&["describe-vpcs"])["Vpcs"][0]["VpcId"]
        .as_str()
        .expect("VpcId")
        .to_string()
}

fn eni_of(agent: &Agent, instance: &str) -> String {
    let out = agent.cli(&["describe-instances", "--instance-ids", instance]);
    out["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
        .as_str()
        .expect("an eni- ID")
        .to_string()
}

/// `create-flow-logs` arguments: `resource`'s rejected traffic (`${dstport} ${action}`) to the
/// file `destination`.
fn to_file<'a>(resource_type: &'a str, resource: &'a str, destination: &'a str) -> Vec<&'a str> {
    vec![
        "create-flow-logs",
        "--resource-type",
        resource_type,
        "--resource-ids",
        resource,
        "--traffic-type",
        "REJECT",
        "--log-destination-type",
        "file",
        "--log-destination",
        destination,
        "--log-format",
        "${dstport} ${action}",
    ]
}

/// The same through the AWS CLI (`aws ec2 …`).
fn aws_to_file<'a>(vpc: &'a str, destination: &'a str) -> Vec<&'a str> {
    let mut args = vec!["ec2"];
    args.extend(to_file("VPC", vpc, destination));
    args
}

fn created(out: &Value) -> String {
    assert_eq!(out["Unsuccessful"], json!([]), "{out}");
    out["FlowLogIds"][0].as_str().expect("a fl- ID").to_string()
}

/// The destinations `describe-flow-logs` echoes.
fn echoed(described: &Value) -> Vec<String> {
    let mut all: Vec<String> = described["FlowLogs"]
        .as_array()
        .expect("FlowLogs")
        .iter()
        .map(|l| l["LogDestination"].as_str().unwrap().to_string())
        .collect();
    all.sort();
    all
}

/// The destination ports of the REJECT records in `path` so far.
fn rejected_ports(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_suffix(" REJECT").map(str::to_string))
        .collect()
}

#[test]
fn names_leading_out_of_the_accounts_directory_are_refused_through_the_cli_creating_nothing() {
    let dirs = Dirs::new();
    let ns = Netns::new("fwp");
    let flows = text(&dirs.flows());
    let agent = Agent::start_with(&ns, &dirs.options(&flows, &[]));
    let vpc = default_vpc(&agent);
    let account_dir = text(&dirs.account(CLI_ACCOUNT));
    let etc_passwd = std::fs::metadata("/etc/passwd").expect("/etc/passwd");
    for destination in [
        "../x.log".to_string(),
        "vpc/../../x.log".to_string(),
        "/etc/passwd".to_string(),
        "/tmp/x/../y/z.log".to_string(),
        text(&dirs.passwd()),
        // Another account's directory, relative or absolute, and the directory above.
        "../123456789012/x.log".to_string(),
        text(&dirs.account("123456789012").join("x.log")),
        format!("{flows}/x.log"),
        format!("{account_dir}/../x.log"),
    ] {
        let refused = agent
            .try_cli(&to_file("VPC", &vpc, &destination))
            .expect_err(&destination);
        assert_eq!(
            refused.code(),
            "InvalidParameterValue",
            "{destination}: {}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains(&format!("{account_dir}/")),
            "{destination}: the message names the account's directory: {}",
            refused.stderr
        );
    }
    assert_eq!(agent.cli(&["describe-flow-logs"])["FlowLogs"], json!([]));
    assert_eq!(tree(&dirs.flows()), Vec::<String>::new(), "nothing created");
    assert_eq!(tree(&dirs.outside()), ["passwd"]);
    assert_eq!(std::fs::read_to_string(dirs.passwd()).unwrap(), PASSWD);
    let after = std::fs::metadata("/etc/passwd").expect("/etc/passwd");
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (etc_passwd.len(), etc_passwd.modified().unwrap())
    );
}

#[test]
fn records_go_to_a_name_in_the_accounts_directory_or_an_absolute_path_inside_it() {
    let dirs = Dirs::new();
    let topo = Topology::new(&["172.31.60.10", "172.31.61.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let (agent, eni) = client_and_server(&dirs, &topo, &[]);
    let account_dir = dirs.account(CLI_ACCOUNT);
    let absolute = text(&account_dir.join("abs.log"));
    created(&agent.cli(&to_file("NetworkInterface", &eni, "vpc/rejects.log")));
    created(&agent.cli(&to_file("NetworkInterface", &eni, &absolute)));
    // Echoed as given.
    assert_eq!(
        echoed(&agent.cli(&["describe-flow-logs"])),
        [absolute.clone(), "vpc/rejects.log".to_string()]
    );

    assert!(!tcp_round_trip(&a.ns, b.ip, 8081, SHORT), "8081 is denied");
    let relative = account_dir.join("vpc/rejects.log");
    let written = eventually(WRITTEN_WITHIN, || {
        rejected_ports(&relative).contains(&"8081".to_string())
            && rejected_ports(&account_dir.join("abs.log")).contains(&"8081".to_string())
    });
    assert!(
        written.is_some(),
        "{:?}\nagent log:\n{}",
        tree(&dirs.flows()),
        agent.log()
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&account_dir), 0o700, "the account's directory");
    assert_eq!(mode(&account_dir.join("vpc")), 0o700, "a name's directory");
    assert_eq!(mode(&relative), 0o600);
    assert_eq!(mode(&account_dir.join("abs.log")), 0o600);
    assert_eq!(
        tree(&dirs.flows()),
        [
            CLI_ACCOUNT.to_string(),
            format!("{CLI_ACCOUNT}/abs.log"),
            format!("{CLI_ACCOUNT}/vpc"),
            format!("{CLI_ACCOUNT}/vpc/rejects.log"),
        ]
    );
}

#[test]
fn a_link_planted_in_the_accounts_directory_leading_out_is_refused_at_create() {
    let dirs = Dirs::new();
    let ns = Netns::new("fwp");
    let flows = text(&dirs.flows());
    let agent = Agent::start_with(&ns, &dirs.options(&flows, &[]));
    let vpc = default_vpc(&agent);
    let account_dir = dirs.account(CLI_ACCOUNT);
    std::fs::create_dir_all(&account_dir).unwrap();
    symlink(dirs.passwd(), account_dir.join("web.log")).unwrap();
    symlink(dirs.outside(), account_dir.join("vpc")).unwrap();
    // Up to the flow-log directory, and so to every other account's.
    symlink("..", account_dir.join("up")).unwrap();
    for destination in ["web.log", "vpc/all.log", "up/123456789012/x.log"] {
        let refused = agent
            .try_cli(&to_file("VPC", &vpc, destination))
            .expect_err(destination);
        assert_eq!(
            refused.code(),
            "InvalidParameterValue",
            "{destination}: {}",
            refused.stderr
        );
        assert!(
            refused.stderr.contains("leading out") && refused.stderr.contains(&text(&account_dir)),
            "{destination}: {}",
            refused.stderr
        );
    }
    assert_eq!(agent.cli(&["describe-flow-logs"])["FlowLogs"], json!([]));
    assert_eq!(tree(&dirs.outside()), ["passwd"]);
    assert_eq!(std::fs::read_to_string(dirs.passwd()).unwrap(), PASSWD);
    assert_eq!(
        tree(&dirs.flows()),
        [
            CLI_ACCOUNT,
            "000000000000/up",
            "000000000000/vpc",
            "000000000000/web.log"
        ]
    );
}

#[test]
fn a_log_file_swapped_for_a_link_to_a_file_outside_is_not_written_through() {
    let dirs = Dirs::new();
    let topo = Topology::new(&["172.31.62.10", "172.31.63.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let (agent, eni) = client_and_server(&dirs, &topo, &[]);
    created(&agent.cli(&to_file("NetworkInterface", &eni, "web.log")));
    // Another flow log of the same traffic, which shows the flushes go on.
    created(&agent.cli(&to_file("NetworkInterface", &eni, "control.log")));
    let account_dir = dirs.account(CLI_ACCOUNT);
    let (web, control) = (account_dir.join("web.log"), account_dir.join("control.log"));
    assert!(!tcp_round_trip(&a.ns, b.ip, 8081, SHORT), "8081 is denied");
    let written = eventually(WRITTEN_WITHIN, || {
        rejected_ports(&web).contains(&"8081".to_string())
    });
    assert!(written.is_some(), "agent log:\n{}", agent.log());

    std::fs::remove_file(&web).unwrap();
    symlink(dirs.passwd(), &web).unwrap();
    assert!(!tcp_round_trip(&a.ns, b.ip, 8082, SHORT), "8082 is denied");
    let refused = eventually(WRITTEN_WITHIN, || {
        rejected_ports(&control).contains(&"8082".to_string())
            && agent
                .log()
                .lines()
                .any(|l| l.contains("flow-log records not written") && l.contains("web.log"))
    });
    assert!(
        refused.is_some(),
        "the flush after the swap is logged as refused; agent log:\n{}",
        agent.log()
    );
    assert_eq!(
        std::fs::read_to_string(dirs.passwd()).unwrap(),
        PASSWD,
        "the file outside is unchanged"
    );
    assert_eq!(std::fs::read_link(&web).unwrap(), dirs.passwd());
    assert_eq!(tree(&dirs.outside()), ["passwd"]);
}

#[test]
fn through_the_aws_cli_a_key_reaches_only_its_accounts_directory_within_the_quota() {
    let dirs = Dirs::new();
    let ns = Netns::new("fwa");
    let flows = text(&dirs.flows());
    let (_agent, aws) = start_agent_with(
        &ns,
        &dirs.options(&flows, &["--flow-logs-per-account", "2"]),
    );
    let vpc = aws.json(&["ec2", "describe-vpcs"])["Vpcs"][0]["VpcId"]
        .as_str()
        .expect("VpcId")
        .to_string();
    let account_dir = text(&dirs.account(aws::ACCOUNT_ID));
    for destination in [
        "../x.log".to_string(),
        "/etc/passwd".to_string(),
        "/tmp/x/../y/z.log".to_string(),
        // The default account's directory, relative or absolute.
        format!("../{CLI_ACCOUNT}/x.log"),
        text(&dirs.account(CLI_ACCOUNT).join("x.log")),
    ] {
        let refused = aws.fails("InvalidParameterValue", &aws_to_file(&vpc, &destination));
        assert!(
            refused.stderr.contains(&format!("{account_dir}/")),
            "{destination}: the message names the account's directory: {refused}"
        );
    }
    let absolute = format!("{account_dir}/abs.log");
    created(&aws.json(&aws_to_file(&vpc, "web.log")));
    created(&aws.json(&aws_to_file(&vpc, &absolute)));
    assert_eq!(
        echoed(&aws.json(&["ec2", "describe-flow-logs"])),
        [absolute, "web.log".to_string()]
    );
    let over = aws.fails("FlowLogsLimitExceeded", &aws_to_file(&vpc, "third.log"));
    assert!(over.stderr.contains("2 per account"), "{over}");
    assert_eq!(tree(&dirs.outside()), ["passwd"]);
    assert!(
        !dirs.account(CLI_ACCOUNT).exists(),
        "{:?}",
        tree(&dirs.flows())
    );
}

#[test]
fn an_accounts_files_stop_growing_at_their_byte_budget() {
    let dirs = Dirs::new();
    let topo = Topology::new(&["172.31.64.10", "172.31.65.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let (agent, eni) = client_and_server(&dirs, &topo, &["--flow-log-bytes-per-account", "100"]);
    created(&agent.cli(&to_file("NetworkInterface", &eni, "web.log")));
    let log = dirs.account(CLI_ACCOUNT).join("web.log");
    let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    assert!(!tcp_round_trip(&a.ns, b.ip, 9000, SHORT));
    assert!(
        eventually(WRITTEN_WITHIN, || size() > 0).is_some(),
        "a first record: {}",
        agent.log()
    );
    for port in 9001..9031 {
        tcp_round_trip(&a.ns, b.ip, port, Duration::from_millis(30));
    }
    let dropped = eventually(WRITTEN_WITHIN, || agent.log().contains("byte budget"));
    assert!(
        dropped.is_some(),
        "{:?}\n{}",
        std::fs::read_to_string(&log),
        agent.log()
    );
    assert!(size() <= 100, "the file holds {} bytes", size());
}

/// An agent flushing every second, A in a `client` group and B in a `server` group that lets
/// nothing in: the agent and B's interface (`eni-…`).
fn client_and_server(dirs: &Dirs, topo: &Topology, more: &[&str]) -> (Agent, String) {
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let flows = text(&dirs.flows());
    let mut options = vec!["--flow-log-flush-interval", "1"];
    options.extend_from_slice(more);
    let agent = Agent::start_with(&topo.host, &dirs.options(&flows, &options));
    let [client, server] = agent.create_groups(["client", "server"]);
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&server]);
    let eni = eni_of(&agent, &b_id);
    (agent, eni)
}

//! The agent binary run as a process inside a namespace, with its own state directory, socket
//! and bpffs (unmounted on drop, so nothing stays attached), and its CLI: JSON results, AWS
//! error codes, restarts and SIGKILL.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    netns::Netns,
    podman::Podman,
    shell::{sh, unique},
    topology::Workload,
};

/// The agent binary under test (built by `cargo xtask test`), as an absolute path without `..`
/// (a container mounts it at that same path).
pub fn agent_binary() -> PathBuf {
    let binary = std::env::var_os("FIREWALL_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/firewall-agent")
        });
    binary.canonicalize().unwrap_or(binary)
}

/// The agent binary of the previous map layout (`--features previous-layout`, built by `cargo
/// xtask test` into `target/previous-layout/`): the starting point of the upgrade test.
pub fn previous_layout_binary() -> PathBuf {
    let binary = std::env::var_os("FIREWALL_AGENT_PREVIOUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/previous-layout/firewall-agent")
        });
    assert!(
        binary.exists(),
        "{} is missing: `cargo xtask test` builds it (cargo build -p firewall-agent --features previous-layout)",
        binary.display()
    );
    binary
}

/// An agent serving from inside a namespace, with its own state directory and socket.
pub struct Agent {
    child: Child,
    /// The binary it runs (and whose CLI talks to it).
    binary: PathBuf,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Where it pins: a bpffs of its own, or the host's (the agent's default).
    pins: Pins,
    /// Set by [`Agent::restart`]: the state directory outlives this process.
    keep_dir: bool,
}

/// Where an agent under test pins its maps and links.
#[derive(Clone, Debug)]
pub enum Pins {
    /// A bpffs of its own at `dir/bpffs`, mounted by the kit in the test's mount namespace (so
    /// it outlives the agent's `ip netns exec` one), passed with `--bpffs`.
    Own,
    /// No `--bpffs`: the agent's default, the host's bpffs at `/sys/fs/bpf`, in the directory of
    /// the namespace `netns`.
    Host { netns: String },
    /// Started with `nsenter --net` rather than `ip netns exec`: the agent shares the test's
    /// (the root) mount namespace and pins in a directory of the real bpffs, passed with
    /// `--bpffs` (a [`BpffsDir`], which removes it).
    Root { bpffs: PathBuf },
    /// In a privileged podman container `name` sharing `ns`'s network namespace, with the real
    /// bpffs directory `bpffs` bind-mounted at the container's `/sys/fs/bpf` (the agent's
    /// default) as a deployment would mount the host's; the state directory is mounted at the
    /// same path inside.
    Container {
        podman: Arc<Podman>,
        name: String,
        bpffs: PathBuf,
    },
}

/// A directory of its own in the real bpffs at `/sys/fs/bpf`, removed on drop (also on panic),
/// which unpins whatever an agent left in it: its links detach, its maps go.
pub struct BpffsDir {
    pub path: PathBuf,
}

impl BpffsDir {
    pub fn new() -> BpffsDir {
        let path = Path::new("/sys/fs/bpf").join(unique("fwt-"));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        BpffsDir { path }
    }
}

impl Default for BpffsDir {
    fn default() -> BpffsDir {
        BpffsDir::new()
    }
}

impl Drop for BpffsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A failed CLI call: exit status and stderr.
#[derive(Debug)]
pub struct CliError {
    pub status: i32,
    pub stderr: String,
}

impl CliError {
    /// The AWS error code in `An error occurred (Code) when calling …`.
    pub fn code(&self) -> &str {
        error_code(&self.stderr)
    }
}

/// The AWS error code in a CLI's `An error occurred (Code) when calling …` (ours and the AWS
/// CLI print it alike), or "".
pub fn error_code(stderr: &str) -> &str {
    stderr
        .split_once("An error occurred (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(code, _)| code)
        .unwrap_or("")
}

impl Agent {
    pub fn start(ns: &Netns) -> Agent {
        Self::start_with(ns, &[])
    }

    /// Starts an agent with extra `serve` options.
    pub fn start_with(ns: &Netns, options: &[&str]) -> Agent {
        Self::launch(
            ns,
            std::env::temp_dir().join(unique("fw-agent-")),
            options,
            Pins::Own,
        )
    }

    /// Starts an agent as a user would under `ip netns exec`, without `--bpffs`: it pins in the
    /// host's bpffs.
    pub fn start_host_pinned(ns: &Netns) -> Agent {
        let pins = Pins::Host {
            netns: ns.name.clone(),
        };
        Self::launch(
            ns,
            std::env::temp_dir().join(unique("fw-agent-")),
            &[],
            pins,
        )
    }

    /// Restarts an agent of [`Agent::start_host_pinned`] on its state directory.
    pub fn restart_host_pinned(ns: &Netns, dir: PathBuf) -> Agent {
        let pins = Pins::Host {
            netns: ns.name.clone(),
        };
        Self::launch(ns, dir, &[], pins)
    }

    /// Starts an agent in the root mount namespace, as a service on the host would run: entered
    /// into `ns`'s network namespace only (`nsenter --net`), pinning in `bpffs`, a directory of
    /// the real bpffs.
    pub fn start_root_pinned(ns: &Netns, bpffs: &BpffsDir) -> Agent {
        Self::restart_root_pinned(ns, bpffs, std::env::temp_dir().join(unique("fw-agent-")))
    }

    /// Restarts an agent of [`Agent::start_root_pinned`] on its state directory.
    pub fn restart_root_pinned(ns: &Netns, bpffs: &BpffsDir, dir: PathBuf) -> Agent {
        let pins = Pins::Root {
            bpffs: bpffs.path.clone(),
        };
        Self::launch(ns, dir, &[], pins)
    }

    /// Starts an agent in a container of `podman` (see [`Pins::Container`]) pinning in `bpffs`.
    pub fn start_in_container(ns: &Netns, podman: &Arc<Podman>, bpffs: &BpffsDir) -> Agent {
        let dir = std::env::temp_dir().join(unique("fw-agent-"));
        Self::restart_in_container(ns, podman, bpffs, dir)
    }

    /// Restarts an agent of [`Agent::start_in_container`] on its state directory, in a new
    /// container.
    pub fn restart_in_container(
        ns: &Netns,
        podman: &Arc<Podman>,
        bpffs: &BpffsDir,
        dir: PathBuf,
    ) -> Agent {
        let pins = Pins::Container {
            podman: podman.clone(),
            name: unique("fwagent"),
            bpffs: bpffs.path.clone(),
        };
        Self::launch(ns, dir, &[], pins)
    }

    /// Suspends the agent process (SIGSTOP) until the guard is dropped (SIGCONT, also on panic):
    /// the kernel goes on enforcing, nothing of the agent runs. Not for container agents.
    pub fn pause(&self) -> Paused {
        let pid = self.child.id() as i32;
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        Paused { pid }
    }

    /// Kills the agent with SIGKILL (no chance to clean up), keeping its state directory. In a
    /// container, the agent (the container's first process) is killed, not podman.
    pub fn kill9(mut self) -> PathBuf {
        if let Pins::Container { podman, name, .. } = &self.pins {
            podman.run(&["kill", "--signal", "KILL", name]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// The exact bytes a CLI call prints on stdout (it must succeed).
    pub fn cli_raw(&self, args: &[&str]) -> String {
        let out = self.run_cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Runs a change with `--dry-run`: it must answer `DryRunOperation` (exit status 254), and
    /// the preview it prints on stdout is returned (`{"RulesAdded", "RulesRemoved",
    /// "FlowsNoLongerAllowed"}`).
    pub fn dry_run(&self, args: &[&str]) -> Value {
        let mut with = vec!["--dry-run"];
        with.extend_from_slice(args);
        let out = self.run_cli(&with);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert_eq!(error_code(&stderr), "DryRunOperation", "{args:?}: {stderr}");
        let printed: Value = serde_json::from_slice(&out.stdout).expect("a JSON preview");
        printed["Preview"].clone()
    }

    /// Stops the agent process and leaves its state directory and bpffs (pinned maps and
    /// links: enforcement goes on) for [`Agent::start_in`].
    pub fn stop(mut self) -> PathBuf {
        self.keep_dir = true;
        self.dir.clone()
    }

    /// Starts an agent on `dir`, with a bpffs of its own mounted at `dir/bpffs` (in the test's
    /// mount namespace, so it outlives the agent's `ip netns exec` one).
    pub fn start_in(ns: &Netns, dir: PathBuf) -> Agent {
        Self::launch(ns, dir, &[], Pins::Own)
    }

    /// [`Agent::start_in`] with extra `serve` options (a restart of [`Agent::start_with`]).
    pub fn start_in_with(ns: &Netns, dir: PathBuf, options: &[&str]) -> Agent {
        Self::launch(ns, dir, options, Pins::Own)
    }

    /// Starts the agent binary `binary` (e.g. [`previous_layout_binary`]) like [`Agent::start`].
    pub fn start_binary(ns: &Netns, binary: PathBuf) -> Agent {
        let dir = std::env::temp_dir().join(unique("fw-agent-"));
        Self::launch_binary(ns, binary, dir, &[], Pins::Own)
    }

    /// The agent's process ID (`ip netns exec` execs the agent in its own process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The bpffs this agent pins in (with [`Pins::Own`]).
    pub fn bpffs(&self) -> PathBuf {
        self.dir.join("bpffs")
    }

    fn launch(ns: &Netns, dir: PathBuf, options: &[&str], pins: Pins) -> Agent {
        Self::launch_binary(ns, agent_binary(), dir, options, pins)
    }

    fn launch_binary(
        ns: &Netns,
        binary: PathBuf,
        dir: PathBuf,
        options: &[&str],
        pins: Pins,
    ) -> Agent {
        let bpffs = dir.join("bpffs");
        std::fs::create_dir_all(&bpffs).expect("agent dir");
        let mut pin_options = Vec::new();
        // `ip netns exec` gives the agent a private mount namespace; `nsenter --net` keeps ours.
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns.name]);
        match &pins {
            Pins::Own => {
                let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
                if !mounts.contains(&format!(" {} bpf ", bpffs.display())) {
                    sh(&["mount", "-t", "bpf", "bpf", &bpffs.display().to_string()]);
                }
                pin_options = vec!["--bpffs".to_string(), bpffs.display().to_string()];
            }
            Pins::Host { .. } => {}
            Pins::Root { bpffs: real } => {
                command = Command::new("nsenter");
                command.arg(format!("--net=/run/netns/{}", ns.name));
                pin_options = vec!["--bpffs".to_string(), real.display().to_string()];
            }
            Pins::Container {
                podman,
                name,
                bpffs,
            } => command = podman.agent_container(name, &binary, &dir, Some(bpffs)),
        }
        let socket = dir.join("agent.sock");
        // A killed agent leaves its socket behind; wait for the new one's.
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .expect("agent log");
        let child = command
            .arg(&binary)
            .arg("--socket")
            .arg(&socket)
            .arg("serve")
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(&pin_options)
            .args(options)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the agent");
        let agent = Agent {
            child,
            binary,
            dir,
            socket,
            pins,
            keep_dir: false,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !agent.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "agent did not start: {}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Runs the CLI against this agent's socket.
    fn run_cli(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running the CLI")
    }

    /// Runs a CLI verb against this agent.
    pub fn try_cli(&self, args: &[&str]) -> Result<Value, CliError> {
        cli_at(&self.socket, args)
    }

    pub fn cli(&self, args: &[&str]) -> Value {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("{args:?} failed: {}\nagent log:\n{}", e.stderr, self.log()))
    }

    /// Creates a group and returns its ID.
    pub fn create_group(&self, name: &str) -> String {
        let out = self.cli(&[
            "create-security-group",
            "--group-name",
            name,
            "--description",
            name,
        ]);
        out["GroupId"].as_str().expect("GroupId").to_string()
    }

    /// Creates one group per name and returns their IDs, in the same order.
    pub fn create_groups<const N: usize>(&self, names: [&str; N]) -> [String; N] {
        names.map(|name| self.create_group(name))
    }

    /// `modify-instance-attribute --groups`: the instance's groups become `groups`.
    pub fn modify_instance_groups(&self, instance: &str, groups: &[&str]) -> Value {
        let mut args = vec![
            "modify-instance-attribute",
            "--instance-id",
            instance,
            "--groups",
        ];
        args.extend_from_slice(groups);
        self.cli(&args)
    }

    /// `authorize-security-group-ingress` in the CLI's shorthand: `group` lets in `protocol` on
    /// `port` (a port, a `from-to` range or an ICMP type) from `peer`, a CIDR or a group ID.
    pub fn authorize_ingress(&self, group: &str, protocol: &str, port: &str, peer: &str) -> Value {
        self.cli(&shorthand_rule(
            "authorize-security-group-ingress",
            group,
            protocol,
            port,
            peer,
        ))
    }

    /// [`Agent::authorize_ingress`] that may fail.
    pub fn try_authorize_ingress(
        &self,
        group: &str,
        protocol: &str,
        port: &str,
        peer: &str,
    ) -> Result<Value, CliError> {
        self.try_cli(&shorthand_rule(
            "authorize-security-group-ingress",
            group,
            protocol,
            port,
            peer,
        ))
    }

    /// `revoke-security-group-ingress` in the shorthand of [`Agent::authorize_ingress`]; the
    /// flows it tracked go on (AWS semantics).
    pub fn revoke_ingress(&self, group: &str, protocol: &str, port: &str, peer: &str) -> Value {
        self.cli(&shorthand_rule(
            "revoke-security-group-ingress",
            group,
            protocol,
            port,
            peer,
        ))
    }

    /// [`Agent::revoke_ingress`] that may fail.
    pub fn try_revoke_ingress(
        &self,
        group: &str,
        protocol: &str,
        port: &str,
        peer: &str,
    ) -> Result<Value, CliError> {
        self.try_cli(&shorthand_rule(
            "revoke-security-group-ingress",
            group,
            protocol,
            port,
            peer,
        ))
    }

    /// [`Agent::revoke_ingress`] with `--flush-flows`: it also cuts every tracked flow the
    /// rules no longer allow.
    pub fn revoke_ingress_flushing_flows(
        &self,
        group: &str,
        protocol: &str,
        port: &str,
        peer: &str,
    ) -> Value {
        let mut args = shorthand_rule("revoke-security-group-ingress", group, protocol, port, peer);
        args.push("--flush-flows");
        self.cli(&args)
    }

    /// `authorize-security-group-egress` in the shorthand of [`Agent::authorize_ingress`]:
    /// `group` lets out `protocol` on `port` to `peer`.
    pub fn authorize_egress(&self, group: &str, protocol: &str, port: &str, peer: &str) -> Value {
        self.cli(&shorthand_rule(
            "authorize-security-group-egress",
            group,
            protocol,
            port,
            peer,
        ))
    }

    /// Registers a workload with groups and returns the instance ID.
    pub fn run_instance(&self, workload: &Workload, groups: &[&str]) -> String {
        let ip = workload.ip.to_string();
        let ip6 = workload.ip6.to_string();
        let mut args = vec![
            "run-instances",
            "--private-ip-address",
            &ip,
            "--ipv6-address",
            &ip6,
            "--interface",
            &workload.host_if,
        ];
        if !groups.is_empty() {
            args.push("--security-group-ids");
            args.extend_from_slice(groups);
        }
        let out = self.cli(&args);
        out["Instances"][0]["InstanceId"]
            .as_str()
            .expect("InstanceId")
            .to_string()
    }
}

fn run_cli_at(socket: &Path, args: &[&str]) -> Output {
    Command::new(agent_binary())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("running the CLI")
}

/// Runs a CLI verb against the agent at `socket` (from any thread): its JSON output, or its
/// exit status and stderr (254: the API's error; 255: the agent could not be reached).
pub fn cli_at(socket: &Path, args: &[&str]) -> Result<Value, CliError> {
    let out = run_cli_at(socket, args);
    if out.status.success() && out.stdout.is_empty() {
        Ok(Value::Null)
    } else if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
    } else {
        Err(CliError {
            status: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A rule verb's arguments in the CLI's shorthand; a `peer` starting with `sg-` is a group
/// (`--source-group`), anything else a CIDR (`--cidr`).
fn shorthand_rule<'a>(
    verb: &'a str,
    group: &'a str,
    protocol: &'a str,
    port: &'a str,
    peer: &'a str,
) -> Vec<&'a str> {
    let peer_option = if peer.starts_with("sg-") {
        "--source-group"
    } else {
        "--cidr"
    };
    vec![
        verb,
        "--group-id",
        group,
        "--protocol",
        protocol,
        "--port",
        port,
        peer_option,
        peer,
    ]
}

/// A suspended agent, resumed on drop.
pub struct Paused {
    pid: i32,
}

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.pid, libc::SIGCONT) };
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Pins::Container { podman, name, .. } = &self.pins {
            // Killing podman leaves the container running.
            let _ = podman.output(&["rm", "--force", "--time", "0", name]);
        }
        if self.keep_dir {
            return; // the next agent takes over
        }
        // Dropping the pinned maps and links: nothing stays attached.
        match &self.pins {
            Pins::Own => {
                let _ = Command::new("umount").arg(self.dir.join("bpffs")).status();
            }
            Pins::Host { netns } => {
                let dir = Path::new("/sys/fs/bpf/firewall-agent").join(format!("netns-{netns}"));
                let _ = std::fs::remove_dir_all(dir);
            }
            // Its BpffsDir removes it.
            Pins::Root { .. } | Pins::Container { .. } => {}
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("agent log ({}):\n{}", self.dir.display(), self.log());
        }
    }
}

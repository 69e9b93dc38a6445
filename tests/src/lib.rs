//! Test harness for real-traffic tests: network namespaces, veth pairs, an agent running in a
//! "host" namespace, and sockets opened inside workload namespaces.
//!
//! Topology made by [`Topology::new`]: one host namespace (where the agent runs and routes between
//! workloads, Calico-style: /32 routes and proxy ARP on each host-side veth) and one namespace per
//! workload, each with `eth0` whose peer is a host-side veth. Nothing is routed out of these
//! namespaces. Every name is unique per test, and every guard cleans up on drop, also on panic.

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

/// A short name unique to this process and call, usable in interface names (≤ 15 bytes).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:04x}{n:x}", std::process::id() & 0xffff)
}

/// Runs a command and panics with its output when it fails.
pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command inside a namespace.
pub fn ns_sh(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    sh(&all);
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        ns_sh(&name, &["ip", "link", "set", "lo", "up"]);
        // Interfaces created later are usable at once: no duplicate address detection.
        ns_sh(
            &name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ],
        );
        Netns { name }
    }

    /// Runs `f` on a thread that has entered this namespace; sockets it creates stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter_netns(&path);
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    }

    /// Like [`Netns::run`] but returns at once; the thread keeps running.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter_netns(&path);
            f()
        })
    }
}

fn enter_netns(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    use std::os::fd::AsRawFd as _;
    // SAFETY: a valid namespace fd; only this thread changes namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A workload: its namespace, its addresses and the host-side veth the agent enforces on.
pub struct Workload {
    pub ns: Netns,
    pub ip: Ipv4Addr,
    /// `fd00:ec2::<third octet>:<fourth octet>`, inside the default VPC's IPv6 block.
    pub ip6: Ipv6Addr,
    pub host_if: String,
}

/// The host namespace's own addresses (on its `lo`): the source of the ICMP errors it sends.
pub const HOST_IP: &str = "172.31.255.1";
pub const HOST_IP6: &str = "fd00:ec2::ffff:1";

/// The host namespace and the workloads hanging off it.
pub struct Topology {
    pub workloads: Vec<Workload>,
    /// Declared last: dropped after the workloads.
    pub host: Netns,
}

impl Topology {
    /// One workload per address, all in the default VPC's 172.31.0.0/16.
    pub fn new(addresses: &[&str]) -> Topology {
        let host = Netns::new("fwh");
        ns_sh(&host.name, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        ns_sh(
            &host.name,
            &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        );
        ns_sh(
            &host.name,
            &["ip", "addr", "add", &format!("{HOST_IP}/32"), "dev", "lo"],
        );
        ns_sh(
            &host.name,
            &["ip", "addr", "add", &format!("{HOST_IP6}/128"), "dev", "lo"],
        );
        let mut workloads = Vec::new();
        for address in addresses {
            let ns = Netns::new("fww");
            let host_if = unique("fv");
            let ip: Ipv4Addr = address.parse().expect("IPv4 address");
            let [_, _, c, d] = ip.octets();
            let ip6: Ipv6Addr = format!("fd00:ec2::{c:x}:{d:x}")
                .parse()
                .expect("IPv6 address");
            sh(&[
                "ip", "link", "add", &host_if, "netns", &host.name, "type", "veth", "peer", "name",
                "eth0", "netns", &ns.name,
            ]);
            ns_sh(
                &host.name,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{host_if}.proxy_arp=1"),
                ],
            );
            // Answer proxy ARP at once (the default delays it up to 0.8 s).
            ns_sh(
                &host.name,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.neigh.{host_if}.proxy_delay=0"),
                ],
            );
            ns_sh(&host.name, &["ip", "link", "set", &host_if, "up"]);
            ns_sh(
                &host.name,
                &["ip", "route", "add", &format!("{ip}/32"), "dev", &host_if],
            );
            ns_sh(
                &ns.name,
                &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
            );
            ns_sh(&ns.name, &["ip", "link", "set", "eth0", "up"]);
            ns_sh(
                &ns.name,
                &["ip", "route", "add", "172.31.0.0/16", "dev", "eth0"],
            );
            // IPv6: the host side answers as fe80::1 and routes each workload's /128.
            ns_sh(
                &host.name,
                &["ip", "addr", "add", "fe80::1/64", "dev", &host_if, "nodad"],
            );
            ns_sh(
                &host.name,
                &[
                    "ip",
                    "-6",
                    "route",
                    "add",
                    &format!("{ip6}/128"),
                    "dev",
                    &host_if,
                ],
            );
            ns_sh(
                &ns.name,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{ip6}/128"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            ns_sh(
                &ns.name,
                &[
                    "ip",
                    "-6",
                    "route",
                    "add",
                    "fd00:ec2::/56",
                    "via",
                    "fe80::1",
                    "dev",
                    "eth0",
                ],
            );
            workloads.push(Workload {
                ns,
                ip,
                ip6,
                host_if,
            });
        }
        Topology { workloads, host }
    }
}

/// The agent binary under test (built by `cargo xtask test`).
pub fn agent_binary() -> PathBuf {
    std::env::var_os("FIREWALL_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/firewall-agent")
        })
}

/// An agent serving from inside a namespace, with its own state directory and socket.
pub struct Agent {
    child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Set by [`Agent::restart`]: the state directory outlives this process.
    keep_dir: bool,
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
        self.stderr
            .split_once("An error occurred (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(code, _)| code)
            .unwrap_or("")
    }
}

impl Agent {
    pub fn start(ns: &Netns) -> Agent {
        Self::start_with(ns, &[])
    }

    /// Starts an agent with extra `serve` options.
    pub fn start_with(ns: &Netns, options: &[&str]) -> Agent {
        Self::launch(ns, std::env::temp_dir().join(unique("fw-agent-")), options)
    }

    /// Kills the agent with SIGKILL (no chance to clean up), keeping its state directory.
    pub fn kill9(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// The exact bytes a CLI call prints on stdout (it must succeed).
    pub fn cli_raw(&self, args: &[&str]) -> String {
        let out = Command::new(agent_binary())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running the CLI");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
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
        Self::launch(ns, dir, &[])
    }

    fn launch(ns: &Netns, dir: PathBuf, options: &[&str]) -> Agent {
        let bpffs = dir.join("bpffs");
        std::fs::create_dir_all(&bpffs).expect("agent dir");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        if !mounts.contains(&format!(" {} bpf ", bpffs.display())) {
            sh(&["mount", "-t", "bpf", "bpf", &bpffs.display().to_string()]);
        }
        let socket = dir.join("agent.sock");
        // A killed agent leaves its socket behind; wait for the new one's.
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .expect("agent log");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(agent_binary())
            .arg("--socket")
            .arg(&socket)
            .arg("serve")
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--bpffs")
            .arg(&bpffs)
            .args(options)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the agent");
        let agent = Agent {
            child,
            dir,
            socket,
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

    /// Runs a CLI verb against this agent.
    pub fn try_cli(&self, args: &[&str]) -> Result<Value, CliError> {
        let out = Command::new(agent_binary())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running the CLI");
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
        if self.keep_dir {
            return; // the next agent takes over
        }
        // Unmounting drops the pinned maps and links: nothing stays attached.
        let _ = Command::new("umount").arg(self.dir.join("bpffs")).status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("agent log ({}):\n{}", self.dir.display(), self.log());
        }
    }
}

/// A TCP echo server inside a namespace, stopped on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    pub fn tcp(ns: &Netns, ip: impl Into<IpAddr>, port: u16) -> EchoServer {
        let ip = ip.into();
        let listener = ns.run(move || TcpListener::bind((ip, port)).expect("bind"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = stream.read(&mut buf) {
                                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }

    pub fn udp(ns: &Netns, ip: impl Into<IpAddr>, port: u16) -> EchoServer {
        let ip = ip.into();
        let socket = ns.run(move || UdpSocket::bind((ip, port)).expect("bind"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens a TCP connection from inside `ns`; `None` when it does not connect within `timeout`.
pub fn tcp_connect(
    ns: &Netns,
    to: impl Into<IpAddr>,
    port: u16,
    timeout: Duration,
) -> Option<TcpStream> {
    let to = to.into();
    ns.run(move || TcpStream::connect_timeout(&SocketAddr::from((to, port)), timeout).ok())
}

/// Sends a line over an established connection and checks it is echoed back.
pub fn echoes(stream: &mut TcpStream, message: &str) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(message.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; message.len()];
    stream.read_exact(&mut buf).is_ok() && buf == message.as_bytes()
}

/// Connects and exchanges one message; true when the whole round trip works.
pub fn tcp_round_trip(ns: &Netns, to: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    match tcp_connect(ns, to, port, timeout) {
        Some(mut stream) => {
            let ok = echoes(&mut stream, "ping\n");
            let _ = stream.shutdown(Shutdown::Both);
            ok
        }
        None => false,
    }
}

/// Sends one datagram from inside `ns` and waits for the echo.
pub fn udp_round_trip(ns: &Netns, to: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    let to = to.into();
    ns.run(move || {
        let socket =
            UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).expect("bind");
        socket.set_read_timeout(Some(timeout)).expect("timeout");
        socket.send_to(b"ping", (to, port)).expect("send");
        let mut buf = [0u8; 16];
        matches!(socket.recv_from(&mut buf), Ok((4, _)))
    })
}

/// Retries `probe` until it succeeds or `within` passes; returns how long it took.
pub fn eventually(within: Duration, mut probe: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if probe() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One ICMP echo (ping) from inside `ns`; true when the reply comes back within `timeout`.
pub fn ping(ns: &Netns, to: impl Into<IpAddr>, timeout: Duration) -> bool {
    let to = to.into().to_string();
    let wait = format!("{}", timeout.as_secs_f64().max(0.2));
    Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "ping", "-c", "1", "-n", "-q", "-W", &wait, &to,
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

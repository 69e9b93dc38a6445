//! Several "hosts" sharing one etcd: each host a [`Topology`] (its host namespace, where its
//! agent runs, and its workloads), joined by a bridge in a fabric namespace that routes each
//! host's workloads (`172.31.<host + 1>.0/24`) to it; and a real etcd (Debian's etcd-server)
//! in the fabric namespace, listening only on the bridge's address there. Everything is
//! deleted on drop, also on panic: etcd killed, its data removed, the namespaces deleted.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    netns::Netns,
    shell::{ns_sh, sh, unique},
    topology::Topology,
};

/// etcd's address on the fabric bridge.
pub const ETCD_IP: &str = "172.30.0.254";

/// The hosts and the fabric joining them.
pub struct Hosts {
    /// Host `i`'s workloads are in `172.31.<i + 1>.0/24`; its fabric address `172.30.0.<i + 1>`.
    pub hosts: Vec<Topology>,
    /// Declared last: deleted after the hosts.
    pub fabric: Netns,
}

impl Hosts {
    /// One host per entry, each with workloads at the given addresses (host `i`'s in
    /// `172.31.<i + 1>.0/24`).
    pub fn new(workloads: &[&[&str]]) -> Hosts {
        let fabric = Netns::new("fwf");
        let bridge = |args: &[&str]| ns_sh(&fabric.name, &[&["ip"], args].concat());
        bridge(&["link", "add", "br0", "type", "bridge"]);
        bridge(&["addr", "add", &format!("{ETCD_IP}/24"), "dev", "br0"]);
        bridge(&["link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        for addresses in workloads {
            let topology = Topology::new(addresses);
            let port = unique("fx");
            sh(&[
                "ip",
                "link",
                "add",
                &port,
                "netns",
                &fabric.name,
                "type",
                "veth",
                "peer",
                "name",
                "fab0",
                "netns",
                &topology.host.name,
            ]);
            bridge(&["link", "set", &port, "master", "br0", "up"]);
            let n = hosts.len() + 1;
            let host_ip = |args: &[&str]| ns_sh(&topology.host.name, &[&["ip"], args].concat());
            host_ip(&["addr", "add", &format!("172.30.0.{n}/24"), "dev", "fab0"]);
            host_ip(&["link", "set", "fab0", "up"]);
            hosts.push(topology);
        }
        for (i, host) in hosts.iter().enumerate() {
            for j in (0..hosts.len()).filter(|j| *j != i) {
                ns_sh(
                    &host.host.name,
                    &[
                        "ip",
                        "route",
                        "add",
                        &format!("172.31.{}.0/24", j + 1),
                        "via",
                        &format!("172.30.0.{}", j + 1),
                    ],
                );
            }
        }
        Hosts { hosts, fabric }
    }
}

/// etcd's auto-compaction as the README recommends (Debian's etcd keeps all history).
pub const AUTO_COMPACTION: [&str; 4] = [
    "--auto-compaction-mode",
    "revision",
    "--auto-compaction-retention",
    "10000",
];

/// A one-member etcd cluster in a test namespace, its client URL on `ip` there and its peer URL
/// on that namespace's loopback; killed and its data removed on drop.
pub struct Etcd {
    child: Option<Child>,
    ns: String,
    ip: String,
    port: u16,
    pub dir: PathBuf,
    /// With [`Etcd::start_tls`]: clients must present a certificate of the test CA.
    tls: bool,
}

/// The PEM files of [`Etcd::start_tls`]: the test CA, and a client certificate it signed.
pub struct ClientTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Etcd {
    /// etcd's process ID (`ip netns exec` execs it in its own process), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts etcd in `ns` (a [`Hosts::fabric`]) on `ip` and waits until it answers.
    pub fn start(ns: &Netns, ip: &str) -> Etcd {
        Self::launch(ns, ip, false)
    }

    /// [`Etcd::start`] over TLS with client-certificate authentication, from a CA made for
    /// this test (openssl); the client's files are [`Etcd::client_tls`].
    pub fn start_tls(ns: &Netns, ip: &str) -> Etcd {
        Self::launch(ns, ip, true)
    }

    /// The CA and client certificate of an [`Etcd::start_tls`] etcd.
    pub fn client_tls(&self) -> ClientTls {
        ClientTls {
            ca: self.dir.join("ca.pem"),
            cert: self.dir.join("client.pem"),
            key: self.dir.join("client.key"),
        }
    }

    fn launch(ns: &Netns, ip: &str, tls: bool) -> Etcd {
        // Unique to this process and call (the namespace is the test's own anyway).
        static STARTED: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
        let port = 20000 + (std::process::id() % 200) as u16 * 100 + n * 2;
        let mut etcd = Etcd {
            child: None,
            ns: ns.name.clone(),
            ip: ip.into(),
            port,
            dir: std::env::temp_dir().join(unique("fw-etcd-")),
            tls,
        };
        std::fs::create_dir_all(&etcd.dir).expect("etcd dir");
        if tls {
            etcd.make_certificates();
        }
        etcd.spawn();
        etcd
    }

    /// The client URL the agents are given (`--etcd-endpoints`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.ip, self.port)
    }

    /// A CA, the server's certificate (for its IP) and a client's, all valid for a day.
    fn make_certificates(&self) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let key = |name: &str| {
            sh(&[
                "openssl",
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-out",
                &path(name),
            ]);
        };
        key("ca.key");
        sh(&[
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=firewall-agent test CA",
        ]);
        for (name, extensions) in [
            (
                "server",
                format!("subjectAltName=IP:{}\nextendedKeyUsage=serverAuth", self.ip),
            ),
            ("client", "extendedKeyUsage=clientAuth".to_string()),
        ] {
            key(&format!("{name}.key"));
            let ext = path(&format!("{name}.ext"));
            std::fs::write(&ext, extensions).expect("extensions");
            sh(&[
                "openssl",
                "req",
                "-new",
                "-key",
                &path(&format!("{name}.key")),
                "-out",
                &path(&format!("{name}.csr")),
                "-subj",
                &format!("/CN={name}"),
            ]);
            sh(&[
                "openssl",
                "x509",
                "-req",
                "-in",
                &path(&format!("{name}.csr")),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &path(&format!("{name}.pem")),
            ]);
        }
    }

    /// `etcdctl`'s (and etcd's) TLS options, none without TLS.
    fn tls_options(&self, server: bool) -> Vec<String> {
        if !self.tls {
            return Vec::new();
        }
        let path = |name: &str| self.dir.join(name).display().to_string();
        if server {
            vec![
                format!("--cert-file={}", path("server.pem")),
                format!("--key-file={}", path("server.key")),
                format!("--trusted-ca-file={}", path("ca.pem")),
                "--client-cert-auth".into(),
            ]
        } else {
            vec![
                format!("--cacert={}", path("ca.pem")),
                format!("--cert={}", path("client.pem")),
                format!("--key={}", path("client.key")),
            ]
        }
    }

    fn spawn(&mut self) {
        let url = self.url();
        let peer = format!("http://127.0.0.1:{}", self.port + 1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("etcd log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "etcd", "--name", "test"])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            // As it should run (Debian's default keeps all history): the history of the last
            // 10000 revisions is kept, older revisions are compacted.
            .args(AUTO_COMPACTION)
            .args(self.tls_options(true))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian etcd-server; `cargo xtask setup` installs it)");
        self.child = Some(child);
        self.wait_ready();
    }

    /// `etcdctl` against this etcd, from its namespace.
    fn etcdctl(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "etcdctl",
                "--endpoints",
                &self.url(),
            ])
            .arg("--command-timeout=5s")
            .args(args)
            .args(self.tls_options(false))
            .env("ETCDCTL_API", "3")
            .output()
    }

    /// etcd's current revision.
    pub fn revision(&self) -> i64 {
        let out = self
            .etcdctl(&[
                "get",
                "/",
                "--prefix",
                "--keys-only",
                "--limit=1",
                "-w",
                "json",
            ])
            .expect("etcdctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        answer["header"]["revision"].as_i64().expect("a revision")
    }

    /// Compacts etcd's history up to its current revision: a watch started from an older one
    /// is refused as compacted.
    pub fn compact(&self) -> i64 {
        let revision = self.revision();
        let out = self
            .etcdctl(&["compact", &revision.to_string(), "--physical"])
            .expect("etcdctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        revision
    }

    /// Waits until etcd accepts connections and serves a read (at most 20 s).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let healthy = self
                .etcdctl(&["get", "health-probe"])
                .is_ok_and(|o| o.status.success());
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not start: {}",
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills etcd (SIGKILL) and waits for it; its data stays for [`Etcd::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "etcd log:\n{}",
                std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

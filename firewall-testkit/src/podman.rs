//! Debian's podman with its CNI network backend, run as a runtime would on a host, but private
//! to one test: its own containers.conf (via `CONTAINERS_CONF`), storage root and run root
//! (vfs), CNI plugin directory (Debian's plugins and the `firewall-sg` under test) and CNI
//! configuration directory, all under one directory removed on drop. It runs in the test's host
//! namespace (`nsenter --net`, which keeps the host's /sys and so its cgroups), so the CNI
//! bridge and the containers' host-side veths are made there. The image is imported from a
//! busybox rootfs built on the spot: nothing is pulled.
//!
//! What this host (itself a container) needs: runc with the cgroupfs manager (crun refuses the
//! hybrid cgroup layout), resource limits no higher than the host's (no CAP_SYS_RESOURCE), and
//! file events (no journald).

use std::{
    net::Ipv4Addr,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};

use crate::{cni, netns::Netns, shell::unique};

/// The image every container runs: busybox (sh, httpd, nc) and `/www/index.html`.
pub const IMAGE: &str = "localhost/firewall-busybox";
/// The page `httpd -h /www` serves.
pub const PAGE: &str = "hello from behind a security group";

#[derive(Debug)]
pub struct Podman {
    dir: PathBuf,
    host: String,
}

/// Runs `command`, panicking with its stderr when it fails.
fn must(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Soft and hard limits for containers no higher than this process's soft limit for `resource`
/// nor `cap` (podman's defaults may exceed what the host lets it raise to).
fn limit(resource: libc::__rlimit_resource_t, cap: u64) -> (u64, u64) {
    // SAFETY: getrlimit fills the struct.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(resource, &mut rl) };
    let ceiling = rl.rlim_cur.min(cap);
    (ceiling.min(1024), ceiling)
}

impl Podman {
    /// A private podman in `host`, with the busybox image imported.
    pub fn new(host: &Netns) -> Podman {
        let dir = std::env::temp_dir().join(unique("fw-podman-"));
        let podman = Podman {
            dir,
            host: host.name.clone(),
        };
        let d = &podman.dir;
        for sub in [
            "rootfs/bin",
            "rootfs/www",
            "plugins",
            "net.d",
            "ipam",
            "tmp",
        ] {
            std::fs::create_dir_all(d.join(sub)).expect("podman dirs");
        }
        std::fs::copy("/bin/busybox", d.join("rootfs/bin/busybox"))
            .expect("/bin/busybox (Debian's busybox-static)");
        for applet in ["sh", "httpd", "nc", "printf", "sleep", "true"] {
            symlink("busybox", d.join("rootfs/bin").join(applet)).expect("applet");
        }
        std::fs::write(d.join("rootfs/www/index.html"), PAGE).expect("page");
        for plugin in std::fs::read_dir(cni::PLUGIN_DIR).expect(cni::PLUGIN_DIR) {
            let plugin = plugin.expect("plugin").path();
            symlink(&plugin, d.join("plugins").join(plugin.file_name().unwrap())).expect("link");
        }
        symlink(cni::firewall_sg_binary(), d.join("plugins/firewall-sg")).expect("link");
        // podman's own nproc default (32768) is what runc manages to set here.
        let (nofile, nofile_max) = limit(libc::RLIMIT_NOFILE, 1 << 20);
        let (nproc, nproc_max) = limit(libc::RLIMIT_NPROC, 32768);
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile={nofile}:{nofile_max}\", \"nproc={nproc}:{nproc_max}\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             [network]\n\
             network_backend = \"cni\"\n\
             cni_plugin_dirs = [\"{d}/plugins\"]\n\
             network_config_dir = \"{d}/net.d\"\n",
            d = d.display()
        );
        std::fs::write(d.join("containers.conf"), conf).expect("containers.conf");
        let tarball = d.join("rootfs.tar");
        must(
            Command::new("tar")
                .arg("-C")
                .arg(d.join("rootfs"))
                .arg("-cf")
                .arg(&tarball)
                .arg("."),
        );
        must(&mut podman.command(&["import", &tarball.display().to_string(), IMAGE]));
        podman
    }

    /// `podman ARGS` with this podman's configuration and storage, in the host namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let d = &self.dir;
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.host))
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"));
        command
    }

    /// `podman ARGS`, which must succeed: its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        must(&mut self.command(args))
    }

    /// `podman ARGS` as it went.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("podman")
    }

    /// A CNI network `name`: the `bridge` plugin (host-local IPAM in `subnet`) then `chained`
    /// (none: the bridge alone). Returns its name.
    pub fn network(&self, subnet: &str, chained: Option<Value>) -> String {
        let name = unique("fwpn");
        let mut plugins = vec![json!({
            "type": "bridge",
            "bridge": unique("fwpb"),
            "isGateway": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "dataDir": self.dir.join("ipam"),
            },
        })];
        plugins.extend(chained);
        let list = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        let path = self.dir.join("net.d").join(format!("{name}.conflist"));
        std::fs::write(path, list.to_string()).expect("network list");
        name
    }

    /// Starts a container on `network` running `httpd` on `port`: its ID.
    pub fn serve(&self, network: &str, port: u16) -> String {
        let port = port.to_string();
        self.run(&[
            "run",
            "-d",
            "--network",
            network,
            IMAGE,
            "httpd",
            "-f",
            "-p",
            &port,
            "-h",
            "/www",
        ])
    }

    /// The container's address on `network`.
    pub fn address(&self, container: &str, network: &str) -> Ipv4Addr {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        self.run(&["inspect", "-f", &format, container])
            .parse()
            .expect("an IPv4 address")
    }

    /// Whether `from` fetches the page from `to`:`port` (an HTTP/1.0 GET through busybox `nc`,
    /// one second to connect; busybox's static `wget` crashes without NSS files).
    pub fn fetches(&self, from: &str, to: Ipv4Addr, port: u16) -> bool {
        let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {to} {port}");
        let out = self.output(&["exec", from, "sh", "-c", &script]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(PAGE)
    }

    /// `podman run` of a privileged container `name` in the host network namespace (the test's),
    /// ready for the agent `binary` and its arguments: the binary, the shared libraries it links
    /// (the host's `/lib`, `/lib64`, read-only) and the state directory `dir` are bind-mounted at
    /// their own paths, and `bpffs` (a directory of the real bpffs), if any, at the container's
    /// `/sys/fs/bpf`, as a deployment mounts the host's bpffs into the agent's container.
    /// SIGTERM to the returned process reaches the agent (podman proxies signals).
    pub fn agent_container(
        &self,
        name: &str,
        binary: &Path,
        dir: &Path,
        bpffs: Option<&Path>,
    ) -> Command {
        let mount = |from: &Path, to: &Path, options: &str| {
            format!("{}:{}{options}", from.display(), to.display())
        };
        let mut command = self.command(&["run", "--rm", "--name", name, "--privileged"]);
        command.args(["--network", "host"]);
        for (from, to, options) in [
            (binary, binary, ":ro"),
            (Path::new("/lib"), Path::new("/lib"), ":ro"),
            (Path::new("/lib64"), Path::new("/lib64"), ":ro"),
            (dir, dir, ""),
        ] {
            command.arg("--volume").arg(mount(from, to, options));
        }
        if let Some(bpffs) = bpffs {
            command
                .arg("--volume")
                .arg(mount(bpffs, Path::new("/sys/fs/bpf"), ""));
        }
        command.arg(IMAGE);
        command
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Removing the containers runs the networks' DEL (and so firewall-sg's).
        let _ = self.output(&["rm", "-a", "-f", "-t", "0"]);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        for target in mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|t| t.starts_with(&prefix))
        {
            let _ = Command::new("umount").args(["-l", target]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

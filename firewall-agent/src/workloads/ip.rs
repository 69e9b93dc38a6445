//! [`Launcher`] with iproute2's `ip`: `ip netns add` makes the namespace (bind-mounted under
//! /run/netns, so `ip netns exec` finds it and it outlives the agent), `ip link` the veth pair
//! and the bridge, `ip -n` configures the inside.

use std::{
    fs::File,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _, unix::process::CommandExt as _},
    path::Path,
    process::Command,
};

use super::{
    Launcher,
    register::{self, Allowed},
};
use crate::model::local::LocalPlan;

/// Builds local instances with `ip` in the agent's network namespace.
pub struct IpLauncher {
    /// Under `ip netns exec` (a private mount namespace whose mounts nobody else sees): the
    /// mount namespace of the process that started the agent, where `ip` runs so that the
    /// namespaces' bind mounts under /run/netns are the host's and outlive the agent.
    host_mounts: Option<File>,
    /// `serve --host-routes`: the VPC bridges get an address in the agent's namespace.
    pub(super) host_routes: bool,
    /// `serve --allow-interface`: interfaces registered whatever they are.
    allowed: Allowed,
    /// `serve --run-user-data`: where the instances' user data and console output live.
    user_data: Option<std::path::PathBuf>,
}

impl IpLauncher {
    /// A launcher for an agent with `serve --host-routes` (`host_routes`) and
    /// `--allow-interface` (`allowed`).
    pub fn new(
        host_routes: bool,
        allowed: Allowed,
        user_data: Option<std::path::PathBuf>,
    ) -> IpLauncher {
        let ino = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino());
        let parent = std::os::unix::process::parent_id().to_string();
        let host_mounts = match (ino("self"), ino(&parent)) {
            (Ok(ours), Ok(theirs)) if ours != theirs => {
                File::open(format!("/proc/{parent}/ns/mnt")).ok()
            }
            _ => None,
        };
        IpLauncher {
            host_mounts,
            host_routes,
            allowed,
            user_data,
        }
    }

    /// Runs `ip` with `args` (in the host's mount namespace); its stderr on failure.
    pub(super) fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut command = Command::new("ip");
        command.args(args);
        if let Some(mounts) = &self.host_mounts {
            let fd = mounts.as_raw_fd();
            // SAFETY: between fork and exec the child has one thread, so setns(2) may change its
            // mount namespace; only a syscall runs there.
            unsafe {
                command.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNS) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        run(command, args)
    }
}

fn run(mut command: Command, args: &[&str]) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What `ip -j …` prints, its JSON objects (none when it fails). iproute2 asks over netlink:
/// under `ip netns exec` the agent's /sys may show another namespace's interfaces.
pub(super) fn ip_json(args: &[&str]) -> Vec<serde_json::Value> {
    Command::new("ip")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or_default()
}

/// Whether the agent's network namespace has the interface `name` (asked over netlink: under
/// `ip netns exec` the agent's /sys may be another namespace's).
pub(super) fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(super) fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// The first policy-routing table of an instance's extra interfaces: `eth<N>` has table
/// `ROUTE_TABLES + N`, so what it sends from its own addresses leaves by it (as AWS's
/// ec2-net-utils sets up), and the data plane judges it on its own veth.
const ROUTE_TABLES: u32 = 100;

impl IpLauncher {
    /// Builds the interface of `plan`: for the primary one the namespace first.
    fn build(&self, plan: &LocalPlan) -> Result<(), String> {
        let ns = plan.netns.as_str();
        let veth = plan.host_veth.as_str();
        let inside_name = plan.inside.as_str();
        self.ensure_vpc(plan)?;
        if plan.device_index == 0 {
            self.ip(&["netns", "add", ns])?;
        } else if !netns_exists(ns) {
            return Err(format!("the instance's namespace {ns} does not exist"));
        }
        self.ip(&[
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            inside_name,
            "address",
            &plan.mac,
            "netns",
            ns,
        ])?;
        // A bridge port: no address of its own in the agent's namespace, IPv6 link-local included.
        super::vpc::layer_2_only(veth)?;
        self.ip(&["link", "set", veth, "master", &plan.bridge, "up"])?;
        let inside = |args: &[&str]| self.ip(&[&["-n", ns], args].concat());
        inside(&["link", "set", "lo", "up"])?;
        inside(&["addr", "add", &plan.address.to_string(), "dev", inside_name])?;
        if let Some(address6) = plan.address6 {
            inside(&[
                "addr",
                "add",
                &address6.to_string(),
                "dev",
                inside_name,
                "nodad",
            ])?;
        }
        inside(&["link", "set", inside_name, "up"])?;
        let gateway = plan.gateway.addr().to_string();
        let gateway6 = plan
            .gateway6
            .filter(|_| plan.address6.is_some())
            .map(|g| g.addr().to_string());
        if plan.device_index == 0 {
            inside(&["route", "add", "default", "via", &gateway])?;
            if let Some(gateway6) = &gateway6 {
                inside(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    gateway6,
                    "dev",
                    inside_name,
                ])?;
            }
            return Ok(());
        }
        // One namespace, several interfaces on one layer-2 network: each answers ARP for its
        // own addresses only, and what is sent from an address leaves by its interface.
        self.ip(&[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
            "net.ipv4.conf.all.rp_filter=0",
        ])?;
        let table = (ROUTE_TABLES + plan.device_index).to_string();
        let subnet = plan.address.trunc().to_string();
        let address = plan.address.addr().to_string();
        inside(&[
            "route",
            "replace",
            &subnet,
            "dev",
            inside_name,
            "src",
            &address,
            "table",
            &table,
        ])?;
        inside(&[
            "route",
            "replace",
            "default",
            "via",
            &gateway,
            "dev",
            inside_name,
            "table",
            &table,
        ])?;
        inside(&["rule", "add", "from", &address, "lookup", &table])?;
        if let (Some(address6), Some(gateway6)) = (plan.address6, &gateway6) {
            let subnet6 = address6.trunc().to_string();
            let address6 = address6.addr().to_string();
            inside(&[
                "-6",
                "route",
                "replace",
                &subnet6,
                "dev",
                inside_name,
                "table",
                &table,
            ])?;
            inside(&[
                "-6",
                "route",
                "replace",
                "default",
                "via",
                gateway6,
                "dev",
                inside_name,
                "table",
                &table,
            ])?;
            inside(&["-6", "rule", "add", "from", &address6, "lookup", &table])?;
        }
        Ok(())
    }

    /// Removes an extra interface: its veth (the pair goes with it) and its routing rules.
    fn remove_extra(&self, plan: &LocalPlan) -> Result<(), String> {
        if link_exists(&plan.host_veth) {
            self.ip(&["link", "del", &plan.host_veth])?;
        }
        if netns_exists(&plan.netns) {
            let address = plan.address.addr().to_string();
            let _ = self.ip(&["-n", &plan.netns, "rule", "del", "from", &address]);
            if let Some(address6) = plan.address6 {
                let address6 = address6.addr().to_string();
                let _ = self.ip(&["-n", &plan.netns, "-6", "rule", "del", "from", &address6]);
            }
        }
        Ok(())
    }
}

impl Launcher for IpLauncher {
    fn check_registrable(&self, interface: &str) -> Result<(), String> {
        let link = register::link(interface);
        match register::refusal(
            interface,
            link.as_ref(),
            &register::default_route_devices(),
            &self.allowed,
        ) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    fn check_vpc(&self, plan: &LocalPlan) -> Result<(), String> {
        self.check_blocks(plan)
    }

    fn ensure(&mut self, plan: &LocalPlan) -> Result<(), String> {
        if plan.device_index > 0 {
            if link_exists(&plan.host_veth) {
                return self.ensure_vpc(plan).and_then(|()| {
                    super::vpc::layer_2_only(&plan.host_veth)?;
                    self.ip(&["link", "set", &plan.host_veth, "master", &plan.bridge, "up"])
                });
            }
            let _ = self.remove_extra(plan);
            return self.build(plan).inspect_err(|_| {
                let _ = self.remove_extra(plan);
            });
        }
        if netns_exists(&plan.netns) && link_exists(&plan.host_veth) {
            return self.ensure_vpc(plan).and_then(|()| {
                super::vpc::layer_2_only(&plan.host_veth)?;
                self.ip(&["link", "set", &plan.host_veth, "master", &plan.bridge, "up"])
            });
        }
        // A half-built or half-removed instance: start again from nothing.
        let _ = self.remove(plan);
        self.build(plan)
            .and_then(|()| match (&self.user_data, &plan.user_data) {
                (Some(root), Some(data)) => {
                    super::user_data::start(root, &plan.instance_id, &plan.netns, data)
                }
                _ => Ok(()),
            })
            .inspect_err(|_| {
                let _ = self.remove(plan);
            })
    }

    fn remove(&mut self, plan: &LocalPlan) -> Result<(), String> {
        if plan.device_index > 0 {
            return self.remove_extra(plan);
        }
        if netns_exists(&plan.netns) {
            super::user_data::end(self.user_data.as_deref(), &plan.instance_id, &plan.netns);
        }
        // Deleting the namespace destroys its `eth0` and so the pair, unless a process still
        // holds the namespace: the host side is deleted explicitly.
        if link_exists(&plan.host_veth) {
            self.ip(&["link", "del", &plan.host_veth])?;
        }
        if netns_exists(&plan.netns) {
            self.ip(&["netns", "del", &plan.netns])?;
        }
        self.remove_vpc_if_unused(plan)
    }
}

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
use crate::model::local::{INSTANCE_INTERFACE, LocalPlan};

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
}

impl IpLauncher {
    /// A launcher for an agent with `serve --host-routes` (`host_routes`) and
    /// `--allow-interface` (`allowed`).
    pub fn new(host_routes: bool, allowed: Allowed) -> IpLauncher {
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

impl IpLauncher {
    fn build(&self, plan: &LocalPlan) -> Result<(), String> {
        let ns = plan.netns.as_str();
        let veth = plan.host_veth.as_str();
        self.ensure_vpc(plan)?;
        self.ip(&["netns", "add", ns])?;
        self.ip(&[
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            INSTANCE_INTERFACE,
            "netns",
            ns,
        ])?;
        // A bridge port: no address of its own in the agent's namespace, IPv6 link-local included.
        super::vpc::layer_2_only(veth)?;
        self.ip(&["link", "set", veth, "master", &plan.bridge, "up"])?;
        let inside = |args: &[&str]| self.ip(&[&["-n", ns], args].concat());
        inside(&["link", "set", "lo", "up"])?;
        inside(&[
            "addr",
            "add",
            &plan.address.to_string(),
            "dev",
            INSTANCE_INTERFACE,
        ])?;
        if let Some(address6) = plan.address6 {
            inside(&[
                "addr",
                "add",
                &address6.to_string(),
                "dev",
                INSTANCE_INTERFACE,
                "nodad",
            ])?;
        }
        inside(&["link", "set", INSTANCE_INTERFACE, "up"])?;
        inside(&[
            "route",
            "add",
            "default",
            "via",
            &plan.gateway.addr().to_string(),
        ])?;
        if let (Some(_), Some(gateway6)) = (plan.address6, plan.gateway6) {
            inside(&[
                "-6",
                "route",
                "add",
                "default",
                "via",
                &gateway6.addr().to_string(),
                "dev",
                INSTANCE_INTERFACE,
            ])?;
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
        if netns_exists(&plan.netns) && link_exists(&plan.host_veth) {
            return self.ensure_vpc(plan).and_then(|()| {
                super::vpc::layer_2_only(&plan.host_veth)?;
                self.ip(&["link", "set", &plan.host_veth, "master", &plan.bridge, "up"])
            });
        }
        // A half-built or half-removed instance: start again from nothing.
        let _ = self.remove(plan);
        self.build(plan).inspect_err(|_| {
            let _ = self.remove(plan);
        })
    }

    fn remove(&mut self, plan: &LocalPlan) -> Result<(), String> {
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

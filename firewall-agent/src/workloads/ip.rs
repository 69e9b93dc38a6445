//! [`Launcher`] with iproute2's `ip`: `ip netns add` makes the namespace (bind-mounted under
//! /run/netns, so `ip netns exec` finds it and it outlives the agent), `ip link` the veth pair
//! and the bridge, `ip -n` configures the inside.

use std::{path::Path, process::Command};

use super::Launcher;
use crate::model::local::{INSTANCE_INTERFACE, LocalPlan};

/// Builds local instances with `ip` in the agent's network namespace.
#[derive(Default)]
pub struct IpLauncher;

/// Runs `ip` with `args`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
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

/// Whether the agent's network namespace has the interface `name` (asked over netlink: under
/// `ip netns exec` the agent's /sys may be another namespace's).
fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// The bridge's ports, empty when it has none (or does not exist).
fn bridge_has_ports(bridge: &str) -> bool {
    Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

fn ensure_bridge(plan: &LocalPlan) -> Result<(), String> {
    let bridge = plan.bridge.as_str();
    if !link_exists(bridge) {
        ip(&["link", "add", bridge, "type", "bridge"])?;
    }
    ip(&["addr", "replace", &plan.gateway.to_string(), "dev", bridge])?;
    if let Some(gateway6) = plan.gateway6 {
        ip(&["addr", "replace", &gateway6.to_string(), "dev", bridge, "nodad"])?;
    }
    ip(&["link", "set", bridge, "up"])
}

fn build(plan: &LocalPlan) -> Result<(), String> {
    let ns = plan.netns.as_str();
    let veth = plan.host_veth.as_str();
    ensure_bridge(plan)?;
    ip(&["netns", "add", ns])?;
    ip(&[
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
    ip(&["link", "set", veth, "master", &plan.bridge, "up"])?;
    let inside = |args: &[&str]| ip(&[&["-n", ns], args].concat());
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

impl Launcher for IpLauncher {
    fn ensure(&mut self, plan: &LocalPlan) -> Result<(), String> {
        if netns_exists(&plan.netns) && link_exists(&plan.host_veth) {
            return ensure_bridge(plan)
                .and_then(|()| ip(&["link", "set", &plan.host_veth, "master", &plan.bridge, "up"]));
        }
        // A half-built or half-removed instance: start again from nothing.
        let _ = self.remove(plan);
        build(plan).inspect_err(|_| {
            let _ = self.remove(plan);
        })
    }

    fn remove(&mut self, plan: &LocalPlan) -> Result<(), String> {
        // Deleting the namespace destroys its `eth0` and so the pair, unless a process still
        // holds the namespace: the host side is deleted explicitly.
        if link_exists(&plan.host_veth) {
            ip(&["link", "del", &plan.host_veth])?;
        }
        if netns_exists(&plan.netns) {
            ip(&["netns", "del", &plan.netns])?;
        }
        if link_exists(&plan.bridge) && !bridge_has_ports(&plan.bridge) {
            ip(&["link", "del", &plan.bridge])?;
        }
        Ok(())
    }
}

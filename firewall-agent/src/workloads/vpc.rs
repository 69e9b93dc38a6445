//! A VPC's network on the host, made so that it never changes the host's routing whatever block
//! a caller picks:
//!
//! - the VPC's bridge in the agent's namespace joins the instances' host-side veths (where the
//!   data plane attaches) at layer 2 only: it and its ports have no address, IPv6 included
//!   (`disable_ipv6`: otherwise the kernel gives each a link-local address and the bridge an
//!   `ff00::/8` route), so the agent's namespace gains no route;
//! - the VPC's router is a namespace of its own (`<vpc-id>-router`) joined to the bridge by a
//!   veth: its inside holds the gateway addresses (each subnet's first host) and forwards between
//!   the subnets (AWS's local route), and it has no route but the subnets' own, so nothing an
//!   instance sends leaves its VPC;
//! - only with `serve --host-routes` does the bridge get an address in the agent's namespace
//!   (the block's fourth, which AWS keeps and never gives an instance), and so a connected route
//!   to the instances; a block that overlaps a route or address the namespace already has is
//!   then refused.

use std::process::Command;

use ipnet::IpNet;

use super::{IpLauncher, ip_json, link_exists};
use crate::model::local::LocalPlan;

/// The leg's end inside the router's namespace.
const ROUTER_INTERFACE: &str = "gw0";

/// Whether `name` is a bridge (`ip -d` names the link kind).
fn is_bridge(name: &str) -> bool {
    Command::new("ip")
        .args(["-d", "-o", "link", "show", "dev", name])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(" bridge ")
        })
}

/// Whether the bridge has ports other than `except` (the router's leg).
fn bridge_has_ports(bridge: &str, except: &str) -> bool {
    Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|line| !line.contains(&format!(": {except}@")))
        })
}

/// The prefixes of the agent namespace's routes (every table) and addresses, with their device,
/// that overlap `block`, except those on `ours` (the VPC's own bridge).
pub fn overlapping(block: IpNet, ours: &str) -> Vec<String> {
    let mut found = Vec::new();
    let family = if block.addr().is_ipv4() { "-4" } else { "-6" };
    for route in ip_json(&[family, "-j", "route", "show", "table", "all"]) {
        let dev = route["dev"].as_str().unwrap_or_default();
        let Some(dst) = route["dst"].as_str() else {
            continue;
        };
        let prefix = match dst {
            "default" => continue,
            d if d.contains('/') => d.parse::<IpNet>().ok(),
            d => d.parse::<std::net::IpAddr>().ok().map(IpNet::from),
        };
        if let Some(prefix) = prefix
            && dev != ours
            && (prefix.contains(&block.network()) || block.contains(&prefix.network()))
            && !prefix.addr().is_loopback()
            && !is_link_local(&prefix)
        {
            found.push(format!("route {dst} dev {dev}"));
        }
    }
    for link in ip_json(&[family, "-j", "addr", "show"]) {
        let dev = link["ifname"].as_str().unwrap_or_default();
        for info in link["addr_info"].as_array().into_iter().flatten() {
            let local: Option<std::net::IpAddr> =
                info["local"].as_str().and_then(|a| a.parse().ok());
            if let Some(address) = local
                && dev != ours
                && block.contains(&address)
            {
                found.push(format!("address {address} on {dev}"));
            }
        }
    }
    found
}

/// Turns IPv6 off on `interface` of the agent's namespace (a bridge or a bridge port: the
/// frames it carries are unaffected), so the kernel gives it no address and no route. Written to
/// `/proc/sys/net`, which is the writing process's network namespace's.
pub(super) fn layer_2_only(interface: &str) -> Result<(), String> {
    let path = format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Ok(()) => Ok(()),
        // A kernel without IPv6 gives no address either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

fn is_link_local(prefix: &IpNet) -> bool {
    match prefix {
        IpNet::V6(p) => p.addr().segments()[0] & 0xffc0 == 0xfe80,
        IpNet::V4(p) => p.addr().is_link_local(),
    }
}

impl IpLauncher {
    /// Refuses a VPC whose blocks overlap what the agent's namespace routes to already, when
    /// its bridge would get an address there (`--host-routes`).
    pub(super) fn check_blocks(&self, plan: &LocalPlan) -> Result<(), String> {
        if !self.host_routes {
            return Ok(());
        }
        let blocks = std::iter::once(IpNet::from(plan.block)).chain(plan.block6.map(IpNet::from));
        for block in blocks {
            let clashes = overlapping(block, &plan.bridge);
            if !clashes.is_empty() {
                return Err(format!(
                    "The CIDR {block} overlaps what the agent's network namespace already has \
                     ({}): with --host-routes its instances would take over that traffic.",
                    clashes.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Makes the VPC's bridge and router exist as the module's doc says (idempotent; a bridge
    /// left with the gateway addresses by an agent before the router namespaces loses them).
    pub(super) fn ensure_vpc(&self, plan: &LocalPlan) -> Result<(), String> {
        let bridge = plan.bridge.as_str();
        if !link_exists(bridge) {
            self.ip(&["link", "add", bridge, "type", "bridge"])?;
        } else if !is_bridge(bridge) {
            return Err(format!(
                "the interface {bridge} (the VPC's bridge) exists and is not a bridge"
            ));
        }
        if self.host_routes {
            // Checked before anything changes: a refusal leaves running instances reachable.
            self.check_blocks(plan)?;
            let mut addresses = vec![plan.host_address.to_string()];
            addresses.extend(plan.host_address6.map(|a| a.to_string()));
            for address in &addresses {
                self.ip(&["addr", "replace", address, "dev", bridge, "nodad"])?;
            }
        } else {
            // A bridge an agent before the router namespaces made holds the gateway addresses.
            self.ip(&["addr", "flush", "dev", bridge])?;
            layer_2_only(bridge)?;
        }
        self.ip(&["link", "set", bridge, "up"])?;
        self.ensure_router(plan)
    }

    fn ensure_router(&self, plan: &LocalPlan) -> Result<(), String> {
        let (router, leg) = (plan.router.as_str(), plan.router_leg.as_str());
        if !super::netns_exists(router) {
            let _ = self.ip(&["link", "del", leg]);
            self.ip(&["netns", "add", router])?;
        }
        if !link_exists(leg) {
            self.ip(&[
                "link",
                "add",
                leg,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_INTERFACE,
                "netns",
                router,
            ])?;
        }
        layer_2_only(leg)?;
        self.ip(&["link", "set", leg, "master", &plan.bridge, "up"])?;
        let inside = |args: &[&str]| self.ip(&[&["-n", router], args].concat());
        inside(&["link", "set", "lo", "up"])?;
        for gateway in &plan.gateways {
            inside(&[
                "addr",
                "replace",
                &gateway.to_string(),
                "dev",
                ROUTER_INTERFACE,
            ])?;
        }
        for gateway6 in &plan.gateways6 {
            inside(&[
                "addr",
                "replace",
                &gateway6.to_string(),
                "dev",
                ROUTER_INTERFACE,
                "nodad",
            ])?;
        }
        inside(&["link", "set", ROUTER_INTERFACE, "up"])?;
        // The VPC's local route: the router forwards between its subnets, on the one leg it
        // has (so no redirects: each subnet's instances must go through their gateway).
        self.ip(&[
            "netns",
            "exec",
            router,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.send_redirects=0",
            &format!("net.ipv4.conf.{ROUTER_INTERFACE}.send_redirects=0"),
        ])
    }

    /// Removes the VPC's bridge and router once no instance's veth is on the bridge.
    pub(super) fn remove_vpc_if_unused(&self, plan: &LocalPlan) -> Result<(), String> {
        let bridge = plan.bridge.as_str();
        if is_bridge(bridge) && bridge_has_ports(bridge, &plan.router_leg) {
            return Ok(());
        }
        if link_exists(&plan.router_leg) {
            self.ip(&["link", "del", &plan.router_leg])?;
        }
        if super::netns_exists(&plan.router) {
            self.ip(&["netns", "del", &plan.router])?;
        }
        if is_bridge(bridge) {
            self.ip(&["link", "del", bridge])?;
        }
        Ok(())
    }
}

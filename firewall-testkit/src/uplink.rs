//! A test "host" namespace's own network: an uplink veth (10.66.0.2/24) to a namespace standing
//! for the host's network (10.66.0.1), which carries the host's default route — as `eth0` does
//! on a VM. Nothing leaves the test's namespaces; both are deleted on drop.

use std::net::Ipv4Addr;

use crate::{
    netns::Netns,
    shell::{ns_sh, sh, unique},
};

/// The network's address, the host's next hop.
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
/// The host's subnet on its uplink.
pub const SUBNET: &str = "10.66.0.0/24";

pub struct Uplink {
    /// The namespace standing for the host's network (its `eth0` is 10.66.0.1/24).
    pub network: Netns,
    /// The host's end of the pair, in the host namespace.
    pub name: String,
}

impl Uplink {
    pub fn new(host: &Netns) -> Uplink {
        let network = Netns::new("fwnet");
        let name = unique("up");
        sh(&[
            "ip",
            "link",
            "add",
            &name,
            "netns",
            &host.name,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &network.name,
        ]);
        ns_sh(
            &network.name,
            &["ip", "addr", "add", "10.66.0.1/24", "dev", "eth0"],
        );
        ns_sh(&network.name, &["ip", "link", "set", "eth0", "up"]);
        ns_sh(
            &host.name,
            &["ip", "addr", "add", "10.66.0.2/24", "dev", &name],
        );
        ns_sh(&host.name, &["ip", "link", "set", &name, "up"]);
        ns_sh(
            &host.name,
            &["ip", "route", "add", "default", "via", "10.66.0.1"],
        );
        Uplink { network, name }
    }
}

/// The namespace's routes (every table, both families) and addresses, as `ip` prints them.
pub fn routing(host: &Netns) -> String {
    [
        &["ip", "-4", "route", "show", "table", "all"][..],
        &["ip", "-6", "route", "show", "table", "all"],
        &["ip", "-o", "addr", "show"],
    ]
    .iter()
    .map(|args| ns_sh(&host.name, args))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The namespace's interfaces by name, sorted.
pub fn interfaces(host: &Netns) -> Vec<String> {
    let mut names: Vec<String> = ns_sh(&host.name, &["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect();
    names.sort();
    names
}

//! The topology of the real-traffic tests and benchmarks: one host namespace (where the agent or
//! the data plane runs and routes between workloads, Calico-style: /32 routes and proxy ARP on
//! each host-side veth) and one namespace per workload, each with `eth0` whose peer is a
//! host-side veth. Nothing is routed out of these namespaces; every name is unique, and every
//! namespace (with its veths) is deleted on drop, also on panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{
    netns::Netns,
    shell::{ns_sh, sh, unique},
};

/// A workload: its namespace, its addresses and the host-side veth the agent enforces on.
pub struct Workload {
    pub ns: Netns,
    pub ip: Ipv4Addr,
    /// `fd00:ec2::<third octet>:<fourth octet>`, inside the default VPC's IPv6 block (assigned
    /// only with [`Options::ipv6`]).
    pub ip6: Ipv6Addr,
    pub host_if: String,
}

impl Workload {
    /// Its IPv4 address as a /32 CIDR, the peer of a rule for this workload alone.
    pub fn cidr(&self) -> String {
        format!("{}/32", self.ip)
    }
}

/// The host namespace's own addresses (on its `lo`): the source of the ICMP errors it sends.
pub const HOST_IP: &str = "172.31.255.1";
pub const HOST_IP6: &str = "fd00:ec2::ffff:1";

/// What a topology sets up besides IPv4 routing.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// IPv6 addresses and routes for the workloads and IPv6 forwarding on the host.
    pub ipv6: bool,
    /// Leave reverse-path filtering as it is on the host (off: for frames injected at a veth).
    pub rp_filter: bool,
}

impl Default for Options {
    /// What the integration tests use: dual stack, the kernel's reverse-path filtering.
    fn default() -> Options {
        Options {
            ipv6: true,
            rp_filter: true,
        }
    }
}

/// The host namespace and the workloads hanging off it.
pub struct Topology {
    pub workloads: Vec<Workload>,
    options: Options,
    /// Declared last: dropped after the workloads.
    pub host: Netns,
}

/// The names of a topology's namespaces and host-side veths, to build it again under the same
/// names once it is gone ([`Topology::named`]), as a harness reusing names would.
#[derive(Clone, Debug)]
pub struct Names {
    host: String,
    /// Address, namespace, host-side veth.
    workloads: Vec<(Ipv4Addr, String, String)>,
    options: Options,
}

impl Topology {
    /// One dual-stack workload per address, all in the default VPC's 172.31.0.0/16.
    pub fn new(addresses: &[&str]) -> Topology {
        Self::with_options(addresses, Options::default())
    }

    pub fn with_options(addresses: &[&str], options: Options) -> Topology {
        let names = Names {
            host: unique("fwh"),
            workloads: addresses
                .iter()
                .map(|address| {
                    let ip = address.parse().expect("IPv4 address");
                    (ip, unique("fww"), unique("fv"))
                })
                .collect(),
            options,
        };
        Self::named(&names)
    }

    /// Its names, for [`Topology::named`].
    pub fn names(&self) -> Names {
        Names {
            host: self.host.name.clone(),
            workloads: self
                .workloads
                .iter()
                .map(|w| (w.ip, w.ns.name.clone(), w.host_if.clone()))
                .collect(),
            options: self.options,
        }
    }

    /// A topology under exactly these names (new namespaces and veths; the old ones must be gone).
    pub fn named(names: &Names) -> Topology {
        let options = names.options;
        let host = Netns::named(&names.host);
        let host_sysctl = |setting: &str| ns_sh(&host.name, &["sysctl", "-qw", setting]);
        host_sysctl("net.ipv4.ip_forward=1");
        if options.ipv6 {
            host_sysctl("net.ipv6.conf.all.forwarding=1");
        }
        if !options.rp_filter {
            host_sysctl("net.ipv4.conf.all.rp_filter=0");
        }
        for address in [format!("{HOST_IP}/32"), format!("{HOST_IP6}/128")] {
            ns_sh(&host.name, &["ip", "addr", "add", &address, "dev", "lo"]);
        }
        let mut workloads = Vec::new();
        for (ip, ns, host_if) in &names.workloads {
            let [_, _, c, d] = ip.octets();
            let ip6: Ipv6Addr = format!("fd00:ec2::{c:x}:{d:x}")
                .parse()
                .expect("IPv6 address");
            let workload = Workload {
                ns: Netns::named(ns),
                ip: *ip,
                ip6,
                host_if: host_if.clone(),
            };
            wire(&host, &workload, options);
            workloads.push(workload);
        }
        Topology {
            workloads,
            options,
            host,
        }
    }

    /// Deletes workload `i`'s veth pair and makes it again under the same names and addresses,
    /// as someone deleting the host-side veth by hand and recreating it would: links attached to
    /// the old device are severed.
    pub fn remake_veth(&self, i: usize) {
        let workload = &self.workloads[i];
        ns_sh(&self.host.name, &["ip", "link", "del", &workload.host_if]);
        wire(&self.host, workload, self.options);
    }
}

/// The veth pair of `workload`: its host side routed and answering proxy ARP, its `eth0` with
/// its addresses and a route to the VPC.
fn wire(host: &Netns, workload: &Workload, options: Options) {
    let (ns, host_if, ip, ip6) = (&workload.ns, &workload.host_if, workload.ip, workload.ip6);
    let host_sysctl = |setting: &str| ns_sh(&host.name, &["sysctl", "-qw", setting]);
    sh(&[
        "ip", "link", "add", host_if, "netns", &host.name, "type", "veth", "peer", "name", "eth0",
        "netns", &ns.name,
    ]);
    host_sysctl(&format!("net.ipv4.conf.{host_if}.proxy_arp=1"));
    // Answer proxy ARP at once (the default delays it up to 0.8 s).
    host_sysctl(&format!("net.ipv4.neigh.{host_if}.proxy_delay=0"));
    if !options.rp_filter {
        host_sysctl(&format!("net.ipv4.conf.{host_if}.rp_filter=0"));
    }
    let host_ip = |args: &[&str]| ns_sh(&host.name, &[&["ip"], args].concat());
    let workload_ip = |args: &[&str]| ns_sh(&ns.name, &[&["ip"], args].concat());
    host_ip(&["link", "set", host_if, "up"]);
    host_ip(&["route", "add", &format!("{ip}/32"), "dev", host_if]);
    workload_ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
    workload_ip(&["link", "set", "eth0", "up"]);
    workload_ip(&["route", "add", "172.31.0.0/16", "dev", "eth0"]);
    if options.ipv6 {
        // The host side answers as fe80::1 and routes each workload's /128.
        host_ip(&["addr", "add", "fe80::1/64", "dev", host_if, "nodad"]);
        host_ip(&["-6", "route", "add", &format!("{ip6}/128"), "dev", host_if]);
        workload_ip(&["addr", "add", &format!("{ip6}/128"), "dev", "eth0", "nodad"]);
        workload_ip(&[
            "-6",
            "route",
            "add",
            "fd00:ec2::/56",
            "via",
            "fe80::1",
            "dev",
            "eth0",
        ]);
    }
}

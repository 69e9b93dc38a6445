//! A bench topology: a host namespace routing between workload namespaces (as in the tests),
//! and the generated state with the workloads on its host-side veths.

use std::net::Ipv4Addr;

use firewall_agent::model::{RandomIds, State, ops::dispatch};
use serde_json::json;

use crate::common::{Netns, WorkloadSpec, build_state, ns_sh, sh};

pub struct Topo {
    pub host: Netns,
    pub workloads: Vec<(Netns, Ipv4Addr, String)>,
}

impl Topo {
    pub fn new(prefix: &str, addresses: &[Ipv4Addr]) -> Topo {
        let host = Netns::new(&format!("{prefix}h"));
        ns_sh(&host.0, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        ns_sh(&host.0, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        let mut workloads = Vec::new();
        for (n, ip) in addresses.iter().enumerate() {
            let ns = Netns::new(&format!("{prefix}w{n}"));
            let host_if = format!("{prefix}v{n}");
            sh(&[
                "ip", "link", "add", &host_if, "netns", &host.0, "type", "veth", "peer", "name",
                "eth0", "netns", &ns.0,
            ]);
            ns_sh(
                &host.0,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{host_if}.proxy_arp=1"),
                ],
            );
            ns_sh(
                &host.0,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.neigh.{host_if}.proxy_delay=0"),
                ],
            );
            ns_sh(
                &host.0,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{host_if}.rp_filter=0"),
                ],
            );
            ns_sh(&host.0, &["ip", "link", "set", &host_if, "up"]);
            ns_sh(
                &host.0,
                &["ip", "route", "add", &format!("{ip}/32"), "dev", &host_if],
            );
            ns_sh(
                &ns.0,
                &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
            );
            ns_sh(&ns.0, &["ip", "link", "set", "eth0", "up"]);
            ns_sh(
                &ns.0,
                &["ip", "route", "add", "172.31.0.0/16", "dev", "eth0"],
            );
            workloads.push((ns, *ip, host_if));
        }
        Topo { host, workloads }
    }

    /// The generated state with these workloads, and `extra` inbound permissions on group g0.
    pub fn state(&self, rules: usize, extra: serde_json::Value) -> State {
        let specs: Vec<WorkloadSpec> = self
            .workloads
            .iter()
            .map(|(_, ip, host_if)| WorkloadSpec {
                interface: host_if,
                ip: *ip,
                ip6: None,
            })
            .collect();
        let mut state = build_state(rules, 42, &specs);
        let g0 = crate::common::group_id(&state, "g0");
        dispatch(
            &mut state,
            &mut RandomIds,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": g0, "IpPermissions": extra}),
        )
        .unwrap();
        // Only the last workload (the server) carries the generated groups: the clients are in a
        // group of their own, so no generated rule (e.g. a group reference) admits them by accident.
        let client = dispatch(
            &mut state,
            &mut RandomIds,
            "CreateSecurityGroup",
            json!({"GroupName": "client", "Description": "bench client"}),
        )
        .unwrap();
        let client = client["GroupId"].as_str().unwrap().to_string();
        let last = specs.len() - 1;
        for (n, (_, ip, _)) in self.workloads.iter().enumerate() {
            if n != last
                && let Some(instance) = state.instances.values_mut().find(|i| i.private_ip == *ip)
            {
                instance.group_ids = vec![client.clone()];
            }
        }
        state
    }

    /// Loads a ruleset with `nft -f` in the host namespace.
    pub fn load_nft(&self, ruleset: &str) {
        crate::common::load_nft(&self.host.0, ruleset);
    }

    pub fn flush_nft(&self) {
        ns_sh(&self.host.0, &["nft", "flush", "ruleset"]);
    }
}

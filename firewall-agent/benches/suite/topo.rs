//! The benchmarks' use of the kit's topology: IPv4 only, reverse-path filtering off (frames are
//! injected at a host-side veth), the generated state with the workloads on its host-side veths,
//! and nftables rulesets loaded in the host namespace.

use std::net::Ipv4Addr;

use firewall_agent::model::{State, TableExt as _};
use firewall_testkit::{
    model::{call, create_group},
    shell::ns_sh,
    topology::{Options, Topology},
};
use serde_json::json;

use crate::common::{WorkloadSpec, build_state, group_id};

/// One IPv4 workload per address.
pub fn topology(addresses: &[Ipv4Addr]) -> Topology {
    let addresses: Vec<String> = addresses.iter().map(Ipv4Addr::to_string).collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    Topology::with_options(
        &addresses,
        Options {
            ipv6: false,
            rp_filter: false,
        },
    )
}

/// The generated state with these workloads, and `extra` inbound permissions on group g0.
pub fn state(topo: &Topology, rules: usize, extra: serde_json::Value) -> State {
    let specs: Vec<WorkloadSpec> = topo
        .workloads
        .iter()
        .map(|w| WorkloadSpec {
            interface: &w.host_if,
            ip: w.ip,
            ip6: None,
        })
        .collect();
    let mut state = build_state(rules, 42, &specs);
    let g0 = group_id(&state, "g0");
    call(
        &mut state,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": g0, "IpPermissions": extra}),
    );
    // Only the last workload (the server) carries the generated groups: the clients are in a
    // group of their own, so no generated rule (e.g. a group reference) admits them by accident.
    let client = create_group(&mut state, "client", json!([]));
    let last = specs.len() - 1;
    for (n, w) in topo.workloads.iter().enumerate() {
        if n != last {
            state.network_interfaces.edit_where(
                |i| i.private_ip == w.ip,
                |eni| eni.group_ids = vec![client.clone()],
            );
        }
    }
    state
}

/// Loads a ruleset with `nft -f` in the host namespace.
pub fn load_nft(topo: &Topology, ruleset: &str) {
    crate::common::load_nft(&topo.host.name, ruleset);
}

pub fn flush_nft(topo: &Topology) {
    ns_sh(&topo.host.name, &["nft", "flush", "ruleset"]);
}

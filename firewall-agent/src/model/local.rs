//! Local instances (launched by the agent rather than registered): the names of their network
//! namespace, host-side veths and VPC bridge, derived from their IDs, and what each of their
//! network interfaces needs (addresses with their subnet's prefix, gateways). Pure: the host side (`crate::workloads`) builds what this decides.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{
    network::{NetworkInterface, Subnet},
    state::{Instance, State},
};

/// Interface names are at most 15 bytes (IFNAMSIZ 16 with its NUL).
const IFNAMSIZ: usize = 15;

/// The interface inside every local instance's namespace for its primary network interface;
/// the interface at device index N is `eth<N>`.
pub const INSTANCE_INTERFACE: &str = "eth0";

/// What the host side builds for one network interface of a local instance, all decided here:
/// for the primary one (device index 0) the instance's namespace too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    pub instance_id: String,
    /// The network interface (`eni-…`).
    pub interface_id: String,
    /// 0 for the primary interface (the namespace is built and removed with it).
    pub device_index: u32,
    /// The instance's network namespace (`ip netns exec NAME` enters it).
    pub netns: String,
    /// The host-side veth (where the data plane attaches); its peer is `inside` in `netns`.
    pub host_veth: String,
    /// `eth<device index>`.
    pub inside: String,
    /// The interface's MAC address, given to `inside`.
    pub mac: String,
    /// The VPC's bridge in the agent's namespace: layer 2 only, no address (so no route there).
    pub bridge: String,
    /// The VPC's router: a network namespace of its own, joined to the bridge by a veth whose
    /// bridge side is `router_leg` and whose inside holds the gateway addresses. It has no route
    /// but the VPC's subnets: nothing the instances send leaves the VPC.
    pub router: String,
    pub router_leg: String,
    /// The VPC's blocks.
    pub block: Ipv4Net,
    pub block6: Option<Ipv6Net>,
    /// The interface's gateway: its subnet's first host, with the subnet's prefix.
    pub gateway: Ipv4Net,
    pub gateway6: Option<Ipv6Net>,
    /// Every subnet's gateway of the VPC: the router holds them all and routes between them.
    pub gateways: Vec<Ipv4Net>,
    pub gateways6: Vec<Ipv6Net>,
    /// With `serve --host-routes` only: the bridge's address in the agent's namespace (the
    /// block's fourth address, which AWS keeps "for future use" and never gives an instance),
    /// whose connected route lets the agent's namespace reach the instances.
    pub host_address: Ipv4Net,
    pub host_address6: Option<Ipv6Net>,
    /// The interface's addresses with its subnet's prefix lengths.
    pub address: Ipv4Net,
    pub address6: Option<Ipv6Net>,
    /// The primary interface's: the instance's user data (base64, as launched), which an agent
    /// with `serve --run-user-data` runs in the namespace it builds.
    pub user_data: Option<String>,
}

/// The last `n` characters of an ID (its random hex digits).
fn tail(id: &str, n: usize) -> &str {
    &id[id.len().saturating_sub(n)..]
}

/// The namespace of the local instance `instance_id`: its ID.
pub fn netns_name(instance_id: &str) -> String {
    instance_id.to_string()
}

/// `fwi` and the ID's last 12 hex digits: 15 bytes.
pub fn host_veth_name(instance_id: &str) -> String {
    let name = format!("fwi{}", tail(instance_id, IFNAMSIZ - 3));
    debug_assert!(name.len() <= IFNAMSIZ);
    name
}

/// `fwe` and the interface ID's last 12 hex digits: the host side of an interface attached to
/// a local instance after its launch.
pub fn extra_veth_name(eni_id: &str) -> String {
    format!("fwe{}", tail(eni_id, IFNAMSIZ - 3))
}

/// `fwbr` and the VPC ID's last 11 hex digits: 15 bytes.
pub fn bridge_name(vpc_id: &str) -> String {
    format!("fwbr{}", tail(vpc_id, IFNAMSIZ - 4))
}

/// `fwrt` and the VPC ID's last 11 hex digits: the router's leg on the bridge.
pub fn router_leg_name(vpc_id: &str) -> String {
    format!("fwrt{}", tail(vpc_id, IFNAMSIZ - 4))
}

/// The VPC router's namespace: the VPC's ID and `-router`.
pub fn router_name(vpc_id: &str) -> String {
    format!("{vpc_id}-router")
}

/// The address `offset` into a block, with the block's prefix.
fn nth(block: Ipv4Net, offset: u32) -> Ipv4Net {
    let address = u32::from(block.network()) + offset;
    Ipv4Net::new(Ipv4Addr::from(address), block.prefix_len()).expect("prefix of a CIDR")
}

fn nth6(block: Ipv6Net, offset: u128) -> Ipv6Net {
    let address = u128::from(block.network()) + offset;
    Ipv6Net::new(Ipv6Addr::from(address), block.prefix_len()).expect("prefix of a CIDR")
}

/// What the host side builds for the network interface `eni` of `instance`, when the instance
/// is a local one. An interface outside every subnet (a state upgraded from a release before
/// subnets) takes the VPC's block as its subnet.
pub fn plan(state: &State, instance: &Instance, eni: &NetworkInterface) -> Option<LocalPlan> {
    let netns = instance.netns.clone()?;
    let vpc = state.vpcs.get(&instance.vpc_id)?;
    let device_index = eni.attachment.as_ref()?.device_index;
    let subnet = state
        .subnets
        .get(&eni.subnet_id)
        .filter(|s| s.cidr.contains(&eni.private_ip));
    let block = subnet.map_or(vpc.cidr, |s| s.cidr);
    let block6 = subnet.map_or(vpc.ipv6_cidr, |s| s.ipv6_cidr);
    let subnets: Vec<&Subnet> = state
        .subnets
        .values()
        .filter(|s| s.vpc_id == vpc.id)
        .collect();
    let mut gateways: Vec<Ipv4Net> = subnets.iter().map(|s| nth(s.cidr, 1)).collect();
    let mut gateways6: Vec<Ipv6Net> = subnets
        .iter()
        .filter_map(|s| s.ipv6_cidr.map(|b| nth6(b, 1)))
        .collect();
    let gateway = nth(block, 1);
    let gateway6 = block6.map(|b| nth6(b, 1));
    if !gateways.contains(&gateway) {
        gateways.push(gateway);
    }
    gateways6.extend(gateway6.filter(|g| !gateways6.contains(g)));
    Some(LocalPlan {
        instance_id: instance.id.clone(),
        interface_id: eni.id.clone(),
        device_index,
        netns,
        host_veth: eni.host_interface.clone(),
        inside: format!("eth{device_index}"),
        mac: eni.mac(),
        bridge: bridge_name(&vpc.id),
        router: router_name(&vpc.id),
        router_leg: router_leg_name(&vpc.id),
        block: vpc.cidr,
        block6: vpc.ipv6_cidr,
        gateway,
        gateway6,
        gateways,
        gateways6,
        host_address: nth(vpc.cidr, 3),
        host_address6: vpc.ipv6_cidr.map(|b| nth6(b, 3)),
        address: Ipv4Net::new(eni.private_ip, block.prefix_len()).expect("subnet prefix"),
        address6: eni
            .ipv6
            .zip(block6)
            .map(|(a, b)| Ipv6Net::new(a, b.prefix_len()).expect("subnet prefix")),
        user_data: instance
            .launch
            .user_data
            .clone()
            .filter(|_| device_index == 0),
    })
}

/// The plans of every interface of `instance` in `state`, the primary first.
pub fn plans(state: &State, instance: &Instance) -> Vec<LocalPlan> {
    state
        .interfaces_of(&instance.id)
        .into_iter()
        .filter_map(|eni| plan(state, instance, eni))
        .collect()
}

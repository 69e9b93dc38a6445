//! Local instances (launched by the agent rather than registered): the names of their network
//! namespace, host-side veth and VPC bridge, derived from their IDs, and the addresses they get
//! from their VPC's blocks. Pure: the host side (`crate::workloads`) builds what this decides.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr},
};

use ipnet::{Ipv4Net, Ipv6Net};

use super::state::{Instance, InstanceState, State, Vpc};
use crate::api::{ApiError, ApiResult};

/// Interface names are at most 15 bytes (IFNAMSIZ 16 with its NUL).
const IFNAMSIZ: usize = 15;

/// AWS keeps the first four addresses of a subnet (network, router, DNS, future) and the last.
const RESERVED_LOW: u32 = 4;

/// The interface inside every local instance's namespace.
pub const INSTANCE_INTERFACE: &str = "eth0";

/// What the host side builds for one local instance, all decided here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    pub instance_id: String,
    /// The instance's network namespace (`ip netns exec NAME` enters it).
    pub netns: String,
    /// The host-side veth (where the data plane attaches); its peer is `eth0` in `netns`.
    pub host_veth: String,
    /// The VPC's bridge in the agent's namespace: layer 2 only, no address (so no route there).
    pub bridge: String,
    /// The VPC's router: a network namespace of its own, joined to the bridge by a veth whose
    /// bridge side is `router_leg` and whose inside holds the gateway addresses. It has no route
    /// but the VPC's own block: nothing the instances send leaves the VPC.
    pub router: String,
    pub router_leg: String,
    /// The instances' gateway (the block's first host), on the router's side of the leg.
    pub gateway: Ipv4Net,
    pub gateway6: Option<Ipv6Net>,
    /// With `serve --host-routes` only: the bridge's address in the agent's namespace (the
    /// block's fourth address, which AWS keeps "for future use" and never gives an instance),
    /// whose connected route lets the agent's namespace reach the instances.
    pub host_address: Ipv4Net,
    pub host_address6: Option<Ipv6Net>,
    /// The instance's addresses with the VPC's prefix lengths.
    pub address: Ipv4Net,
    pub address6: Option<Ipv6Net>,
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

/// The address `offset` into the VPC's IPv4 block, with its prefix.
fn nth(vpc: &Vpc, offset: u32) -> Ipv4Net {
    let address = u32::from(vpc.cidr.network()) + offset;
    Ipv4Net::new(Ipv4Addr::from(address), vpc.cidr.prefix_len()).expect("prefix of a CIDR")
}

fn nth6(vpc: &Vpc, offset: u128) -> Option<Ipv6Net> {
    vpc.ipv6_cidr.map(|block| {
        let address = u128::from(block.network()) + offset;
        Ipv6Net::new(Ipv6Addr::from(address), block.prefix_len()).expect("prefix of a CIDR")
    })
}

/// What the host side builds for `instance`, when it is a local one.
pub fn plan(state: &State, instance: &Instance) -> Option<LocalPlan> {
    let netns = instance.netns.clone()?;
    let vpc = state.vpcs.get(&instance.vpc_id)?;
    Some(LocalPlan {
        instance_id: instance.id.clone(),
        netns,
        host_veth: instance.interface.clone(),
        bridge: bridge_name(&vpc.id),
        router: router_name(&vpc.id),
        router_leg: router_leg_name(&vpc.id),
        gateway: nth(vpc, 1),
        gateway6: nth6(vpc, 1),
        host_address: nth(vpc, 3),
        host_address6: nth6(vpc, 3),
        address: Ipv4Net::new(instance.private_ip, vpc.cidr.prefix_len()).expect("VPC prefix"),
        address6: instance
            .ipv6
            .zip(vpc.ipv6_cidr)
            .map(|(a, block)| Ipv6Net::new(a, block.prefix_len()).expect("VPC prefix")),
    })
}

/// Addresses of the VPC's live instances, both families.
fn in_use(state: &State, vpc_id: &str) -> (BTreeSet<Ipv4Addr>, BTreeSet<Ipv6Addr>) {
    let live = state
        .instances
        .values()
        .filter(|i| i.vpc_id == vpc_id && i.state != InstanceState::Terminated);
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    for instance in live {
        v4.insert(instance.private_ip);
        v6.extend(instance.ipv6);
    }
    (v4, v6)
}

/// The lowest address of the VPC's IPv4 block that is neither reserved nor in use.
pub fn free_ipv4(state: &State, vpc: &Vpc) -> ApiResult<Ipv4Addr> {
    let (used, _) = in_use(state, &vpc.id);
    let network = u32::from(vpc.cidr.network());
    let last = u32::from(vpc.cidr.broadcast());
    (network + RESERVED_LOW..last)
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
        .ok_or_else(|| {
            ApiError::new(
                "InsufficientFreeAddressesInSubnet",
                format!("VPC {} has no free IPv4 address left.", vpc.id),
            )
        })
}

/// The lowest address of the VPC's IPv6 block past the reserved ones that is not in use (the
/// search is bounded: a block has far more addresses than a host has instances).
pub fn free_ipv6(state: &State, vpc: &Vpc) -> Option<Ipv6Addr> {
    let block = vpc.ipv6_cidr?;
    let (_, used) = in_use(state, &vpc.id);
    let network = u128::from(block.network());
    (u128::from(RESERVED_LOW)..u128::from(RESERVED_LOW) + 1 + used.len() as u128)
        .map(|offset| Ipv6Addr::from(network + offset))
        .find(|a| block.contains(a) && !used.contains(a))
}

/// A given IPv6 address of a local instance must be in the VPC's block and not one AWS keeps
/// there (the first four: the router has the first, `--host-routes`' bridge the fourth; and
/// the last).
pub fn check_not_reserved6(vpc: &Vpc, address: Ipv6Addr) -> ApiResult<()> {
    let Some(block) = vpc.ipv6_cidr.filter(|block| block.contains(&address)) else {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is not in the IPv6 block of VPC {}.",
            vpc.id
        )));
    };
    let offset = u128::from(address) - u128::from(block.network());
    if offset < u128::from(RESERVED_LOW) || address == block.broadcast() {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is reserved in VPC {} (the first four and the last).",
            vpc.id
        )));
    }
    Ok(())
}

/// A given address of a local instance must not be one AWS keeps (the router has the first).
pub fn check_not_reserved(vpc: &Vpc, address: Ipv4Addr) -> ApiResult<()> {
    let offset = u32::from(address) - u32::from(vpc.cidr.network());
    if offset < RESERVED_LOW || address == vpc.cidr.broadcast() {
        return Err(ApiError::invalid_value(format!(
            "Address {address} is reserved in VPC {} (the first four and the last).",
            vpc.id
        )));
    }
    Ok(())
}

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
    /// The VPC's bridge in the agent's namespace, and its addresses (the instances' gateway).
    pub bridge: String,
    pub gateway: Ipv4Net,
    pub gateway6: Option<Ipv6Net>,
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

/// The VPC router's address (the block's first host), on the VPC's bridge.
fn gateway(vpc: &Vpc) -> Ipv4Net {
    let first = u32::from(vpc.cidr.network()) + 1;
    Ipv4Net::new(Ipv4Addr::from(first), vpc.cidr.prefix_len()).expect("prefix of a CIDR")
}

fn gateway6(vpc: &Vpc) -> Option<Ipv6Net> {
    vpc.ipv6_cidr.map(|block| {
        let first = u128::from(block.network()) + 1;
        Ipv6Net::new(Ipv6Addr::from(first), block.prefix_len()).expect("prefix of a CIDR")
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
        gateway: gateway(vpc),
        gateway6: gateway6(vpc),
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

/// A given address of a local instance must not be one AWS keeps (the bridge has the first).
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

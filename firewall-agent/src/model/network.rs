//! Subnets and network interfaces as the state holds them, and the facts every part derives from
//! them. On AWS a security group is attached to a network interface (ENI), not to an instance:
//! every instance has a primary interface (device index 0) and may have more, each in a subnet
//! of the instance's VPC with its own groups and addresses. Here an interface attached to an
//! instance is one host-side veth, the point the data plane enforces on.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::{
    state::{Instance, InstanceState, State, TableExt},
    tagging::Tag,
};

/// A subnet: a block of its VPC's addresses in one availability zone. The first four addresses
/// and the last are AWS's (network, router, DNS, future; broadcast); the router (the first) is
/// every instance's gateway in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr: Ipv4Net,
    /// A /64 of the VPC's IPv6 block, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr: Option<Ipv6Net>,
    pub availability_zone: String,
    /// A default VPC's subnet made with it: where an instance launched without a subnet goes.
    #[serde(default)]
    pub default_for_az: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Where a network interface is attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `eni-attach-` and the interface ID's hex digits.
    pub id: String,
    pub instance_id: String,
    /// 0 for the primary interface.
    pub device_index: u32,
    pub attach_time: String,
    /// Deleted with its instance (the primary interface made at launch), or detached.
    pub delete_on_termination: bool,
}

/// A network interface (`eni-…`): its subnet, addresses, groups and, when attached, the
/// host-side veth the data plane judges its traffic on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub private_ip: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    pub group_ids: Vec<String>,
    /// The host-side veth: the workload's own (registered with `HostInterface`, or a CNI
    /// container's), or the one the agent builds for it in a local instance.
    pub host_interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl NetworkInterface {
    /// The MAC address AWS would show: locally administered, from the ID's last hex digits (a
    /// local instance's interface is given it).
    pub fn mac(&self) -> String {
        let hex = self.id.rsplit('-').next().unwrap_or_default();
        let tail = &hex[hex.len().saturating_sub(10)..];
        let padded = format!("{tail:0>10}");
        let mut mac = String::from("02");
        for pair in padded.as_bytes().chunks(2) {
            mac.push(':');
            mac.push_str(std::str::from_utf8(pair).unwrap_or("00"));
        }
        mac
    }

    /// `in-use` when attached, `available` when not.
    pub fn status(&self) -> &'static str {
        if self.attachment.is_some() {
            "in-use"
        } else {
            "available"
        }
    }

    /// The instance it is attached to.
    pub fn instance_id(&self) -> Option<&str> {
        self.attachment.as_ref().map(|a| a.instance_id.as_str())
    }
}

/// `eni-attach-` and the interface's hex digits: one attachment at a time per interface.
pub fn attachment_id(eni_id: &str) -> String {
    format!(
        "eni-attach-{}",
        eni_id.strip_prefix("eni-").unwrap_or(eni_id)
    )
}

impl State {
    /// The interfaces attached to instances, each with its instance (by interface ID).
    pub fn attached(&self) -> impl Iterator<Item = (&NetworkInterface, &Instance)> + '_ {
        self.network_interfaces.values().filter_map(|eni| {
            let instance = self.instances.get(eni.instance_id()?)?;
            Some((eni, instance))
        })
    }

    /// The interfaces the data plane enforces on: attached to an instance that is neither
    /// terminated nor shutting down, nor another host's. `running`: its policy is enforced
    /// (otherwise its traffic drops).
    pub fn enforced(&self) -> impl Iterator<Item = (&NetworkInterface, &Instance)> + '_ {
        self.attached().filter(|(_, instance)| {
            !instance.remote
                && !matches!(
                    instance.state,
                    InstanceState::Terminated | InstanceState::ShuttingDown
                )
        })
    }

    /// The interfaces of `instance_id`, by device index (the primary first).
    pub fn interfaces_of(&self, instance_id: &str) -> Vec<&NetworkInterface> {
        let mut out: Vec<&NetworkInterface> = self
            .network_interfaces
            .values()
            .filter(|eni| eni.instance_id() == Some(instance_id))
            .collect();
        out.sort_by_key(|eni| eni.attachment.as_ref().map_or(0, |a| a.device_index));
        out
    }

    /// The primary interface (device index 0) of `instance`.
    pub fn primary(&self, instance: &Instance) -> Option<&NetworkInterface> {
        self.network_interfaces
            .get(&instance.eni_id)
            .filter(|eni| eni.instance_id() == Some(instance.id.as_str()))
    }

    /// The interfaces whose addresses count as members of `group_id` for referencing rules:
    /// those with the group, attached to a running instance (of any host).
    pub fn members_of<'a>(
        &'a self,
        group_id: &'a str,
    ) -> impl Iterator<Item = &'a NetworkInterface> + 'a {
        self.attached()
            .filter(move |(eni, instance)| {
                instance.state == InstanceState::Running
                    && eni.group_ids.iter().any(|g| g == group_id)
            })
            .map(|(eni, _)| eni)
    }

    /// Whether any interface (attached or not) carries `group_id`.
    pub fn group_in_use(&self, group_id: &str) -> bool {
        self.network_interfaces
            .values()
            .any(|eni| eni.group_ids.iter().any(|g| g == group_id))
    }

    /// The default subnet of `vpc_id` (the first, by ID, of its default-for-AZ ones).
    pub fn default_subnet(&self, vpc_id: &str) -> Option<&Subnet> {
        self.subnets
            .values()
            .find(|s| s.vpc_id == vpc_id && s.default_for_az)
    }
}

impl State {
    /// Puts a running registered workload into the state directly (not through
    /// `run-instances`: for benchmarks and tools that build states): the instance `id` in the
    /// default VPC's default subnet, with a primary interface `eni-<id's hex>` on the host veth
    /// `host_interface`.
    pub fn put_workload(
        &mut self,
        id: &str,
        host_interface: &str,
        private_ip: Ipv4Addr,
        ipv6: Option<Ipv6Addr>,
        group_ids: Vec<String>,
    ) {
        let vpc_id = self.default_vpc().map(|v| v.id.clone()).unwrap_or_default();
        let subnet_id = self
            .default_subnet(&vpc_id)
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let eni_id = format!("eni-{}", id.strip_prefix("i-").unwrap_or(id));
        self.network_interfaces.insert(
            eni_id.clone(),
            NetworkInterface {
                id: eni_id.clone(),
                subnet_id: subnet_id.clone(),
                vpc_id: vpc_id.clone(),
                description: String::new(),
                private_ip,
                ipv6,
                group_ids,
                host_interface: host_interface.into(),
                attachment: Some(Attachment {
                    id: attachment_id(&eni_id),
                    instance_id: id.into(),
                    device_index: 0,
                    attach_time: String::new(),
                    delete_on_termination: true,
                }),
                tags: Vec::new(),
            },
        );
        self.instances.insert(
            id.into(),
            Instance {
                id: id.into(),
                reservation_id: "r-0".into(),
                eni_id,
                vpc_id,
                subnet_id,
                state: InstanceState::Running,
                netns: None,
                launch_time: String::new(),
                terminated_at: None,
                tags: Vec::new(),
                launch: Default::default(),
                host: None,
                legacy: None,
                remote: false,
                host_lost: false,
            },
        );
    }

    /// Takes an instance out of the state with its interfaces (the counterpart of
    /// [`State::put_workload`]).
    pub fn take_workload(&mut self, id: &str) {
        self.instances.remove(id);
        self.network_interfaces
            .retain(|_, eni| eni.instance_id() != Some(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eni(id: &str) -> NetworkInterface {
        NetworkInterface {
            id: id.into(),
            subnet_id: "subnet-1".into(),
            vpc_id: "vpc-1".into(),
            description: String::new(),
            private_ip: Ipv4Addr::new(10, 0, 0, 4),
            ipv6: None,
            group_ids: vec![],
            host_interface: "veth0".into(),
            attachment: None,
            tags: vec![],
        }
    }

    #[test]
    fn an_interface_mac_is_locally_administered_and_from_its_id() {
        assert_eq!(eni("eni-0123456789abcdef0").mac(), "02:78:9a:bc:de:f0");
        assert_eq!(eni("eni-00000000000000003").mac(), "02:00:00:00:00:03");
        assert_eq!(eni("eni-0123456789abcdef0").status(), "available");
        assert_eq!(
            attachment_id("eni-0123456789abcdef0"),
            "eni-attach-0123456789abcdef0"
        );
    }
}

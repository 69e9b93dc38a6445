//! A state saved by a release before subnets and network interfaces, brought up to date when it
//! is read: a default VPC gets its default subnets, and every live instance a primary network
//! interface made from the fields the instance held (its addresses, groups and veth unchanged,
//! so its traffic is judged as before). Deterministic, so two agents reading the same records
//! agree, and idempotent.

use super::{
    network::{Attachment, NetworkInterface, Subnet, attachment_id},
    state::{InstanceState, State},
    subnet,
};

impl State {
    /// Brings a state read from the store up to date (see the module).
    pub fn upgrade(&mut self) {
        let vpcs: Vec<_> = self.vpcs.values().cloned().collect();
        for vpc in vpcs.iter().filter(|v| v.is_default) {
            if !self.subnets.values().any(|s| s.vpc_id == vpc.id) {
                for subnet in subnet::default_subnets(&self.region, vpc) {
                    self.subnets.insert(subnet.id.clone(), subnet);
                }
            }
        }
        let ids: Vec<String> = self.instances.keys().cloned().collect();
        for id in ids {
            let instance = &self.instances[&id];
            let Some(legacy) = instance.legacy.clone() else {
                continue;
            };
            if instance.state == InstanceState::Terminated
                || self.network_interfaces.contains_key(&instance.eni_id)
            {
                self.fill_subnet(&id);
                continue;
            }
            let vpc_id = instance.vpc_id.clone();
            let subnet_id = self.subnet_holding(&vpc_id, legacy.private_ip);
            let instance = &self.instances[&id];
            let interface = NetworkInterface {
                id: instance.eni_id.clone(),
                subnet_id,
                vpc_id: instance.vpc_id.clone(),
                description: String::new(),
                private_ip: legacy.private_ip,
                ipv6: legacy.ipv6,
                group_ids: legacy.group_ids.clone(),
                host_interface: legacy.interface.clone(),
                attachment: Some(Attachment {
                    id: attachment_id(&instance.eni_id),
                    instance_id: instance.id.clone(),
                    device_index: 0,
                    attach_time: instance.launch_time.clone(),
                    delete_on_termination: true,
                }),
                tags: Vec::new(),
            };
            self.network_interfaces
                .insert(interface.id.clone(), interface);
            self.fill_subnet(&id);
        }
    }

    /// An upgraded instance's subnet is its primary interface's.
    fn fill_subnet(&mut self, instance_id: &str) {
        let instance = &self.instances[instance_id];
        if !instance.subnet_id.is_empty() {
            return;
        }
        let subnet = self
            .network_interfaces
            .get(&instance.eni_id)
            .map(|eni| eni.subnet_id.clone())
            .unwrap_or_default();
        if let Some(instance) = self.instances.get_mut(instance_id) {
            instance.subnet_id = subnet;
        }
    }

    /// The subnet of `vpc_id` holding `address`, else its default subnet, else a subnet made
    /// spanning the whole VPC (a VPC of an earlier release, which had no subnets; its ID derives
    /// from the VPC's).
    fn subnet_holding(&mut self, vpc_id: &str, address: std::net::Ipv4Addr) -> String {
        if let Some(s) = self
            .subnets
            .values()
            .find(|s| s.vpc_id == vpc_id && s.cidr.contains(&address))
        {
            return s.id.clone();
        }
        if let Some(s) = self.default_subnet(vpc_id) {
            return s.id.clone();
        }
        let Some(vpc) = self.vpcs.get(vpc_id) else {
            return String::new();
        };
        let id = format!("subnet-{}", vpc_id.strip_prefix("vpc-").unwrap_or(vpc_id));
        let spanning = Subnet {
            id: id.clone(),
            vpc_id: vpc_id.into(),
            cidr: vpc.cidr,
            ipv6_cidr: vpc.ipv6_cidr,
            availability_zone: super::regions::zones(&self.region).remove(0).0,
            default_for_az: false,
            tags: Vec::new(),
        };
        self.subnets.entry(id.clone()).or_insert(spanning);
        id
    }
}

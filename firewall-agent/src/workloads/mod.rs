//! The host side of local instances: the network namespace, veth pair, VPC bridge, addresses
//! and default route that `model::local` decided, built before the data plane attaches to the
//! host-side veth and removed after it detached. [`Launcher`] is what the agent needs;
//! [`IpLauncher`] does it with iproute2's `ip`, [`NoLauncher`] refuses (agents without a
//! kernel: no namespace can be built).
//!
//! Nothing built changes the host's routing: a VPC's bridge in the agent's namespace carries no
//! address, the instances' gateway is the VPC's router, a namespace of its own with no route out
//! of the VPC (`vpc`), unless `serve --host-routes` asks for the agent's namespace to reach them.
//! Registering an existing interface is checked here too (`register`).

mod ip;
pub mod register;
pub mod user_data;
mod vpc;

pub use ip::IpLauncher;
use ip::{ip_json, link_exists, netns_exists};

use crate::model::{
    InstanceState, State,
    local::{self, LocalPlan},
};

/// What the agent needs of the host to launch and remove local instances.
pub trait Launcher: Send {
    /// Makes the instance of `plan` exist: idempotent (what exists already is kept, so an agent
    /// restart leaves running instances intact). On error nothing of this instance is left.
    fn ensure(&mut self, plan: &LocalPlan) -> Result<(), String>;
    /// Removes the instance's namespace and veth, and the VPC's bridge and router once no
    /// instance uses them. Idempotent.
    fn remove(&mut self, plan: &LocalPlan) -> Result<(), String>;
    /// Why the existing interface `interface` may not be registered as a workload, if it may
    /// not ([`register`]).
    fn check_registrable(&self, _interface: &str) -> Result<(), String> {
        Ok(())
    }
    /// Why instances of `plan`'s VPC may not be launched here (its blocks overlap the host's
    /// own, with `--host-routes`), if they may not.
    fn check_vpc(&self, _plan: &LocalPlan) -> Result<(), String> {
        Ok(())
    }
}

/// Refuses to launch: for agents whose data plane is not the kernel's.
pub struct NoLauncher;

impl Launcher for NoLauncher {
    fn ensure(&mut self, plan: &LocalPlan) -> Result<(), String> {
        Err(format!(
            "this agent cannot build network namespaces (instance {}); give --interface",
            plan.instance_id
        ))
    }
    fn remove(&mut self, _: &LocalPlan) -> Result<(), String> {
        Ok(())
    }
}

/// The interfaces of local instances in `after` that must exist and did not in `before`
/// (`None`: at start, every live one): a new instance's (its primary interface first), and
/// those attached since. Another host's are its agent's to build.
pub fn to_launch(before: Option<&State>, after: &State) -> Vec<LocalPlan> {
    let mut plans: Vec<LocalPlan> = after
        .enforced()
        .filter(|(eni, instance)| {
            instance.netns.is_some()
                && before.is_none_or(|b| {
                    !b.instances.contains_key(&instance.id)
                        || b.network_interfaces
                            .get(&eni.id)
                            .and_then(|old| old.attachment.as_ref())
                            != eni.attachment.as_ref()
                })
        })
        .filter_map(|(eni, instance)| local::plan(after, instance, eni))
        .collect();
    plans.sort_by_key(|p| p.device_index);
    plans
}

/// The interfaces of local instances that `after` no longer has attached: every interface of
/// an instance it terminated (the primary one last: the namespace goes with it), and those
/// detached. Planned from `before`, where they were.
pub fn to_remove(before: &State, after: &State) -> Vec<LocalPlan> {
    let mut plans: Vec<LocalPlan> = before
        .enforced()
        .filter(|(eni, instance)| {
            let gone = after
                .instances
                .get(&instance.id)
                .is_none_or(|i| i.state == InstanceState::Terminated);
            let detached = after
                .network_interfaces
                .get(&eni.id)
                .and_then(|now| now.attachment.as_ref())
                != eni.attachment.as_ref();
            instance.netns.is_some() && (gone || detached)
        })
        .filter_map(|(eni, instance)| local::plan(before, instance, eni))
        .collect();
    plans.sort_by_key(|p| std::cmp::Reverse(p.device_index));
    plans
}

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
mod vpc;

pub use ip::IpLauncher;
use ip::{ip_json, link_exists, netns_exists};

use crate::model::{InstanceState, State, local::LocalPlan};

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

/// The local instances of `after` that must exist and did not in `before` (`None`: at start,
/// every live one).
pub fn to_launch(before: Option<&State>, after: &State) -> Vec<LocalPlan> {
    after
        .instances
        .values()
        .filter(|i| i.state != InstanceState::Terminated && !i.remote)
        .filter(|i| before.is_none_or(|b| !b.instances.contains_key(&i.id)))
        .filter_map(|i| crate::model::local::plan(after, i))
        .collect()
}

/// The local instances `after` terminated (another host's are its agent's to remove).
pub fn to_remove(before: &State, after: &State) -> Vec<LocalPlan> {
    after
        .instances
        .values()
        .filter(|i| i.state == InstanceState::Terminated && !i.remote)
        .filter(|i| {
            before
                .instances
                .get(&i.id)
                .is_some_and(|b| b.state != InstanceState::Terminated)
        })
        .filter_map(|i| crate::model::local::plan(after, i))
        .collect()
}

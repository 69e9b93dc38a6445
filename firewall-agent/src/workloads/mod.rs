//! The host side of local instances: the network namespace, veth pair, VPC bridge, addresses
//! and default route that `model::local` decided, built before the data plane attaches to the
//! host-side veth and removed after it detached. [`Launcher`] is what the agent needs;
//! [`IpLauncher`] does it with iproute2's `ip`, [`NoLauncher`] refuses (agents without a
//! kernel: no namespace can be built).
//!
//! Everything built is local: the bridge lives in the agent's network namespace, the instances'
//! default route points at the bridge's address, and nothing is routed or translated further.

mod ip;

pub use ip::IpLauncher;

use crate::model::{InstanceState, State, local::LocalPlan};

/// What the agent needs of the host to launch and remove local instances.
pub trait Launcher: Send {
    /// Makes the instance of `plan` exist: idempotent (what exists already is kept, so an agent
    /// restart leaves running instances intact). On error nothing of this instance is left.
    fn ensure(&mut self, plan: &LocalPlan) -> Result<(), String>;
    /// Removes the instance's namespace and veth, and the VPC's bridge once no instance uses it.
    /// Idempotent.
    fn remove(&mut self, plan: &LocalPlan) -> Result<(), String>;
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

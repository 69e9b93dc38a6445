//! The host side of a change: the checks on what it asks of the host (local instances within
//! `--max-local-instances`, registered interfaces the launcher accepts, enforced interfaces that
//! exist and belong to one scope), and the local instances built or removed, all or none.

use std::collections::BTreeMap;

use super::Agent;
use crate::{
    api::{ApiError, ApiResult, Scope},
    dataplane::Dataplane,
    model::{InstanceState, State, local::LocalPlan},
    workloads::Launcher,
};

impl Agent {
    /// `InstanceLimitExceeded` when `next` would make the agent run more local instances, all
    /// accounts and regions together, than `serve --max-local-instances`.
    pub(super) fn check_local_instances(&self, next: &State) -> ApiResult<()> {
        let live = |state: &State| {
            state
                .instances
                .values()
                .filter(|i| i.netns.is_some() && !i.remote && i.state != InstanceState::Terminated)
                .count()
        };
        let others: usize = self
            .states
            .iter()
            .filter(|(scope, _)| **scope != next.scope())
            .map(|(_, state)| live(state))
            .sum();
        let limit = self.quotas.local_instances;
        if others + live(next) > limit {
            return Err(ApiError::new(
                "InstanceLimitExceeded",
                format!(
                    "You have requested more instances than your current instance limit of {limit} \
                     allows (the local instances this agent runs: serve --max-local-instances)."
                ),
            ));
        }
        Ok(())
    }

    /// Builds the local instances of `plans`, all or none.
    pub(super) fn launch(&mut self, plans: &[LocalPlan]) -> ApiResult<()> {
        if let Some((plan, why)) = plans
            .iter()
            .find_map(|plan| self.launcher.check_vpc(plan).err().map(|why| (plan, why)))
        {
            return Err(ApiError::new(
                "InvalidVpc.Range",
                format!("The instance {} can't be launched: {why}", plan.instance_id),
            ));
        }
        for (done, plan) in plans.iter().enumerate() {
            if let Err(e) = self.launcher.ensure(plan) {
                self.unlaunch(&plans[..done]);
                return Err(ApiError::new(
                    "InsufficientInstanceCapacity",
                    format!(
                        "The local instance {} could not be built: {e}",
                        plan.instance_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Removes local instances, logging what could not be.
    pub(super) fn unlaunch(&mut self, plans: &[LocalPlan]) {
        for plan in plans {
            if let Err(e) = self.launcher.remove(plan) {
                tracing::warn!(instance = %plan.instance_id, error = %e, "local instance not fully removed");
            }
        }
    }
}

/// An existing interface newly registered as a workload (not a local instance's, not another
/// host's) must be one the launcher lets be registered (`workloads::register`).
pub(super) fn check_registrations(
    states: &BTreeMap<Scope, State>,
    after: &State,
    launcher: &dyn Launcher,
) -> ApiResult<()> {
    let before = states.get(&after.scope());
    let registered = after.enforced().filter(|(eni, instance)| {
        instance.netns.is_none()
            && before.is_none_or(|b| {
                b.network_interfaces
                    .get(&eni.id)
                    .is_none_or(|old| old.attachment.is_none())
            })
    });
    for (eni, _) in registered {
        launcher
            .check_registrable(&eni.host_interface)
            .map_err(ApiError::invalid_value)?;
    }
    Ok(())
}

/// An interface that starts being enforced must have its veth in our namespace, and no other
/// account or region may have registered that veth (within one, `run-instances` checks it).
pub(super) fn check_interfaces(
    states: &BTreeMap<Scope, State>,
    after: &State,
    dataplane: &dyn Dataplane,
) -> ApiResult<()> {
    let before = states.get(&after.scope());
    for (eni, instance) in after.enforced() {
        let old = before.and_then(|b| {
            let old = b.network_interfaces.get(&eni.id)?;
            let instance = b.instances.get(old.instance_id()?)?;
            Some((old, instance))
        });
        let was_enforced = old.is_some_and(|(old, instance)| {
            instance.state == InstanceState::Running && old.host_interface == eni.host_interface
        });
        if instance.state == InstanceState::Running
            && !was_enforced
            && !dataplane.has_interface(&eni.host_interface)
        {
            return Err(ApiError::invalid_value(format!(
                "The interface '{}' does not exist in the agent's network namespace.",
                eni.host_interface
            )));
        }
        if old.is_some() {
            continue;
        }
        let elsewhere = states
            .iter()
            .filter(|(scope, _)| **scope != after.scope())
            .flat_map(|(_, state)| state.enforced())
            .find(|(other, _)| other.host_interface == eni.host_interface);
        if let Some((other, _)) = elsewhere {
            return Err(ApiError::invalid_value(format!(
                "Interface {} is already registered to {}.",
                eni.host_interface,
                other.instance_id().unwrap_or(&other.id)
            )));
        }
    }
    Ok(())
}

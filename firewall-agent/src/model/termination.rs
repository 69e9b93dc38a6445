//! Terminating instances, and how long a terminated one stays listed.
//!
//! AWS lists a terminated instance for about an hour ("Terminated instances remain visible
//! for a short while", the EC2 user guide's instance lifecycle), then forgets it: it is no
//! longer described, and naming its ID answers `InvalidInstanceID.NotFound`. Here it is
//! listed for [`TERMINATED_LISTED_SECS`]; past that, reads no longer show it and the next
//! change of its region drops its record ([`State::forget_terminated`]).

use super::{
    ids::{IdSource, parse_rfc3339},
    instance::change_states,
    instance_attributes,
    network::NetworkInterface,
    state::{Instance, InstanceState, State, TableExt},
};
use crate::api::{
    ApiResult,
    types::instances::{InstanceIdsRequest, TerminateInstancesResponse},
};

/// How long a terminated instance stays listed.
pub const TERMINATED_LISTED_SECS: u64 = 3600;

/// Terminated instances stay listed; their interfaces are no longer enforced: those made with
/// them (delete on termination, the primary one) are deleted, the others detached.
pub fn terminate(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: InstanceIdsRequest,
) -> ApiResult<TerminateInstancesResponse> {
    instance_attributes::check_protection(state, &req.instance_ids, true)?;
    let changes = change_states(
        state,
        &req.instance_ids,
        InstanceState::Terminated,
        |_, _| None,
    )?;
    let now = ids.now();
    for id in &req.instance_ids {
        let instance = state
            .instances
            .get_mut(id)
            .expect("checked by change_states");
        // Terminating it again keeps the first time, as AWS's listing window does.
        instance.terminated_at.get_or_insert_with(|| now.clone());
    }
    let ended = |eni: &NetworkInterface| {
        eni.attachment
            .as_ref()
            .filter(|a| req.instance_ids.contains(&a.instance_id))
            .map(|a| a.delete_on_termination)
    };
    state
        .network_interfaces
        .retain(|_, eni| ended(eni) != Some(true));
    state
        .network_interfaces
        .edit_where(|eni| ended(eni) == Some(false), |eni| eni.attachment = None);
    Ok(TerminateInstancesResponse {
        terminating_instances: changes,
    })
}

/// Whether `instance` is past its listing window at `now` (RFC 3339): terminated over
/// [`TERMINATED_LISTED_SECS`] ago, or terminated by a release that kept no time.
pub fn forgotten(instance: &Instance, now: &str) -> bool {
    if instance.state != InstanceState::Terminated {
        return false;
    }
    let now = parse_rfc3339(now).unwrap_or(0);
    instance
        .terminated_at
        .as_deref()
        .and_then(parse_rfc3339)
        .is_none_or(|at| now >= at.saturating_add(TERMINATED_LISTED_SECS))
}

impl State {
    /// Drops the records of instances [`forgotten`] at `now`.
    pub fn forget_terminated(&mut self, now: &str) {
        self.instances.retain(|_, i| !forgotten(i, now));
    }
}

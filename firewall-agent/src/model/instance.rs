//! Instances (workloads): run (register a host-side veth and its addresses), describe, stop,
//! start, terminate, and `modify-instance-attribute --groups`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    ids::{IdSource, check_group_id_format},
    launch_template, lookup,
    query::{invalid_filter, paginate},
    state::{Instance, InstanceState, State},
    views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::{EmptyResponse, Filter},
        instances::{
            DescribeInstancesRequest, DescribeInstancesResponse, InstanceIdsRequest,
            InstanceStateChange, ModifyInstanceAttributeRequest, Reservation, RunInstancesRequest,
            StartInstancesResponse, StopInstancesResponse, TerminateInstancesResponse,
        },
    },
};

/// Registers a workload: its host-side veth and addresses, with its groups (the VPC's default
/// group when none is given, or the launch template's).
pub fn run(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: RunInstancesRequest,
) -> ApiResult<Reservation> {
    if req.min_count.unwrap_or(1) != 1 || req.max_count.unwrap_or(1) != 1 {
        return Err(ApiError::invalid_value(
            "Each workload has its own interface and address: launch one instance per call (--count 1).",
        ));
    }
    let interface = req
        .host_interface
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("HostInterface"))?;
    if interface.len() > 15 || interface.contains(['/', ' ', '\0']) {
        return Err(ApiError::invalid_value(format!(
            "Invalid interface name '{interface}'"
        )));
    }
    let private_ip: Ipv4Addr = req
        .private_ip_address
        .as_deref()
        .ok_or_else(|| ApiError::missing("PrivateIpAddress"))?
        .parse()
        .map_err(|_| {
            ApiError::invalid_value(format!(
                "Invalid value '{}' for PrivateIpAddress",
                req.private_ip_address.as_deref().unwrap_or("")
            ))
        })?;
    let ipv6: Option<Ipv6Addr> = match req.ipv6_addresses.as_slice() {
        [] => None,
        [one] => Some(one.ipv6_address.parse().map_err(|_| {
            ApiError::invalid_value(format!(
                "Invalid value '{}' for Ipv6Address",
                one.ipv6_address
            ))
        })?),
        _ => {
            return Err(ApiError::invalid_value(
                "At most one IPv6 address per workload is supported.",
            ));
        }
    };

    let mut requested = req.security_group_ids.clone();
    if requested.is_empty()
        && let Some(spec) = &req.launch_template
    {
        requested = launch_template::groups_for_launch(state, spec)?;
    }
    let mut group_ids: Vec<String> = Vec::new();
    for id in &requested {
        lookup::group(state, id)?;
        if !group_ids.contains(id) {
            group_ids.push(id.clone());
        }
    }
    if group_ids.len() > state.quotas.groups_per_instance {
        return Err(ApiError::new(
            "SecurityGroupsPerInstanceLimitExceeded",
            format!(
                "The maximum number of security groups per instance ({}) has been reached.",
                state.quotas.groups_per_instance
            ),
        ));
    }
    let vpc_id = match group_ids.first() {
        Some(first) => state.groups[first].vpc_id.clone(),
        None => state
            .default_vpc()
            .map(|v| v.id.clone())
            .ok_or_else(lookup::no_default_vpc)?,
    };
    if let Some(other) = group_ids.iter().find(|g| state.groups[*g].vpc_id != vpc_id) {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("Security group {other} and the instance belong to different networks."),
        ));
    }
    if group_ids.is_empty() {
        let default = state
            .groups
            .values()
            .find(|g| g.vpc_id == vpc_id && g.name == "default")
            .ok_or_else(|| lookup::group_not_found("default"))?;
        group_ids.push(default.id.clone());
    }
    let vpc = &state.vpcs[&vpc_id];
    if !vpc.cidr.contains(&private_ip) {
        return Err(ApiError::invalid_value(format!(
            "Address {private_ip} does not fall within the VPC's address range {}.",
            vpc.cidr
        )));
    }
    if let Some(address) = ipv6 {
        match vpc.ipv6_cidr {
            Some(block) if block.contains(&address) => {}
            Some(block) => {
                return Err(ApiError::invalid_value(format!(
                    "Address {address} does not fall within the VPC's IPv6 range {block}."
                )));
            }
            None => {
                return Err(ApiError::invalid_value(format!(
                    "VPC {vpc_id} has no IPv6 CIDR block; cannot assign {address}."
                )));
            }
        }
    }
    for other in state.instances.values() {
        if other.state == InstanceState::Terminated {
            continue;
        }
        if other.vpc_id == vpc_id
            && (other.private_ip == private_ip || (ipv6.is_some() && other.ipv6 == ipv6))
        {
            return Err(ApiError::new(
                "InvalidIPAddress.InUse",
                format!("Address {private_ip} is in use."),
            ));
        }
        if other.interface == interface {
            return Err(ApiError::invalid_value(format!(
                "Interface {interface} is already registered to instance {}.",
                other.id
            )));
        }
    }

    let instance = Instance {
        id: ids.next_id("i"),
        reservation_id: ids.next_id("r"),
        eni_id: ids.next_id("eni"),
        vpc_id,
        state: InstanceState::Running,
        private_ip,
        ipv6,
        interface,
        group_ids,
        launch_time: ids.now(),
        tags: Vec::new(),
    };
    let id = instance.id.clone();
    state.instances.insert(id.clone(), instance);
    let instance = &state.instances[&id];
    Ok(views::reservation(
        state,
        &instance.reservation_id,
        &[instance],
    ))
}

/// One describe-instances filter on `instance`.
fn matches_filter(state: &State, instance: &Instance, filter: &Filter) -> ApiResult<bool> {
    if let Some(hit) = filter.matches_tags(&instance.tags) {
        return Ok(hit);
    }
    let any = |values: Vec<String>| values.iter().any(|v| filter.matches(v));
    Ok(match filter.name.as_str() {
        "instance-id" => filter.matches(&instance.id),
        "instance-state-name" => filter.matches(instance.state.name()),
        "instance-state-code" => filter.matches(&instance.state.code().to_string()),
        "vpc-id" => filter.matches(&instance.vpc_id),
        "private-ip-address" => filter.matches(&instance.private_ip.to_string()),
        "network-interface.ipv6-addresses.ipv6-address" => {
            any(instance.ipv6.iter().map(|a| a.to_string()).collect())
        }
        "reservation-id" => filter.matches(&instance.reservation_id),
        "owner-id" => filter.matches(&state.account_id),
        "instance.group-id" | "group-id" => any(instance.group_ids.clone()),
        "instance.group-name" | "group-name" => any(instance
            .group_ids
            .iter()
            .filter_map(|g| state.groups.get(g).map(|g| g.name.clone()))
            .collect()),
        other => return Err(invalid_filter(other)),
    })
}

pub fn describe(
    state: &State,
    req: DescribeInstancesRequest,
) -> ApiResult<DescribeInstancesResponse> {
    if req.max_results.is_some() && !req.instance_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    lookup::check_instances_exist(state, &req.instance_ids)?;
    let mut out = Vec::new();
    for instance in state.instances.values() {
        if !req.instance_ids.is_empty() && !req.instance_ids.contains(&instance.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= matches_filter(state, instance, filter)?;
        }
        if keep {
            let reservation = views::reservation(state, &instance.reservation_id, &[instance]);
            out.push((instance.id.clone(), reservation));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeInstancesResponse {
        reservations: page.items,
        next_token: page.next_token,
    })
}

/// Moves every instance of `ids` to `target`, all or none; `refused` answers the error for an
/// instance whose current state forbids the move.
fn change_states(
    state: &mut State,
    ids: &[String],
    target: InstanceState,
    refused: impl Fn(&str, InstanceState) -> Option<ApiError>,
) -> ApiResult<Vec<InstanceStateChange>> {
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    lookup::check_instances_exist(state, ids)?;
    for id in ids {
        if let Some(error) = refused(id, state.instances[id].state) {
            return Err(error);
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let instance = state.instances.get_mut(id).expect("checked above");
        let previous_state = views::instance_state(instance);
        instance.state = target;
        out.push(InstanceStateChange {
            current_state: views::instance_state(instance),
            instance_id: id.clone(),
            previous_state,
        });
    }
    Ok(out)
}

/// Terminated instances stay listed; their interfaces are no longer enforced.
pub fn terminate(
    state: &mut State,
    req: InstanceIdsRequest,
) -> ApiResult<TerminateInstancesResponse> {
    let changes = change_states(
        state,
        &req.instance_ids,
        InstanceState::Terminated,
        |_, _| None,
    )?;
    Ok(TerminateInstancesResponse {
        terminating_instances: changes,
    })
}

/// A terminated instance cannot be stopped or started.
fn not_terminated(verb: &'static str) -> impl Fn(&str, InstanceState) -> Option<ApiError> {
    move |id, current| {
        (current == InstanceState::Terminated).then(|| {
            ApiError::new(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a state from which it can be {verb}."),
            )
        })
    }
}

/// Stop: the states AWS reports (`StoppingInstances`); ours change at once, so the current
/// state is already `stopped`.
pub fn stop(state: &mut State, req: InstanceIdsRequest) -> ApiResult<StopInstancesResponse> {
    let changes = change_states(
        state,
        &req.instance_ids,
        InstanceState::Stopped,
        not_terminated("stopped"),
    )?;
    Ok(StopInstancesResponse {
        stopping_instances: changes,
    })
}

/// Start: the current state is already `running`.
pub fn start(state: &mut State, req: InstanceIdsRequest) -> ApiResult<StartInstancesResponse> {
    let changes = change_states(
        state,
        &req.instance_ids,
        InstanceState::Running,
        not_terminated("started"),
    )?;
    Ok(StartInstancesResponse {
        starting_instances: changes,
    })
}

/// `--groups`: replaces the instance's security groups (all in its VPC, at most the quota).
pub fn modify_attribute(
    state: &mut State,
    req: ModifyInstanceAttributeRequest,
) -> ApiResult<EmptyResponse> {
    let id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    lookup::check_instances_exist(state, std::slice::from_ref(&id))?;
    if req.groups.is_empty() {
        return Err(ApiError::missing("GroupId"));
    }
    let instance = &state.instances[&id];
    if !matches!(
        instance.state,
        InstanceState::Running | InstanceState::Stopped
    ) {
        return Err(ApiError::new(
            "IncorrectInstanceState",
            format!("The instance '{id}' is not in the 'running' or 'stopped' state."),
        ));
    }
    let mut groups: Vec<String> = Vec::new();
    for group in &req.groups {
        check_group_id_format(group)?;
        if state
            .groups
            .get(group)
            .is_none_or(|g| g.vpc_id != instance.vpc_id)
        {
            return Err(lookup::group_not_in_vpc(group, &instance.vpc_id));
        }
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    if groups.len() > state.quotas.groups_per_instance {
        return Err(ApiError::new(
            "SecurityGroupsPerInterfaceLimitExceeded",
            format!(
                "The maximum number of security groups per interface ({}) has been reached.",
                state.quotas.groups_per_instance
            ),
        ));
    }
    state
        .instances
        .get_mut(&id)
        .expect("checked above")
        .group_ids = groups;
    Ok(EmptyResponse {})
}

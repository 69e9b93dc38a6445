//! Instances (workloads): run (launch local ones, or register a host-side veth and its
//! addresses), describe, stop, start, terminate, and `modify-instance-attribute --groups`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    ids::{IdSource, check_group_id_format},
    instance_attributes, launch_template, local, lookup,
    network::{Attachment, NetworkInterface, Subnet, attachment_id},
    network_interface,
    query::{invalid_filter, paginate},
    state::{Instance, InstanceState, State, Vpc},
    subnet,
    tagging::tags_for,
    termination, views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::{EmptyResponse, Filter},
        instances::{
            DescribeInstancesRequest, DescribeInstancesResponse, InstanceIdsRequest,
            InstanceStateChange, ModifyInstanceAttributeRequest, Reservation, RunInstancesRequest,
            StartInstancesResponse, StopInstancesResponse,
        },
    },
};

/// Launches `MaxCount` instances (one when absent) with their groups (the VPC's default group
/// when none is given, or the launch template's), each with a primary network interface in the
/// subnet (`SubnetId`, or the VPC's default subnet). With `HostInterface` it registers that
/// existing host-side veth and the given addresses (one instance); without, the instances are
/// local: the agent builds each a namespace and veth on the VPC's bridge (`local`), with the
/// given address or the subnet's lowest free ones.
pub fn run(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: RunInstancesRequest,
) -> ApiResult<Reservation> {
    let count = launch_count(&req)?;
    let interface = req.host_interface.clone().filter(|s| !s.is_empty());
    if let Some(interface) = &interface {
        if count != 1 {
            return Err(ApiError::invalid_value(
                "An existing interface (HostInterface) registers one instance: launch one per call (--count 1).",
            ));
        }
        if interface.len() > 15 || interface.contains(['/', ' ', '\0']) {
            return Err(ApiError::invalid_value(format!(
                "Invalid interface name '{interface}'"
            )));
        }
    }
    network_interface::check_quota(state, count as usize)?;
    if count > 1 && (req.private_ip_address.is_some() || !req.ipv6_addresses.is_empty()) {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "Addresses can only be given when launching a single instance.",
        ));
    }
    let private_ip: Option<Ipv4Addr> = match req.private_ip_address.as_deref() {
        None if interface.is_some() => return Err(ApiError::missing("PrivateIpAddress")),
        None => None,
        Some(text) => Some(network_interface::parse_ipv4(text)?),
    };
    let ipv6 = network_interface::parse_ipv6(&req.ipv6_addresses)?;
    let tags = tags_for(&req.tag_specifications, "instance")?;
    let launch = instance_attributes::launch(&state.region, &req)?;

    let mut requested = req.security_group_ids.clone();
    if requested.is_empty()
        && let Some(spec) = &req.launch_template
    {
        requested = launch_template::groups_for_launch(state, spec)?;
    }
    for id in &requested {
        lookup::group(state, id)?;
    }
    let subnet = placement(state, &req, &requested, private_ip)?;
    let group_ids = if requested.is_empty() {
        vec![network_interface::default_group(state, &subnet.vpc_id)?]
    } else {
        requested
    };
    let group_ids =
        network_interface::check_groups(state, &subnet.vpc_id, &group_ids).map_err(|e| match e
            .code
            .as_str()
        {
            "InvalidParameter" => ApiError::new(
                "InvalidParameter",
                format!(
                    "Security group {} and subnet {} belong to different networks.",
                    group_ids
                        .iter()
                        .find(|g| state.groups[*g].vpc_id != subnet.vpc_id)
                        .cloned()
                        .unwrap_or_default(),
                    subnet.id
                ),
            ),
            "SecurityGroupsPerInterfaceLimitExceeded" => ApiError::new(
                "SecurityGroupsPerInstanceLimitExceeded",
                format!(
                    "The maximum number of security groups per instance ({}) has been reached.",
                    state.quotas.groups_per_instance
                ),
            ),
            _ => e,
        })?;
    let vpc_id = subnet.vpc_id.clone();
    if let Some(address) = private_ip {
        let vpc = &state.vpcs[&vpc_id];
        check_in_vpc(vpc, address, ipv6)?;
        if interface.is_none() {
            subnet::check_ipv4(state, &subnet, address)?;
        }
    }
    if let (Some(address), None) = (ipv6, &interface) {
        subnet::check_ipv6(state, &subnet, address)?;
    }

    let mut reservation_id: Option<String> = None;
    let mut launched: Vec<String> = Vec::new();
    for _ in 0..count {
        let id = ids.next_id("i");
        let reservation_id = reservation_id
            .get_or_insert_with(|| ids.next_id("r"))
            .clone();
        let placed = match &interface {
            Some(name) => Ok((private_ip.expect("checked above"), ipv6, name.clone(), None)),
            None => network_interface::addresses(state, &subnet, private_ip, ipv6).map(
                |(address, v6)| {
                    let netns = Some(local::netns_name(&id));
                    (address, v6, local::host_veth_name(&id), netns)
                },
            ),
        };
        let placed = placed.and_then(|(address, v6, interface, netns)| {
            check_free(state, &vpc_id, address, v6, &interface)?;
            Ok((address, v6, interface, netns))
        });
        let (private_ip, ipv6, host_interface, netns) = match placed {
            Ok(placed) => placed,
            Err(e) => {
                for id in &launched {
                    let eni = state.instances.remove(id).map(|i| i.eni_id);
                    state.network_interfaces.remove(&eni.unwrap_or_default());
                }
                return Err(e);
            }
        };
        let eni_id = ids.next_id("eni");
        let now = ids.now();
        state.network_interfaces.insert(
            eni_id.clone(),
            NetworkInterface {
                id: eni_id.clone(),
                subnet_id: subnet.id.clone(),
                vpc_id: vpc_id.clone(),
                description: String::new(),
                private_ip,
                ipv6,
                group_ids: group_ids.clone(),
                host_interface,
                attachment: Some(Attachment {
                    id: attachment_id(&eni_id),
                    instance_id: id.clone(),
                    device_index: 0,
                    attach_time: now.clone(),
                    delete_on_termination: true,
                }),
                tags: Vec::new(),
            },
        );
        let instance = Instance {
            id: id.clone(),
            reservation_id,
            eni_id,
            vpc_id: vpc_id.clone(),
            subnet_id: subnet.id.clone(),
            state: InstanceState::Running,
            netns,
            launch_time: now,
            terminated_at: None,
            tags: tags.clone(),
            launch: launch.clone(),
            host: None,
            legacy: None,
            remote: false,
            host_lost: false,
        };
        state.instances.insert(id.clone(), instance);
        launched.push(id);
    }
    let instances: Vec<&Instance> = launched.iter().map(|id| &state.instances[id]).collect();
    let reservation_id = &instances[0].reservation_id;
    Ok(views::reservation(state, reservation_id, &instances))
}

/// The subnet of a launch: `SubnetId`; or, in the VPC of the groups (the default VPC without
/// groups), the subnet holding a given address, or the VPC's default subnet (with AWS's error
/// when the groups' VPC is not the default one). A registered workload's given address may lie
/// outside every subnet of its VPC (its address is its own): it is then listed in the default
/// subnet.
fn placement(
    state: &State,
    req: &RunInstancesRequest,
    groups: &[String],
    private_ip: Option<Ipv4Addr>,
) -> ApiResult<Subnet> {
    if let Some(id) = req.subnet_id.as_deref().filter(|s| !s.is_empty()) {
        return subnet::lookup(state, id).cloned();
    }
    let vpc_id = match groups.first() {
        Some(first) => state.groups[first].vpc_id.clone(),
        None => state
            .default_vpc()
            .map(|v| v.id.clone())
            .ok_or_else(lookup::no_default_vpc)?,
    };
    if let Some(holding) = private_ip.and_then(|address| {
        state
            .subnets
            .values()
            .find(|s| s.vpc_id == vpc_id && s.cidr.contains(&address))
    }) {
        return Ok(holding.clone());
    }
    if let Some(default) = state.default_subnet(&vpc_id) {
        return Ok(default.clone());
    }
    match state
        .default_vpc()
        .and_then(|v| state.default_subnet(&v.id))
    {
        Some(default) => Err(ApiError::new(
            "InvalidParameter",
            format!(
                "Security group {} and subnet {} belong to different networks.",
                groups.first().cloned().unwrap_or_default(),
                default.id
            ),
        )),
        None => Err(ApiError::new(
            "MissingInput",
            format!("No subnets found for the VPC '{vpc_id}'. Please specify a subnet (SubnetId)."),
        )),
    }
}

/// How many instances a call launches: `MaxCount` (AWS launches as many as it can between
/// `MinCount` and `MaxCount`; a host can always launch them all), at most 64 per call.
fn launch_count(req: &RunInstancesRequest) -> ApiResult<u32> {
    let max = req.max_count.or(req.min_count).unwrap_or(1);
    let min = req.min_count.unwrap_or(max);
    if min == 0 || max == 0 {
        return Err(ApiError::invalid_value(
            "MinCount and MaxCount must be at least 1.",
        ));
    }
    if min > max {
        return Err(ApiError::invalid_value(
            "MinCount must be less than or equal to MaxCount.",
        ));
    }
    if max > MAX_LAUNCH {
        return Err(ApiError::new(
            "InstanceLimitExceeded",
            format!("At most {MAX_LAUNCH} instances can be launched per call."),
        ));
    }
    Ok(max)
}

/// The most instances one `run-instances` launches.
const MAX_LAUNCH: u32 = 64;

/// Given addresses must lie in the VPC's blocks.
fn check_in_vpc(vpc: &Vpc, private_ip: Ipv4Addr, ipv6: Option<Ipv6Addr>) -> ApiResult<()> {
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
                    "VPC {} has no IPv6 CIDR block; cannot assign {address}.",
                    vpc.id
                )));
            }
        }
    }
    Ok(())
}

/// No live instance of the VPC has these addresses, and none has this interface.
fn check_free(
    state: &State,
    vpc_id: &str,
    private_ip: Ipv4Addr,
    ipv6: Option<Ipv6Addr>,
    interface: &str,
) -> ApiResult<()> {
    for other in state.network_interfaces.values() {
        if other.vpc_id == vpc_id
            && (other.private_ip == private_ip || (ipv6.is_some() && other.ipv6 == ipv6))
        {
            return Err(ApiError::new(
                "InvalidIPAddress.InUse",
                format!("Address {private_ip} is in use."),
            ));
        }
        if other.host_interface == interface {
            return Err(ApiError::invalid_value(format!(
                "Interface {interface} is already registered to {}.",
                other.instance_id().unwrap_or(&other.id)
            )));
        }
    }
    Ok(())
}

/// One describe-instances filter on `instance`.
fn matches_filter(state: &State, instance: &Instance, filter: &Filter) -> ApiResult<bool> {
    if let Some(hit) = filter.matches_tags(&instance.tags) {
        return Ok(hit);
    }
    let any = |values: Vec<String>| values.iter().any(|v| filter.matches(v));
    let interfaces = state.interfaces_of(&instance.id);
    let primary = state.primary(instance);
    let groups = primary.map(|p| p.group_ids.clone()).unwrap_or_default();
    Ok(match filter.name.as_str() {
        "instance-id" => filter.matches(&instance.id),
        "instance-state-name" => filter.matches(instance.state.name()),
        "instance-state-code" => filter.matches(&instance.state.code().to_string()),
        "vpc-id" => filter.matches(&instance.vpc_id),
        "subnet-id" => filter.matches(&instance.subnet_id),
        "availability-zone" => any(state
            .subnets
            .get(&instance.subnet_id)
            .map(|s| s.availability_zone.clone())
            .into_iter()
            .collect()),
        "private-ip-address" => any(primary
            .map(|p| p.private_ip.to_string())
            .into_iter()
            .collect()),
        "network-interface.addresses.private-ip-address" => any(interfaces
            .iter()
            .map(|i| i.private_ip.to_string())
            .collect()),
        "network-interface.ipv6-addresses.ipv6-address" => any(interfaces
            .iter()
            .flat_map(|i| i.ipv6)
            .map(|a| a.to_string())
            .collect()),
        "network-interface.network-interface-id" => {
            any(interfaces.iter().map(|i| i.id.clone()).collect())
        }
        "network-interface.subnet-id" => {
            any(interfaces.iter().map(|i| i.subnet_id.clone()).collect())
        }
        "network-interface.group-id" => any(interfaces
            .iter()
            .flat_map(|i| i.group_ids.iter().cloned())
            .collect()),
        "reservation-id" => filter.matches(&instance.reservation_id),
        "owner-id" => filter.matches(&state.account_id),
        "instance.group-id" | "group-id" => any(groups),
        "instance.group-name" | "group-name" => any(groups
            .iter()
            .filter_map(|g| state.groups.get(g).map(|g| g.name.clone()))
            .collect()),
        other => return Err(invalid_filter(other)),
    })
}

/// The instances of `req`, but not those terminated too long before `now` (RFC 3339) to be
/// listed: naming one of them answers `InvalidInstanceID.NotFound`, as on AWS.
pub fn describe(
    state: &State,
    now: &str,
    req: DescribeInstancesRequest,
) -> ApiResult<DescribeInstancesResponse> {
    if req.max_results.is_some() && !req.instance_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    let listed = |i: &Instance| !termination::forgotten(i, now);
    lookup::check_instances_exist(state, &req.instance_ids)?;
    if let Some(id) = req
        .instance_ids
        .iter()
        .find(|id| !listed(&state.instances[*id]))
    {
        return Err(lookup::instance_not_found(id));
    }
    let mut out = Vec::new();
    for instance in state.instances.values().filter(|i| listed(i)) {
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
pub(super) fn change_states(
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
    instance_attributes::check_protection(state, &req.instance_ids, false)?;
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

/// `--groups`: replaces the groups of the instance's primary interface (all in its VPC, at most
/// the quota). An instance with several interfaces is refused, as on AWS: the call must name the
/// interface (`modify-network-interface-attribute`).
pub fn modify_attribute(
    state: &mut State,
    req: ModifyInstanceAttributeRequest,
) -> ApiResult<EmptyResponse> {
    let id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    lookup::check_instances_exist(state, std::slice::from_ref(&id))?;
    if req.groups.is_empty() {
        return instance_attributes::modify(
            state,
            ModifyInstanceAttributeRequest {
                instance_id: Some(id),
                ..req
            },
        );
    }
    let others = [
        req.disable_api_termination.is_some(),
        req.disable_api_stop.is_some(),
        req.instance_initiated_shutdown_behavior.is_some(),
        req.source_dest_check.is_some(),
        req.attribute.is_some(),
    ];
    if others.contains(&true) {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "Fields for multiple attribute types specified: groupSet and another attribute",
        ));
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
    if state.interfaces_of(&id).len() > 1 {
        return Err(ApiError::new(
            "InvalidInstanceID",
            format!(
                "There are multiple interfaces attached to instance '{id}'. Please specify an interface ID for the operation instead."
            ),
        ));
    }
    for group in &req.groups {
        check_group_id_format(group)?;
        if state
            .groups
            .get(group)
            .is_none_or(|g| g.vpc_id != instance.vpc_id)
        {
            return Err(lookup::group_not_in_vpc(group, &instance.vpc_id));
        }
    }
    let groups = network_interface::check_groups(state, &instance.vpc_id, &req.groups)?;
    let eni = instance.eni_id.clone();
    state
        .network_interfaces
        .get_mut(&eni)
        .ok_or_else(|| network_interface::not_found(&eni))?
        .group_ids = groups;
    Ok(EmptyResponse {})
}

//! An instance's launch attributes: what `RunInstances` takes beyond the network (checked
//! here), `describe-instance-attribute`, the flags `modify-instance-attribute` changes (its
//! groups are `instance.rs`'), termination and stop protection, and the reads tools make of
//! every instance: `describe-instance-credit-specifications` and `describe-volumes` (instances
//! here have no EBS volume, so that answer is always empty).

use super::{
    catalogue, lookup,
    query::{invalid_filter, paginate},
    regions,
    state::{InstanceState, Launch, State},
    views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::EmptyResponse,
        instance_details::{
            DescribeInstanceAttributeRequest, DescribeInstanceCreditSpecificationsRequest,
            DescribeInstanceCreditSpecificationsResponse, DescribeVolumesRequest,
            DescribeVolumesResponse, InstanceAttribute, InstanceCreditSpecification,
        },
        instances::{ModifyInstanceAttributeRequest, RunInstancesRequest},
        network_interfaces::AttributeValue,
        vpcs::AttributeBooleanValue,
    },
};

/// The user data AWS takes at most (16 KB before base64).
const USER_DATA_MAX: usize = 16 * 1024;

fn unsupported(what: &str) -> ApiError {
    ApiError::new("UnsupportedOperation", what.to_string())
}

/// Whether `text` is base64 as AWS takes user data (the standard alphabet, padded).
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len().is_multiple_of(4)
        && text.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// What `req` launches with beyond its network, checked as AWS checks it, in `region`.
pub fn launch(region: &str, req: &RunInstancesRequest) -> ApiResult<Launch> {
    let mut launch = Launch::default();
    if let Some(image) = req.image_id.as_deref() {
        catalogue::check_image(image)?;
        launch.image_id = image.into();
    }
    if let Some(instance_type) = req.instance_type.as_deref() {
        catalogue::check_instance_type(instance_type)?;
        launch.instance_type = instance_type.into();
    }
    if let Some(data) = req.user_data.as_deref() {
        if !is_base64(data) {
            return Err(ApiError::invalid_value(
                "Invalid BASE64 encoding of user data.",
            ));
        }
        if data.len() / 4 * 3 > USER_DATA_MAX {
            return Err(ApiError::invalid_value(
                "User data is limited to 16384 bytes",
            ));
        }
        launch.user_data = Some(data.into());
    }
    launch.disable_api_termination = req.disable_api_termination.unwrap_or(false);
    launch.disable_api_stop = req.disable_api_stop.unwrap_or(false);
    if let Some(behavior) = req.instance_initiated_shutdown_behavior.as_deref() {
        if !matches!(behavior, "stop" | "terminate") {
            return Err(ApiError::invalid_value(format!(
                "Value ({behavior}) for parameter instanceInitiatedShutdownBehavior is invalid. Valid values are stop and terminate."
            )));
        }
        launch.shutdown_behavior = behavior.into();
    }
    let credits = req
        .credit_specification
        .as_ref()
        .and_then(|c| c.cpu_credits.as_deref());
    if let Some(credits) = credits
        && !matches!(credits, "standard" | "unlimited")
    {
        return Err(ApiError::invalid_value(format!(
            "Value ({credits}) for parameter cpuCredits is invalid. Valid values are standard and unlimited."
        )));
    }
    if catalogue::burstable(&launch.instance_type) {
        let default = if launch.instance_type.starts_with("t2.") {
            "standard"
        } else {
            "unlimited"
        };
        launch.cpu_credits = Some(credits.unwrap_or(default).into());
    } else if credits.is_some() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            format!(
                "The instance type {} does not support CPU credits.",
                launch.instance_type
            ),
        ));
    }
    if req.monitoring.as_ref().and_then(|m| m.enabled) == Some(true) {
        return Err(unsupported(
            "Detailed monitoring is not available here: the agent's /metrics counts each interface's traffic.",
        ));
    }
    if req.hibernation_options.as_ref().and_then(|h| h.configured) == Some(true) {
        return Err(unsupported(
            "Hibernation is not available for these instances.",
        ));
    }
    if req.ebs_optimized == Some(true) {
        return Err(unsupported(
            "EBS optimization is not available: instances here have no EBS volumes.",
        ));
    }
    if let Some(placement) = &req.placement {
        let zone = placement.availability_zone.as_deref().unwrap_or_default();
        if !zone.is_empty() && regions::zone_id(region, zone).is_empty() {
            return Err(ApiError::invalid_value(format!(
                "Invalid availability zone: [{zone}]"
            )));
        }
        if let Some(tenancy) = placement.tenancy.as_deref()
            && tenancy != "default"
        {
            return Err(unsupported("Only the default tenancy is available."));
        }
        if placement
            .group_name
            .as_deref()
            .is_some_and(|g| !g.is_empty())
        {
            return Err(unsupported("Placement groups are not available."));
        }
    }
    Ok(launch)
}

pub fn describe_attribute(
    state: &State,
    req: DescribeInstanceAttributeRequest,
) -> ApiResult<InstanceAttribute> {
    let id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    let attribute = req
        .attribute
        .ok_or_else(|| ApiError::missing("Attribute"))?;
    lookup::check_instances_exist(state, std::slice::from_ref(&id))?;
    let instance = &state.instances[&id];
    let launch = &instance.launch;
    let flag = |value: bool| Some(AttributeBooleanValue { value: Some(value) });
    let text = |value: Option<&str>| {
        Some(AttributeValue {
            value: value.map(str::to_string),
        })
    };
    let mut out = InstanceAttribute {
        instance_id: id.clone(),
        ..InstanceAttribute::default()
    };
    match attribute.as_str() {
        "instanceType" => out.instance_type = text(Some(&launch.instance_type)),
        "userData" => out.user_data = text(launch.user_data.as_deref()),
        "disableApiTermination" => {
            out.disable_api_termination = flag(launch.disable_api_termination)
        }
        "disableApiStop" => out.disable_api_stop = flag(launch.disable_api_stop),
        "instanceInitiatedShutdownBehavior" => {
            out.instance_initiated_shutdown_behavior = text(Some(&launch.shutdown_behavior))
        }
        "rootDeviceName" => out.root_device_name = text(None),
        "blockDeviceMapping" => out.block_device_mappings = Some(Vec::new()),
        "sourceDestCheck" => out.source_dest_check = flag(true),
        "ebsOptimized" => out.ebs_optimized = flag(false),
        "groupSet" => {
            out.groups = Some(
                state
                    .primary(instance)
                    .map(|eni| views::group_identifiers(state, &eni.group_ids))
                    .unwrap_or_default(),
            )
        }
        other => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )));
        }
    }
    Ok(out)
}

/// `modify-instance-attribute` of anything but the groups: exactly one attribute per call.
pub fn modify(state: &mut State, req: ModifyInstanceAttributeRequest) -> ApiResult<EmptyResponse> {
    let id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    lookup::check_instances_exist(state, std::slice::from_ref(&id))?;
    let value = |v: &Option<AttributeBooleanValue>| v.as_ref().and_then(|v| v.value);
    let mut given: Vec<(&str, String)> = Vec::new();
    if let Some(v) = value(&req.disable_api_termination) {
        given.push(("disableApiTermination", v.to_string()));
    }
    if let Some(v) = value(&req.disable_api_stop) {
        given.push(("disableApiStop", v.to_string()));
    }
    if let Some(v) = req
        .instance_initiated_shutdown_behavior
        .as_ref()
        .and_then(|v| v.value.clone())
    {
        given.push(("instanceInitiatedShutdownBehavior", v));
    }
    if let Some(v) = value(&req.source_dest_check) {
        given.push(("sourceDestCheck", v.to_string()));
    }
    if let Some(attribute) = req.attribute.as_deref() {
        let v = req
            .value
            .clone()
            .ok_or_else(|| ApiError::missing("Value"))?;
        given.push((attribute, v));
    }
    let (attribute, value) = match given.as_slice() {
        [] => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "No attributes specified.",
            ));
        }
        [one] => one.clone(),
        several => {
            let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
            return Err(ApiError::new(
                "InvalidParameterCombination",
                format!(
                    "Fields for multiple attribute types specified: {}",
                    names.join(", ")
                ),
            ));
        }
    };
    let boolean = |v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({v}) for parameter value is invalid. Expecting true or false."
        ))),
    };
    let instance = state.instances.get_mut(&id).expect("checked above");
    match attribute {
        "disableApiTermination" => instance.launch.disable_api_termination = boolean(&value)?,
        "disableApiStop" => instance.launch.disable_api_stop = boolean(&value)?,
        "instanceInitiatedShutdownBehavior" => {
            if !matches!(value.as_str(), "stop" | "terminate") {
                return Err(ApiError::invalid_value(format!(
                    "Value ({value}) for parameter instanceInitiatedShutdownBehavior is invalid. Valid values are stop and terminate."
                )));
            }
            instance.launch.shutdown_behavior = value;
        }
        "sourceDestCheck" => {
            if !boolean(&value)? {
                return Err(unsupported(
                    "Turning the source/destination check off is not supported: the data plane judges packets by the interface's own addresses.",
                ));
            }
        }
        other => {
            return Err(ApiError::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )));
        }
    }
    Ok(EmptyResponse {})
}

/// Refuses to terminate or stop an instance whose protection flag is set.
pub fn check_protection(state: &State, ids: &[String], terminate: bool) -> ApiResult<()> {
    for id in ids {
        let Some(instance) = state.instances.get(id) else {
            continue;
        };
        let (protected, verb, flag) = if terminate {
            (
                instance.launch.disable_api_termination,
                "terminated",
                "disableApiTermination",
            )
        } else {
            (
                instance.launch.disable_api_stop,
                "stopped",
                "disableApiStop",
            )
        };
        if protected && instance.state != InstanceState::Terminated {
            return Err(ApiError::new(
                "OperationNotPermitted",
                format!(
                    "The instance '{id}' may not be {verb}. Modify its '{flag}' instance attribute and try again."
                ),
            ));
        }
    }
    Ok(())
}

pub fn describe_credit_specifications(
    state: &State,
    req: DescribeInstanceCreditSpecificationsRequest,
) -> ApiResult<DescribeInstanceCreditSpecificationsResponse> {
    lookup::check_instances_exist(state, &req.instance_ids)?;
    let mut out = Vec::new();
    for (id, instance) in &state.instances {
        if instance.state == InstanceState::Terminated
            || (!req.instance_ids.is_empty() && !req.instance_ids.contains(id))
        {
            continue;
        }
        let Some(credits) = &instance.launch.cpu_credits else {
            if req.instance_ids.contains(id) {
                return Err(unsupported(&format!(
                    "The instance ID '{id}' is not supported. Only burstable performance instances are supported."
                )));
            }
            continue;
        };
        let mut keep = true;
        for filter in &req.filters {
            keep &= match filter.name.as_str() {
                "instance-id" => filter.matches(id),
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push((
                id.clone(),
                InstanceCreditSpecification {
                    instance_id: id.clone(),
                    cpu_credits: credits.clone(),
                },
            ));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeInstanceCreditSpecificationsResponse {
        instance_credit_specifications: page.items,
        next_token: page.next_token,
    })
}

/// No instance here has an EBS volume: a named volume does not exist, and every listing is
/// empty (its filters checked as AWS checks them).
pub fn describe_volumes(req: DescribeVolumesRequest) -> ApiResult<DescribeVolumesResponse> {
    if let Some(id) = req.volume_ids.first() {
        return Err(ApiError::new(
            "InvalidVolume.NotFound",
            format!("The volume '{id}' does not exist."),
        ));
    }
    for filter in &req.filters {
        let known = matches!(
            filter.name.as_str(),
            "attachment.attach-time"
                | "attachment.delete-on-termination"
                | "attachment.device"
                | "attachment.instance-id"
                | "attachment.status"
                | "availability-zone"
                | "create-time"
                | "encrypted"
                | "size"
                | "snapshot-id"
                | "status"
                | "tag-key"
                | "volume-id"
                | "volume-type"
        ) || filter.name.starts_with("tag:");
        if !known {
            return Err(invalid_filter(&filter.name));
        }
    }
    paginate(
        Vec::<(String, ())>::new(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(DescribeVolumesResponse {
        volumes: Vec::new(),
        next_token: None,
    })
}

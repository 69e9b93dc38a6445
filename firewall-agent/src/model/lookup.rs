//! Finding the resources a request names, with the error AWS gives for each that is missing.

use super::{
    ids::{check_group_id_format, check_id_format},
    state::{LaunchTemplate, PrefixList, SecurityGroup, State},
};
use crate::api::{ApiError, ApiResult};

/// `InvalidVpcID.NotFound`.
pub fn vpc_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

pub fn group_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

/// Resolves the target group of an operation from `GroupId`, or `GroupName` in the default VPC.
pub fn target_group_id(state: &State, id: Option<&str>, name: Option<&str>) -> ApiResult<String> {
    match (id, name) {
        (Some(id), _) => {
            check_group_id_format(id)?;
            state
                .groups
                .contains_key(id)
                .then(|| id.to_string())
                .ok_or_else(|| group_not_found(id))
        }
        (None, Some(name)) => {
            let vpc = state.default_vpc().map(|v| v.id.as_str()).unwrap_or("");
            state
                .groups
                .values()
                .find(|g| g.vpc_id == vpc && g.name == name)
                .map(|g| g.id.clone())
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidGroup.NotFound",
                        format!(
                            "The security group '{name}' does not exist in default VPC '{vpc}'"
                        ),
                    )
                })
        }
        (None, None) => Err(ApiError::missing("GroupId")),
    }
}

/// Every ID is a well-formed instance ID of an instance we know.
pub fn check_instances_exist(state: &State, ids: &[String]) -> ApiResult<()> {
    for id in ids {
        check_id_format(id, "i", "InvalidInstanceID.Malformed", "instance ID")?;
        if !state.instances.contains_key(id) {
            return Err(instance_not_found(id));
        }
    }
    Ok(())
}

/// `InvalidInstanceID.NotFound` for `id`.
pub fn instance_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    )
}

fn prefix_list_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidPrefixListID.NotFound",
        format!("The prefix list ID '{id}' does not exist"),
    )
}

/// The prefix list `id`, or `InvalidPrefixListID.NotFound`.
pub fn prefix_list<'a>(state: &'a State, id: &str) -> ApiResult<&'a PrefixList> {
    state
        .prefix_lists
        .get(id)
        .ok_or_else(|| prefix_list_not_found(id))
}

fn missing_templates() -> &'static str {
    "At least one of the launch templates specified in the request does not exist."
}

/// Finds a template by ID or name, with AWS's error for each.
pub fn launch_template<'a>(
    state: &'a State,
    id: Option<&str>,
    name: Option<&str>,
) -> ApiResult<&'a LaunchTemplate> {
    match (id, name) {
        (Some(id), _) => state
            .launch_templates
            .get(id)
            .ok_or_else(|| ApiError::new("InvalidLaunchTemplateId.NotFound", missing_templates())),
        (None, Some(name)) => state
            .launch_templates
            .values()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidLaunchTemplateName.NotFoundException",
                    missing_templates(),
                )
            }),
        (None, None) => Err(ApiError::missing("LaunchTemplateId or LaunchTemplateName")),
    }
}

/// The group `id` (a well-formed ID of a group we know).
pub fn group<'a>(state: &'a State, id: &str) -> ApiResult<&'a SecurityGroup> {
    check_group_id_format(id)?;
    state
        .groups
        .get(id)
        .map(|g| &**g)
        .ok_or_else(|| group_not_found(id))
}

/// `InvalidGroup.NotFound` for a group (by ID or name) that is not in `vpc_id`.
pub fn group_not_in_vpc(group: &str, vpc_id: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        format!("The security group '{group}' does not exist in VPC '{vpc_id}'"),
    )
}

/// `InvalidSecurityGroupRuleId.NotFound`.
pub fn rule_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidSecurityGroupRuleId.NotFound",
        format!("The security group rule ID '{id}' does not exist"),
    )
}

/// `InvalidPermission.NotFound`: a permission that matches no rule of the group.
pub fn permission_not_found() -> ApiError {
    ApiError::new(
        "InvalidPermission.NotFound",
        "The specified rule does not exist in this security group.",
    )
}

/// `VPCIdNotSpecified`: no VPC given and no default VPC.
pub fn no_default_vpc() -> ApiError {
    ApiError::new("VPCIdNotSpecified", "No default VPC for this user")
}

/// `DependencyViolation` for a resource something still refers to.
pub fn has_dependent(id: &str) -> ApiError {
    ApiError::new(
        "DependencyViolation",
        format!("resource {id} has a dependent object"),
    )
}

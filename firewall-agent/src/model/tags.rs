//! `create-tags`, `delete-tags`, `describe-tags` on every taggable resource we have: security
//! groups, rules, instances, VPCs, prefix lists and launch templates.

use super::{
    query::{invalid_filter, paginate},
    state::State,
    tagging::{Tag, check_tag},
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::EmptyResponse,
        tags::{ChangeTagsRequest, DescribeTagsRequest, DescribeTagsResponse, TagDescription},
    },
};

/// Tags per resource, as on AWS.
const TAGS_PER_RESOURCE: usize = 50;

/// The resource type AWS reports for an ID, from its prefix.
fn resource_type(id: &str) -> Option<&'static str> {
    let (prefix, _) = id.split_once('-')?;
    Some(match prefix {
        "sg" => "security-group",
        "sgr" => "security-group-rule",
        "i" => "instance",
        "vpc" => "vpc",
        "subnet" => "subnet",
        "eni" => "network-interface",
        "pl" => "prefix-list",
        "lt" => "launch-template",
        _ => return None,
    })
}

fn not_found(id: &str) -> ApiError {
    let (code, what) = match resource_type(id) {
        Some("security-group") => ("InvalidGroup.NotFound", "security group"),
        Some("security-group-rule") => (
            "InvalidSecurityGroupRuleId.NotFound",
            "security group rule ID",
        ),
        Some("instance") => ("InvalidInstanceID.NotFound", "instance ID"),
        Some("vpc") => ("InvalidVpcID.NotFound", "vpc ID"),
        Some("subnet") => ("InvalidSubnetID.NotFound", "subnet ID"),
        Some("network-interface") => ("InvalidNetworkInterfaceID.NotFound", "networkInterface ID"),
        Some("prefix-list") => ("InvalidPrefixListID.NotFound", "prefix list ID"),
        Some("launch-template") => ("InvalidLaunchTemplateId.NotFound", "launch template ID"),
        _ => return ApiError::new("InvalidID", format!("The ID '{id}' is not valid")),
    };
    ApiError::new(code, format!("The {what} '{id}' does not exist"))
}

/// The tags of a resource, for changing them.
fn tags_of<'a>(state: &'a mut State, id: &str) -> ApiResult<&'a mut Vec<Tag>> {
    let tags = match resource_type(id) {
        Some("security-group") => state
            .groups
            .get_mut(id)
            .map(|g| &mut std::sync::Arc::make_mut(g).tags),
        // Only the group holding the rule is copied (the others stay shared).
        Some("security-group-rule") => (state.groups.iter())
            .find(|(_, g)| g.ingress.by_id(id).is_some() || g.egress.by_id(id).is_some())
            .map(|(group_id, _)| group_id.clone())
            .and_then(|group_id| state.groups.get_mut(&group_id))
            .and_then(|g| {
                let g = std::sync::Arc::make_mut(g);
                match g.ingress.by_id_mut(id) {
                    Some(rule) => Some(rule),
                    None => g.egress.by_id_mut(id),
                }
            })
            .map(|r| &mut std::sync::Arc::make_mut(r).tags),
        Some("instance") => state.instances.get_mut(id).map(|i| &mut i.tags),
        Some("vpc") => state.vpcs.get_mut(id).map(|v| &mut v.tags),
        Some("subnet") => state.subnets.get_mut(id).map(|s| &mut s.tags),
        Some("network-interface") => state.network_interfaces.get_mut(id).map(|n| &mut n.tags),
        Some("prefix-list") => state.prefix_lists.get_mut(id).map(|l| &mut l.tags),
        Some("launch-template") => state.launch_templates.get_mut(id).map(|t| &mut t.tags),
        _ => None,
    };
    tags.ok_or_else(|| not_found(id))
}

/// Every (resource ID, type, tags) in the state, in a stable order.
fn all_tags(state: &State) -> Vec<(&str, &'static str, &[Tag])> {
    let mut out: Vec<(&str, &'static str, &[Tag])> = Vec::new();
    for vpc in state.vpcs.values() {
        out.push((&vpc.id, "vpc", &vpc.tags));
    }
    for group in state.groups.values() {
        out.push((&group.id, "security-group", &group.tags));
        for rule in group.ingress.iter().chain(&group.egress) {
            out.push((&rule.id, "security-group-rule", &rule.tags));
        }
    }
    for instance in state.instances.values() {
        out.push((&instance.id, "instance", &instance.tags));
    }
    for subnet in state.subnets.values() {
        out.push((&subnet.id, "subnet", &subnet.tags));
    }
    for eni in state.network_interfaces.values() {
        out.push((&eni.id, "network-interface", &eni.tags));
    }
    for list in state.prefix_lists.values() {
        out.push((&list.id, "prefix-list", &list.tags));
    }
    for template in state.launch_templates.values() {
        out.push((&template.id, "launch-template", &template.tags));
    }
    out
}

/// Adds or overwrites tags on every resource, all or nothing.
pub fn create(state: &mut State, req: ChangeTagsRequest) -> ApiResult<EmptyResponse> {
    if req.resources.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    let tags = req
        .tags
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::missing("Tag"))?;
    for tag in &tags {
        check_tag(&tag.key, tag.value.as_deref().unwrap_or(""))?;
    }
    let mut next = state.clone();
    for id in &req.resources {
        let current = tags_of(&mut next, id)?;
        for tag in &tags {
            let value = tag.value.clone().unwrap_or_default();
            match current.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = value,
                None => current.push(Tag {
                    key: tag.key.clone(),
                    value,
                }),
            }
        }
        if current.len() > TAGS_PER_RESOURCE {
            return Err(ApiError::new(
                "TagLimitExceeded",
                format!(
                    "The maximum number of tags ({TAGS_PER_RESOURCE}) for resource {id} has been reached."
                ),
            ));
        }
    }
    *state = next;
    Ok(EmptyResponse {})
}

/// Removes tags: by key, or by key and value; without `Tags`, every tag.
pub fn delete(state: &mut State, req: ChangeTagsRequest) -> ApiResult<EmptyResponse> {
    if req.resources.is_empty() {
        return Err(ApiError::missing("ResourceId"));
    }
    let mut next = state.clone();
    for id in &req.resources {
        let current = tags_of(&mut next, id)?;
        match &req.tags {
            None => current.clear(),
            Some(tags) => current.retain(|t| {
                !tags
                    .iter()
                    .any(|d| d.key == t.key && d.value.as_ref().is_none_or(|v| *v == t.value))
            }),
        }
    }
    *state = next;
    Ok(EmptyResponse {})
}

pub fn describe(state: &State, req: DescribeTagsRequest) -> ApiResult<DescribeTagsResponse> {
    let mut out = Vec::new();
    for (id, kind, tags) in all_tags(state) {
        for tag in tags {
            let mut keep = true;
            for filter in &req.filters {
                keep &= match filter.name.as_str() {
                    "resource-id" => filter.matches(id),
                    "resource-type" => filter.matches(kind),
                    "key" => filter.matches(&tag.key),
                    "value" => filter.matches(&tag.value),
                    name if name.starts_with("tag:") => {
                        tag.key == name[4..] && filter.matches(&tag.value)
                    }
                    other => return Err(invalid_filter(other)),
                };
            }
            if keep {
                // A page ends after a resource's tag: the token names both.
                let token = format!("{id}/{}", tag.key);
                out.push((
                    token,
                    TagDescription {
                        key: tag.key.clone(),
                        resource_id: id.to_string(),
                        resource_type: kind.to_string(),
                        value: tag.value.clone(),
                    },
                ));
            }
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeTagsResponse {
        tags: page.items,
        next_token: page.next_token,
    })
}

//! `create-tags`, `delete-tags`, `describe-tags` on every taggable resource we have: security
//! groups, rules, instances, VPCs, prefix lists and launch templates.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, State, Tag, ops::Filter};

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
        Some("prefix-list") => ("InvalidPrefixListID.NotFound", "prefix list ID"),
        Some("launch-template") => ("InvalidLaunchTemplateId.NotFound", "launch template ID"),
        _ => return ApiError::new("InvalidID", format!("The ID '{id}' is not valid")),
    };
    ApiError::new(code, format!("The {what} '{id}' does not exist"))
}

/// The tags of a resource, for changing them.
fn tags_of<'a>(state: &'a mut State, id: &str) -> ApiResult<&'a mut Vec<Tag>> {
    let tags = match resource_type(id) {
        Some("security-group") => state.groups.get_mut(id).map(|g| &mut g.tags),
        Some("security-group-rule") => state
            .groups
            .values_mut()
            .flat_map(|g| g.ingress.iter_mut().chain(g.egress.iter_mut()))
            .find(|r| r.id == id)
            .map(|r| &mut r.tags),
        Some("instance") => state.instances.get_mut(id).map(|i| &mut i.tags),
        Some("vpc") => state.vpcs.get_mut(id).map(|v| &mut v.tags),
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
    for list in state.prefix_lists.values() {
        out.push((&list.id, "prefix-list", &list.tags));
    }
    for template in state.launch_templates.values() {
        out.push((&template.id, "launch-template", &template.tags));
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagRequest {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangeTagsRequest {
    #[serde(default)]
    resources: Vec<String>,
    tags: Option<Vec<TagRequest>>,
}

pub fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() || key.chars().count() > 127 {
        return Err(ApiError::new(
            "InvalidParameterValue",
            format!("Tag key '{key}' must be 1 to 127 characters."),
        ));
    }
    if key.starts_with("aws:") {
        return Err(ApiError::new(
            "InvalidParameterValue",
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    if value.chars().count() > 256 {
        return Err(ApiError::invalid_value(format!(
            "The value of tag '{key}' must be at most 256 characters."
        )));
    }
    Ok(())
}

/// Adds or overwrites tags on every resource, all or nothing.
pub fn create(state: &mut State, req: ChangeTagsRequest) -> ApiResult<Value> {
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
    Ok(json!({}))
}

/// Removes tags: by key, or by key and value; without `Tags`, every tag.
pub fn delete(state: &mut State, req: ChangeTagsRequest) -> ApiResult<Value> {
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
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRequest {
    #[serde(default)]
    filters: Vec<Filter>,
}

pub fn describe(state: &State, req: DescribeRequest) -> ApiResult<Value> {
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
                    other => {
                        return Err(ApiError::invalid_value(format!(
                            "The filter '{other}' is invalid"
                        )));
                    }
                };
            }
            if keep {
                out.push(json!({"Key": tag.key, "ResourceId": id, "ResourceType": kind, "Value": tag.value}));
            }
        }
    }
    Ok(json!({ "Tags": out }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ops::dispatch, testing::SeqIds};

    #[test]
    fn tags_are_added_overwritten_filtered_and_removed_all_or_nothing() {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        let group = state.groups.keys().next().unwrap().clone();
        let rule = state.groups[&group].ingress[0].id.clone();
        let call = |state: &mut State, ids: &mut SeqIds, action: &str, req: Value| {
            dispatch(state, ids, action, req)
        };
        call(
            &mut state,
            &mut ids,
            "CreateTags",
            json!({"Resources": [group, rule], "Tags": [{"Key": "env", "Value": "dev"}]}),
        )
        .unwrap();
        call(
            &mut state,
            &mut ids,
            "CreateTags",
            json!({"Resources": [group], "Tags": [{"Key": "env", "Value": "prod"}]}),
        )
        .unwrap();
        let out = call(
            &mut state,
            &mut ids,
            "DescribeTags",
            json!({"Filters": [{"Name": "key", "Values": ["env"]}]}),
        )
        .unwrap();
        assert_eq!(out["Tags"].as_array().unwrap().len(), 2);
        assert_eq!(
            out["Tags"][0],
            json!({"Key": "env", "ResourceId": group, "ResourceType": "security-group", "Value": "prod"})
        );
        let before = state.clone();
        let err = call(&mut state, &mut ids, "CreateTags", json!({"Resources": [group, "sg-00000000000000fff"], "Tags": [{"Key": "a", "Value": "b"}]})).unwrap_err();
        assert_eq!(err.code, "InvalidGroup.NotFound");
        assert_eq!(state, before, "nothing tagged");
        let err = call(
            &mut state,
            &mut ids,
            "CreateTags",
            json!({"Resources": [group], "Tags": [{"Key": "aws:x", "Value": "b"}]}),
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
        call(
            &mut state,
            &mut ids,
            "DeleteTags",
            json!({"Resources": [group], "Tags": [{"Key": "env", "Value": "dev"}]}),
        )
        .unwrap();
        assert_eq!(
            state.groups[&group].tags.len(),
            1,
            "the value did not match"
        );
        call(
            &mut state,
            &mut ids,
            "DeleteTags",
            json!({"Resources": [group, rule]}),
        )
        .unwrap();
        let out = call(&mut state, &mut ids, "DescribeTags", json!({})).unwrap();
        assert_eq!(out["Tags"], json!([]));
    }
}

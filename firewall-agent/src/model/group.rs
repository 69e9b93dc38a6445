//! Security groups: create (with the default outbound rules), copy, delete, describe.

use std::sync::Arc;

use super::{
    ids::IdSource,
    lookup,
    permission::check_rule_quota,
    query::{invalid_filter, paginate},
    rule::{Peer, Rule},
    rule_list::RuleList,
    state::{SecurityGroup, State},
    tagging::{self, tags_for},
    text::check_text,
    views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::Filter,
        groups::{
            CopySecurityGroupRequest, CreateSecurityGroupRequest, CreateSecurityGroupResponse,
            DeleteSecurityGroupRequest, DeleteSecurityGroupResponse, DescribeSecurityGroupsRequest,
            DescribeSecurityGroupsResponse,
        },
    },
};

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateSecurityGroupRequest,
) -> ApiResult<CreateSecurityGroupResponse> {
    let name = check_text("GroupName", req.group_name.as_deref())?;
    let description = check_text("GroupDescription", req.description.as_deref())?;
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(ApiError::invalid_value(format!(
            "Group names may not be in the format sg-*. ({name})"
        )));
    }
    if name.eq_ignore_ascii_case("default") {
        return Err(ApiError::new(
            "InvalidGroup.Reserved",
            "The security group 'default' is reserved",
        ));
    }
    let vpc = match req.vpc_id.as_deref() {
        Some(id) => state
            .vpcs
            .get(id)
            .ok_or_else(|| lookup::vpc_not_found(id))?,
        None => state.default_vpc().ok_or_else(lookup::no_default_vpc)?,
    };
    let vpc_id = vpc.id.clone();
    let has_ipv6 = vpc.ipv6_cidr.is_some();
    if state
        .groups
        .values()
        .any(|g| g.vpc_id == vpc_id && g.name.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::new(
            "InvalidGroup.Duplicate",
            format!("The security group '{name}' already exists for VPC '{vpc_id}'"),
        ));
    }
    let tags = tags_for(&req.tag_specifications, "security-group")?;

    let id = ids.next_id("sg");
    let group = SecurityGroup {
        id: id.clone(),
        name,
        description,
        vpc_id,
        ingress: RuleList::default(),
        egress: Rule::default_egress(ids, has_ipv6),
        tags: tags.clone(),
    };
    state.groups.insert(id.clone(), Arc::new(group));
    Ok(CreateSecurityGroupResponse {
        security_group_arn: state.group_arn(&id),
        group_id: id,
        tags: tagging::views(&tags),
    })
}

/// Ours, the console's "Copy to new security group": a new group (new name required) with the
/// same rules under new `sgr-` IDs, in the same VPC unless `VpcId` says otherwise. A rule that
/// references the source group references the copy; other referenced groups must exist in the
/// target VPC.
pub fn copy(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CopySecurityGroupRequest,
) -> ApiResult<CreateSecurityGroupResponse> {
    let source_id = req
        .group_id
        .as_deref()
        .ok_or_else(|| ApiError::missing("GroupId"))?;
    let source = lookup::group(state, source_id)?.clone();
    let mut next = state.clone();
    let created = create(
        &mut next,
        ids,
        CreateSecurityGroupRequest {
            group_name: req.group_name,
            description: req.description.or_else(|| Some(source.description.clone())),
            vpc_id: Some(req.vpc_id.unwrap_or_else(|| source.vpc_id.clone())),
            tag_specifications: req.tag_specifications,
        },
    )?;
    let new_id = created.group_id.clone();
    let vpc_id = next.groups[&new_id].vpc_id.clone();
    let copy_rules = |rules: &RuleList, ids: &mut dyn IdSource| -> ApiResult<RuleList> {
        rules
            .iter()
            .map(|rule| {
                let mut copy = Rule::clone(rule);
                copy.id = ids.next_id("sgr");
                copy.tags = Vec::new();
                if let Peer::Group(referenced) = &rule.peer {
                    if *referenced == source.id {
                        copy.peer = Peer::Group(new_id.clone());
                    } else if next
                        .groups
                        .get(referenced)
                        .is_none_or(|g| g.vpc_id != vpc_id)
                    {
                        return Err(lookup::group_not_in_vpc(referenced, &vpc_id));
                    }
                }
                Ok(Arc::new(copy))
            })
            .collect()
    };
    let ingress = copy_rules(&source.ingress, ids)?;
    let egress = copy_rules(&source.egress, ids)?;
    check_rule_quota(&next, ingress.iter().map(|r| &**r))?;
    check_rule_quota(&next, egress.iter().map(|r| &**r))?;
    let group = std::sync::Arc::make_mut(next.groups.get_mut(&new_id).expect("created above"));
    group.ingress = ingress;
    group.egress = egress;
    *state = next;
    Ok(created)
}

pub fn delete(
    state: &mut State,
    req: DeleteSecurityGroupRequest,
) -> ApiResult<DeleteSecurityGroupResponse> {
    let id = lookup::target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    let group = &state.groups[&id];
    if group.name == "default" {
        return Err(ApiError::new(
            "CannotDelete",
            format!("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user"),
        ));
    }
    // On any network interface, attached or not (a terminated instance's primary one is gone).
    let attached = state.group_in_use(&id);
    // Another group's rules referencing it keep it. Its own do not, as on AWS (the user guide
    // says they do: `refuse_deleting_self_referenced`); they go with it.
    let strict = state.refuse_deleting_self_referenced;
    let referenced = state.groups.values().any(|g| {
        (strict || g.id != id)
            && g.ingress
                .iter()
                .chain(&g.egress)
                .any(|r| r.peer == Peer::Group(id.clone()))
    });
    if attached || referenced {
        return Err(lookup::has_dependent(&id));
    }
    state.groups.remove(&id);
    Ok(DeleteSecurityGroupResponse {
        r#return: true,
        group_id: id,
    })
}

/// One describe-security-groups filter. Rule filters match when any rule of the direction
/// matches ("any combination of rules — not necessarily a single rule — match all filters").
fn matches_filter(state: &State, group: &SecurityGroup, filter: &Filter) -> ApiResult<bool> {
    let by_rules = |rules: &RuleList, field: &str| -> ApiResult<bool> {
        for rule in rules {
            if super::group_rules::rule_matches(state, rule, field, filter)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    if let Some(field) = filter.name.strip_prefix("egress.ip-permission.") {
        return by_rules(&group.egress, field);
    }
    if let Some(field) = filter.name.strip_prefix("ip-permission.") {
        return by_rules(&group.ingress, field);
    }
    if let Some(hit) = filter.matches_tags(&group.tags) {
        return Ok(hit);
    }
    Ok(match filter.name.as_str() {
        "owner-id" => filter.matches(&state.account_id),
        "group-id" => filter.matches(&group.id),
        "group-name" => filter.matches(&group.name),
        "vpc-id" => filter.matches(&group.vpc_id),
        "description" => filter.matches(&group.description),
        other => return Err(invalid_filter(other)),
    })
}

pub fn describe(
    state: &State,
    req: DescribeSecurityGroupsRequest,
) -> ApiResult<DescribeSecurityGroupsResponse> {
    if req.max_results.is_some() && !req.group_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter groupIds cannot be used with the parameter maxResults",
        ));
    }
    for id in &req.group_ids {
        lookup::group(state, id)?;
    }
    let default_vpc = state
        .default_vpc()
        .map(|v| v.id.clone())
        .unwrap_or_default();
    for name in &req.group_names {
        lookup::target_group_id(state, None, Some(name))?;
    }
    let mut out = Vec::new();
    for group in state.groups.values() {
        if !req.group_ids.is_empty() && !req.group_ids.contains(&group.id) {
            continue;
        }
        let named = group.vpc_id == default_vpc && req.group_names.contains(&group.name);
        if !req.group_names.is_empty() && !named {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= matches_filter(state, group, filter)?;
        }
        if keep {
            out.push((group.id.clone(), views::security_group(state, group)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeSecurityGroupsResponse {
        security_groups: page.items,
        next_token: page.next_token,
    })
}

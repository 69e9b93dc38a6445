//! A group's rules: authorize, revoke (by permission or by ID), modify in place, descriptions,
//! `describe-security-group-rules` with its filters, and references across peerings.

use std::{collections::BTreeMap, sync::Arc};

use firewall_common::Direction;

use super::{
    ids::{IdSource, check_group_id_format},
    lookup,
    permission::{
        check_rule_quota, check_unique, check_unique_added, duplicate, rules_from_permission,
    },
    query::{invalid_filter, paginate},
    rule::{Peer, Protocol, Rule},
    state::{SecurityGroup, State},
    tagging::tags_for,
    text::is_aws_text_char,
    views,
};
use crate::api::{
    ApiError, ApiResult,
    types::{
        common::{Filter, ReturnResponse},
        rules::{
            AuthorizeRequest, AuthorizeResponse, DescribeSecurityGroupReferencesRequest,
            DescribeSecurityGroupReferencesResponse, DescribeSecurityGroupRulesRequest,
            DescribeSecurityGroupRulesResponse, IpPermission, IpRange, Ipv6Range,
            ModifySecurityGroupRulesRequest, PrefixListId, RevokeRequest, RevokeResponse,
            SecurityGroupRuleRequest, UpdateDescriptionsRequest, UserIdGroupPair,
        },
    },
};

/// Adds rules, all or none: every permission valid, no duplicate, within the quota.
pub fn authorize(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: AuthorizeRequest,
    direction: Direction,
) -> ApiResult<AuthorizeResponse> {
    let group_id =
        lookup::target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() {
        return Err(ApiError::missing("IpPermissions"));
    }
    let rule_tags = tags_for(&req.tag_specifications, "security-group-rule")?;
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let mut new_rules: Vec<Rule> = Vec::new();
    for permission in &req.ip_permissions {
        new_rules.extend(rules_from_permission(state, &vpc_id, permission)?);
    }
    let existing = state.groups[&group_id].rules(direction);
    check_unique_added(existing, &new_rules)?;
    check_rule_quota(state, existing.iter().map(|r| &**r).chain(&new_rules))?;

    for rule in &mut new_rules {
        rule.id = ids.next_id("sgr");
        rule.tags = rule_tags.clone();
    }
    let group = Arc::make_mut(state.groups.get_mut(&group_id).expect("checked above"));
    group
        .rules_mut(direction)
        .extend(new_rules.iter().cloned().map(Arc::new));
    let group = &state.groups[&group_id];
    Ok(AuthorizeResponse {
        r#return: true,
        security_group_rules: new_rules
            .iter()
            .map(|r| views::security_group_rule(state, group, r, direction))
            .collect(),
    })
}

/// Removes rules by ID or by exact permission. In the default VPC a permission that matches no
/// rule is answered as unknown; elsewhere it is an error and nothing is revoked.
pub fn revoke(
    state: &mut State,
    req: RevokeRequest,
    direction: Direction,
) -> ApiResult<RevokeResponse> {
    let group_id =
        lookup::target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() && req.security_group_rule_ids.is_empty() {
        return Err(ApiError::missing("IpPermissions or SecurityGroupRuleIds"));
    }
    let group = &state.groups[&group_id];
    let vpc_id = group.vpc_id.clone();
    let in_default_vpc = state.vpcs.get(&vpc_id).is_some_and(|v| v.is_default);
    let rules = group.rules(direction);
    // The rules to go, by position (the order they are answered in).
    let mut to_remove: Vec<(u64, String)> = Vec::new();
    for id in &req.security_group_rule_ids {
        match rules.position_of(id) {
            Some(at) => to_remove.push((at, id.clone())),
            None => return Err(lookup::rule_not_found(id)),
        }
    }
    let mut unknown: Vec<IpPermission> = Vec::new();
    for permission in &req.ip_permissions {
        let wanted = rules_from_permission(state, &vpc_id, permission)?;
        let mut missing = false;
        for rule in &wanted {
            match rules.same_as(rule) {
                Some(found) => {
                    let at = rules.position_of(&found.id).expect("indexed");
                    to_remove.push((at, found.id.clone()));
                }
                None => missing = true,
            }
        }
        if missing {
            if !in_default_vpc {
                return Err(lookup::permission_not_found());
            }
            unknown.push(permission.clone());
        }
    }
    to_remove.sort_unstable();
    to_remove.dedup();
    let group = Arc::make_mut(state.groups.get_mut(&group_id).expect("checked above"));
    let rules = group.rules_mut(direction);
    let revoked: Vec<Arc<Rule>> = to_remove
        .iter()
        .filter_map(|(_, id)| rules.remove(id))
        .collect();
    let group = &state.groups[&group_id];
    Ok(RevokeResponse {
        r#return: true,
        unknown_ip_permissions: unknown,
        revoked_security_group_rules: revoked
            .iter()
            .map(|r| views::revoked_rule(group, r, direction))
            .collect(),
    })
}

fn peer_kind(peer: &Peer) -> &'static str {
    match peer {
        Peer::Cidr4(_) => "IPv4 CIDR",
        Peer::Cidr6(_) => "IPv6 CIDR",
        Peer::PrefixList(_) => "prefix list",
        Peer::Group(_) => "security group",
    }
}

/// A `SecurityGroupRuleRequest` as the one-peer `IpPermission` it stands for.
fn as_permission(spec: &SecurityGroupRuleRequest) -> ApiResult<IpPermission> {
    let protocol = spec.ip_protocol.as_deref().ok_or_else(|| {
        ApiError::invalid_value("Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly.")
    })?;
    let peers = [
        &spec.cidr_ipv4,
        &spec.cidr_ipv6,
        &spec.prefix_list_id,
        &spec.referenced_group_id,
    ]
    .iter()
    .filter(|p| p.is_some())
    .count();
    match peers {
        0 => {
            // AWS's words (moto's test verified against AWS records them).
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain exactly one of: cidrIp, cidrIpv6, prefixListId, or referencedGroupId",
            ));
        }
        1 => {}
        _ => {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                "Only one of cidrIp, cidrIpv6, prefixListId, or referencedGroupId can be specified",
            ));
        }
    }
    let description = spec.description.clone();
    Ok(IpPermission {
        ip_protocol: Some(protocol.to_string()),
        from_port: spec.from_port,
        to_port: spec.to_port,
        ip_ranges: spec
            .cidr_ipv4
            .iter()
            .map(|c| IpRange {
                cidr_ip: Some(c.clone()),
                description: description.clone(),
            })
            .collect(),
        ipv6_ranges: spec
            .cidr_ipv6
            .iter()
            .map(|c| Ipv6Range {
                cidr_ipv6: Some(c.clone()),
                description: description.clone(),
            })
            .collect(),
        prefix_list_ids: spec
            .prefix_list_id
            .iter()
            .map(|p| PrefixListId {
                prefix_list_id: Some(p.clone()),
                description: description.clone(),
            })
            .collect(),
        user_id_group_pairs: spec
            .referenced_group_id
            .iter()
            .map(|g| UserIdGroupPair {
                group_id: Some(g.clone()),
                description: description.clone(),
                ..Default::default()
            })
            .collect(),
    })
}

/// Changes rules in place: same `sgr-` ID (so the same counters and tags), new protocol, ports,
/// peer of the same kind, description. All updates or none.
pub fn modify(
    state: &mut State,
    req: ModifySecurityGroupRulesRequest,
) -> ApiResult<ReturnResponse> {
    let group_id = lookup::target_group_id(state, req.group_id.as_deref(), None)?;
    if req.security_group_rules.is_empty() {
        return Err(ApiError::missing("SecurityGroupRule"));
    }
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let group = &state.groups[&group_id];
    // The rules as they will be, by ID (a rule updated twice: the later update).
    let mut updates: BTreeMap<String, (Direction, Rule)> = BTreeMap::new();
    for update in &req.security_group_rules {
        let id = update
            .security_group_rule_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRuleId"))?;
        let spec = update
            .security_group_rule
            .as_ref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRule"))?;
        let direction = Direction::from_egress(group.egress.by_id(id).is_some());
        let Some(existing) = group.rules(direction).by_id(id) else {
            return Err(lookup::rule_not_found(id));
        };
        let permission = as_permission(spec)?;
        let mut updated = rules_from_permission(state, &vpc_id, &permission)?.remove(0);
        if peer_kind(&updated.peer) != peer_kind(&existing.peer) {
            return Err(ApiError::invalid_value(format!(
                "Invalid rule type for security group rule '{id}'. You may not specify a {} for an existing {} rule.",
                peer_kind(&updated.peer),
                peer_kind(&existing.peer)
            )));
        }
        updated.id = existing.id.clone();
        updated.tags = existing.tags.clone();
        updates.insert(id.to_string(), (direction, updated));
    }
    // The rules were unique before: a duplicate now is an updated rule that is the same rule as
    // one the request leaves alone, or as another updated rule.
    for direction in Direction::ALL {
        let updated: Vec<&Rule> = updates
            .values()
            .filter(|(d, _)| *d == direction)
            .map(|(_, rule)| rule)
            .collect();
        for rule in &updated {
            if let Some(other) = group.rules(direction).same_as(rule)
                && !updates.contains_key(&other.id)
            {
                return Err(duplicate(rule));
            }
        }
        check_unique(updated.iter().copied())?;
    }
    let mut group = SecurityGroup::clone(group);
    for direction in Direction::ALL {
        let rules = group.rules_mut(direction);
        let updated: Vec<(u64, &Rule)> = updates
            .values()
            .filter(|(d, _)| *d == direction)
            .map(|(_, rule)| (rules.position_of(&rule.id).expect("found above"), rule))
            .collect();
        // All out first, then each back at its place: the identity index stays exact.
        for (_, rule) in &updated {
            rules.remove(&rule.id);
        }
        for (at, rule) in updated {
            rules.put_at(at, Arc::new(rule.clone()));
        }
        check_rule_quota(state, rules.iter().map(|r| &**r))?;
    }
    state.groups.insert(group_id, Arc::new(group));
    Ok(ReturnResponse::TRUE)
}

/// Sets (or, when omitted, removes) rule descriptions, matching rules like revoke does.
pub fn update_descriptions(
    state: &mut State,
    req: UpdateDescriptionsRequest,
    direction: Direction,
) -> ApiResult<ReturnResponse> {
    let group_id =
        lookup::target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() && req.security_group_rule_descriptions.is_empty() {
        return Err(ApiError::missing(
            "IpPermissions or SecurityGroupRuleDescriptions",
        ));
    }
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let mut changes: Vec<(String, Option<String>)> = Vec::new();
    let rules = state.groups[&group_id].rules(direction);
    for item in &req.security_group_rule_descriptions {
        let id = item
            .security_group_rule_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRuleId"))?;
        if rules.by_id(id).is_none() {
            return Err(lookup::rule_not_found(id));
        }
        let description = item.description.clone().filter(|d| !d.is_empty());
        if let Some(d) = &description
            && (d.chars().count() > 255 || !d.chars().all(is_aws_text_char))
        {
            return Err(ApiError::invalid_value(format!(
                "Invalid rule description '{d}'."
            )));
        }
        changes.push((id.to_string(), description));
    }
    for permission in &req.ip_permissions {
        for wanted in rules_from_permission(state, &vpc_id, permission)? {
            let found = rules
                .same_as(&wanted)
                .ok_or_else(lookup::permission_not_found)?;
            changes.push((found.id.clone(), wanted.description.clone()));
        }
    }
    let group = Arc::make_mut(state.groups.get_mut(&group_id).expect("checked above"));
    for (id, description) in changes {
        if let Some(rule) = group.rules_mut(direction).by_id_mut(&id) {
            Arc::make_mut(rule).description = description;
        }
    }
    Ok(ReturnResponse::TRUE)
}

/// `ip-permission.*` / `egress.ip-permission.*` filters: whether `rule` matches `field`.
pub fn rule_matches(state: &State, rule: &Rule, field: &str, filter: &Filter) -> ApiResult<bool> {
    let ports = rule.ports.unwrap_or((-1, -1));
    Ok(match (field, &rule.peer) {
        ("cidr", Peer::Cidr4(net)) => filter.matches(&net.to_string()),
        ("ipv6-cidr", Peer::Cidr6(net)) => filter.matches(&net.to_string()),
        ("prefix-list-id", Peer::PrefixList(id)) => filter.matches(id),
        ("group-id", Peer::Group(id)) => filter.matches(id),
        ("group-name", Peer::Group(id)) => state
            .groups
            .get(id)
            .is_some_and(|g| filter.matches(&g.name)),
        ("user-id", Peer::Group(_)) => filter.matches(&state.account_id),
        ("cidr" | "ipv6-cidr" | "prefix-list-id" | "group-id" | "group-name" | "user-id", _) => {
            false
        }
        ("from-port", _) => filter.matches(&ports.0.to_string()),
        ("to-port", _) => filter.matches(&ports.1.to_string()),
        ("protocol", _) => filter
            .values
            .iter()
            .any(|v| Protocol::parse(v).is_ok_and(|p| p == rule.protocol)),
        (other, _) => return Err(invalid_filter(&format!("ip-permission.{other}"))),
    })
}

pub fn describe(
    state: &State,
    req: DescribeSecurityGroupRulesRequest,
) -> ApiResult<DescribeSecurityGroupRulesResponse> {
    for id in &req.security_group_rule_ids {
        let exists = state
            .groups
            .values()
            .any(|g| g.ingress.by_id(id).is_some() || g.egress.by_id(id).is_some());
        if !exists {
            return Err(lookup::rule_not_found(id));
        }
    }
    // A group-id filter's values are checked as IDs, as AWS does (moto's test verified against
    // AWS records `InvalidGroupId.Malformed`); wildcards are left alone.
    for filter in req.filters.iter().filter(|f| f.name == "group-id") {
        for value in filter.values.iter().filter(|v| !v.contains(['*', '?'])) {
            check_group_id_format(value)?;
        }
    }
    let mut out = Vec::new();
    for group in state.groups.values() {
        for direction in Direction::ALL {
            for rule in group.rules(direction) {
                if !req.security_group_rule_ids.is_empty()
                    && !req.security_group_rule_ids.contains(&rule.id)
                {
                    continue;
                }
                let mut keep = true;
                for filter in &req.filters {
                    if let Some(hit) = filter.matches_tags(&rule.tags) {
                        keep &= hit;
                        continue;
                    }
                    keep &= match filter.name.as_str() {
                        "group-id" => filter.matches(&group.id),
                        "security-group-rule-id" => filter.matches(&rule.id),
                        other => return Err(invalid_filter(other)),
                    };
                }
                if keep {
                    out.push((
                        rule.id.clone(),
                        views::security_group_rule(state, group, rule, direction),
                    ));
                }
            }
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeSecurityGroupRulesResponse {
        security_group_rules: page.items,
        next_token: page.next_token,
    })
}

/// The VPCs on the other side of a peering that reference the given groups. There is no VPC
/// peering here and rules can only reference groups of their own VPC, so the set is empty, as it
/// is on AWS for groups of an unpeered VPC; the groups themselves are still checked.
pub fn references(
    state: &State,
    req: DescribeSecurityGroupReferencesRequest,
) -> ApiResult<DescribeSecurityGroupReferencesResponse> {
    if req.group_id.is_empty() {
        return Err(ApiError::missing("GroupId"));
    }
    for id in &req.group_id {
        lookup::group(state, id)?;
    }
    Ok(DescribeSecurityGroupReferencesResponse::default())
}

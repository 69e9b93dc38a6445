//! Turning a request's `IpPermission` into validated rules (one per peer), and the checks a
//! group's rules must pass together: no duplicates, the per-group quota.

use super::{
    ids::check_group_id_format,
    lookup,
    rule::{Peer, Protocol, Rule, normalise_ports, parse_cidr4, parse_cidr6},
    rule_list::RuleList,
    state::{AddressFamily, State},
    text::checked_description,
};
use crate::api::{ApiError, ApiResult, types::rules::IpPermission};

/// Validates one permission of a request against `state` (for referenced groups, which must be
/// in `vpc_id`) and expands it into one rule per peer, without IDs yet.
pub fn rules_from_permission(
    state: &State,
    vpc_id: &str,
    permission: &IpPermission,
) -> ApiResult<Vec<Rule>> {
    let protocol_text = permission
        .ip_protocol
        .as_deref()
        .ok_or_else(|| ApiError::missing("IpProtocol"))?;
    let protocol = Protocol::parse(protocol_text)?;
    let ports = normalise_ports(protocol, permission.from_port, permission.to_port)?;

    let mut peers: Vec<(Peer, Option<String>)> = Vec::new();
    for range in &permission.ip_ranges {
        let text = range
            .cidr_ip
            .as_deref()
            .ok_or_else(|| ApiError::missing("CidrIp"))?;
        peers.push((
            Peer::Cidr4(parse_cidr4(text)?),
            checked_description(&range.description)?,
        ));
    }
    for range in &permission.ipv6_ranges {
        let text = range
            .cidr_ipv6
            .as_deref()
            .ok_or_else(|| ApiError::missing("CidrIpv6"))?;
        peers.push((
            Peer::Cidr6(parse_cidr6(text)?),
            checked_description(&range.description)?,
        ));
    }
    for list in &permission.prefix_list_ids {
        let id = list
            .prefix_list_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("PrefixListId"))?;
        lookup::prefix_list(state, id)?;
        peers.push((
            Peer::PrefixList(id.to_string()),
            checked_description(&list.description)?,
        ));
    }
    for pair in &permission.user_id_group_pairs {
        let group = match (&pair.group_id, &pair.group_name) {
            (Some(id), _) => {
                check_group_id_format(id)?;
                state
                    .groups
                    .get(id)
                    .filter(|g| g.vpc_id == vpc_id)
                    .ok_or_else(|| lookup::group_not_in_vpc(id, vpc_id))?
            }
            (None, Some(name)) => state
                .groups
                .values()
                .find(|g| g.vpc_id == vpc_id && g.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| lookup::group_not_in_vpc(name, vpc_id))?,
            (None, None) => return Err(ApiError::missing("GroupId")),
        };
        peers.push((
            Peer::Group(group.id.clone()),
            checked_description(&pair.description)?,
        ));
    }
    if peers.is_empty() {
        return Err(ApiError::missing(
            "IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs",
        ));
    }
    Ok(peers
        .into_iter()
        .map(|(peer, description)| Rule {
            id: String::new(),
            protocol,
            ports,
            peer,
            description,
            tags: Vec::new(),
        })
        .collect())
}

/// Rules of one direction in one address family count against the quota separately; a group
/// reference counts in both families, a prefix list as its `MaxEntries` in its family. Where no
/// rule could count for more than the largest list allows, the number of rules decides without
/// reading them.
pub fn check_rule_quota<'a>(
    state: &State,
    rules: impl IntoIterator<Item = &'a Rule>,
) -> ApiResult<()> {
    let rules = rules.into_iter();
    let most_per_rule = state
        .prefix_lists
        .values()
        .map(|list| list.max_entries as usize)
        .max()
        .unwrap_or(1)
        .max(1);
    let count = match rules.size_hint() {
        (low, Some(high)) if low == high => Some(low),
        _ => None,
    };
    if count.is_some_and(|n| n.saturating_mul(most_per_rule) <= state.quotas.rules_per_group) {
        return Ok(());
    }
    let (mut v4, mut v6) = (0usize, 0usize);
    for rule in rules {
        match &rule.peer {
            Peer::Cidr4(_) => v4 += 1,
            Peer::Cidr6(_) => v6 += 1,
            Peer::Group(_) => {
                v4 += 1;
                v6 += 1;
            }
            Peer::PrefixList(id) => match state.prefix_lists.get(id) {
                Some(list) if list.family == AddressFamily::IPv6 => v6 += list.max_entries as usize,
                Some(list) => v4 += list.max_entries as usize,
                None => v4 += 1,
            },
        }
    }
    if v4.max(v6) > state.quotas.rules_per_group {
        return Err(ApiError::new(
            "RulesPerSecurityGroupLimitExceeded",
            "The maximum number of rules per security group has been reached.",
        ));
    }
    Ok(())
}

/// No rule of `new` is the same rule as one of `existing` (already unique) or as an earlier one
/// of `new`: one identity lookup per new rule, whatever the size of the group.
pub fn check_unique_added(existing: &RuleList, new: &[Rule]) -> ApiResult<()> {
    if let Some(rule) = new.iter().find(|rule| existing.same_as(rule).is_some()) {
        return Err(duplicate(rule));
    }
    check_unique(new)
}

pub(super) fn duplicate(rule: &Rule) -> ApiError {
    ApiError::new(
        "InvalidPermission.Duplicate",
        format!(
            "the specified rule \"{}\" already exists",
            rule.aws_summary()
        ),
    )
}

/// No two rules of `rules` are the same rule; the later one of a pair is reported.
pub fn check_unique<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> ApiResult<()> {
    // Rule identity, hashed: linear in the rules, not quadratic.
    let mut seen = std::collections::HashSet::new();
    for rule in rules {
        if !seen.insert(rule.identity()) {
            return Err(duplicate(rule));
        }
    }
    Ok(())
}

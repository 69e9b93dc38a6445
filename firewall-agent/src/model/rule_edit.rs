//! The console's rule editor saved as one change (ours): in one direction of one group,
//! descriptions edited in place, rules removed by ID, then new rules added. Each step is the
//! EC2 action's own (`group_rules`), run one after the other on a copy of the state that
//! replaces it only when every step succeeded: the change is refused as a whole if any step is.

use firewall_common::Direction;

use super::{group_rules, ids::IdSource, lookup, state::State};
use crate::api::{
    ApiError, ApiResult,
    types::rules::{
        AuthorizeRequest, EditSecurityGroupRulesRequest, EditSecurityGroupRulesResponse,
        RevokeRequest, UpdateDescriptionsRequest,
    },
};

/// `EditSecurityGroupRules`.
pub fn edit(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: EditSecurityGroupRulesRequest,
) -> ApiResult<EditSecurityGroupRulesResponse> {
    let mut next = state.clone();
    let response = edit_in(&mut next, ids, req)?;
    *state = next;
    Ok(response)
}

fn edit_in(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: EditSecurityGroupRulesRequest,
) -> ApiResult<EditSecurityGroupRulesResponse> {
    let direction = match req.direction.as_deref() {
        Some("ingress") => Direction::Inbound,
        Some("egress") => Direction::Outbound,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "Invalid direction '{other}': ingress or egress."
            )));
        }
        None => return Err(ApiError::missing("Direction")),
    };
    let group_id = lookup::target_group_id(state, req.group_id.as_deref(), None)?;
    if req.security_group_rule_descriptions.is_empty()
        && req.revoke_security_group_rule_ids.is_empty()
        && req.ip_permissions.is_empty()
    {
        return Err(ApiError::missing(
            "SecurityGroupRuleDescriptions, RevokeSecurityGroupRuleIds or IpPermissions",
        ));
    }
    if !req.security_group_rule_descriptions.is_empty() {
        let descriptions = UpdateDescriptionsRequest {
            group_id: Some(group_id.clone()),
            security_group_rule_descriptions: req.security_group_rule_descriptions,
            ..UpdateDescriptionsRequest::default()
        };
        group_rules::update_descriptions(state, descriptions, direction)?;
    }
    let mut revoked = Vec::new();
    if !req.revoke_security_group_rule_ids.is_empty() {
        let revoke = RevokeRequest {
            group_id: Some(group_id.clone()),
            security_group_rule_ids: req.revoke_security_group_rule_ids,
            ..RevokeRequest::default()
        };
        revoked = group_rules::revoke(state, revoke, direction)?
            .revoked_security_group_rules
            .into_iter()
            .map(|r| r.security_group_rule_id)
            .collect();
    }
    let mut added = Vec::new();
    if !req.ip_permissions.is_empty() {
        let authorize = AuthorizeRequest {
            group_id: Some(group_id),
            ip_permissions: req.ip_permissions,
            ..AuthorizeRequest::default()
        };
        added = group_rules::authorize(state, ids, authorize, direction)?.security_group_rules;
    }
    Ok(EditSecurityGroupRulesResponse {
        r#return: true,
        revoked_security_group_rule_ids: revoked,
        security_group_rules: added,
    })
}

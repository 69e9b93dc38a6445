//! The API operations on [`State`], named and shaped as in the EC2 API. Each takes its request
//! (the AWS JSON request members) and either returns the response the AWS CLI prints, having
//! changed the state, or an [`ApiError`] having changed nothing: every check runs before the
//! first mutation.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::{
    ApiError, ApiResult, IdSource, Instance, InstanceState, Peer, SecurityGroup, State, Tag,
    launch_templates, prefix_lists,
    rules::{
        IpPermission, IpRange, Ipv6Range, PrefixListId, Rule, UserIdGroupPair, is_aws_text_char,
        rules_from_permission,
    },
    views,
};

/// Whether an operation can change the state (and so must be persisted and compiled).
pub fn is_mutating(action: &str) -> bool {
    !action.starts_with("Describe") && !action.starts_with("Get")
}

/// Runs one API action against the state.
pub fn dispatch(
    state: &mut State,
    ids: &mut dyn IdSource,
    action: &str,
    request: Value,
) -> ApiResult<Value> {
    match action {
        "CreateSecurityGroup" => create_security_group(state, ids, parse(request)?),
        "DeleteSecurityGroup" => delete_security_group(state, parse(request)?),
        "DescribeSecurityGroups" => describe_security_groups(state, parse(request)?),
        "DescribeSecurityGroupRules" => describe_security_group_rules(state, parse(request)?),
        "AuthorizeSecurityGroupIngress" => authorize(state, ids, parse(request)?, false),
        "AuthorizeSecurityGroupEgress" => authorize(state, ids, parse(request)?, true),
        "RevokeSecurityGroupIngress" => revoke(state, parse(request)?, false),
        "RevokeSecurityGroupEgress" => revoke(state, parse(request)?, true),
        "RunInstances" => run_instances(state, ids, parse(request)?),
        "DescribeInstances" => describe_instances(state, parse(request)?),
        "TerminateInstances" => terminate_instances(state, parse(request)?),
        "StopInstances" => change_instance_states(state, parse(request)?, InstanceState::Stopped),
        "StartInstances" => change_instance_states(state, parse(request)?, InstanceState::Running),
        "ModifyInstanceAttribute" => modify_instance_attribute(state, parse(request)?),
        "CreateManagedPrefixList" => prefix_lists::create(state, ids, parse(request)?),
        "ModifyManagedPrefixList" => prefix_lists::modify(state, parse(request)?),
        "DescribeManagedPrefixLists" => prefix_lists::describe(state, parse(request)?),
        "GetManagedPrefixListEntries" => prefix_lists::get_entries(state, parse(request)?),
        "DeleteManagedPrefixList" => prefix_lists::delete(state, parse(request)?),
        "CreateVpc" => super::vpcs::create(state, ids, parse(request)?),
        "DescribeVpcs" => super::vpcs::describe(state, parse(request)?),
        "DeleteVpc" => super::vpcs::delete(state, parse(request)?),
        "CreateTags" => super::tags::create(state, parse(request)?),
        "DeleteTags" => super::tags::delete(state, parse(request)?),
        "DescribeTags" => super::tags::describe(state, parse(request)?),
        "CreateLaunchTemplate" => launch_templates::create(state, ids, parse(request)?),
        "DescribeLaunchTemplates" => launch_templates::describe(state, parse(request)?),
        "DeleteLaunchTemplate" => launch_templates::delete(state, parse(request)?),
        "CopySecurityGroup" => copy_security_group(state, ids, parse(request)?),
        "ModifySecurityGroupRules" => modify_security_group_rules(state, parse(request)?),
        "UpdateSecurityGroupRuleDescriptionsIngress" => {
            update_descriptions(state, parse(request)?, false)
        }
        "UpdateSecurityGroupRuleDescriptionsEgress" => {
            update_descriptions(state, parse(request)?, true)
        }
        "DescribeSecurityGroupReferences" => describe_references(state, parse(request)?),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

/// Reads a request; an unknown member is `UnknownParameter`, a badly typed one
/// `InvalidParameterValue`, as EC2 answers them.
fn parse<T: DeserializeOwned>(request: Value) -> ApiResult<T> {
    serde_json::from_value(request).map_err(|e| {
        let text = e.to_string();
        match text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((name, _)) => ApiError::new(
                "UnknownParameter",
                format!("The parameter {name} is not recognized"),
            ),
            None => ApiError::invalid_value(format!("The request is malformed: {text}")),
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    resource_type: Option<String>,
    #[serde(default)]
    tags: Vec<TagRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    key: String,
    #[serde(default)]
    value: String,
}

pub fn tags_for(specs: &[TagSpecification], resource_type: &str) -> ApiResult<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    for spec in specs {
        match spec.resource_type.as_deref() {
            Some(t) if t == resource_type => {}
            Some(t) => {
                return Err(ApiError::invalid_value(format!(
                    "'{t}' is not a valid taggable resource type for this operation."
                )));
            }
            None => return Err(ApiError::missing("TagSpecification.ResourceType")),
        }
        for tag in &spec.tags {
            if tag.key.is_empty() || tag.key.chars().count() > 127 || tag.key.starts_with("aws:") {
                return Err(ApiError::invalid_value(format!(
                    "Invalid tag key '{}': 1-127 characters, not starting with 'aws:'.",
                    tag.key
                )));
            }
            if tag.value.chars().count() > 256 {
                return Err(ApiError::invalid_value(
                    "Tag values have at most 256 characters.",
                ));
            }
            tags.retain(|t| t.key != tag.key);
            tags.push(Tag {
                key: tag.key.clone(),
                value: tag.value.clone(),
            });
        }
    }
    Ok(tags)
}

/// `sg-` and 8 or 17 lowercase hex digits.
pub fn check_group_id_format(id: &str) -> ApiResult<()> {
    check_id_format(id, "sg", "InvalidGroupId.Malformed", "security group ID")
}

fn check_id_format(id: &str, prefix: &str, code: &str, what: &str) -> ApiResult<()> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            code,
            format!("The {what} '{id}' is malformed"),
        ))
    }
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

/// Resolves the target group of an operation from `GroupId`, or `GroupName` in the default VPC.
fn target_group_id(state: &State, id: Option<&str>, name: Option<&str>) -> ApiResult<String> {
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

fn check_text(field: &str, value: Option<&str>) -> ApiResult<String> {
    let value = value.ok_or_else(|| ApiError::missing(field))?;
    if value.is_empty() {
        return Err(ApiError::missing(field));
    }
    if value.chars().count() > 255 {
        return Err(ApiError::invalid_value(format!(
            "Invalid value for {field}: it must be at most 255 characters."
        )));
    }
    if !value.chars().all(is_aws_text_char) {
        return Err(ApiError::invalid_value(format!(
            "Value ({value}) for parameter {field} is invalid. Character sets beyond ASCII are not supported; valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{{}}!$*"
        )));
    }
    Ok(value.to_string())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CreateSecurityGroupRequest {
    group_name: Option<String>,
    description: Option<String>,
    vpc_id: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
}

fn create_security_group(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateSecurityGroupRequest,
) -> ApiResult<Value> {
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
        Some(id) => state.vpcs.get(id).ok_or_else(|| {
            ApiError::new(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{id}' does not exist"),
            )
        })?,
        None => state
            .default_vpc()
            .ok_or_else(|| ApiError::new("VPCIdNotSpecified", "No default VPC for this user"))?,
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
    let mut egress = vec![Rule::new(
        ids.next_id("sgr"),
        super::Protocol::All,
        super::Peer::Cidr4(Default::default()),
    )];
    if has_ipv6 {
        egress.push(Rule::new(
            ids.next_id("sgr"),
            super::Protocol::All,
            super::Peer::Cidr6(Default::default()),
        ));
    }
    let group = SecurityGroup {
        id: id.clone(),
        name,
        description,
        vpc_id,
        ingress: Vec::new(),
        egress,
        tags: tags.clone(),
    };
    state.groups.insert(id.clone(), group);
    let mut out = serde_json::Map::new();
    out.insert("GroupId".into(), json!(id));
    if !tags.is_empty() {
        out.insert("Tags".into(), views::tags(&tags));
    }
    out.insert("SecurityGroupArn".into(), json!(state.group_arn(&id)));
    Ok(Value::Object(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DeleteSecurityGroupRequest {
    group_id: Option<String>,
    group_name: Option<String>,
}

fn delete_security_group(state: &mut State, req: DeleteSecurityGroupRequest) -> ApiResult<Value> {
    let id = target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    let group = &state.groups[&id];
    if group.name == "default" {
        return Err(ApiError::new(
            "CannotDelete",
            format!("the specified group: \"{id}\" name: \"default\" cannot be deleted by a user"),
        ));
    }
    let attached = state
        .instances
        .values()
        .any(|i| i.state != InstanceState::Terminated && i.group_ids.contains(&id));
    let referenced = state.groups.values().any(|g| {
        g.id != id
            && g.ingress
                .iter()
                .chain(&g.egress)
                .any(|r| r.peer == super::Peer::Group(id.clone()))
    });
    if attached || referenced {
        return Err(ApiError::new(
            "DependencyViolation",
            format!("resource {id} has a dependent object"),
        ));
    }
    state.groups.remove(&id);
    Ok(json!({"Return": true, "GroupId": id}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Filter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl Filter {
    /// Whether any of the filter's values (with `*` / `?` wildcards) matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.values.iter().any(|v| wildcard_match(v, text))
    }

    /// For the `tag-key` and `tag:<key>` filters every describe shares: whether `tags` match;
    /// `None` for any other filter.
    pub fn matches_tags(&self, tags: &[Tag]) -> Option<bool> {
        if self.name == "tag-key" {
            return Some(tags.iter().any(|t| self.matches(&t.key)));
        }
        let key = self.name.strip_prefix("tag:")?;
        Some(tags.iter().any(|t| t.key == key && self.matches(&t.value)))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeSecurityGroupsRequest {
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// AWS filter values may use `*` and `?` wildcards.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// One describe-security-groups filter. Rule filters match when any rule of the direction
/// matches ("any combination of rules — not necessarily a single rule — match all filters").
fn group_matches_filter(state: &State, group: &SecurityGroup, filter: &Filter) -> ApiResult<bool> {
    let any = |value: &str| filter.values.iter().any(|v| wildcard_match(v, value));
    let by_rules = |rules: &[Rule], field: &str| -> ApiResult<bool> {
        for rule in rules {
            if rule_matches(state, rule, field, filter)? {
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
        "owner-id" => any(&state.account_id),
        "group-id" => any(&group.id),
        "group-name" => any(&group.name),
        "vpc-id" => any(&group.vpc_id),
        "description" => any(&group.description),
        other => {
            return Err(ApiError::invalid_value(format!(
                "The filter '{other}' is invalid"
            )));
        }
    })
}

fn describe_security_groups(state: &State, req: DescribeSecurityGroupsRequest) -> ApiResult<Value> {
    if req.max_results.is_some() && !req.group_ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameter groupIds cannot be used with the parameter maxResults",
        ));
    }
    for id in &req.group_ids {
        check_group_id_format(id)?;
        if !state.groups.contains_key(id) {
            return Err(group_not_found(id));
        }
    }
    let default_vpc = state
        .default_vpc()
        .map(|v| v.id.clone())
        .unwrap_or_default();
    for name in &req.group_names {
        if !state
            .groups
            .values()
            .any(|g| g.vpc_id == default_vpc && &g.name == name)
        {
            return Err(ApiError::new(
                "InvalidGroup.NotFound",
                format!(
                    "The security group '{name}' does not exist in default VPC '{default_vpc}'"
                ),
            ));
        }
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
            keep &= group_matches_filter(state, group, filter)?;
        }
        if keep {
            out.push((group.id.clone(), views::security_group(state, group)));
        }
    }
    let (page, token) = paginate(out, req.max_results, req.next_token.as_deref())?;
    let mut body = serde_json::Map::new();
    body.insert("SecurityGroups".into(), Value::Array(page));
    Ok(with_token(body, token))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeSecurityGroupRulesRequest {
    #[serde(default)]
    security_group_rule_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn describe_security_group_rules(
    state: &State,
    req: DescribeSecurityGroupRulesRequest,
) -> ApiResult<Value> {
    for id in &req.security_group_rule_ids {
        let exists = state
            .groups
            .values()
            .any(|g| g.ingress.iter().chain(&g.egress).any(|r| &r.id == id));
        if !exists {
            return Err(ApiError::new(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
    }
    let mut out = Vec::new();
    for group in state.groups.values() {
        for (egress, rules) in [(false, &group.ingress), (true, &group.egress)] {
            for rule in rules {
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
                    let any = |v: &str| filter.values.iter().any(|p| wildcard_match(p, v));
                    keep &= match filter.name.as_str() {
                        "group-id" => any(&group.id),
                        "security-group-rule-id" => any(&rule.id),
                        other => {
                            return Err(ApiError::invalid_value(format!(
                                "The filter '{other}' is invalid"
                            )));
                        }
                    };
                }
                if keep {
                    out.push((
                        rule.id.clone(),
                        views::security_group_rule(state, group, rule, egress),
                    ));
                }
            }
        }
    }
    let (page, token) = paginate(out, req.max_results, req.next_token.as_deref())?;
    let mut body = serde_json::Map::new();
    body.insert("SecurityGroupRules".into(), Value::Array(page));
    Ok(with_token(body, token))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct AuthorizeRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<IpPermission>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
}

/// Rules of one direction in one address family count against the quota separately; a group
/// reference counts in both families, a prefix list as its `MaxEntries` in its family.
pub fn check_rule_quota(state: &State, rules: &[Rule]) -> ApiResult<()> {
    use super::{Peer, prefix_lists::AddressFamily};
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

fn authorize(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: AuthorizeRequest,
    egress: bool,
) -> ApiResult<Value> {
    let group_id = target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() {
        return Err(ApiError::missing("IpPermissions"));
    }
    let rule_tags = tags_for(&req.tag_specifications, "security-group-rule")?;
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let mut new_rules: Vec<Rule> = Vec::new();
    for permission in &req.ip_permissions {
        new_rules.extend(rules_from_permission(state, &vpc_id, permission)?);
    }
    let existing = state.groups[&group_id].rules(egress);
    for (i, rule) in new_rules.iter().enumerate() {
        if existing
            .iter()
            .chain(&new_rules[..i])
            .any(|r| r.same_rule(rule))
        {
            return Err(ApiError::new(
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"{}\" already exists",
                    rule.aws_summary()
                ),
            ));
        }
    }
    let mut all: Vec<Rule> = existing.clone();
    all.extend(new_rules.iter().cloned());
    check_rule_quota(state, &all)?;

    for rule in &mut new_rules {
        rule.id = ids.next_id("sgr");
        rule.tags = rule_tags.clone();
    }
    let group = state.groups.get_mut(&group_id).expect("checked above");
    group.rules_mut(egress).extend(new_rules.iter().cloned());
    let group = &state.groups[&group_id];
    let views: Vec<Value> = new_rules
        .iter()
        .map(|r| views::security_group_rule(state, group, r, egress))
        .collect();
    Ok(json!({"Return": true, "SecurityGroupRules": views}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RevokeRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<IpPermission>,
    #[serde(default)]
    security_group_rule_ids: Vec<String>,
}

fn revoke(state: &mut State, req: RevokeRequest, egress: bool) -> ApiResult<Value> {
    let group_id = target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() && req.security_group_rule_ids.is_empty() {
        return Err(ApiError::missing("IpPermissions or SecurityGroupRuleIds"));
    }
    let group = &state.groups[&group_id];
    let vpc_id = group.vpc_id.clone();
    let in_default_vpc = state.vpcs.get(&vpc_id).is_some_and(|v| v.is_default);
    let rules = group.rules(egress);
    let mut to_remove: Vec<String> = Vec::new();
    for id in &req.security_group_rule_ids {
        if !rules.iter().any(|r| &r.id == id) {
            return Err(ApiError::new(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
        to_remove.push(id.clone());
    }
    let mut unknown: Vec<IpPermission> = Vec::new();
    for permission in &req.ip_permissions {
        let wanted = rules_from_permission(state, &vpc_id, permission)?;
        let mut missing = false;
        for rule in &wanted {
            match rules.iter().find(|r| r.same_rule(rule)) {
                Some(found) => to_remove.push(found.id.clone()),
                None => missing = true,
            }
        }
        if missing {
            if !in_default_vpc {
                return Err(ApiError::new(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                ));
            }
            unknown.push(permission.clone());
        }
    }
    let group = state.groups.get_mut(&group_id).expect("checked above");
    let (revoked, kept): (Vec<Rule>, Vec<Rule>) = group
        .rules(egress)
        .iter()
        .cloned()
        .partition(|r| to_remove.contains(&r.id));
    *group.rules_mut(egress) = kept;
    let group = &state.groups[&group_id];
    let mut out = serde_json::Map::new();
    out.insert("Return".into(), json!(true));
    if !unknown.is_empty() {
        out.insert(
            "UnknownIpPermissions".into(),
            serde_json::to_value(&unknown).unwrap_or_default(),
        );
    }
    out.insert(
        "RevokedSecurityGroupRules".into(),
        Value::Array(
            revoked
                .iter()
                .map(|r| views::revoked_rule(group, r, egress))
                .collect(),
        ),
    );
    Ok(Value::Object(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Ipv6AddressRequest {
    ipv6_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RunInstancesRequest {
    #[serde(default)]
    security_group_ids: Vec<String>,
    private_ip_address: Option<String>,
    #[serde(default)]
    ipv6_addresses: Vec<Ipv6AddressRequest>,
    /// Ours: the workload's host-side veth.
    host_interface: Option<String>,
    launch_template: Option<launch_templates::Specification>,
    min_count: Option<u32>,
    max_count: Option<u32>,
}

fn run_instances(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: RunInstancesRequest,
) -> ApiResult<Value> {
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
        requested = launch_templates::groups_for_launch(state, spec)?;
    }
    let mut group_ids: Vec<String> = Vec::new();
    for id in &requested {
        check_group_id_format(id)?;
        if !state.groups.contains_key(id) {
            return Err(group_not_found(id));
        }
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
            .ok_or_else(|| ApiError::new("VPCIdNotSpecified", "No default VPC for this user"))?,
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
            .ok_or_else(|| group_not_found("default"))?;
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct InstanceIdsRequest {
    #[serde(default)]
    instance_ids: Vec<String>,
}

fn check_instances_exist(state: &State, ids: &[String]) -> ApiResult<()> {
    for id in ids {
        check_id_format(id, "i", "InvalidInstanceID.Malformed", "instance ID")?;
        if !state.instances.contains_key(id) {
            return Err(ApiError::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{id}' does not exist"),
            ));
        }
    }
    Ok(())
}

fn describe_instances(state: &State, req: InstanceIdsRequest) -> ApiResult<Value> {
    check_instances_exist(state, &req.instance_ids)?;
    let mut reservations: Vec<Value> = Vec::new();
    for instance in state.instances.values() {
        if req.instance_ids.is_empty() || req.instance_ids.contains(&instance.id) {
            reservations.push(views::reservation(
                state,
                &instance.reservation_id,
                &[instance],
            ));
        }
    }
    Ok(json!({"Reservations": reservations}))
}

fn terminate_instances(state: &mut State, req: InstanceIdsRequest) -> ApiResult<Value> {
    if req.instance_ids.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    check_instances_exist(state, &req.instance_ids)?;
    let mut out = Vec::new();
    for id in &req.instance_ids {
        let instance = state.instances.get_mut(id).expect("checked above");
        let previous = views::instance_state(instance);
        instance.state = InstanceState::Terminated;
        out.push(json!({
            "CurrentState": views::instance_state(instance),
            "InstanceId": id,
            "PreviousState": previous,
        }));
    }
    Ok(json!({"TerminatingInstances": out}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CopySecurityGroupRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    description: Option<String>,
    vpc_id: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
}

/// Ours, the console's "Copy to new security group": a new group (new name required) with the
/// same rules under new `sgr-` IDs, in the same VPC unless `VpcId` says otherwise. A rule that
/// references the source group references the copy; other referenced groups must exist in the
/// target VPC.
fn copy_security_group(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CopySecurityGroupRequest,
) -> ApiResult<Value> {
    let source_id = req
        .group_id
        .as_deref()
        .ok_or_else(|| ApiError::missing("GroupId"))?;
    check_group_id_format(source_id)?;
    let source = state
        .groups
        .get(source_id)
        .ok_or_else(|| group_not_found(source_id))?
        .clone();
    let mut next = state.clone();
    let created = create_security_group(
        &mut next,
        ids,
        CreateSecurityGroupRequest {
            group_name: req.group_name,
            description: req.description.or_else(|| Some(source.description.clone())),
            vpc_id: Some(req.vpc_id.unwrap_or_else(|| source.vpc_id.clone())),
            tag_specifications: req.tag_specifications,
        },
    )?;
    let new_id = created["GroupId"].as_str().expect("created").to_string();
    let vpc_id = next.groups[&new_id].vpc_id.clone();
    let copy_rules = |rules: &[Rule], ids: &mut dyn IdSource| -> ApiResult<Vec<Rule>> {
        rules
            .iter()
            .map(|rule| {
                let mut copy = rule.clone();
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
                        return Err(ApiError::new(
                            "InvalidGroup.NotFound",
                            format!(
                                "The security group '{referenced}' does not exist in VPC '{vpc_id}'"
                            ),
                        ));
                    }
                }
                Ok(copy)
            })
            .collect()
    };
    let ingress = copy_rules(&source.ingress, ids)?;
    let egress = copy_rules(&source.egress, ids)?;
    check_rule_quota(&next, &ingress)?;
    check_rule_quota(&next, &egress)?;
    let group = next.groups.get_mut(&new_id).expect("created");
    group.ingress = ingress;
    group.egress = egress;
    *state = next;
    Ok(created)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RuleRequest {
    ip_protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    cidr_ipv4: Option<String>,
    cidr_ipv6: Option<String>,
    prefix_list_id: Option<String>,
    referenced_group_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RuleUpdate {
    security_group_rule_id: Option<String>,
    security_group_rule: Option<RuleRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ModifySecurityGroupRulesRequest {
    group_id: Option<String>,
    #[serde(default)]
    security_group_rules: Vec<RuleUpdate>,
}

fn peer_kind(peer: &Peer) -> &'static str {
    match peer {
        Peer::Cidr4(_) => "IPv4 CIDR",
        Peer::Cidr6(_) => "IPv6 CIDR",
        Peer::PrefixList(_) => "prefix list",
        Peer::Group(_) => "security group",
    }
}

/// Changes rules in place: same `sgr-` ID (so the same counters and tags), new protocol, ports,
/// peer of the same kind, description. All updates or none.
fn modify_security_group_rules(
    state: &mut State,
    req: ModifySecurityGroupRulesRequest,
) -> ApiResult<Value> {
    let group_id = target_group_id(state, req.group_id.as_deref(), None)?;
    if req.security_group_rules.is_empty() {
        return Err(ApiError::missing("SecurityGroupRule"));
    }
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let mut group = state.groups[&group_id].clone();
    for update in &req.security_group_rules {
        let id = update
            .security_group_rule_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRuleId"))?;
        let spec = update
            .security_group_rule
            .as_ref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRule"))?;
        let egress = group.egress.iter().any(|r| r.id == id);
        let Some(existing) = group.rules(egress).iter().find(|r| r.id == id).cloned() else {
            return Err(ApiError::new(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
        };
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
                return Err(ApiError::missing(
                    "CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId",
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
        let permission = IpPermission {
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
        };
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
        let rules = group.rules_mut(egress);
        let slot = rules.iter().position(|r| r.id == id).expect("found above");
        rules[slot] = updated;
    }
    for egress in [false, true] {
        let rules = group.rules(egress);
        for (i, rule) in rules.iter().enumerate() {
            if rules[..i].iter().any(|r| r.same_rule(rule)) {
                return Err(ApiError::new(
                    "InvalidPermission.Duplicate",
                    format!(
                        "the specified rule \"{}\" already exists",
                        rule.aws_summary()
                    ),
                ));
            }
        }
        check_rule_quota(state, rules)?;
    }
    state.groups.insert(group_id, group);
    Ok(json!({"Return": true}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RuleDescription {
    security_group_rule_id: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct UpdateDescriptionsRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<IpPermission>,
    #[serde(default)]
    security_group_rule_descriptions: Vec<RuleDescription>,
}

/// Sets (or, when omitted, removes) rule descriptions, matching rules like revoke does.
fn update_descriptions(
    state: &mut State,
    req: UpdateDescriptionsRequest,
    egress: bool,
) -> ApiResult<Value> {
    let group_id = target_group_id(state, req.group_id.as_deref(), req.group_name.as_deref())?;
    if req.ip_permissions.is_empty() && req.security_group_rule_descriptions.is_empty() {
        return Err(ApiError::missing(
            "IpPermissions or SecurityGroupRuleDescriptions",
        ));
    }
    let vpc_id = state.groups[&group_id].vpc_id.clone();
    let mut changes: Vec<(String, Option<String>)> = Vec::new();
    let rules = state.groups[&group_id].rules(egress);
    for item in &req.security_group_rule_descriptions {
        let id = item
            .security_group_rule_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("SecurityGroupRuleId"))?;
        if !rules.iter().any(|r| r.id == id) {
            return Err(ApiError::new(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
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
            let found = rules.iter().find(|r| r.same_rule(&wanted)).ok_or_else(|| {
                ApiError::new(
                    "InvalidPermission.NotFound",
                    "The specified rule does not exist in this security group.",
                )
            })?;
            changes.push((found.id.clone(), wanted.description.clone()));
        }
    }
    let group = state.groups.get_mut(&group_id).expect("checked above");
    for (id, description) in changes {
        if let Some(rule) = group.rules_mut(egress).iter_mut().find(|r| r.id == id) {
            rule.description = description;
        }
    }
    Ok(json!({"Return": true}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct DescribeReferencesRequest {
    #[serde(default)]
    group_id: Vec<String>,
}

/// The VPCs on the other side of a peering that reference the given groups. There is no VPC
/// peering here and rules can only reference groups of their own VPC, so the set is empty, as it
/// is on AWS for groups of an unpeered VPC; the groups themselves are still checked.
fn describe_references(state: &State, req: DescribeReferencesRequest) -> ApiResult<Value> {
    if req.group_id.is_empty() {
        return Err(ApiError::missing("GroupId"));
    }
    for id in &req.group_id {
        check_group_id_format(id)?;
        state.groups.get(id).ok_or_else(|| group_not_found(id))?;
    }
    Ok(json!({"SecurityGroupReferenceSet": []}))
}

/// Splits a filtered listing into AWS pages: without `MaxResults` everything (and no
/// `NextToken`); with it, at most that many items after the `NextToken` item.
fn paginate(
    items: Vec<(String, Value)>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> ApiResult<(Vec<Value>, Option<String>)> {
    let start = match next_token {
        None => 0,
        Some(token) => items
            .iter()
            .position(|(id, _)| id == token)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::invalid_value(format!(
                    "The value '{token}' for parameter NextToken is invalid."
                ))
            })?,
    };
    let Some(max) = max_results else {
        return Ok((
            items.into_iter().skip(start).map(|(_, v)| v).collect(),
            None,
        ));
    };
    if !(5..=1000).contains(&max) {
        return Err(ApiError::invalid_value(format!(
            "Value ( {max} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        )));
    }
    let page: Vec<(String, Value)> = items.into_iter().skip(start).collect();
    let more = page.len() > max as usize;
    let page: Vec<(String, Value)> = page.into_iter().take(max as usize).collect();
    let token = if more {
        page.last().map(|(id, _)| id.clone())
    } else {
        None
    };
    Ok((page.into_iter().map(|(_, v)| v).collect(), token))
}

fn with_token(mut out: serde_json::Map<String, Value>, token: Option<String>) -> Value {
    if let Some(token) = token {
        out.insert("NextToken".into(), json!(token));
    }
    Value::Object(out)
}

/// `ip-permission.*` / `egress.ip-permission.*` filters: whether `rule` matches `field`.
fn rule_matches(state: &State, rule: &Rule, field: &str, filter: &Filter) -> ApiResult<bool> {
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
            .any(|v| super::Protocol::parse(v).is_ok_and(|p| p == rule.protocol)),
        (other, _) => {
            return Err(ApiError::invalid_value(format!(
                "The filter 'ip-permission.{other}' is invalid"
            )));
        }
    })
}

/// Stop or start: the states AWS reports (`StoppingInstances` / `StartingInstances`); ours
/// change at once, so the current state is already `stopped` / `running`.
fn change_instance_states(
    state: &mut State,
    req: InstanceIdsRequest,
    target: InstanceState,
) -> ApiResult<Value> {
    if req.instance_ids.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    check_instances_exist(state, &req.instance_ids)?;
    let verb = if target == InstanceState::Stopped {
        "stopped"
    } else {
        "started"
    };
    for id in &req.instance_ids {
        if state.instances[id].state == InstanceState::Terminated {
            return Err(ApiError::new(
                "IncorrectInstanceState",
                format!("The instance '{id}' is not in a state from which it can be {verb}."),
            ));
        }
    }
    let mut out = Vec::new();
    for id in &req.instance_ids {
        let instance = state.instances.get_mut(id).expect("checked above");
        let previous = views::instance_state(instance);
        instance.state = target;
        out.push(json!({
            "CurrentState": views::instance_state(instance),
            "InstanceId": id,
            "PreviousState": previous,
        }));
    }
    let key = if target == InstanceState::Stopped {
        "StoppingInstances"
    } else {
        "StartingInstances"
    };
    Ok(json!({ key: out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ModifyInstanceAttributeRequest {
    instance_id: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// `--groups`: replaces the instance's security groups (all in its VPC, at most the quota).
fn modify_instance_attribute(
    state: &mut State,
    req: ModifyInstanceAttributeRequest,
) -> ApiResult<Value> {
    let id = req
        .instance_id
        .ok_or_else(|| ApiError::missing("InstanceId"))?;
    check_instances_exist(state, std::slice::from_ref(&id))?;
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
        match state.groups.get(group) {
            Some(g) if g.vpc_id == instance.vpc_id => {}
            Some(_) | None => {
                return Err(ApiError::new(
                    "InvalidGroup.NotFound",
                    format!(
                        "The security group '{group}' does not exist in VPC '{}'",
                        instance.vpc_id
                    ),
                ));
            }
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
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::SeqIds;

    struct Fixture {
        state: State,
        ids: SeqIds,
    }

    impl Fixture {
        fn new() -> Fixture {
            let mut ids = SeqIds::default();
            let state = State::initial(&mut ids);
            Fixture { state, ids }
        }
        fn call(&mut self, action: &str, request: Value) -> ApiResult<Value> {
            dispatch(&mut self.state, &mut self.ids, action, request)
        }
        fn ok(&mut self, action: &str, request: Value) -> Value {
            self.call(action, request)
                .unwrap_or_else(|e| panic!("{action}: {e}"))
        }
        /// Asserts the call fails with `code` and leaves the state untouched.
        fn fails(&mut self, action: &str, request: Value, code: &str) {
            let before = self.state.clone();
            let err = self.call(action, request).expect_err(action);
            assert_eq!(err.code, code, "{action}: {}", err.message);
            assert_eq!(
                self.state, before,
                "{action} changed the state while failing"
            );
        }
        fn group(&mut self, name: &str) -> String {
            let out = self.ok(
                "CreateSecurityGroup",
                json!({"GroupName": name, "Description": "d"}),
            );
            out["GroupId"].as_str().unwrap().to_string()
        }
    }

    fn tcp(port: i64, cidr: &str) -> Value {
        json!({"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]})
    }

    #[test]
    fn a_new_group_has_the_default_outbound_rules_and_no_inbound() {
        let mut f = Fixture::new();
        let id = f.group("web");
        let out = f.ok("DescribeSecurityGroups", json!({"GroupIds": [id]}));
        let group = &out["SecurityGroups"][0];
        assert_eq!(group["IpPermissions"], json!([]));
        assert_eq!(
            group["IpPermissionsEgress"],
            json!([{"IpProtocol": "-1", "UserIdGroupPairs": [], "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": []}])
        );
    }

    #[test]
    fn group_names_are_validated_and_unique_per_vpc_case_insensitively() {
        let mut f = Fixture::new();
        f.group("Web");
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "web", "Description": "d"}),
            "InvalidGroup.Duplicate",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "sg-x", "Description": "d"}),
            "InvalidParameterValue",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "default", "Description": "d"}),
            "InvalidGroup.Reserved",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"Description": "d"}),
            "MissingParameter",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "x", "Description": "é"}),
            "InvalidParameterValue",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "x".repeat(256), "Description": "d"}),
            "InvalidParameterValue",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": "x", "Description": "d", "VpcId": "vpc-1"}),
            "InvalidVpcID.NotFound",
        );
    }

    #[test]
    fn authorize_normalises_protocols_and_cidrs_before_detecting_duplicates() {
        let mut f = Fixture::new();
        let id = f.group("web");
        let out = f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.7/8")]}),
        );
        assert_eq!(out["SecurityGroupRules"][0]["CidrIpv4"], "10.0.0.0/8");
        assert_eq!(out["SecurityGroupRules"][0]["IpProtocol"], "tcp");
        let same = json!({"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.2.3/8", "Description": "x"}]});
        f.fails(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [same]}),
            "InvalidPermission.Duplicate",
        );
        let err = f
            .call(
                "AuthorizeSecurityGroupIngress",
                json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
            )
            .unwrap_err();
        assert_eq!(
            err.message,
            "the specified rule \"peer: 10.0.0.0/8, TCP, from port: 80, to port: 80, ALLOW\" already exists"
        );
    }

    #[test]
    fn a_request_with_several_rules_is_all_or_nothing() {
        let mut f = Fixture::new();
        let id = f.group("web");
        let bad = json!({"GroupId": id, "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(23, "10.0.0.0/33")]});
        f.fails(
            "AuthorizeSecurityGroupIngress",
            bad,
            "InvalidParameterValue",
        );
        let dup_inside =
            json!({"GroupId": id, "IpPermissions": [tcp(22, "10.0.0.0/8"), tcp(22, "10.0.0.0/8")]});
        f.fails(
            "AuthorizeSecurityGroupIngress",
            dup_inside,
            "InvalidPermission.Duplicate",
        );
    }

    #[test]
    fn referenced_groups_must_exist_in_the_same_vpc() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let lb = f.group("lb");
        let from_lb = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb}]});
        let out = f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": [from_lb]}),
        );
        assert_eq!(
            out["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"],
            lb.as_str()
        );
        let ghost = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": "sg-00000000000000fff"}]});
        f.fails(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": [ghost]}),
            "InvalidGroup.NotFound",
        );
        f.fails(
            "DeleteSecurityGroup",
            json!({"GroupId": lb}),
            "DependencyViolation",
        );
    }

    #[test]
    fn rule_quota_counts_each_family_separately() {
        let mut f = Fixture::new();
        f.state.quotas.rules_per_group = 2;
        let id = f.group("web");
        f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(1, "10.0.0.0/8"), tcp(2, "10.0.0.0/8")]}),
        );
        let v6 = json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]});
        f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [v6]}),
        );
        f.fails(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(3, "10.0.0.0/8")]}),
            "RulesPerSecurityGroupLimitExceeded",
        );
    }

    #[test]
    fn revoke_by_permission_must_match_exactly_outside_the_default_vpc_semantics() {
        let mut f = Fixture::new();
        let id = f.group("web");
        f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
        );
        // The default VPC answers unknown permissions instead of failing, and revokes nothing.
        let out = f.ok(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
        );
        assert_eq!(out["RevokedSecurityGroupRules"], json!([]));
        assert_eq!(out["UnknownIpPermissions"][0]["FromPort"], 81);
        let out = f.ok(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(80, "10.9.9.9/8")]}),
        );
        assert_eq!(
            out["RevokedSecurityGroupRules"][0]["CidrIpv4"],
            "10.0.0.0/8"
        );
        f.fails(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": id, "SecurityGroupRuleIds": ["sgr-00000000000000fff"]}),
            "InvalidSecurityGroupRuleId.NotFound",
        );
        // Outside the default VPC a non-matching permission is an error.
        f.state.vpcs.values_mut().for_each(|v| v.is_default = false);
        f.fails(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
            "InvalidPermission.NotFound",
        );
    }

    #[test]
    fn run_instances_checks_groups_addresses_and_interfaces() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let run = |ip: &str, ifname: &str| json!({"SecurityGroupIds": [web], "PrivateIpAddress": ip, "HostInterface": ifname});
        let out = f.ok("RunInstances", run("172.31.0.10", "veth-a"));
        let instance = &out["Instances"][0];
        assert_eq!(instance["State"], json!({"Code": 16, "Name": "running"}));
        assert_eq!(instance["SecurityGroups"][0]["GroupName"], "web");
        f.fails(
            "RunInstances",
            run("172.31.0.10", "veth-b"),
            "InvalidIPAddress.InUse",
        );
        f.fails(
            "RunInstances",
            run("172.31.0.11", "veth-a"),
            "InvalidParameterValue",
        );
        f.fails(
            "RunInstances",
            run("10.0.0.1", "veth-b"),
            "InvalidParameterValue",
        );
        f.fails("RunInstances", json!({"SecurityGroupIds": ["sg-00000000000000fff"], "PrivateIpAddress": "172.31.0.12", "HostInterface": "x"}), "InvalidGroup.NotFound");
        f.fails(
            "RunInstances",
            json!({"PrivateIpAddress": "172.31.0.12"}),
            "MissingParameter",
        );
        f.fails(
            "DeleteSecurityGroup",
            json!({"GroupId": web}),
            "DependencyViolation",
        );

        let id = instance["InstanceId"].as_str().unwrap().to_string();
        let out = f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
        assert_eq!(
            out["TerminatingInstances"][0]["CurrentState"]["Name"],
            "terminated"
        );
        // A terminated instance frees its address, interface and groups.
        f.ok("RunInstances", run("172.31.0.10", "veth-a"));
        f.fails(
            "TerminateInstances",
            json!({"InstanceIds": ["i-00000000000000fff"]}),
            "InvalidInstanceID.NotFound",
        );
        f.fails(
            "TerminateInstances",
            json!({"InstanceIds": ["bogus"]}),
            "InvalidInstanceID.Malformed",
        );
    }

    #[test]
    fn stop_start_and_group_changes_follow_instance_states() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let db = f.group("db");
        let out = f.ok("RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.10", "HostInterface": "veth-a"}));
        let id = out["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string();
        let out = f.ok("StopInstances", json!({"InstanceIds": [id]}));
        assert_eq!(
            out["StoppingInstances"][0]["CurrentState"],
            json!({"Code": 80, "Name": "stopped"})
        );
        assert_eq!(
            out["StoppingInstances"][0]["PreviousState"]["Name"],
            "running"
        );
        assert_eq!(
            f.ok(
                "ModifyInstanceAttribute",
                json!({"InstanceId": id, "Groups": [web, db]})
            ),
            json!({})
        );
        assert_eq!(
            f.state.instances[&id].group_ids,
            vec![web.clone(), db.clone()]
        );
        let out = f.ok("StartInstances", json!({"InstanceIds": [id]}));
        assert_eq!(
            out["StartingInstances"][0]["CurrentState"]["Name"],
            "running"
        );

        f.fails(
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "Groups": []}),
            "MissingParameter",
        );
        f.fails(
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "Groups": ["sg-00000000000000fff"]}),
            "InvalidGroup.NotFound",
        );
        f.state.quotas.groups_per_instance = 1;
        f.fails(
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "Groups": [web, db]}),
            "SecurityGroupsPerInterfaceLimitExceeded",
        );
        f.ok("TerminateInstances", json!({"InstanceIds": [id]}));
        f.fails(
            "StartInstances",
            json!({"InstanceIds": [id]}),
            "IncorrectInstanceState",
        );
        f.fails(
            "StopInstances",
            json!({"InstanceIds": [id]}),
            "IncorrectInstanceState",
        );
        f.fails(
            "ModifyInstanceAttribute",
            json!({"InstanceId": id, "Groups": [web]}),
            "IncorrectInstanceState",
        );
    }

    #[test]
    fn copy_security_group_copies_rules_under_new_ids_and_maps_self_references() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let lb = f.group("lb");
        f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": [
            tcp(80, "10.0.0.0/8"),
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}, {"GroupId": lb}]}]}),
        );
        let out = f.ok(
            "CopySecurityGroup",
            json!({"GroupId": web, "GroupName": "web-copy"}),
        );
        let copy = out["GroupId"].as_str().unwrap().to_string();
        let (a, b) = (&f.state.groups[&web], &f.state.groups[&copy]);
        assert_eq!(b.description, a.description);
        assert_eq!(b.ingress.len(), 3);
        assert!(
            b.ingress
                .iter()
                .all(|r| !a.ingress.iter().any(|o| o.id == r.id)),
            "new sgr- IDs"
        );
        assert!(
            b.ingress
                .iter()
                .any(|r| r.peer == Peer::Group(copy.clone())),
            "self-reference follows the copy"
        );
        assert!(
            b.ingress.iter().any(|r| r.peer == Peer::Group(lb.clone())),
            "other references stay"
        );
        assert_eq!(b.egress.len(), a.egress.len());
        f.fails(
            "CopySecurityGroup",
            json!({"GroupId": web, "GroupName": "web"}),
            "InvalidGroup.Duplicate",
        );
        let vpc = f.ok("CreateVpc", json!({"CidrBlock": "10.9.0.0/16"}))["Vpc"]["VpcId"]
            .as_str()
            .unwrap()
            .to_string();
        f.fails(
            "CopySecurityGroup",
            json!({"GroupId": web, "GroupName": "x", "VpcId": vpc}),
            "InvalidGroup.NotFound",
        );
    }

    #[test]
    fn modify_security_group_rules_keeps_the_rule_id_and_the_peer_kind() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let out = f.ok("AuthorizeSecurityGroupIngress", json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8"), tcp(81, "10.0.0.0/8")]}));
        let id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
            .as_str()
            .unwrap()
            .to_string();
        let modify = |rule: Value| json!({"GroupId": web, "SecurityGroupRules": [{"SecurityGroupRuleId": id, "SecurityGroupRule": rule}]});
        assert_eq!(f.ok("ModifySecurityGroupRules", modify(json!({"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "CidrIpv4": "192.168.0.0/16", "Description": "dns"}))), json!({"Return": true}));
        let rule = f.state.groups[&web]
            .ingress
            .iter()
            .find(|r| r.id == id)
            .unwrap();
        assert_eq!(
            (
                rule.protocol.api_name(),
                rule.ports,
                rule.description.as_deref()
            ),
            ("udp".into(), Some((53, 53)), Some("dns"))
        );
        for (rule, code) in [
            (
                json!({"FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8"}),
                "InvalidParameterValue",
            ),
            (
                json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1}),
                "MissingParameter",
            ),
            (
                json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "10.0.0.0/8", "CidrIpv6": "::/0"}),
                "InvalidParameterCombination",
            ),
            (
                json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv6": "::/0"}),
                "InvalidParameterValue",
            ),
            (
                json!({"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "CidrIpv4": "10.0.0.0/8"}),
                "InvalidPermission.Duplicate",
            ),
        ] {
            f.fails("ModifySecurityGroupRules", modify(rule), code);
        }
        f.fails("ModifySecurityGroupRules", json!({"GroupId": web, "SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-00000000000000fff", "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}]}), "InvalidSecurityGroupRuleId.NotFound");
    }

    #[test]
    fn rule_descriptions_are_updated_by_id_or_by_matching_permission() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let out = f.ok(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
        );
        let id = out["SecurityGroupRules"][0]["SecurityGroupRuleId"]
            .as_str()
            .unwrap()
            .to_string();
        f.ok("UpdateSecurityGroupRuleDescriptionsIngress", json!({"GroupId": web, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": id, "Description": "web"}]}));
        assert_eq!(
            f.state.groups[&web].ingress[0].description.as_deref(),
            Some("web")
        );
        let described = json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "http"}]});
        f.ok(
            "UpdateSecurityGroupRuleDescriptionsIngress",
            json!({"GroupId": web, "IpPermissions": [described]}),
        );
        assert_eq!(
            f.state.groups[&web].ingress[0].description.as_deref(),
            Some("http")
        );
        f.ok(
            "UpdateSecurityGroupRuleDescriptionsIngress",
            json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
        );
        assert_eq!(
            f.state.groups[&web].ingress[0].description, None,
            "omitted description removes it"
        );
        f.fails(
            "UpdateSecurityGroupRuleDescriptionsIngress",
            json!({"GroupId": web, "IpPermissions": [tcp(81, "10.0.0.0/8")]}),
            "InvalidPermission.NotFound",
        );
        f.fails(
            "UpdateSecurityGroupRuleDescriptionsEgress",
            json!({"GroupId": web, "SecurityGroupRuleDescriptions": [{"SecurityGroupRuleId": id}]}),
            "InvalidSecurityGroupRuleId.NotFound",
        );
        assert_eq!(
            f.ok("DescribeSecurityGroupReferences", json!({"GroupId": [web]})),
            json!({"SecurityGroupReferenceSet": []})
        );
        f.fails(
            "DescribeSecurityGroupReferences",
            json!({"GroupId": ["sg-00000000000000fff"]}),
            "InvalidGroup.NotFound",
        );
    }

    #[test]
    fn rule_filters_match_any_rule_of_the_direction_and_pages_follow_next_token() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let db = f.group("db");
        f.ok("AuthorizeSecurityGroupIngress", json!({"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8"), {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [{"GroupId": db}]}]}));
        let names = |out: Value| -> Vec<String> {
            out["SecurityGroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["GroupName"].as_str().unwrap().to_string())
                .collect()
        };
        let filter =
            |name: &str, value: &str| json!({"Filters": [{"Name": name, "Values": [value]}]});
        assert_eq!(
            names(f.ok(
                "DescribeSecurityGroups",
                filter("ip-permission.from-port", "80")
            )),
            ["web"]
        );
        assert_eq!(
            names(f.ok(
                "DescribeSecurityGroups",
                filter("ip-permission.protocol", "6")
            )),
            ["web"],
            "6 is tcp"
        );
        assert_eq!(
            names(f.ok(
                "DescribeSecurityGroups",
                filter("ip-permission.group-name", "db")
            )),
            ["web"]
        );
        assert_eq!(
            names(f.ok(
                "DescribeSecurityGroups",
                filter("ip-permission.cidr", "10.0.0.0/8")
            )),
            ["web"]
        );
        // Two filters matched by two different rules of the same group.
        let both = json!({"Filters": [{"Name": "ip-permission.cidr", "Values": ["10.0.0.0/8"]}, {"Name": "ip-permission.protocol", "Values": ["udp"]}]});
        assert_eq!(names(f.ok("DescribeSecurityGroups", both)), ["web"]);
        assert_eq!(
            names(f.ok(
                "DescribeSecurityGroups",
                filter("egress.ip-permission.cidr", "0.0.0.0/0")
            ))
            .len(),
            3
        );

        for i in 0..6 {
            f.group(&format!("g{i}"));
        }
        let first = f.ok("DescribeSecurityGroups", json!({"MaxResults": 5}));
        assert_eq!(first["SecurityGroups"].as_array().unwrap().len(), 5);
        let token = first["NextToken"].as_str().unwrap().to_string();
        let second = f.ok(
            "DescribeSecurityGroups",
            json!({"MaxResults": 5, "NextToken": token}),
        );
        assert_eq!(
            second["SecurityGroups"].as_array().unwrap().len(),
            4,
            "9 groups in all"
        );
        assert!(second.get("NextToken").is_none());
        assert!(
            f.ok("DescribeSecurityGroups", json!({}))
                .get("NextToken")
                .is_none(),
            "no pagination without MaxResults"
        );
        f.fails(
            "DescribeSecurityGroups",
            json!({"MaxResults": 4}),
            "InvalidParameterValue",
        );
        f.fails(
            "DescribeSecurityGroups",
            json!({"MaxResults": 5, "GroupIds": [web]}),
            "InvalidParameterCombination",
        );
    }

    #[test]
    fn run_instances_takes_its_groups_from_a_launch_template() {
        let mut f = Fixture::new();
        let web = f.group("web");
        let out = f.ok("CreateLaunchTemplate", json!({"LaunchTemplateName": "web-tier", "LaunchTemplateData": {"SecurityGroupIds": [web], "ImageId": "ami-1"}}));
        let lt = out["LaunchTemplate"]["LaunchTemplateId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(out["LaunchTemplate"]["LatestVersionNumber"], 1);
        f.fails(
            "CreateLaunchTemplate",
            json!({"LaunchTemplateName": "web-tier", "LaunchTemplateData": {}}),
            "InvalidLaunchTemplateName.AlreadyExistsException",
        );
        f.fails(
            "CreateLaunchTemplate",
            json!({"LaunchTemplateName": "x", "LaunchTemplateData": {}}),
            "InvalidLaunchTemplateName.MalformedException",
        );
        let out = f.ok("RunInstances", json!({"LaunchTemplate": {"LaunchTemplateName": "web-tier"}, "PrivateIpAddress": "172.31.0.9", "HostInterface": "v1"}));
        assert_eq!(
            out["Instances"][0]["SecurityGroups"][0]["GroupId"],
            web.as_str()
        );
        f.fails("RunInstances", json!({"LaunchTemplate": {"LaunchTemplateId": lt, "Version": "2"}, "PrivateIpAddress": "172.31.0.8", "HostInterface": "v2"}), "InvalidLaunchTemplateId.VersionNotFound");
        f.fails(
            "DescribeLaunchTemplates",
            json!({"LaunchTemplateIds": ["lt-00000000000000fff"]}),
            "InvalidLaunchTemplateId.NotFound",
        );
        f.ok("DeleteLaunchTemplate", json!({"LaunchTemplateId": lt}));
        assert_eq!(
            f.ok("DescribeLaunchTemplates", json!({})),
            json!({"LaunchTemplates": []})
        );
    }

    #[test]
    fn a_self_reference_does_not_block_deletion_and_bad_requests_get_ec2_codes() {
        let mut f = Fixture::new();
        let web = f.group("web");
        f.ok("AuthorizeSecurityGroupIngress", json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": web}]}]}));
        f.ok("DeleteSecurityGroup", json!({"GroupId": web}));
        f.fails(
            "DescribeSecurityGroups",
            json!({"GroupIdz": ["sg-1"]}),
            "UnknownParameter",
        );
        f.fails(
            "CreateSecurityGroup",
            json!({"GroupName": 5, "Description": "d"}),
            "InvalidParameterValue",
        );
        f.fails("Frobnicate", json!({}), "InvalidAction");
    }

    #[test]
    fn the_default_group_cannot_be_deleted() {
        let mut f = Fixture::new();
        let default = f.state.groups.keys().next().unwrap().clone();
        f.fails(
            "DeleteSecurityGroup",
            json!({"GroupId": default}),
            "CannotDelete",
        );
        f.fails(
            "DeleteSecurityGroup",
            json!({"GroupId": "sg-zz"}),
            "InvalidGroupId.Malformed",
        );
    }

    #[test]
    fn describe_filters_select_groups() {
        let mut f = Fixture::new();
        let tagged = f.ok("CreateSecurityGroup", json!({"GroupName": "tagged", "Description": "d",
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "blue"}]}]}));
        let by_tag = f.ok(
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "tag:team", "Values": ["bl*"]}]}),
        );
        assert_eq!(by_tag["SecurityGroups"][0]["GroupId"], tagged["GroupId"]);
        let by_key = f.ok(
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "tag-key", "Values": ["team"]}]}),
        );
        assert_eq!(by_key["SecurityGroups"].as_array().unwrap().len(), 1);
        f.ok("DeleteSecurityGroup", json!({"GroupId": tagged["GroupId"]}));
        f.group("web");
        f.group("db");
        let out = f.ok(
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "group-name", "Values": ["w*"]}]}),
        );
        assert_eq!(out["SecurityGroups"].as_array().unwrap().len(), 1);
        f.fails(
            "DescribeSecurityGroups",
            json!({"Filters": [{"Name": "nope", "Values": ["x"]}]}),
            "InvalidParameterValue",
        );
    }
}

//! The `aws ec2`-shaped command line: each subcommand builds the AWS request members from the
//! same options the AWS CLI takes, calls the agent and prints the answer as the AWS CLI does
//! (4-space indented JSON; errors as `An error occurred (Code) when calling the X operation: …`
//! on stderr with exit status 254).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::client;

/// Exit status of the AWS CLI when the service returns an error.
pub const EXIT_SERVICE_ERROR: i32 = 254;
/// Exit status of the AWS CLI for bad command-line parameters.
pub const EXIT_PARAMETER_ERROR: i32 = 252;

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Creates a security group (with the default outbound rules).
    CreateSecurityGroup(CreateSecurityGroup),
    /// Deletes a security group.
    DeleteSecurityGroup(GroupTarget),
    /// Describes security groups (grouped IpPermissions view).
    DescribeSecurityGroups(DescribeSecurityGroups),
    /// Describes security-group rules, one per peer.
    DescribeSecurityGroupRules(DescribeSecurityGroupRules),
    /// Adds inbound rules.
    AuthorizeSecurityGroupIngress(RuleChange),
    /// Adds outbound rules.
    AuthorizeSecurityGroupEgress(RuleChange),
    /// Removes inbound rules.
    RevokeSecurityGroupIngress(RuleChange),
    /// Removes outbound rules.
    RevokeSecurityGroupEgress(RuleChange),
    /// Registers a workload (its host-side veth and addresses) with security groups.
    RunInstances(RunInstances),
    /// Describes workloads.
    DescribeInstances(InstanceIds),
    /// Unregisters workloads: their interfaces are detached and their flows forgotten.
    TerminateInstances(InstanceIds),
    /// Stops workloads: no traffic at all, tracked flows forgotten, no longer group members.
    StopInstances(InstanceIds),
    /// Starts stopped workloads: enforcement is back.
    StartInstances(InstanceIds),
    /// Replaces a workload's security groups (`--groups`).
    ModifyInstanceAttribute(ModifyInstanceAttribute),
    /// Creates a customer-managed prefix list.
    CreateManagedPrefixList(CreatePrefixList),
    /// Adds and removes prefix-list entries (a new version), renames or resizes.
    ModifyManagedPrefixList(ModifyPrefixList),
    /// Describes prefix lists.
    DescribeManagedPrefixLists(DescribePrefixLists),
    /// Lists the entries of a prefix list (of its current or a given version).
    GetManagedPrefixListEntries(PrefixListEntries),
    /// Deletes an unreferenced prefix list.
    DeleteManagedPrefixList(PrefixListId),
    /// Shows the data plane's drop and pass counters and the number of tracked flows (ours).
    GetDataplaneStatistics,
    /// Ours: the same policy as an nftables ruleset (`nft -f` loads it).
    Export(Export),
    /// Creates a VPC (with its default security group).
    CreateVpc(CreateVpc),
    /// Describes VPCs.
    DescribeVpcs(DescribeVpcs),
    /// Deletes a VPC that holds nothing but its default group.
    DeleteVpc(VpcId),
    /// Adds or overwrites tags on resources.
    CreateTags(ChangeTags),
    /// Removes tags from resources.
    DeleteTags(ChangeTags),
    /// Describes tags.
    DescribeTags(FiltersOnly),
    /// Creates a launch template (its security groups are used by run-instances --launch-template).
    CreateLaunchTemplate(CreateLaunchTemplate),
    /// Describes launch templates.
    DescribeLaunchTemplates(DescribeLaunchTemplates),
    /// Deletes a launch template.
    DeleteLaunchTemplate(LaunchTemplateRef),
    /// Ours (the console's "copy to new security group"): a new group with the same rules.
    CopySecurityGroup(CopySecurityGroup),
    /// Changes rules in place (same sgr- ID).
    ModifySecurityGroupRules(ModifySecurityGroupRules),
    /// Sets inbound rule descriptions.
    UpdateSecurityGroupRuleDescriptionsIngress(UpdateDescriptions),
    /// Sets outbound rule descriptions.
    UpdateSecurityGroupRuleDescriptionsEgress(UpdateDescriptions),
    /// Describes the VPCs (across peerings) that reference the groups.
    DescribeSecurityGroupReferences(GroupIdList),
}

#[derive(Debug, Args)]
pub struct CreateSecurityGroup {
    #[arg(long)]
    group_name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    vpc_id: Option<String>,
    /// JSON, e.g. '[{"ResourceType":"security-group","Tags":[{"Key":"k","Value":"v"}]}]'.
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct GroupTarget {
    #[arg(long)]
    group_id: Option<String>,
    #[arg(long)]
    group_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeSecurityGroups {
    #[arg(long, num_args = 1..)]
    group_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    group_names: Vec<String>,
    /// `Name=group-name,Values=web,db` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
    /// Page size (5-1000); without it, everything in one answer.
    #[arg(long)]
    max_results: Option<i64>,
    #[arg(long)]
    next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeSecurityGroupRules {
    #[arg(long, num_args = 1..)]
    security_group_rule_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
    #[arg(long)]
    max_results: Option<i64>,
    #[arg(long)]
    next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct Export {
    /// The only format: nftables.
    #[arg(long, value_parser = ["nftables"])]
    format: String,
    /// One rule per rule and peer instead of interval sets.
    #[arg(long)]
    linear: bool,
}

#[derive(Debug, Args)]
pub struct CreateVpc {
    #[arg(long)]
    cidr_block: Option<String>,
    #[arg(long)]
    amazon_provided_ipv6_cidr_block: bool,
    #[arg(long)]
    instance_tenancy: Option<String>,
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeVpcs {
    #[arg(long, num_args = 1..)]
    vpc_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VpcId {
    #[arg(long)]
    vpc_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChangeTags {
    #[arg(long, num_args = 1..)]
    resources: Vec<String>,
    /// `Key=env,Value=prod` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FiltersOnly {
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateLaunchTemplate {
    #[arg(long)]
    launch_template_name: Option<String>,
    #[arg(long)]
    version_description: Option<String>,
    /// JSON, e.g. '{"SecurityGroupIds":["sg-…"]}' (or file://path).
    #[arg(long)]
    launch_template_data: Option<String>,
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeLaunchTemplates {
    #[arg(long, num_args = 1..)]
    launch_template_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    launch_template_names: Vec<String>,
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LaunchTemplateRef {
    #[arg(long)]
    launch_template_id: Option<String>,
    #[arg(long)]
    launch_template_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CopySecurityGroup {
    /// The group to copy.
    #[arg(long)]
    group_id: Option<String>,
    /// The new group's name.
    #[arg(long)]
    group_name: Option<String>,
    /// Defaults to the source group's description.
    #[arg(long)]
    description: Option<String>,
    /// Defaults to the source group's VPC.
    #[arg(long)]
    vpc_id: Option<String>,
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifySecurityGroupRules {
    #[arg(long)]
    group_id: Option<String>,
    /// JSON: '[{"SecurityGroupRuleId":"sgr-…","SecurityGroupRule":{"IpProtocol":"tcp",…}}]'.
    #[arg(long)]
    security_group_rules: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateDescriptions {
    #[arg(long)]
    group_id: Option<String>,
    #[arg(long)]
    group_name: Option<String>,
    /// JSON list of IpPermission, matched like revoke.
    #[arg(long)]
    ip_permissions: Option<String>,
    /// `SecurityGroupRuleId=sgr-…,Description=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    security_group_rule_descriptions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GroupIdList {
    #[arg(long, num_args = 1..)]
    group_id: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RuleChange {
    #[arg(long)]
    group_id: Option<String>,
    #[arg(long)]
    group_name: Option<String>,
    /// Shorthand: tcp, udp, icmp, all, or a protocol number.
    #[arg(long, allow_hyphen_values = true)]
    protocol: Option<String>,
    /// Shorthand: a port, a range `from-to`, or -1.
    #[arg(long, allow_hyphen_values = true)]
    port: Option<String>,
    /// Shorthand: the peer CIDR.
    #[arg(long)]
    cidr: Option<String>,
    /// Shorthand: the peer security group (ID or name).
    #[arg(long)]
    source_group: Option<String>,
    /// Accepted for compatibility; the account is always this agent's.
    #[arg(long)]
    group_owner: Option<String>,
    /// JSON list of IpPermission (or file://path).
    #[arg(long)]
    ip_permissions: Option<String>,
    /// Revoke only.
    #[arg(long, num_args = 1..)]
    security_group_rule_ids: Vec<String>,
    /// Revoke only (ours): also cut the tracked flows the remaining rules no longer allow
    /// (AWS keeps them until they idle out).
    #[arg(long)]
    flush_flows: bool,
    /// JSON tag specifications for the new rules (authorize only).
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunInstances {
    #[arg(long, num_args = 1..)]
    security_group_ids: Vec<String>,
    #[arg(long)]
    private_ip_address: Option<String>,
    /// Ours: an IPv6 address of the workload.
    #[arg(long)]
    ipv6_address: Option<String>,
    /// Ours: the host-side veth of the workload.
    #[arg(long)]
    interface: Option<String>,
    /// Accepted for compatibility and ignored: a workload is whatever runs behind its veth.
    #[arg(long)]
    image_id: Option<String>,
    #[arg(long)]
    count: Option<u32>,
    /// `LaunchTemplateId=lt-…,Version=1` or `LaunchTemplateName=…` (or JSON).
    #[arg(long)]
    launch_template: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifyInstanceAttribute {
    #[arg(long)]
    instance_id: Option<String>,
    /// The new security groups (replace the current ones).
    #[arg(long, num_args = 1..)]
    groups: Vec<String>,
    /// Ours: also cut the tracked flows the new groups no longer allow.
    #[arg(long)]
    flush_flows: bool,
}

#[derive(Debug, Args)]
pub struct CreatePrefixList {
    #[arg(long)]
    prefix_list_name: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    max_entries: Option<i64>,
    /// IPv4 or IPv6.
    #[arg(long)]
    address_family: Option<String>,
    /// `Cidr=10.0.0.0/8,Description=hq` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    entries: Vec<String>,
    #[arg(long)]
    tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifyPrefixList {
    #[arg(long)]
    prefix_list_id: Option<String>,
    #[arg(long)]
    current_version: Option<u64>,
    #[arg(long)]
    prefix_list_name: Option<String>,
    /// `Cidr=…,Description=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    add_entries: Vec<String>,
    /// `Cidr=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    remove_entries: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    max_entries: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DescribePrefixLists {
    #[arg(long, num_args = 1..)]
    prefix_list_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PrefixListEntries {
    #[arg(long)]
    prefix_list_id: Option<String>,
    #[arg(long)]
    target_version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PrefixListId {
    #[arg(long)]
    prefix_list_id: Option<String>,
}

fn page_options(
    body: &mut Map<String, Value>,
    max_results: Option<i64>,
    next_token: &Option<String>,
) {
    if let Some(max) = max_results {
        body.insert("MaxResults".into(), json!(max));
    }
    insert_opt(body, "NextToken", next_token);
}

/// AWS shorthand for a list of structures (`Key=Value,Key=Value`, one item per argument) or JSON.
fn structures(name: &str, values: &[String]) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for value in values {
        let text = value.trim();
        if text.starts_with('[') || text.starts_with('{') {
            match json_param(name, text)? {
                Value::Array(items) => out.extend(items),
                item => out.push(item),
            }
            continue;
        }
        let mut item = Map::new();
        for pair in text.split(',') {
            let Some((key, value)) = pair.split_once('=') else {
                bail!(
                    "Error parsing parameter '--{name}': expected Key=Value[,Key=Value], got: {text}"
                );
            };
            item.insert(key.trim().to_string(), json!(value.trim()));
        }
        out.push(Value::Object(item));
    }
    Ok(Value::Array(out))
}

#[derive(Debug, Args)]
pub struct InstanceIds {
    #[arg(long, num_args = 1..)]
    instance_ids: Vec<String>,
}

/// Reads a parameter value the way the AWS CLI does: `file://path` means the file's content.
fn read_param(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(value.to_string()),
    }
}

fn json_param(name: &str, value: &str) -> anyhow::Result<Value> {
    let text = read_param(value)?;
    serde_json::from_str(&text)
        .with_context(|| format!("Error parsing parameter '--{name}': Invalid JSON: {text}"))
}

/// `Name=x,Values=a,b` or JSON (an object or a list of them).
fn filters(values: &[String]) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for value in values {
        let text = value.trim();
        if text.starts_with('[') || text.starts_with('{') {
            match json_param("filters", text)? {
                Value::Array(items) => out.extend(items),
                item => out.push(item),
            }
            continue;
        }
        let Some(rest) = text.strip_prefix("Name=") else {
            bail!(
                "Error parsing parameter '--filters': expected Name=...,Values=... or JSON: {text}"
            );
        };
        let Some((name, values)) = rest.split_once(",Values=") else {
            bail!("Error parsing parameter '--filters': expected Name=...,Values=...: {text}");
        };
        out.push(json!({"Name": name, "Values": values.split(',').collect::<Vec<_>>()}));
    }
    Ok(Value::Array(out))
}

/// Adds the JSON value of an optional `--name` parameter (JSON or `file://`) as `key`.
fn insert_json_opt(
    map: &mut Map<String, Value>,
    key: &str,
    name: &str,
    value: &Option<String>,
) -> anyhow::Result<()> {
    if let Some(text) = value {
        map.insert(key.into(), json_param(name, text)?);
    }
    Ok(())
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}

/// The permission the AWS CLI builds from `--protocol/--port/--cidr/--source-group`.
fn shorthand_permission(change: &RuleChange) -> anyhow::Result<Option<Value>> {
    if change.protocol.is_none()
        && change.port.is_none()
        && change.cidr.is_none()
        && change.source_group.is_none()
    {
        return Ok(None);
    }
    if change.ip_permissions.is_some() {
        bail!(
            "The --ip-permissions option cannot be combined with --protocol, --port, --cidr or --source-group"
        );
    }
    let mut permission = Map::new();
    let protocol = match change.protocol.as_deref() {
        Some("all") => "-1".to_string(),
        Some(p) => p.to_string(),
        None => bail!("The --protocol option is required with --port, --cidr or --source-group"),
    };
    permission.insert("IpProtocol".into(), json!(protocol));
    if let Some(port) = &change.port {
        let (from, to) = match port.split_once('-') {
            Some((from, to)) if !port.starts_with('-') => (from, to),
            _ => (port.as_str(), port.as_str()),
        };
        let parse = |p: &str| -> anyhow::Result<i64> {
            p.trim().parse().with_context(|| {
                format!("port parameter should be of the form <from[-to]> (got {port})")
            })
        };
        permission.insert("FromPort".into(), json!(parse(from)?));
        permission.insert("ToPort".into(), json!(parse(to)?));
    }
    if let Some(cidr) = &change.cidr {
        if cidr.contains(':') {
            permission.insert("Ipv6Ranges".into(), json!([{"CidrIpv6": cidr}]));
        } else {
            permission.insert("IpRanges".into(), json!([{"CidrIp": cidr}]));
        }
    }
    if let Some(group) = &change.source_group {
        let key = if group.starts_with("sg-") {
            "GroupId"
        } else {
            "GroupName"
        };
        permission.insert("UserIdGroupPairs".into(), json!([{ key: group }]));
    }
    Ok(Some(Value::Object(permission)))
}

fn rule_change_request(change: &RuleChange, revoke: bool) -> anyhow::Result<Value> {
    let mut body = Map::new();
    insert_opt(&mut body, "GroupId", &change.group_id);
    insert_opt(&mut body, "GroupName", &change.group_name);
    let mut permissions = Vec::new();
    if let Some(p) = shorthand_permission(change)? {
        permissions.push(p);
    }
    if let Some(text) = &change.ip_permissions {
        match json_param("ip-permissions", text)? {
            Value::Array(items) => permissions.extend(items),
            item => permissions.push(item),
        }
    }
    if !permissions.is_empty() {
        body.insert("IpPermissions".into(), Value::Array(permissions));
    }
    if revoke {
        if !change.security_group_rule_ids.is_empty() {
            body.insert(
                "SecurityGroupRuleIds".into(),
                json!(change.security_group_rule_ids),
            );
        }
        if change.flush_flows {
            body.insert("FlushFlows".into(), json!(true));
        }
    } else {
        if change.flush_flows {
            bail!("--flush-flows applies only to revoke");
        }
        if !change.security_group_rule_ids.is_empty() {
            bail!("--security-group-rule-ids applies only to revoke");
        }
        if let Some(tags) = &change.tag_specifications {
            body.insert(
                "TagSpecifications".into(),
                json_param("tag-specifications", tags)?,
            );
        }
    }
    Ok(Value::Object(body))
}

/// The API action and request body for a verb.
pub fn request(verb: &Verb) -> anyhow::Result<(&'static str, Value)> {
    Ok(match verb {
        Verb::CreateSecurityGroup(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "GroupName", &args.group_name);
            insert_opt(&mut body, "Description", &args.description);
            insert_opt(&mut body, "VpcId", &args.vpc_id);
            insert_json_opt(
                &mut body,
                "TagSpecifications",
                "tag-specifications",
                &args.tag_specifications,
            )?;
            ("CreateSecurityGroup", Value::Object(body))
        }
        Verb::DeleteSecurityGroup(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "GroupId", &args.group_id);
            insert_opt(&mut body, "GroupName", &args.group_name);
            ("DeleteSecurityGroup", Value::Object(body))
        }
        Verb::DescribeSecurityGroups(args) => {
            let mut body = Map::new();
            if !args.group_ids.is_empty() {
                body.insert("GroupIds".into(), json!(args.group_ids));
            }
            if !args.group_names.is_empty() {
                body.insert("GroupNames".into(), json!(args.group_names));
            }
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            page_options(&mut body, args.max_results, &args.next_token);
            ("DescribeSecurityGroups", Value::Object(body))
        }
        Verb::DescribeSecurityGroupRules(args) => {
            let mut body = Map::new();
            if !args.security_group_rule_ids.is_empty() {
                body.insert(
                    "SecurityGroupRuleIds".into(),
                    json!(args.security_group_rule_ids),
                );
            }
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            page_options(&mut body, args.max_results, &args.next_token);
            ("DescribeSecurityGroupRules", Value::Object(body))
        }
        Verb::AuthorizeSecurityGroupIngress(c) => (
            "AuthorizeSecurityGroupIngress",
            rule_change_request(c, false)?,
        ),
        Verb::AuthorizeSecurityGroupEgress(c) => (
            "AuthorizeSecurityGroupEgress",
            rule_change_request(c, false)?,
        ),
        Verb::RevokeSecurityGroupIngress(c) => {
            ("RevokeSecurityGroupIngress", rule_change_request(c, true)?)
        }
        Verb::RevokeSecurityGroupEgress(c) => {
            ("RevokeSecurityGroupEgress", rule_change_request(c, true)?)
        }
        Verb::RunInstances(args) => {
            let mut body = Map::new();
            if !args.security_group_ids.is_empty() {
                body.insert("SecurityGroupIds".into(), json!(args.security_group_ids));
            }
            insert_opt(&mut body, "PrivateIpAddress", &args.private_ip_address);
            if let Some(v6) = &args.ipv6_address {
                body.insert("Ipv6Addresses".into(), json!([{"Ipv6Address": v6}]));
            }
            insert_opt(&mut body, "HostInterface", &args.interface);
            if let Some(template) = &args.launch_template {
                let spec = structures("launch-template", std::slice::from_ref(template))?;
                body.insert("LaunchTemplate".into(), spec[0].clone());
            }
            let count = args.count.unwrap_or(1);
            body.insert("MinCount".into(), json!(count));
            body.insert("MaxCount".into(), json!(count));
            ("RunInstances", Value::Object(body))
        }
        Verb::DescribeInstances(args) => {
            let mut body = Map::new();
            if !args.instance_ids.is_empty() {
                body.insert("InstanceIds".into(), json!(args.instance_ids));
            }
            ("DescribeInstances", Value::Object(body))
        }
        Verb::TerminateInstances(args) => (
            "TerminateInstances",
            json!({"InstanceIds": args.instance_ids}),
        ),
        Verb::StopInstances(args) => ("StopInstances", json!({"InstanceIds": args.instance_ids})),
        Verb::StartInstances(args) => ("StartInstances", json!({"InstanceIds": args.instance_ids})),
        Verb::ModifyInstanceAttribute(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "InstanceId", &args.instance_id);
            body.insert("Groups".into(), json!(args.groups));
            if args.flush_flows {
                body.insert("FlushFlows".into(), json!(true));
            }
            ("ModifyInstanceAttribute", Value::Object(body))
        }
        Verb::CreateManagedPrefixList(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "PrefixListName", &args.prefix_list_name);
            if let Some(max) = args.max_entries {
                body.insert("MaxEntries".into(), json!(max));
            }
            insert_opt(&mut body, "AddressFamily", &args.address_family);
            if !args.entries.is_empty() {
                body.insert("Entries".into(), structures("entries", &args.entries)?);
            }
            insert_json_opt(
                &mut body,
                "TagSpecifications",
                "tag-specifications",
                &args.tag_specifications,
            )?;
            ("CreateManagedPrefixList", Value::Object(body))
        }
        Verb::ModifyManagedPrefixList(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "PrefixListId", &args.prefix_list_id);
            if let Some(version) = args.current_version {
                body.insert("CurrentVersion".into(), json!(version));
            }
            insert_opt(&mut body, "PrefixListName", &args.prefix_list_name);
            if !args.add_entries.is_empty() {
                body.insert(
                    "AddEntries".into(),
                    structures("add-entries", &args.add_entries)?,
                );
            }
            if !args.remove_entries.is_empty() {
                body.insert(
                    "RemoveEntries".into(),
                    structures("remove-entries", &args.remove_entries)?,
                );
            }
            if let Some(max) = args.max_entries {
                body.insert("MaxEntries".into(), json!(max));
            }
            ("ModifyManagedPrefixList", Value::Object(body))
        }
        Verb::DescribeManagedPrefixLists(args) => {
            let mut body = Map::new();
            if !args.prefix_list_ids.is_empty() {
                body.insert("PrefixListIds".into(), json!(args.prefix_list_ids));
            }
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            ("DescribeManagedPrefixLists", Value::Object(body))
        }
        Verb::GetManagedPrefixListEntries(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "PrefixListId", &args.prefix_list_id);
            if let Some(version) = args.target_version {
                body.insert("TargetVersion".into(), json!(version));
            }
            ("GetManagedPrefixListEntries", Value::Object(body))
        }
        Verb::DeleteManagedPrefixList(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "PrefixListId", &args.prefix_list_id);
            ("DeleteManagedPrefixList", Value::Object(body))
        }
        Verb::GetDataplaneStatistics => ("GetDataplaneStatistics", json!({})),
        Verb::Export(args) => {
            let layout = if args.linear { "linear" } else { "sets" };
            (
                "ExportNftables",
                json!({"Layout": layout, "Format": args.format}),
            )
        }
        Verb::CreateVpc(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "CidrBlock", &args.cidr_block);
            if args.amazon_provided_ipv6_cidr_block {
                body.insert("AmazonProvidedIpv6CidrBlock".into(), json!(true));
            }
            insert_opt(&mut body, "InstanceTenancy", &args.instance_tenancy);
            insert_json_opt(
                &mut body,
                "TagSpecifications",
                "tag-specifications",
                &args.tag_specifications,
            )?;
            ("CreateVpc", Value::Object(body))
        }
        Verb::DescribeVpcs(args) => {
            let mut body = Map::new();
            if !args.vpc_ids.is_empty() {
                body.insert("VpcIds".into(), json!(args.vpc_ids));
            }
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            ("DescribeVpcs", Value::Object(body))
        }
        Verb::DeleteVpc(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "VpcId", &args.vpc_id);
            ("DeleteVpc", Value::Object(body))
        }
        Verb::CreateTags(args) | Verb::DeleteTags(args) => {
            let action = if matches!(verb, Verb::CreateTags(_)) {
                "CreateTags"
            } else {
                "DeleteTags"
            };
            let mut body = Map::new();
            body.insert("Resources".into(), json!(args.resources));
            if !args.tags.is_empty() {
                body.insert("Tags".into(), structures("tags", &args.tags)?);
            }
            (action, Value::Object(body))
        }
        Verb::DescribeTags(args) => {
            let mut body = Map::new();
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            ("DescribeTags", Value::Object(body))
        }
        Verb::CreateLaunchTemplate(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "LaunchTemplateName", &args.launch_template_name);
            insert_opt(&mut body, "VersionDescription", &args.version_description);
            insert_json_opt(
                &mut body,
                "LaunchTemplateData",
                "launch-template-data",
                &args.launch_template_data,
            )?;
            insert_json_opt(
                &mut body,
                "TagSpecifications",
                "tag-specifications",
                &args.tag_specifications,
            )?;
            ("CreateLaunchTemplate", Value::Object(body))
        }
        Verb::DescribeLaunchTemplates(args) => {
            let mut body = Map::new();
            if !args.launch_template_ids.is_empty() {
                body.insert("LaunchTemplateIds".into(), json!(args.launch_template_ids));
            }
            if !args.launch_template_names.is_empty() {
                body.insert(
                    "LaunchTemplateNames".into(),
                    json!(args.launch_template_names),
                );
            }
            if !args.filters.is_empty() {
                body.insert("Filters".into(), filters(&args.filters)?);
            }
            ("DescribeLaunchTemplates", Value::Object(body))
        }
        Verb::DeleteLaunchTemplate(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "LaunchTemplateId", &args.launch_template_id);
            insert_opt(&mut body, "LaunchTemplateName", &args.launch_template_name);
            ("DeleteLaunchTemplate", Value::Object(body))
        }
        Verb::CopySecurityGroup(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "GroupId", &args.group_id);
            insert_opt(&mut body, "GroupName", &args.group_name);
            insert_opt(&mut body, "Description", &args.description);
            insert_opt(&mut body, "VpcId", &args.vpc_id);
            insert_json_opt(
                &mut body,
                "TagSpecifications",
                "tag-specifications",
                &args.tag_specifications,
            )?;
            ("CopySecurityGroup", Value::Object(body))
        }
        Verb::ModifySecurityGroupRules(args) => {
            let mut body = Map::new();
            insert_opt(&mut body, "GroupId", &args.group_id);
            insert_json_opt(
                &mut body,
                "SecurityGroupRules",
                "security-group-rules",
                &args.security_group_rules,
            )?;
            ("ModifySecurityGroupRules", Value::Object(body))
        }
        Verb::UpdateSecurityGroupRuleDescriptionsIngress(args)
        | Verb::UpdateSecurityGroupRuleDescriptionsEgress(args) => {
            let action = if matches!(verb, Verb::UpdateSecurityGroupRuleDescriptionsIngress(_)) {
                "UpdateSecurityGroupRuleDescriptionsIngress"
            } else {
                "UpdateSecurityGroupRuleDescriptionsEgress"
            };
            let mut body = Map::new();
            insert_opt(&mut body, "GroupId", &args.group_id);
            insert_opt(&mut body, "GroupName", &args.group_name);
            insert_json_opt(
                &mut body,
                "IpPermissions",
                "ip-permissions",
                &args.ip_permissions,
            )?;
            if !args.security_group_rule_descriptions.is_empty() {
                body.insert(
                    "SecurityGroupRuleDescriptions".into(),
                    structures(
                        "security-group-rule-descriptions",
                        &args.security_group_rule_descriptions,
                    )?,
                );
            }
            (action, Value::Object(body))
        }
        Verb::DescribeSecurityGroupReferences(args) => (
            "DescribeSecurityGroupReferences",
            json!({"GroupId": args.group_id}),
        ),
    })
}

/// JSON as the AWS CLI prints it (4-space indentation).
pub fn to_aws_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("serialising a Value cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Runs a verb against the agent; returns the process exit status.
pub async fn run(socket: PathBuf, verb: Verb) -> i32 {
    let (action, body) = match request(&verb) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("\n{e:#}\n");
            return EXIT_PARAMETER_ERROR;
        }
    };
    match client::call(&socket, action, &body).await {
        Ok(Ok(answer)) => {
            // Like the AWS CLI, an empty response prints nothing.
            if let Some(ruleset) = answer.get("Ruleset").and_then(Value::as_str) {
                print!("{ruleset}");
            } else if answer != json!({}) {
                println!("{}", to_aws_json(&answer));
            }
            0
        }
        Ok(Err(error)) => {
            eprintln!(
                "\nAn error occurred ({}) when calling the {action} operation: {}",
                error.code, error.message
            );
            EXIT_SERVICE_ERROR
        }
        Err(e) => {
            eprintln!("\n{e}\n");
            255
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct TestCli {
        #[command(subcommand)]
        verb: Verb,
    }

    fn request_for(args: &[&str]) -> (&'static str, Value) {
        let cli =
            TestCli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap();
        request(&cli.verb).unwrap()
    }

    #[test]
    fn shorthand_builds_the_permission_the_aws_cli_builds() {
        let (action, body) = request_for(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--protocol",
            "tcp",
            "--port",
            "8000-8080",
            "--cidr",
            "10.0.0.0/8",
        ]);
        assert_eq!(action, "AuthorizeSecurityGroupIngress");
        assert_eq!(
            body,
            json!({"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})
        );
        let (_, body) = request_for(&[
            "authorize-security-group-egress",
            "--group-id",
            "sg-1",
            "--protocol",
            "all",
            "--source-group",
            "sg-2",
        ]);
        assert_eq!(
            body["IpPermissions"][0],
            json!({"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-2"}]})
        );
        let (_, body) = request_for(&[
            "revoke-security-group-ingress",
            "--group-id",
            "sg-1",
            "--protocol",
            "icmp",
            "--port",
            "-1",
            "--cidr",
            "0.0.0.0/0",
        ]);
        assert_eq!(body["IpPermissions"][0]["FromPort"], -1);
    }

    #[test]
    fn ip_permissions_json_and_filters_shorthand() {
        let (_, body) = request_for(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--ip-permissions",
            r#"[{"IpProtocol":"udp","FromPort":53,"ToPort":53,"Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]"#,
        ]);
        assert_eq!(
            body["IpPermissions"][0]["Ipv6Ranges"][0]["CidrIpv6"],
            "::/0"
        );
        let (_, body) = request_for(&[
            "describe-security-groups",
            "--filters",
            "Name=group-name,Values=web,db",
        ]);
        assert_eq!(
            body["Filters"],
            json!([{"Name": "group-name", "Values": ["web", "db"]}])
        );
    }

    #[test]
    fn output_is_indented_like_the_aws_cli() {
        assert_eq!(
            to_aws_json(&json!({"Return": true})),
            "{\n    \"Return\": true\n}"
        );
    }
}

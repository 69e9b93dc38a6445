//! The verbs and their options, named as the AWS CLI names them.

use clap::{Args, Subcommand};

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
    DescribeInstances(DescribeInstances),
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
    /// Reads the kernel's policy maps back and compares them with what the state compiles to (ours).
    VerifyDataplane,
    /// Ours: the same policy as an nftables ruleset (`nft -f` loads it).
    Export(Export),
    /// Ours: whether the kernel allows one packet to or from an instance, and the rule and group
    /// (or the tracked flow) that decide.
    ExplainVerdict(ExplainVerdict),
    /// Creates a VPC (with its default security group).
    CreateVpc(CreateVpc),
    /// Describes VPCs.
    DescribeVpcs(DescribeVpcs),
    /// Deletes a VPC that holds nothing but its default group.
    DeleteVpc(VpcId),
    /// Describes one attribute of a VPC (`--attribute enableDnsSupport`, `enableDnsHostnames`
    /// or `enableNetworkAddressUsageMetrics`).
    DescribeVpcAttribute(DescribeVpcAttribute),
    /// Sets one attribute of a VPC (`--enable-dns-support` or `--no-enable-dns-support`, …).
    ModifyVpcAttribute(ModifyVpcAttribute),
    /// Adds or overwrites tags on resources.
    CreateTags(ChangeTags),
    /// Removes tags from resources.
    DeleteTags(ChangeTags),
    /// Describes tags.
    DescribeTags(DescribeTags),
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
    /// Creates flow logs for interfaces or VPCs, written to a file or to the agent's stdout.
    CreateFlowLogs(CreateFlowLogs),
    /// Describes flow logs.
    DescribeFlowLogs(DescribeFlowLogs),
    /// Deletes flow logs.
    DeleteFlowLogs(FlowLogIds),
    #[command(flatten)]
    Network(super::args_network::NetworkVerb),
    #[command(flatten)]
    Instance(super::args_instances::InstanceVerb),
}

#[derive(Debug, Args)]
pub struct CreateFlowLogs {
    #[arg(long, num_args = 1..)]
    pub resource_ids: Vec<String>,
    /// NetworkInterface or VPC.
    #[arg(long)]
    pub resource_type: Option<String>,
    /// ACCEPT, REJECT or ALL.
    #[arg(long)]
    pub traffic_type: Option<String>,
    /// Ours: file or stdout.
    #[arg(long)]
    pub log_destination_type: Option<String>,
    /// With --log-destination-type file: a file name in the account's directory of the
    /// agent's flow-log directory (`serve --flow-log-dir`), or an absolute path inside it.
    #[arg(long)]
    pub log_destination: Option<String>,
    #[arg(long)]
    pub log_format: Option<String>,
    /// 60 or 600 (seconds).
    #[arg(long)]
    pub max_aggregation_interval: Option<i64>,
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeFlowLogs {
    #[arg(long, num_args = 1..)]
    pub flow_log_ids: Vec<String>,
    /// EC2 calls it `--filter`.
    #[arg(long, num_args = 1..)]
    pub filter: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct FlowLogIds {
    #[arg(long, num_args = 1..)]
    pub flow_log_ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CreateSecurityGroup {
    #[arg(long)]
    pub group_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub vpc_id: Option<String>,
    /// JSON, e.g. '[{"ResourceType":"security-group","Tags":[{"Key":"k","Value":"v"}]}]'.
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct GroupTarget {
    #[arg(long)]
    pub group_id: Option<String>,
    #[arg(long)]
    pub group_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeSecurityGroups {
    #[arg(long, num_args = 1..)]
    pub group_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub group_names: Vec<String>,
    /// `Name=group-name,Values=web,db` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct DescribeSecurityGroupRules {
    #[arg(long, num_args = 1..)]
    pub security_group_rule_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct Export {
    /// The only format: nftables.
    #[arg(long, value_parser = ["nftables"])]
    pub format: String,
    /// One rule per rule and peer instead of interval sets.
    #[arg(long)]
    pub linear: bool,
}

#[derive(Debug, Args)]
pub struct ExplainVerdict {
    /// The instance: the packet is judged on its primary network interface.
    #[arg(long, required_unless_present = "network_interface_id")]
    pub instance_id: Option<String>,
    /// The network interface the packet is judged on.
    #[arg(long, conflicts_with = "instance_id")]
    pub network_interface_id: Option<String>,
    /// ingress: sent by the peer to the instance; egress: sent by the instance to the peer.
    #[arg(long, value_parser = ["ingress", "egress"])]
    pub direction: String,
    /// tcp, udp, icmp, icmpv6 or a protocol number.
    #[arg(long)]
    pub protocol: String,
    /// TCP/UDP: the port the rules match (the instance's for ingress, the peer's for egress).
    #[arg(long)]
    pub port: Option<i32>,
    /// ICMP: the type (default: echo request).
    #[arg(long)]
    pub icmp_type: Option<i32>,
    /// ICMP: the code (default 0).
    #[arg(long)]
    pub icmp_code: Option<i32>,
    /// The other endpoint's address.
    #[arg(long)]
    pub peer: String,
    /// TCP/UDP: the other side's port (the peer's for ingress, the instance's for egress): a
    /// live tracked flow of these endpoints then decides.
    #[arg(long)]
    pub peer_port: Option<i32>,
}

#[derive(Debug, Args)]
pub struct CreateVpc {
    #[arg(long)]
    pub cidr_block: Option<String>,
    #[arg(long)]
    pub amazon_provided_ipv6_cidr_block: bool,
    #[arg(long)]
    pub instance_tenancy: Option<String>,
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeVpcs {
    #[arg(long, num_args = 1..)]
    pub vpc_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct VpcId {
    #[arg(long)]
    pub vpc_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeVpcAttribute {
    #[arg(long)]
    pub vpc_id: Option<String>,
    #[arg(long)]
    pub attribute: Option<String>,
}

/// The AWS CLI's boolean flags for EC2's `AttributeBooleanValue` members.
#[derive(Debug, Args)]
pub struct ModifyVpcAttribute {
    #[arg(long)]
    pub vpc_id: Option<String>,
    #[arg(long, overrides_with = "no_enable_dns_support")]
    pub enable_dns_support: bool,
    #[arg(long)]
    pub no_enable_dns_support: bool,
    #[arg(long, overrides_with = "no_enable_dns_hostnames")]
    pub enable_dns_hostnames: bool,
    #[arg(long)]
    pub no_enable_dns_hostnames: bool,
    #[arg(long, overrides_with = "no_enable_network_address_usage_metrics")]
    pub enable_network_address_usage_metrics: bool,
    #[arg(long)]
    pub no_enable_network_address_usage_metrics: bool,
}

#[derive(Debug, Args)]
pub struct ChangeTags {
    #[arg(long, num_args = 1..)]
    pub resources: Vec<String>,
    /// `Key=env,Value=prod` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DescribeTags {
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

/// `--max-results` and `--next-token` of the paginated describes.
#[derive(Debug, Args)]
pub struct Paging {
    /// Page size (5-1000); without it, everything in one answer.
    #[arg(long)]
    pub max_results: Option<i64>,
    #[arg(long)]
    pub next_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateLaunchTemplate {
    #[arg(long)]
    pub launch_template_name: Option<String>,
    #[arg(long)]
    pub version_description: Option<String>,
    /// JSON, e.g. '{"SecurityGroupIds":["sg-…"]}' (or file://path).
    #[arg(long)]
    pub launch_template_data: Option<String>,
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeLaunchTemplates {
    #[arg(long, num_args = 1..)]
    pub launch_template_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub launch_template_names: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LaunchTemplateRef {
    #[arg(long)]
    pub launch_template_id: Option<String>,
    #[arg(long)]
    pub launch_template_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CopySecurityGroup {
    /// The group to copy.
    #[arg(long)]
    pub group_id: Option<String>,
    /// The new group's name.
    #[arg(long)]
    pub group_name: Option<String>,
    /// Defaults to the source group's description.
    #[arg(long)]
    pub description: Option<String>,
    /// Defaults to the source group's VPC.
    #[arg(long)]
    pub vpc_id: Option<String>,
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifySecurityGroupRules {
    #[arg(long)]
    pub group_id: Option<String>,
    /// JSON: '[{"SecurityGroupRuleId":"sgr-…","SecurityGroupRule":{"IpProtocol":"tcp",…}}]'.
    /// Shorthand (`SecurityGroupRuleId=sgr-…,SecurityGroupRule={IpProtocol=tcp,…}`, one per
    /// rule) or JSON.
    #[arg(long, num_args = 1..)]
    pub security_group_rules: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateDescriptions {
    #[arg(long)]
    pub group_id: Option<String>,
    #[arg(long)]
    pub group_name: Option<String>,
    /// The permissions whose rules get the descriptions, matched like revoke: shorthand
    /// (`IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=…,Description=…}]`) or JSON.
    #[arg(long, num_args = 1..)]
    pub ip_permissions: Vec<String>,
    /// `SecurityGroupRuleId=sgr-…,Description=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub security_group_rule_descriptions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GroupIdList {
    #[arg(long, num_args = 1..)]
    pub group_id: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RuleChange {
    #[arg(long)]
    pub group_id: Option<String>,
    #[arg(long)]
    pub group_name: Option<String>,
    /// Shorthand: tcp, udp, icmp, all, or a protocol number.
    #[arg(long, allow_hyphen_values = true)]
    pub protocol: Option<String>,
    /// Shorthand: a port, a range `from-to`, or -1.
    #[arg(long, allow_hyphen_values = true)]
    pub port: Option<String>,
    /// Shorthand: the peer CIDR.
    #[arg(long)]
    pub cidr: Option<String>,
    /// Shorthand: the peer security group (ID or name).
    #[arg(long)]
    pub source_group: Option<String>,
    /// Accepted for compatibility; the account is always this agent's.
    #[arg(long)]
    pub group_owner: Option<String>,
    /// Shorthand (`IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=…}]`, one per
    /// permission), JSON, or file://path.
    #[arg(long, num_args = 1..)]
    pub ip_permissions: Vec<String>,
    /// Revoke only.
    #[arg(long, num_args = 1..)]
    pub security_group_rule_ids: Vec<String>,
    /// Revoke only (ours): also cut the tracked flows the remaining rules no longer allow
    /// (AWS keeps them until they idle out).
    #[arg(long)]
    pub flush_flows: bool,
    /// JSON tag specifications for the new rules (authorize only).
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunInstances {
    #[arg(long, num_args = 1..)]
    pub security_group_ids: Vec<String>,
    #[arg(long)]
    pub private_ip_address: Option<String>,
    /// Ours: an IPv6 address of the workload.
    #[arg(long)]
    pub ipv6_address: Option<String>,
    /// The subnet of the instances' primary network interface (default: the VPC's default
    /// subnet).
    #[arg(long)]
    pub subnet_id: Option<String>,
    /// Ours: register this existing host-side veth of a workload. Without it the agent launches
    /// local instances: a network namespace each, with a veth on the VPC's bridge.
    #[arg(long)]
    pub interface: Option<String>,
    /// An image of `describe-images` (default: the namespace-only one).
    #[arg(long)]
    pub image_id: Option<String>,
    /// A type of `describe-instance-types` (default m1.small, as on AWS).
    #[arg(long)]
    pub instance_type: Option<String>,
    /// Base64 user data, kept and given back by `describe-instance-attribute`.
    #[arg(long)]
    pub user_data: Option<String>,
    /// Refuse `terminate-instances` until the attribute is turned off.
    #[arg(long)]
    pub disable_api_termination: bool,
    /// How many instances to launch (local ones only; one per `--interface`).
    #[arg(long)]
    pub count: Option<u32>,
    /// JSON tag specifications (`ResourceType` `instance`).
    #[arg(long)]
    pub tag_specifications: Option<String>,
    /// `LaunchTemplateId=lt-…,Version=1` or `LaunchTemplateName=…` (or JSON).
    #[arg(long)]
    pub launch_template: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifyInstanceAttribute {
    #[arg(long)]
    pub instance_id: Option<String>,
    /// The new security groups (replace the current ones).
    #[arg(long, num_args = 1..)]
    pub groups: Vec<String>,
    /// Ours: also cut the tracked flows the new groups no longer allow.
    #[arg(long)]
    pub flush_flows: bool,
    #[arg(long, overrides_with = "no_disable_api_termination")]
    pub disable_api_termination: bool,
    #[arg(long)]
    pub no_disable_api_termination: bool,
    #[arg(long, overrides_with = "no_disable_api_stop")]
    pub disable_api_stop: bool,
    #[arg(long)]
    pub no_disable_api_stop: bool,
    /// `Value=stop` or `Value=terminate` (or JSON).
    #[arg(long)]
    pub instance_initiated_shutdown_behavior: Option<String>,
    #[arg(long, overrides_with = "no_source_dest_check")]
    pub source_dest_check: bool,
    #[arg(long)]
    pub no_source_dest_check: bool,
    /// The older form: an attribute's name (`disableApiTermination`, …) with `--value`.
    #[arg(long)]
    pub attribute: Option<String>,
    #[arg(long)]
    pub value: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreatePrefixList {
    #[arg(long)]
    pub prefix_list_name: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub max_entries: Option<i64>,
    /// IPv4 or IPv6.
    #[arg(long)]
    pub address_family: Option<String>,
    /// `Cidr=10.0.0.0/8,Description=hq` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub entries: Vec<String>,
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModifyPrefixList {
    #[arg(long)]
    pub prefix_list_id: Option<String>,
    #[arg(long)]
    pub current_version: Option<u64>,
    #[arg(long)]
    pub prefix_list_name: Option<String>,
    /// `Cidr=…,Description=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub add_entries: Vec<String>,
    /// `Cidr=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub remove_entries: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub max_entries: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DescribePrefixLists {
    #[arg(long, num_args = 1..)]
    pub prefix_list_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PrefixListEntries {
    #[arg(long)]
    pub prefix_list_id: Option<String>,
    #[arg(long)]
    pub target_version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PrefixListId {
    #[arg(long)]
    pub prefix_list_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeInstances {
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
    /// `Name=instance-state-name,Values=running` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct InstanceIds {
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
}

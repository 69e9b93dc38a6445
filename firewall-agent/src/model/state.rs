//! The desired state: VPCs, security groups with their rules, instances (workloads), prefix
//! lists and launch templates. Plain data, persisted as it is (the store's format: renaming a
//! field here changes what the store reads), with the few derived facts every part needs.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use firewall_common::Direction;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

pub use super::network::{Attachment, NetworkInterface, Subnet};
use super::regions::LOCAL;
use super::{
    ids::IdSource,
    rule::{Peer, Protocol, Rule},
    rule_list::RuleList,
    tagging::Tag,
};
use crate::api::{ApiError, ApiResult, Scope, types::launch_templates::LaunchTemplateData};

/// Limits that AWS calls quotas; configurable in the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Inbound rules per group per address family (outbound likewise).
    pub rules_per_group: usize,
    pub groups_per_instance: usize,
    /// VPCs per account and region, the default VPC included (AWS's default: 5).
    #[serde(default = "Quotas::default_vpcs_per_region")]
    pub vpcs_per_region: usize,
    /// Local instances (namespaces the agent builds) of every account together: the agent
    /// checks it, since one scope's state sees only its own.
    #[serde(default = "Quotas::default_local_instances")]
    pub local_instances: usize,
    /// Network interfaces per account and region (each instance has one; AWS's default: 5000).
    #[serde(default = "Quotas::default_interfaces_per_region")]
    pub interfaces_per_region: usize,
}

impl Quotas {
    fn default_vpcs_per_region() -> usize {
        5
    }

    fn default_local_instances() -> usize {
        256
    }

    fn default_interfaces_per_region() -> usize {
        5000
    }
}

/// Where flow-log files go: the directory `serve --flow-log-dir` names (absolute, UTF-8, no
/// `..`), one subdirectory per account. Configuration, like [`Quotas`], but not stored (a host's
/// path is no part of the desired state, which a shared store carries to other hosts): the
/// agent sets it on every state it hands to the model ([`State::flow_log_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogDir(Arc<str>);

impl FlowLogDir {
    /// `serve`'s default with the default `--state-dir` (what a state not from the agent has).
    pub const DEFAULT: &'static str = "/var/lib/firewall-agent/flow-logs";

    /// `root`, an absolute path without `.` or `..` components (a trailing `/` is dropped).
    pub fn new(root: &str) -> Result<FlowLogDir, String> {
        let trimmed = root.trim_end_matches('/');
        if !root.starts_with('/')
            || trimmed.is_empty()
            || trimmed.contains('\0')
            || trimmed
                .split('/')
                .skip(1)
                .any(|c| matches!(c, "" | "." | ".."))
        {
            return Err(format!(
                "the flow-log directory '{root}' must be an absolute path without '.', '..' or '//'"
            ));
        }
        Ok(FlowLogDir(trimmed.into()))
    }

    /// The directory itself.
    pub fn root(&self) -> &str {
        &self.0
    }

    /// The directory of `account_id`'s flow-log files: `<root>/<account-id>`.
    pub fn of_account(&self, account_id: &str) -> String {
        format!("{}/{account_id}", self.0)
    }
}

impl Default for FlowLogDir {
    fn default() -> Self {
        FlowLogDir(Self::DEFAULT.into())
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            rules_per_group: 60,
            groups_per_instance: 5,
            vpcs_per_region: Self::default_vpcs_per_region(),
            local_instances: Self::default_local_instances(),
            interfaces_per_region: Self::default_interfaces_per_region(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub cidr: Ipv4Net,
    pub ipv6_cidr: Option<Ipv6Net>,
    pub is_default: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// `enableDnsSupport` as set (`None`: AWS's default, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dns_support: Option<bool>,
    /// `enableDnsHostnames` as set (`None`: AWS's default, true only for a default VPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dns_hostnames: Option<bool>,
    /// `enableNetworkAddressUsageMetrics`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usage_metrics: bool,
}

impl Vpc {
    /// `enableDnsSupport` in force.
    pub fn dns_support(&self) -> bool {
        self.enable_dns_support.unwrap_or(true)
    }

    /// `enableDnsHostnames` in force.
    pub fn dns_hostnames(&self) -> bool {
        self.enable_dns_hostnames.unwrap_or(self.is_default)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    /// Shared between versions of the group: a change copies O(log n) nodes of a list, and
    /// two versions diff by the nodes they do not share (see [`RuleList`]).
    pub ingress: RuleList,
    pub egress: RuleList,
    pub tags: Vec<Tag>,
}

impl SecurityGroup {
    /// The inbound (ingress) or outbound (egress) rules.
    pub fn rules(&self, direction: Direction) -> &RuleList {
        match direction {
            Direction::Inbound => &self.ingress,
            Direction::Outbound => &self.egress,
        }
    }
    pub fn rules_mut(&mut self, direction: Direction) -> &mut RuleList {
        match direction {
            Direction::Inbound => &mut self.ingress,
            Direction::Outbound => &mut self.egress,
        }
    }
}

/// EC2 instance states with their API codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub fn code(self) -> u32 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }
}

/// A workload: our `run-instances` launches a local one (a namespace the agent builds) or
/// registers an existing host-side veth and its addresses. Its addresses, groups and veth are
/// its network interfaces' (`State::network_interfaces`; the primary one is `eni_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub reservation_id: String,
    /// The primary network interface (device index 0).
    pub eni_id: String,
    pub vpc_id: String,
    /// The primary interface's subnet (empty in a record of a release before subnets, until
    /// [`State::upgrade`] places it).
    #[serde(default)]
    pub subnet_id: String,
    pub state: InstanceState,
    /// Set for a local instance: the network namespace the agent built for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// RFC 3339 launch time.
    pub launch_time: String,
    /// RFC 3339 time it was terminated; listed until [`super::termination::TERMINATED_LISTED_SECS`]
    /// after it
    /// (a record of an earlier release that has none: no longer listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_at: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// What it was launched with beyond its network (a record of an earlier release: the
    /// defaults).
    #[serde(default)]
    pub launch: Launch,
    /// With a shared store (`--etcd-endpoints`): the host whose agent registered it and
    /// enforces it (`--host-id`). Every host sees it as a member of its groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A record of a release before network interfaces: the primary interface's fields, as
    /// the instance held them. Read by [`State::upgrade`] only while no record of that
    /// interface exists, and written back as read, so the record stays the upgrade's source
    /// until the interface's own record is first saved.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyInterface>,
    /// Derived, not stored: another host owns it, so this agent neither builds nor enforces it.
    #[serde(skip)]
    pub remote: bool,
    /// Derived, not stored: its host's lease expired (the host disappeared); it stays a member
    /// of its groups until it is terminated, and describe-instances says why.
    #[serde(skip)]
    pub host_lost: bool,
}

/// What `RunInstances` launched an instance with beyond its network: its image and type, its
/// protection flags (termination and stop refused while set), the user data (kept, given back
/// by `describe-instance-attribute`), and the CPU-credit option of a burstable type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub image_id: String,
    pub instance_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default)]
    pub disable_api_termination: bool,
    #[serde(default)]
    pub disable_api_stop: bool,
    /// `stop` or `terminate`.
    pub shutdown_behavior: String,
    /// `standard` or `unlimited`, for a burstable type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_credits: Option<String>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            image_id: super::catalogue::DEFAULT_IMAGE.into(),
            instance_type: super::catalogue::DEFAULT_INSTANCE_TYPE.into(),
            user_data: None,
            disable_api_termination: false,
            disable_api_stop: false,
            shutdown_behavior: "stop".into(),
            cpu_credits: None,
        }
    }
}

/// An instance's interface as releases before network interfaces stored it, in the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyInterface {
    pub private_ip: Ipv4Addr,
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// The host-side veth of the workload.
    pub interface: String,
    pub group_ids: Vec<String>,
}

/// Objects by ID in a persistent ordered map (`imbl`): cloned in O(1), versions compared by
/// `diff` in O(what differs), serialized as a JSON object like a `BTreeMap`.
pub type Table<V> = imbl::OrdMap<String, V>;

/// What `BTreeMap` has and `imbl`'s maps lack: edits in place that copy only the paths to the
/// entries they touch.
pub trait TableExt<V> {
    /// Keeps the entries `keep` accepts.
    fn retain(&mut self, keep: impl FnMut(&String, &V) -> bool);
    /// Edits every value `wants` picks; the others are neither copied nor touched.
    fn edit_where(&mut self, wants: impl FnMut(&V) -> bool, edit: impl FnMut(&mut V));
}

impl<V: Clone> TableExt<V> for Table<V> {
    fn retain(&mut self, mut keep: impl FnMut(&String, &V) -> bool) {
        let gone: Vec<String> = self
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    fn edit_where(&mut self, mut wants: impl FnMut(&V) -> bool, mut edit: impl FnMut(&mut V)) {
        let picked: Vec<String> = self
            .iter()
            .filter(|(_, v)| wants(v))
            .map(|(k, _)| k.clone())
            .collect();
        for key in picked {
            if let Some(value) = self.get_mut(&key) {
                edit(value);
            }
        }
    }
}

/// The whole desired state. Maps are ordered so every describe is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub account_id: String,
    pub region: String,
    /// Configuration of each agent (`serve`'s options), set on every state it holds; the
    /// store's records keep the defaults, so agents sharing a store never overwrite each
    /// other's.
    pub quotas: Quotas,
    pub vpcs: BTreeMap<String, Vpc>,
    /// Shared with the copies a change is validated on: a change clones only the groups it
    /// edits, and a copy of the state shares the map itself ([`Table`]).
    pub groups: Table<Arc<SecurityGroup>>,
    /// A persistent map: a copy of the state (the mirror's to the agent, a read's snapshot)
    /// shares it in O(1), and a change copies O(log n) nodes.
    pub instances: Table<Instance>,
    /// Stored with the scope's own record (few per VPC).
    #[serde(default)]
    pub subnets: BTreeMap<String, Subnet>,
    /// Stored one record each, like instances.
    #[serde(default)]
    pub network_interfaces: Table<NetworkInterface>,
    #[serde(default)]
    pub prefix_lists: BTreeMap<String, PrefixList>,
    #[serde(default)]
    pub launch_templates: BTreeMap<String, LaunchTemplate>,
    #[serde(default)]
    pub flow_logs: BTreeMap<String, FlowLog>,
    /// Configuration, not stored: where this account's flow-log files may go.
    #[serde(skip)]
    pub flow_log_dir: FlowLogDir,
    /// Configuration, not stored (`serve --refuse-deleting-self-referenced-groups`): the user
    /// guide's rule that a group referenced by its own rules can't be deleted. AWS itself
    /// deletes such a group (docs/aws-differences.md), and so do we by default.
    #[serde(skip)]
    pub refuse_deleting_self_referenced: bool,
}

impl State {
    /// The state at first start: a default VPC (with an IPv6 block) and its default group.
    pub fn initial(ids: &mut dyn IdSource) -> State {
        State::initial_in(Scope::DEFAULT_ACCOUNT, LOCAL, ids)
    }

    /// The state of an account in a region when it is first used: its default VPC (with an IPv6
    /// block) and the VPC's default group.
    pub fn initial_in(account_id: &str, region: &str, ids: &mut dyn IdSource) -> State {
        let mut state = State {
            account_id: account_id.into(),
            region: region.into(),
            quotas: Quotas::default(),
            vpcs: BTreeMap::new(),
            groups: Table::new(),
            instances: Table::new(),
            subnets: BTreeMap::new(),
            network_interfaces: Table::new(),
            prefix_lists: BTreeMap::new(),
            launch_templates: BTreeMap::new(),
            flow_logs: BTreeMap::new(),
            flow_log_dir: FlowLogDir::default(),
            refuse_deleting_self_referenced: false,
        };
        let vpc = Vpc {
            id: ids.next_id("vpc"),
            cidr: "172.31.0.0/16".parse().expect("constant CIDR"),
            ipv6_cidr: Some("fd00:ec2::/56".parse().expect("constant CIDR")),
            is_default: true,
            tags: Vec::new(),
            enable_dns_support: None,
            enable_dns_hostnames: None,
            usage_metrics: false,
        };
        state.add_vpc(vpc, ids);
        state
    }

    /// Adds a VPC with its `default` group (self-referencing inbound, all outbound) and, for a
    /// default VPC, its default subnets.
    pub fn add_vpc(&mut self, vpc: Vpc, ids: &mut dyn IdSource) {
        if vpc.is_default {
            for subnet in super::subnet::default_subnets(&self.region, &vpc) {
                self.subnets.insert(subnet.id.clone(), subnet);
            }
        }
        let group_id = ids.next_id("sg");
        let egress = Rule::default_egress(ids, vpc.ipv6_cidr.is_some());
        let ingress = [Arc::new(Rule::new(
            ids.next_id("sgr"),
            Protocol::All,
            Peer::Group(group_id.clone()),
        ))]
        .into_iter()
        .collect();
        self.groups.insert(
            group_id.clone(),
            Arc::new(SecurityGroup {
                id: group_id,
                name: "default".into(),
                description: "default VPC security group".into(),
                vpc_id: vpc.id.clone(),
                ingress,
                egress,
                tags: Vec::new(),
            }),
        );
        self.vpcs.insert(vpc.id.clone(), vpc);
    }

    /// The account and region this state belongs to.
    pub fn scope(&self) -> Scope {
        Scope {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
        }
    }

    pub fn default_vpc(&self) -> Option<&Vpc> {
        self.vpcs.values().find(|v| v.is_default)
    }

    pub fn group_arn(&self, group_id: &str) -> String {
        format!(
            "arn:aws:ec2:{}:{}:security-group/{group_id}",
            self.region, self.account_id
        )
    }

    pub fn rule_arn(&self, rule_id: &str) -> String {
        format!(
            "arn:aws:ec2:{}:{}:security-group-rule/{rule_id}",
            self.region, self.account_id
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressFamily {
    IPv4,
    IPv6,
}

impl AddressFamily {
    pub fn parse(text: &str) -> ApiResult<AddressFamily> {
        match text {
            "IPv4" => Ok(AddressFamily::IPv4),
            "IPv6" => Ok(AddressFamily::IPv6),
            other => Err(ApiError::invalid_value(format!(
                "Invalid value '{other}' for AddressFamily. Valid values: IPv4, IPv6"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AddressFamily::IPv4 => "IPv4",
            AddressFamily::IPv6 => "IPv6",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub cidr: IpNet,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    pub id: String,
    pub name: String,
    pub family: AddressFamily,
    pub max_entries: u32,
    /// Entries of every version; `versions[v - 1]` is version `v`, the last one is current.
    pub versions: Vec<Vec<Entry>>,
    pub tags: Vec<Tag>,
    /// Modified since it was created: described as `modify-complete`, as AWS does (Terraform's
    /// modify waiter wants exactly that state).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub modified: bool,
    /// Deleted while rules referenced it: AWS accepts the deletion and carries it out
    /// asynchronously; here it completes with the change that removes the last reference
    /// ([`State::settle_deletions`]), and until then the list is `delete-in-progress`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl PrefixList {
    pub fn version(&self) -> u64 {
        self.versions.len() as u64
    }
    pub fn entries(&self) -> &[Entry] {
        self.versions.last().map(Vec::as_slice).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub create_time: String,
    pub version_description: Option<String>,
    pub data: LaunchTemplateData,
    pub tags: Vec<Tag>,
}

/// A flow log: which traffic of an interface (or of every interface of a VPC) is recorded, how
/// (the format's `${field}` names), how often and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowLog {
    pub id: String,
    /// An instance's `eni-` ID or a `vpc-` ID.
    pub resource_id: String,
    /// `ACCEPT`, `REJECT` or `ALL`.
    pub traffic_type: String,
    /// Ours: `file` (then `destination` is the caller's `LogDestination`, a name in the
    /// account's flow-log directory or an absolute path inside it) or `stdout`.
    pub destination_type: String,
    pub destination: Option<String>,
    pub log_format: String,
    /// Seconds: 60 or 600.
    pub max_aggregation_interval: u32,
    pub creation_time: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl FlowLog {
    /// Whether the flow log covers `interface` (itself, its subnet or its VPC).
    pub fn covers(&self, interface: &NetworkInterface) -> bool {
        self.resource_id == interface.id
            || self.resource_id == interface.subnet_id
            || self.resource_id == interface.vpc_id
    }
    pub fn logs_accepted(&self) -> bool {
        self.traffic_type != "REJECT"
    }
    pub fn logs_rejected(&self) -> bool {
        self.traffic_type != "ACCEPT"
    }
}

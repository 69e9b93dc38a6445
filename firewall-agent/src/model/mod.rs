//! The desired state and its rules: VPCs, security groups with their rules, and the instances
//! (workloads) they are attached to. Pure: no I/O. Every operation validates fully before it
//! changes anything and reports failures as AWS error codes ([`ApiError`]).

pub mod launch_templates;
pub mod ops;
pub mod prefix_lists;
pub mod rules;
pub mod tags;
pub mod views;
pub mod vpcs;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

pub use self::rules::{Peer, Protocol, Rule};

/// An error as the EC2 API reports it: a code such as `InvalidGroup.NotFound` and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
        }
    }
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }
    pub fn missing(parameter: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("The request must contain the parameter {parameter}"),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Limits that AWS calls quotas; configurable in the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Inbound rules per group per address family (outbound likewise).
    pub rules_per_group: usize,
    pub groups_per_instance: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            rules_per_group: 60,
            groups_per_instance: 5,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    pub tags: Vec<Tag>,
}

impl SecurityGroup {
    pub fn rules(&self, egress: bool) -> &Vec<Rule> {
        if egress { &self.egress } else { &self.ingress }
    }
    pub fn rules_mut(&mut self, egress: bool) -> &mut Vec<Rule> {
        if egress {
            &mut self.egress
        } else {
            &mut self.ingress
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

/// A workload: our `run-instances` registers an existing host-side veth and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub reservation_id: String,
    pub eni_id: String,
    pub vpc_id: String,
    pub state: InstanceState,
    pub private_ip: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    /// The host-side veth of the workload.
    pub interface: String,
    pub group_ids: Vec<String>,
    /// RFC 3339 launch time.
    pub launch_time: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The whole desired state. Maps are ordered so every describe is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub account_id: String,
    pub region: String,
    pub quotas: Quotas,
    pub vpcs: BTreeMap<String, Vpc>,
    pub groups: BTreeMap<String, SecurityGroup>,
    pub instances: BTreeMap<String, Instance>,
    #[serde(default)]
    pub prefix_lists: BTreeMap<String, prefix_lists::PrefixList>,
    #[serde(default)]
    pub launch_templates: BTreeMap<String, launch_templates::LaunchTemplate>,
}

impl State {
    /// The state at first start: a default VPC (with an IPv6 block) and its default group.
    pub fn initial(ids: &mut dyn IdSource) -> State {
        let mut state = State {
            account_id: "000000000000".into(),
            region: "local".into(),
            quotas: Quotas::default(),
            vpcs: BTreeMap::new(),
            groups: BTreeMap::new(),
            instances: BTreeMap::new(),
            prefix_lists: BTreeMap::new(),
            launch_templates: BTreeMap::new(),
        };
        let vpc = Vpc {
            id: ids.next_id("vpc"),
            cidr: "172.31.0.0/16".parse().expect("constant CIDR"),
            ipv6_cidr: Some("fd00:ec2::/56".parse().expect("constant CIDR")),
            is_default: true,
            tags: Vec::new(),
        };
        state.add_vpc(vpc, ids);
        state
    }

    /// Adds a VPC with its `default` group (self-referencing inbound, all outbound).
    pub fn add_vpc(&mut self, vpc: Vpc, ids: &mut dyn IdSource) {
        let group_id = ids.next_id("sg");
        let mut egress = vec![Rule::new(
            ids.next_id("sgr"),
            Protocol::All,
            Peer::Cidr4(Ipv4Net::default()),
        )];
        if vpc.ipv6_cidr.is_some() {
            egress.push(Rule::new(
                ids.next_id("sgr"),
                Protocol::All,
                Peer::Cidr6(Ipv6Net::default()),
            ));
        }
        let ingress = vec![Rule::new(
            ids.next_id("sgr"),
            Protocol::All,
            Peer::Group(group_id.clone()),
        )];
        self.groups.insert(
            group_id.clone(),
            SecurityGroup {
                id: group_id,
                name: "default".into(),
                description: "default VPC security group".into(),
                vpc_id: vpc.id.clone(),
                ingress,
                egress,
                tags: Vec::new(),
            },
        );
        self.vpcs.insert(vpc.id.clone(), vpc);
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

    /// Instances whose addresses count as members of `group_id` for referencing rules: running
    /// instances with the group attached.
    pub fn members_of<'a>(&'a self, group_id: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| {
            i.state == InstanceState::Running && i.group_ids.iter().any(|g| g == group_id)
        })
    }
}

/// Where new resource IDs come from (random in the agent, deterministic in tests).
pub trait IdSource {
    /// A new ID such as `sg-0123456789abcdef0` for the prefix `sg`.
    fn next_id(&mut self, prefix: &str) -> String;
    /// The current time in RFC 3339, for launch times.
    fn now(&mut self) -> String;
}

/// IDs as AWS makes them: the prefix and 17 random lowercase hex digits.
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&mut self, prefix: &str) -> String {
        let n: u128 = rand::random();
        format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
    }
    fn now(&mut self) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        rfc3339(secs)
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS+00:00` (what the AWS CLI prints).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
pub mod testing {
    //! Deterministic IDs for tests.
    use super::IdSource;

    #[derive(Default)]
    pub struct SeqIds(u64);

    impl SeqIds {
        /// Continues after `n` IDs.
        pub fn at(n: u64) -> SeqIds {
            SeqIds(n)
        }
    }

    impl IdSource for SeqIds {
        fn next_id(&mut self, prefix: &str) -> String {
            self.0 += 1;
            format!("{prefix}-{:017x}", self.0)
        }
        fn now(&mut self) -> String {
            "2026-01-01T00:00:00+00:00".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40+00:00");
    }

    #[test]
    fn first_start_has_a_default_vpc_with_ipv6_and_its_default_group() {
        let state = State::initial(&mut testing::SeqIds::default());
        let vpc = state.default_vpc().expect("default VPC");
        assert!(vpc.ipv6_cidr.is_some());
        let group = state.groups.values().next().expect("default group");
        assert_eq!(group.name, "default");
        assert_eq!(group.ingress.len(), 1);
        assert_eq!(group.ingress[0].peer, Peer::Group(group.id.clone()));
        assert_eq!(group.egress.len(), 2, "0.0.0.0/0 and ::/0");
    }
}

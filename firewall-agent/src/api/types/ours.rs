//! Our own actions, beside EC2's: the data plane's counters, its check against the state, and
//! the nftables export.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A request without members.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmptyRequest {}

/// Drops and passes by reason (the kernel's closed sets, `DropReason` and `PassReason`), packets
/// admitted per `sgr-` rule, and the number of tracked flows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DataplaneStatistics {
    pub drops: BTreeMap<String, u64>,
    pub passes: BTreeMap<String, u64>,
    pub rule_hits: BTreeMap<String, u64>,
    pub tracked_flows: u64,
    /// Flow-log events lost because the kernel's ring buffer was full.
    #[serde(default)]
    pub flow_log_lost_records: u64,
}

/// The policy maps read back from the kernel against what the state compiles to: in sync when
/// every `IFACES`, `PEERS` and `PORTS` entry is the compiled one and there are no others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DataplaneVerification {
    pub in_sync: bool,
    /// Entries the kernel holds, by map.
    pub interfaces: u64,
    pub peers: u64,
    pub ports: u64,
    /// One line per entry missing, unexpected or holding another value (at most 100).
    pub differences: Vec<String>,
}

/// `export --format nftables [--linear]`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ExportNftablesRequest {
    /// Only `nftables`.
    pub format: Option<String>,
    /// `sets` (the default) or `linear`.
    pub layout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ExportNftablesResponse {
    /// The ruleset, for `nft -f`.
    pub ruleset: String,
}

/// `explain-verdict`: one packet, seen from the instance, and what the kernel's maps decide.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct ExplainVerdictRequest {
    /// The instance, whose primary network interface the packet is judged on...
    pub instance_id: String,
    /// ...or the network interface itself (attached).
    pub network_interface_id: Option<String>,
    /// `ingress` (from the peer to the instance) or `egress` (from the instance to the peer).
    pub direction: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    pub protocol: String,
    /// TCP/UDP: the port the rules match, the instance's for ingress, the peer's for egress.
    pub port: Option<i32>,
    /// ICMP/ICMPv6: the type and code (default: echo request, code 0).
    pub icmp_type: Option<i32>,
    pub icmp_code: Option<i32>,
    /// The other endpoint's address.
    pub peer: String,
    /// TCP/UDP: the other side's port (the peer's for ingress, the instance's for egress); with
    /// it, a tracked flow of these endpoints is found and decides.
    pub peer_port: Option<i32>,
}

/// A tracked flow: the interface and the endpoints of the packet that opened it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TrackedFlow {
    pub interface: String,
    /// Which rules admitted the opening packet: `ingress` or `egress`.
    pub direction: String,
    pub protocol: String,
    pub source: String,
    pub source_port: u16,
    pub destination: String,
    pub destination_port: u16,
}

/// What decides the packet, and why.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ExplainVerdictResponse {
    /// `allowed` or `denied`.
    pub verdict: String,
    /// `conntrack`, `rule`, `no-rule`, `not-running` (the instance is stopped) or `not-enforced`
    /// (no program judges its interface).
    pub reason: String,
    /// The rule whose entry the kernel's lookups found (its hits counter counts the packet).
    pub security_group_rule: Option<super::rules::SecurityGroupRule>,
    /// The instance's groups, whose rules were looked up.
    pub group_ids: Vec<String>,
    /// The live tracked flow that passes the packet.
    pub tracked_flow: Option<TrackedFlow>,
    pub message: String,
}

/// Ours, beside a `DryRunOperation` error: what the change would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangePreview {
    /// Rules the change creates, or makes apply to more running instances.
    pub rules_added: Vec<PreviewRule>,
    /// Rules the change deletes, or makes apply to fewer running instances.
    pub rules_removed: Vec<PreviewRule>,
    /// The tracked flows the changed rules no longer allow (what `FlushFlows` would cut).
    pub flows_no_longer_allowed: Vec<TrackedFlow>,
}

/// A rule, and the running instances it starts or stops applying to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PreviewRule {
    pub security_group_rule: super::rules::SecurityGroupRule,
    pub instance_ids: Vec<String>,
}

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

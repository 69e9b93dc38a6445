//! The desired state and its rules (AWS semantics), split by resource. Pure: no I/O. Every
//! operation takes its typed request (`crate::api::types`), validates fully before it changes
//! anything, and answers its typed response or an [`ApiError`] having changed nothing.
//!
//! Layers, each using only those above it:
//! - `ids`, `text`, `rule`, `rule_list`, `tagging`: IDs and timestamps, allowed text, one rule,
//!   a group's rules of one direction (indexed, shared between versions), tags;
//! - `state`: the resources and the whole state;
//! - `lookup`, `query`, `permission`, `views`: finding what a request names, filters and pages,
//!   `IpPermission` → rules with their checks, the answers' views;
//! - `network`: subnets and network interfaces, and what derives from them (the interfaces
//!   enforced, the members of a group);
//! - `local`: the names and addresses of the instances the agent launches itself;
//! - `group`, `group_rules`, `instance`, `vpc`, `subnet`, `network_interface`, `prefix_list`,
//!   `launch_template`, `tags`, `flow_log`: the operations, one resource each;
//! - `upgrade`: a state of an earlier release brought up to date when read.

pub mod account;
pub mod catalogue;
pub mod flow_log;
pub mod group;
pub mod group_rules;
pub mod ids;
pub mod instance;
pub mod instance_attributes;
pub mod launch_template;
pub mod local;
pub mod lookup;
pub mod network;
pub mod network_interface;
pub mod permission;
pub mod prefix_list;
pub mod preview;
pub mod query;
pub mod regions;
pub mod route_table;
pub mod rule;
pub mod rule_edit;
pub mod rule_list;
pub mod state;
pub mod subnet;
pub mod tagging;
pub mod tags;
pub mod termination;
pub mod text;
mod upgrade;
pub mod views;
pub mod vpc;
pub mod vpc_attributes;

#[cfg(test)]
mod tests;

#[cfg(test)]
pub use ids::testing;
pub use ids::{IdSource, RandomIds, rfc3339};
pub use rule::{Peer, Protocol, Rule};
pub use rule_list::{RuleDiff, RuleList};
pub use state::{
    AddressFamily, Attachment, Entry, FlowLog, Instance, InstanceState, LaunchTemplate,
    NetworkInterface, PrefixList, Quotas, SecurityGroup, State, Subnet, Table, TableExt, Vpc,
};
pub use tagging::Tag;

pub use crate::api::{ApiError, ApiResult};

//! The typed request and response of every action, by family. These are the wire shapes: serde
//! derives their members (PascalCase, in the EC2 service model's order, which is the order the
//! AWS CLI prints), so each member is spelled once, and every front end (the JSON socket, the
//! CLI, later EC2 Query/XML) reads and writes these types.

pub mod account;
pub mod common;
pub mod flow_logs;
pub mod groups;
pub mod instance_details;
pub mod instances;
pub mod launch_templates;
pub mod network_interfaces;
pub mod ours;
pub mod prefix_lists;
pub mod rules;
pub mod subnets;
pub mod tags;
pub mod vpcs;

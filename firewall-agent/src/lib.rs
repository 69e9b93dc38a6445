//! The firewall agent: the catalogue of operations (`api`), the desired state and its AWS
//! semantics (`model`), its compilation into map entries (`compiler`), the kernel side
//! (`dataplane`), durability (`store`), the agent that ties them (`agent`), the daemon and its
//! JSON front end (`server`, `front`), and the AWS-shaped command line (`cli`, `client`).
//!
//! Data flows one way: request → typed operation → model → compiler → map delta → kernel.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod compiler;
pub mod dataplane;
pub mod flowlogs;
pub mod front;
#[cfg(test)]
mod golden_instance_tests;
#[cfg(test)]
mod golden_network_tests;
#[cfg(test)]
mod golden_tests;
pub mod metrics;
pub mod model;
pub use compiler::nft;
pub mod server;
pub mod store;
pub mod workloads;

//! The firewall agent: desired state (`model`), its compilation into map entries (`compiler`),
//! the kernel side (`dataplane`), durability (`store`), the control API (`server`) and its
//! AWS-shaped command line (`cli`, `client`).
//!
//! Data flows one way: request → model → compiler → map diff → kernel.

pub mod agent;
pub mod api;
pub mod cli;
pub mod client;
pub mod compiler;
pub mod dataplane;
pub mod front;
#[cfg(test)]
mod golden_tests;
pub mod model;
pub use compiler::nft;
pub mod server;
pub mod store;

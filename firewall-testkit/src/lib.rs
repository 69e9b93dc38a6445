//! The test kit shared by the netns integration tests (`tests/`), the packet-level tests
//! (`firewall-agent/tests`) and the benchmarks (`firewall-agent/benches/suite`), one concern per
//! module:
//!
//! * [`shell`] — unique names and running commands (also inside a namespace);
//! * [`netns`] — network namespaces, deleted on drop (also on panic), and threads inside them;
//! * [`topology`] — a host namespace routing between one namespace per workload;
//! * [`hosts`] — several such hosts joined by a bridge, and a real etcd between them;
//! * [`frame`] — the one builder of Ethernet + IPv4/IPv6 + L4 frames;
//! * [`agent`] — the agent binary run as a process, and its CLI;
//! * [`browser`] — chromium through chromedriver (WebDriver), inside a test's namespace;
//! * [`cni`] — CNI plugins run as a runtime runs them, a bridge + firewall-sg chain;
//! * [`podman`] — a private podman (CNI backend) with a locally built busybox image;
//! * [`local`] — local instances the agent launches, their namespaces deleted on drop;
//! * [`harness`] — the data plane loaded for BPF_PROG_TEST_RUN, one workload on `lo`;
//! * [`model`] — requests run directly on the agent's model;
//! * [`reference`] — what security groups mean, evaluated plainly, for differential tests;
//! * [`random`] — a seeded generator of rulesets, changes and frames for those tests;
//! * [`terraform`] — Terraform with the AWS provider from the machine's mirror, in a namespace;
//! * [`traffic`] — echo servers, TCP/UDP round trips, ping, `eventually`;
//! * [`metrics`] — an agent's `/metrics` scraped, and its text parsed strictly.
//!
//! Test traffic stays between the namespaces a test creates, or on loopback: nothing here adds a
//! route out of them. The kit calls the agent library only from [`model`] (the model's
//! operations) and [`harness`] (compiler and data plane).

pub mod agent;
pub mod aws;
pub mod browser;
pub mod cni;
pub mod frame;
pub mod harness;
pub mod hosts;
pub mod local;
pub mod metrics;
pub mod model;
pub mod netns;
pub mod podman;
pub mod random;
pub mod reference;
pub mod shell;
pub mod terraform;
pub mod topology;
pub mod traffic;
pub mod uplink;

//! `firewall-agent serve`'s options: where the agent keeps its state and pins, how it
//! attaches, its quotas, its front ends, the shared store, and what widens its reach on the host.

use std::path::PathBuf;

use crate::{dataplane, flowlogs};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where the desired state is kept.
    #[arg(long, default_value = "/var/lib/firewall-agent")]
    pub state_dir: PathBuf,
    /// The control socket (mode 0600); set from the global `--socket`.
    #[arg(skip)]
    pub socket: PathBuf,
    /// Set when the agent left `ip netns exec`'s mount namespace for the host's: its pins then
    /// go in a directory of its network namespace's own.
    #[arg(skip)]
    pub netns_pins: bool,
    /// Where bpffs is. Mounted there when missing; under `ip netns exec` (a private mount
    /// namespace) the host's bpffs at this path is used, so the pins outlive the agent.
    #[arg(long, default_value = "/sys/fs/bpf")]
    pub bpffs: PathBuf,
    /// Idle timeout of established TCP flows in seconds (AWS TcpEstablishedTimeout, 60-432000).
    #[arg(long, default_value_t = 432_000, value_parser = clap::value_parser!(u32).range(60..=432_000))]
    pub tcp_established_timeout: u32,
    /// Tracked flows across all workloads; when the table is full new flows are refused (and
    /// counted as `conntrack-full`), established ones are never evicted. Fixed once pinned.
    #[arg(long, default_value_t = firewall_common::capacity::CONNTRACK)]
    pub conntrack_capacity: u32,
    /// Where what workloads send (SG outbound rules) is judged: `tc` (tc ingress of the host
    /// veth) or `xdp` (its native XDP hook; a veth that refuses XDP keeps tc). What is delivered
    /// to them is always judged at tc egress. Pinned links of the other mode are switched.
    #[arg(long, value_enum, default_value_t = dataplane::AttachMode::Tc)]
    pub attach: dataplane::AttachMode,
    /// Quota: inbound (and, separately, outbound) rules per group per address family.
    #[arg(long, default_value_t = 60)]
    pub rules_per_group: usize,
    /// Quota: security groups per instance (AWS's default 5, at most 16 as on AWS: the data plane
    /// composes up to 16 groups' chains per policy).
    #[arg(long, default_value_t = 5, value_parser = groups_quota)]
    pub groups_per_instance: usize,
    /// Quota: local instances this agent runs (namespaces it builds), all accounts together;
    /// past it `run-instances` answers `InstanceLimitExceeded`.
    #[arg(long, default_value_t = 256)]
    pub max_local_instances: usize,
    /// Quota: VPCs per account and region (AWS's default 5; `VpcLimitExceeded`).
    #[arg(long, default_value_t = 5)]
    pub vpcs_per_region: usize,
    /// Quota: network interfaces (one per instance, registered or local) per account and region
    /// (AWS's default 5000; `NetworkInterfaceLimitExceeded`).
    #[arg(long, default_value_t = 5000)]
    pub interfaces_per_region: usize,
    /// Let the agent's network namespace reach local instances: each VPC's bridge gets the
    /// block's fourth address there (a connected route). A VPC block that overlaps a route or
    /// address the namespace already has is then refused (`InvalidVpc.Range`). Off by default:
    /// local instances never change the host's routing.
    #[arg(long)]
    pub host_routes: bool,
    /// An interface that may be registered (`run-instances --interface`, the CNI plugin)
    /// whatever it is (shell-style pattern; repeat for several). Without it only veths that do
    /// not carry the default route are.
    #[arg(long = "allow-interface", value_name = "PATTERN")]
    pub allow_interfaces: Vec<String>,
    /// Where the EC2 Query API listens (for the AWS CLI, boto3 and the SDKs). Loopback unless
    /// another address is given.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub ec2_listen: std::net::SocketAddr,
    /// The EC2 API's keys: an AWS shared-credentials file (`aws_access_key_id`,
    /// `aws_secret_access_key`, optional `aws_account_id` per section). Default: `credentials` in
    /// the state directory, written with a new key pair at first start.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Ours: how often flow-log records are written, in seconds (default 60, the shortest
    /// MaxAggregationInterval; shorter for tests).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub flow_log_flush_interval: u64,
    /// Where flow-log files go: `LogDestination` is a name in `<DIR>/<account-id>/` (made 0700
    /// when first written), never a path elsewhere. Default: `flow-logs` in the state directory.
    #[arg(long, value_name = "DIR")]
    pub flow_log_dir: Option<PathBuf>,
    /// The AWS user guide's rule instead of AWS's behaviour: a security group referenced by its
    /// own rules can't be deleted (`DependencyViolation`) until they are revoked. AWS deletes
    /// it, rules and all (docs/aws-differences.md).
    #[arg(long)]
    pub refuse_deleting_self_referenced_groups: bool,
    /// Run each local instance's user data (`RunInstances` `UserData`) as a shell script in
    /// its network namespace when the agent builds it, its output kept for
    /// `get-console-output`. Off by default: the script runs as root on the host (in the
    /// instance's network namespace only), so any key that may launch instances could run it.
    #[arg(long)]
    pub run_user_data: bool,
    /// Quota: flow logs per account, all regions together (`FlowLogsLimitExceeded`).
    #[arg(long, default_value_t = flowlogs::Config::PER_ACCOUNT)]
    pub flow_logs_per_account: usize,
    /// Bytes an account's flow-log files may hold together; past it records are dropped (and
    /// logged) until they are rotated or removed.
    #[arg(long, default_value_t = flowlogs::Config::BYTES_PER_ACCOUNT)]
    pub flow_log_bytes_per_account: u64,
    /// Keep the desired state in etcd, shared with the other hosts' agents, instead of the
    /// embedded store (`http://host:2379`, several separated by commas). The redb file in
    /// `--state-dir` then caches the last known state.
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// PEM file of the CA that signed the etcd servers' certificates (`https://` endpoints).
    #[arg(long)]
    pub etcd_cacert: Option<PathBuf>,
    /// PEM certificate of this agent, for etcd's client-certificate authentication.
    #[arg(long, requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM private key of `--etcd-cert`.
    #[arg(long, requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// With etcd: the name of this host; its agent enforces the instances registered through
    /// it (default: the hostname).
    #[arg(long)]
    pub host_id: Option<String>,
    /// With etcd: seconds after which a host whose agent stopped renewing its lease has its
    /// instances marked `Server.HostLost`.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(2..=3600))]
    pub host_lease_ttl: i64,
}

/// `--groups-per-instance`: 1 to [`firewall_common::POLICY_CHAINS`] (16, AWS's largest).
fn groups_quota(value: &str) -> Result<usize, String> {
    let limit = firewall_common::POLICY_CHAINS;
    match value.parse::<usize>() {
        Ok(n) if (1..=limit).contains(&n) => Ok(n),
        _ => Err(format!("a number of groups from 1 to {limit}")),
    }
}

#[cfg(test)]
mod tests {
    use super::groups_quota;

    #[test]
    fn groups_per_instance_is_refused_beyond_the_chains_a_policy_composes() {
        assert_eq!(groups_quota("5"), Ok(5));
        assert_eq!(groups_quota("16"), Ok(16));
        for refused in ["0", "17", "-1", "five"] {
            assert!(groups_quota(refused).is_err(), "{refused}");
        }
    }
}

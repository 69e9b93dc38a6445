//! The subnet and network-interface verbs and their options, named as the AWS CLI names them.

use clap::{Args, Subcommand};

use super::args::Paging;

#[derive(Debug, Subcommand)]
pub enum NetworkVerb {
    /// Creates a subnet in a VPC (a CIDR block inside the VPC's, /16 to /28).
    CreateSubnet(CreateSubnet),
    /// Describes subnets.
    DescribeSubnets(DescribeSubnets),
    /// Deletes a subnet that holds no network interface.
    DeleteSubnet(SubnetId),
    /// Creates a network interface in a subnet, with its security groups.
    CreateNetworkInterface(CreateNetworkInterface),
    /// Describes network interfaces.
    DescribeNetworkInterfaces(DescribeNetworkInterfaces),
    /// Deletes a detached network interface.
    DeleteNetworkInterface(NetworkInterfaceId),
    /// Attaches a network interface to an instance as `eth<device-index>`.
    AttachNetworkInterface(AttachNetworkInterface),
    /// Detaches a secondary network interface (by its attachment ID).
    DetachNetworkInterface(DetachNetworkInterface),
    /// Changes one attribute of a network interface: its groups, description,
    /// source/destination check or delete-on-termination.
    ModifyNetworkInterfaceAttribute(ModifyNetworkInterfaceAttribute),
    /// Describes the VPCs' main route tables (their local routes).
    DescribeRouteTables(DescribeRouteTables),
}

#[derive(Debug, Args)]
pub struct DescribeRouteTables {
    #[arg(long, num_args = 1..)]
    pub route_table_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct CreateSubnet {
    #[arg(long)]
    pub vpc_id: Option<String>,
    #[arg(long)]
    pub cidr_block: Option<String>,
    /// A /64 of the VPC's IPv6 block.
    #[arg(long)]
    pub ipv6_cidr_block: Option<String>,
    #[arg(long)]
    pub availability_zone: Option<String>,
    #[arg(long)]
    pub availability_zone_id: Option<String>,
    /// JSON tag specifications (`ResourceType` `subnet`).
    #[arg(long)]
    pub tag_specifications: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeSubnets {
    #[arg(long, num_args = 1..)]
    pub subnet_ids: Vec<String>,
    /// `Name=vpc-id,Values=vpc-…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct SubnetId {
    #[arg(long)]
    pub subnet_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateNetworkInterface {
    #[arg(long)]
    pub subnet_id: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Default: the next free address of the subnet.
    #[arg(long)]
    pub private_ip_address: Option<String>,
    /// Security group IDs (default: the VPC's default group).
    #[arg(long, num_args = 1..)]
    pub groups: Vec<String>,
    #[arg(long)]
    pub ipv6_address_count: Option<u32>,
    /// `Ipv6Address=…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub ipv6_addresses: Vec<String>,
    /// JSON tag specifications (`ResourceType` `network-interface`).
    #[arg(long)]
    pub tag_specifications: Option<String>,
    #[arg(long)]
    pub client_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeNetworkInterfaces {
    #[arg(long, num_args = 1..)]
    pub network_interface_ids: Vec<String>,
    /// `Name=group-id,Values=sg-…` (repeatable) or JSON.
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct NetworkInterfaceId {
    #[arg(long)]
    pub network_interface_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachNetworkInterface {
    #[arg(long)]
    pub network_interface_id: Option<String>,
    #[arg(long)]
    pub instance_id: Option<String>,
    /// 1 to 7: the interface appears in the instance as `eth<N>`.
    #[arg(long)]
    pub device_index: Option<u32>,
    #[arg(long)]
    pub network_card_index: Option<u32>,
}

/// The AWS CLI's `--force` / `--no-force`.
#[derive(Debug, Args)]
pub struct DetachNetworkInterface {
    #[arg(long)]
    pub attachment_id: Option<String>,
    #[arg(long, overrides_with = "no_force")]
    pub force: bool,
    #[arg(long)]
    pub no_force: bool,
}

#[derive(Debug, Args)]
pub struct ModifyNetworkInterfaceAttribute {
    #[arg(long)]
    pub network_interface_id: Option<String>,
    /// The new security groups (replace the current ones).
    #[arg(long, num_args = 1..)]
    pub groups: Vec<String>,
    /// `Value=…` or JSON.
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long, overrides_with = "no_source_dest_check")]
    pub source_dest_check: bool,
    #[arg(long)]
    pub no_source_dest_check: bool,
    /// `AttachmentId=eni-attach-…,DeleteOnTermination=true` or JSON.
    #[arg(long)]
    pub attachment: Option<String>,
    /// Ours: also cut the tracked flows the new groups no longer allow.
    #[arg(long)]
    pub flush_flows: bool,
}

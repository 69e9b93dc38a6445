//! The verbs that read what instances are launched with, named as the AWS CLI names them.

use clap::{Args, Subcommand};

use super::args::Paging;

#[derive(Debug, Subcommand)]
pub enum InstanceVerb {
    /// Describes one attribute of an instance (`--attribute userData`, `instanceType`,
    /// `disableApiTermination`, …).
    DescribeInstanceAttribute(DescribeInstanceAttribute),
    /// Describes the instance types `run-instances --instance-type` takes.
    DescribeInstanceTypes(DescribeInstanceTypes),
    /// Describes the images `run-instances --image-id` takes.
    DescribeImages(DescribeImages),
    /// Describes the CPU-credit option of burstable instances.
    DescribeInstanceCreditSpecifications(DescribeCreditSpecifications),
    /// Describes EBS volumes (instances here have none).
    DescribeVolumes(DescribeVolumes),
    /// What a local instance's user data printed (`serve --run-user-data`), base64.
    GetConsoleOutput(GetConsoleOutput),
}

#[derive(Debug, Args)]
pub struct GetConsoleOutput {
    #[arg(long)]
    pub instance_id: Option<String>,
    #[arg(long)]
    pub latest: bool,
}

#[derive(Debug, Args)]
pub struct DescribeInstanceAttribute {
    #[arg(long)]
    pub instance_id: Option<String>,
    #[arg(long)]
    pub attribute: Option<String>,
}

#[derive(Debug, Args)]
pub struct DescribeInstanceTypes {
    #[arg(long, num_args = 1..)]
    pub instance_types: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct DescribeImages {
    #[arg(long, num_args = 1..)]
    pub image_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub owners: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct DescribeCreditSpecifications {
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

#[derive(Debug, Args)]
pub struct DescribeVolumes {
    #[arg(long, num_args = 1..)]
    pub volume_ids: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub paging: Paging,
}

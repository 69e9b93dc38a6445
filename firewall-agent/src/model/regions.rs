//! The regions a request may name: AWS's commercial regions, and our own `local` (the local
//! socket's default). Each account and region holds its own resources.

use crate::api::{ApiError, ApiResult};

/// Our region: the local socket's default, and where the state of earlier versions lives.
pub const LOCAL: &str = "local";

/// AWS's commercial regions (as of 2026), then ours.
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    LOCAL,
];

/// `region` is one we know, or the error EC2 gives for an unknown one.
pub fn check(region: &str) -> ApiResult<()> {
    if REGIONS.contains(&region) {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidParameterValue",
            format!(
                "Invalid region '{region}'. Valid regions are the AWS region names (e.g. us-east-1) and 'local'."
            ),
        ))
    }
}

/// The availability zones of `region`, `(name, id)`: one per region here, `<region>a` with the
/// ID `<region>-az1` (docs/aws-differences.md).
pub fn zones(region: &str) -> Vec<(String, String)> {
    vec![(format!("{region}a"), format!("{region}-az1"))]
}

/// The ID of the zone `name` of `region` (empty for a zone the region does not have).
pub fn zone_id(region: &str, name: &str) -> String {
    zones(region)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| id)
        .unwrap_or_default()
}

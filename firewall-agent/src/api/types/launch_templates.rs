//! Launch templates: create, describe, delete, and the specification `run-instances` takes.

use serde::{Deserialize, Serialize};

use super::common::{Filter, Tag, TagSpecification};

/// What a template can carry. Only `SecurityGroupIds` affects enforcement; the rest is kept and
/// shown as given. Also the stored form (the members are the store's too).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchTemplateData {
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateLaunchTemplateRequest {
    pub launch_template_name: Option<String>,
    pub version_description: Option<String>,
    pub launch_template_data: Option<LaunchTemplateData>,
    pub tag_specifications: Vec<TagSpecification>,
    /// The idempotency token the SDKs fill in; accepted, not remembered.
    pub client_token: Option<String>,
}

/// The answer of create and delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchTemplateResponse {
    pub launch_template: LaunchTemplate,
}

/// A template as `describe-launch-templates` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchTemplate {
    pub launch_template_id: String,
    pub launch_template_name: String,
    pub create_time: String,
    pub created_by: String,
    pub default_version_number: u64,
    pub latest_version_number: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeLaunchTemplatesRequest {
    pub launch_template_ids: Vec<String>,
    pub launch_template_names: Vec<String>,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeLaunchTemplatesResponse {
    pub launch_templates: Vec<LaunchTemplate>,
}

/// `delete-launch-template`: a template by ID or by name.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteLaunchTemplateRequest {
    pub launch_template_id: Option<String>,
    pub launch_template_name: Option<String>,
}

/// The `LaunchTemplateSpecification` of `run-instances`: a template by ID or by name, and
/// optionally a version.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchTemplateSpecification {
    pub launch_template_id: Option<String>,
    pub launch_template_name: Option<String>,
    pub version: Option<String>,
}

//! Launch templates carrying security groups: `create-launch-template`,
//! `describe-launch-templates`, `delete-launch-template`, and `run-instances --launch-template`.
//! One version per template (no `create-launch-template-version`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, IdSource, State, Tag,
    ops::{Filter, TagSpecification, check_group_id_format, tags_for},
    views,
};

/// What a template can carry. Only `SecurityGroupIds` affects enforcement; the rest is kept and
/// shown as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LaunchTemplateData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplate {
    pub id: String,
    pub name: String,
    pub create_time: String,
    pub version_description: Option<String>,
    pub data: LaunchTemplateData,
    pub tags: Vec<Tag>,
}

fn view(state: &State, template: &LaunchTemplate) -> Value {
    let mut out = Map::new();
    out.insert("LaunchTemplateId".into(), json!(template.id));
    out.insert("LaunchTemplateName".into(), json!(template.name));
    out.insert("CreateTime".into(), json!(template.create_time));
    out.insert(
        "CreatedBy".into(),
        json!(format!("arn:aws:iam::{}:root", state.account_id)),
    );
    out.insert("DefaultVersionNumber".into(), json!(1));
    out.insert("LatestVersionNumber".into(), json!(1));
    if !template.tags.is_empty() {
        out.insert("Tags".into(), views::tags(&template.tags));
    }
    Value::Object(out)
}

fn missing_templates() -> &'static str {
    "At least one of the launch templates specified in the request does not exist."
}

/// Finds a template by ID or name, with AWS's error for each.
pub fn find<'a>(
    state: &'a State,
    id: Option<&str>,
    name: Option<&str>,
) -> ApiResult<&'a LaunchTemplate> {
    match (id, name) {
        (Some(id), _) => state
            .launch_templates
            .get(id)
            .ok_or_else(|| ApiError::new("InvalidLaunchTemplateId.NotFound", missing_templates())),
        (None, Some(name)) => state
            .launch_templates
            .values()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidLaunchTemplateName.NotFoundException",
                    missing_templates(),
                )
            }),
        (None, None) => Err(ApiError::missing("LaunchTemplateId or LaunchTemplateName")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateRequest {
    launch_template_name: Option<String>,
    version_description: Option<String>,
    launch_template_data: Option<LaunchTemplateData>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
}

pub fn create(state: &mut State, ids: &mut dyn IdSource, req: CreateRequest) -> ApiResult<Value> {
    let name = req
        .launch_template_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::missing("LaunchTemplateName"))?;
    let valid = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c));
    if !valid {
        return Err(ApiError::new(
            "InvalidLaunchTemplateName.MalformedException",
            "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'",
        ));
    }
    if state.launch_templates.values().any(|t| t.name == name) {
        return Err(ApiError::new(
            "InvalidLaunchTemplateName.AlreadyExistsException",
            format!("Launch template name already in use: {name}"),
        ));
    }
    let data = req
        .launch_template_data
        .ok_or_else(|| ApiError::missing("LaunchTemplateData"))?;
    for group in &data.security_group_ids {
        check_group_id_format(group)?;
    }
    if let Some(d) = &req.version_description
        && d.chars().count() > 255
    {
        return Err(ApiError::invalid_value(
            "A version description has at most 255 characters.",
        ));
    }
    let tags = tags_for(&req.tag_specifications, "launch-template")?;
    let template = LaunchTemplate {
        id: ids.next_id("lt"),
        name,
        create_time: ids.now(),
        version_description: req.version_description,
        data,
        tags,
    };
    let out = view(state, &template);
    state.launch_templates.insert(template.id.clone(), template);
    Ok(json!({ "LaunchTemplate": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRequest {
    #[serde(default)]
    launch_template_ids: Vec<String>,
    #[serde(default)]
    launch_template_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

pub fn describe(state: &State, req: DescribeRequest) -> ApiResult<Value> {
    for id in &req.launch_template_ids {
        find(state, Some(id), None)?;
    }
    for name in &req.launch_template_names {
        find(state, None, Some(name))?;
    }
    let mut out = Vec::new();
    for template in state.launch_templates.values() {
        let by_id =
            req.launch_template_ids.is_empty() || req.launch_template_ids.contains(&template.id);
        let by_name = req.launch_template_names.is_empty()
            || req.launch_template_names.contains(&template.name);
        if !(by_id && by_name) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            if let Some(hit) = filter.matches_tags(&template.tags) {
                keep &= hit;
                continue;
            }
            keep &= match filter.name.as_str() {
                "launch-template-name" => filter.matches(&template.name),
                "create-time" => filter.matches(&template.create_time),
                other => {
                    return Err(ApiError::invalid_value(format!(
                        "The filter '{other}' is invalid"
                    )));
                }
            };
        }
        if keep {
            out.push(view(state, template));
        }
    }
    Ok(json!({ "LaunchTemplates": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
}

pub fn delete(state: &mut State, req: DeleteRequest) -> ApiResult<Value> {
    let id = find(
        state,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
    )?
    .id
    .clone();
    let template = state.launch_templates.remove(&id).expect("found above");
    Ok(json!({ "LaunchTemplate": view(state, &template) }))
}

/// `LaunchTemplateSpecification` of `run-instances`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Specification {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    version: Option<String>,
}

/// The security groups a launch through `spec` gets (the template's).
pub fn groups_for_launch(state: &State, spec: &Specification) -> ApiResult<Vec<String>> {
    let template = find(
        state,
        spec.launch_template_id.as_deref(),
        spec.launch_template_name.as_deref(),
    )?;
    match spec.version.as_deref() {
        None | Some("1" | "$Latest" | "$Default") => Ok(template.data.security_group_ids.clone()),
        Some(other) => Err(ApiError::new(
            "InvalidLaunchTemplateId.VersionNotFound",
            format!(
                "Could not find launch template version {other} for template {}",
                template.id
            ),
        )),
    }
}

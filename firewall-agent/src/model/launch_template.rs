//! Launch templates carrying security groups: `create-launch-template`,
//! `describe-launch-templates`, `delete-launch-template`, and `run-instances --launch-template`.
//! One version per template (no `create-launch-template-version`).

use super::{
    ids::{IdSource, check_group_id_format},
    lookup,
    query::invalid_filter,
    state::{LaunchTemplate, State},
    tagging::{self, tags_for},
};
use crate::api::{
    ApiError, ApiResult,
    types::launch_templates::{
        self, CreateLaunchTemplateRequest, DeleteLaunchTemplateRequest,
        DescribeLaunchTemplatesRequest, DescribeLaunchTemplatesResponse, LaunchTemplateResponse,
        LaunchTemplateSpecification,
    },
};

/// A template as `describe-launch-templates` prints it (one version).
fn view(state: &State, template: &LaunchTemplate) -> launch_templates::LaunchTemplate {
    launch_templates::LaunchTemplate {
        launch_template_id: template.id.clone(),
        launch_template_name: template.name.clone(),
        create_time: template.create_time.clone(),
        created_by: format!("arn:aws:iam::{}:root", state.account_id),
        default_version_number: 1,
        latest_version_number: 1,
        tags: tagging::views(&template.tags),
    }
}

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateLaunchTemplateRequest,
) -> ApiResult<LaunchTemplateResponse> {
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
    Ok(LaunchTemplateResponse {
        launch_template: out,
    })
}

pub fn describe(
    state: &State,
    req: DescribeLaunchTemplatesRequest,
) -> ApiResult<DescribeLaunchTemplatesResponse> {
    for id in &req.launch_template_ids {
        lookup::launch_template(state, Some(id), None)?;
    }
    for name in &req.launch_template_names {
        lookup::launch_template(state, None, Some(name))?;
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
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push(view(state, template));
        }
    }
    Ok(DescribeLaunchTemplatesResponse {
        launch_templates: out,
    })
}

pub fn delete(
    state: &mut State,
    req: DeleteLaunchTemplateRequest,
) -> ApiResult<LaunchTemplateResponse> {
    let id = lookup::launch_template(
        state,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
    )?
    .id
    .clone();
    let template = state.launch_templates.remove(&id).expect("found above");
    Ok(LaunchTemplateResponse {
        launch_template: view(state, &template),
    })
}

/// The security groups a launch through `spec` gets (the template's).
pub fn groups_for_launch(
    state: &State,
    spec: &LaunchTemplateSpecification,
) -> ApiResult<Vec<String>> {
    let template = lookup::launch_template(
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

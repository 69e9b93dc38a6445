//! The text AWS accepts in names and descriptions.

use crate::api::{ApiError, ApiResult};

/// Characters AWS allows in names and descriptions.
pub fn is_aws_text_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}

/// A required name or description: present, at most 255 characters of the allowed set.
pub fn check_text(field: &str, value: Option<&str>) -> ApiResult<String> {
    let value = value.ok_or_else(|| ApiError::missing(field))?;
    if value.is_empty() {
        return Err(ApiError::missing(field));
    }
    if value.chars().count() > 255 {
        return Err(ApiError::invalid_value(format!(
            "Invalid value for {field}: it must be at most 255 characters."
        )));
    }
    if !value.chars().all(is_aws_text_char) {
        return Err(ApiError::invalid_value(format!(
            "Value ({value}) for parameter {field} is invalid. Character sets beyond ASCII are not supported; valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{{}}!$*"
        )));
    }
    Ok(value.to_string())
}

/// An optional rule description: at most 255 characters of the allowed set.
pub fn checked_description(description: &Option<String>) -> ApiResult<Option<String>> {
    match description {
        None => Ok(None),
        Some(text) if text.chars().count() > 255 => Err(ApiError::invalid_value(
            "Invalid rule description: it must be at most 255 characters.",
        )),
        Some(text) if !text.chars().all(is_aws_text_char) => Err(ApiError::invalid_value(format!(
            "Invalid rule description '{text}'. Valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{{}}!$*"
        ))),
        Some(text) => Ok(Some(text.clone())),
    }
}

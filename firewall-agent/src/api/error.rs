//! The one error type of the API: an AWS error code such as `InvalidGroup.NotFound` and its
//! message. Every front end renders it in its own wire shape (the JSON socket's `{"Error": …}`,
//! the CLI's `An error occurred (Code) when calling the X operation: …`).

use serde::de::DeserializeOwned;

use super::types::ours::ChangePreview;

/// An error as the EC2 API reports it: a code such as `InvalidGroup.NotFound` and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// Ours, beside a `DryRunOperation`: what the change would have done.
    pub preview: Option<Box<ChangePreview>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.to_string(),
            message: message.into(),
            preview: None,
        }
    }

    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", message)
    }

    pub fn missing(parameter: &str) -> Self {
        Self::new(
            "MissingParameter",
            format!("The request must contain the parameter {parameter}"),
        )
    }

    /// A request member we do not know, as EC2 answers it.
    pub fn unknown_parameter(name: &str) -> Self {
        Self::new(
            "UnknownParameter",
            format!("The parameter {name} is not recognized"),
        )
    }

    /// A request member that is not of its type, from the decoder's own words.
    pub fn malformed(detail: impl std::fmt::Display) -> Self {
        Self::invalid_value(format!("The request is malformed: {detail}"))
    }

    /// Something on our side failed (the store, the kernel); the request itself was fine.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalError", message)
    }
}

/// Decodes a request from its JSON members: an unknown member is `UnknownParameter`, a badly
/// typed one `InvalidParameterValue`, as EC2 answers them.
pub fn decode<T: DeserializeOwned>(request: serde_json::Value) -> ApiResult<T> {
    serde_json::from_value(request).map_err(|e| {
        let text = e.to_string();
        match text
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((name, _)) => ApiError::unknown_parameter(name),
            None => ApiError::malformed(text),
        }
    })
}

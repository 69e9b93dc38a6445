//! The JSON wire of the control socket: `POST /{Action}` with the AWS request members as the
//! body (with `DryRun` and our `FlushFlows` where set), the region and account in headers,
//! answered with
//! the response members (200) or `{"Error": {"Code", "Message"}}` (400); a `DryRun` of a change
//! answers `DryRunOperation` (412) with our `"Preview"` member beside `"Error"`. Both sides of the
//! socket — the agent's handler and the CLI's client — use this file.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits;
use crate::api::{ApiError, ApiResult, Call, Scope, types::ours::ChangePreview};

/// The header that names the region a call acts in (absent: our `local` region).
pub const REGION_HEADER: &str = "x-firewall-region";
/// The header that names the account a call acts in (absent: the default account).
pub const ACCOUNT_HEADER: &str = "x-firewall-account";

/// Reads a call from the socket's path, region and account headers and body; an empty body is
/// an empty request.
pub fn decode(
    action: &str,
    region: Option<&str>,
    account: Option<&str>,
    body: &[u8],
) -> ApiResult<Call> {
    let request: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else if nesting(body) > MAX_NESTING {
        return Err(ApiError::invalid_value(format!(
            "The request body nests more than {MAX_NESTING} levels"
        )));
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_value(format!("The request body is not JSON: {e}")))?
    };
    if !request.is_object() {
        return Err(ApiError::invalid_value(
            "The request body is not a JSON object",
        ));
    }
    Call::from_members(action, request, Scope::local())?.in_scope(account, region)
}

/// The deepest nesting of arrays and objects a body may have (the requests' own is 5); deeper
/// ones are refused before parsing, whose recursion would overflow the stack.
const MAX_NESTING: usize = 32;

/// The deepest nesting of `[` and `{` in a JSON text (outside strings).
fn nesting(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &byte in body {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The error body.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    error: ErrorDetail,
    /// Ours, beside AWS's `DryRunOperation` error: what the change would have done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preview: Option<Box<ChangePreview>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDetail {
    code: String,
    message: String,
}

/// An answer as the agent sends it.
pub struct Reply(pub ApiResult<Value>);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(body) => (StatusCode::OK, Json(body)).into_response(),
            Err(error) => (
                limits::status(&error),
                Json(ErrorBody {
                    error: ErrorDetail {
                        code: error.code,
                        message: error.message,
                    },
                    preview: error.preview,
                }),
            )
                .into_response(),
        }
    }
}

/// An answer as the client reads it: the response members, or the API error.
pub fn decode_answer(success: bool, body: &[u8]) -> serde_json::Result<ApiResult<Value>> {
    if success {
        return Ok(Ok(serde_json::from_slice(body)?));
    }
    let ErrorBody { error, preview } = serde_json::from_slice(body)?;
    Ok(Err(ApiError {
        code: error.code,
        message: error.message,
        preview,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_answer_with_the_status_aws_gives_them() {
        let status = |code: &str| {
            Reply(Err(ApiError::new(code, "m")))
                .into_response()
                .status()
        };
        assert_eq!(status("InvalidGroup.NotFound"), StatusCode::BAD_REQUEST);
        assert_eq!(status("DryRunOperation"), StatusCode::PRECONDITION_FAILED);
        assert_eq!(status("InternalError"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status("RequestEntityTooLarge"),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn nesting_counts_brackets_outside_strings() {
        assert_eq!(nesting(br#"{"a":[{"b":"[[[\"{"}]}"#), 3);
        let deep = format!("{{\"GroupIds\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        let Err(error) = decode("DescribeVpcs", None, None, deep.as_bytes()) else {
            panic!("a body nested 100 levels was decoded");
        };
        assert_eq!(error.code, "InvalidParameterValue");
    }
}

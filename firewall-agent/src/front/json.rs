//! The JSON wire of the control socket: `POST /{Action}` with the AWS request members as the
//! body (with `DryRun` and our `FlushFlows` where set), the region and account in headers,
//! answered with
//! the response members (200) or `{"Error": {"Code", "Message"}}` (400). Both sides of the
//! socket — the agent's handler and the CLI's client — use this file.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits;
use crate::api::{ApiError, ApiResult, Call, Scope};

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
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_value(format!("The request body is not JSON: {e}")))?
    };
    Call::from_members(action, request, Scope::local())?.in_scope(account, region)
}

/// The error body.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    error: ErrorDetail,
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
                limits::status(&error).unwrap_or(StatusCode::BAD_REQUEST),
                Json(ErrorBody {
                    error: ErrorDetail {
                        code: error.code,
                        message: error.message,
                    },
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
    let ErrorBody { error } = serde_json::from_slice(body)?;
    Ok(Err(ApiError {
        code: error.code,
        message: error.message,
    }))
}

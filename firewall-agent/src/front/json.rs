//! The JSON wire of the control socket: `POST /{Action}` with the AWS request members as the
//! body, answered with the response members (200) or `{"Error": {"Code", "Message"}}` (400).
//! Our `FlushFlows` member rides in the body of the actions whose catalogue row takes it. Both
//! sides of the socket — the agent's handler and the CLI's client — use this file.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::{Action, ApiError, ApiResult, Operation, find};

/// Our request member: also cut the tracked flows that the change no longer allows.
const FLUSH_FLOWS: &str = "FlushFlows";

/// One call as it travels: the action, its request members, and our `FlushFlows`.
pub struct Call {
    pub action: &'static Action,
    pub request: Value,
    pub flush_flows: bool,
}

impl Call {
    /// A typed request for the action `O`.
    pub fn new<O: Operation>(request: &O::Request) -> ApiResult<Call> {
        let request = serde_json::to_value(request).map_err(ApiError::malformed)?;
        Ok(Call {
            action: find(O::NAME)?,
            request,
            flush_flows: false,
        })
    }

    pub fn with_flush_flows(mut self, flush_flows: bool) -> Call {
        self.flush_flows = flush_flows;
        self
    }

    /// Reads a call from the socket's path and body; an empty body is an empty request.
    pub fn decode(action: &str, body: &[u8]) -> ApiResult<Call> {
        let action = find(action)?;
        let mut request: Value = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ApiError::invalid_value(format!("The request body is not JSON: {e}"))
            })?
        };
        // Reads leave the member in place: for them it is an unknown parameter like any other.
        let taken = match request.as_object_mut() {
            Some(members) if action.mutates => members.remove(FLUSH_FLOWS),
            _ => None,
        };
        let flush_flows = match taken {
            None => false,
            Some(_) if !action.flush_flows => {
                return Err(ApiError::new(
                    "InvalidParameterCombination",
                    format!("FlushFlows is not supported by {}", action.name),
                ));
            }
            Some(flag) => flag
                .as_bool()
                .ok_or_else(|| ApiError::invalid_value("FlushFlows must be true or false"))?,
        };
        Ok(Call {
            action,
            request,
            flush_flows,
        })
    }

    /// The body the socket carries.
    pub fn body(&self) -> Value {
        let mut body = self.request.clone();
        if self.flush_flows
            && let Some(members) = body.as_object_mut()
        {
            members.insert(FLUSH_FLOWS.into(), Value::Bool(true));
        }
        body
    }
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
            Err(ApiError { code, message }) => (
                StatusCode::BAD_REQUEST,
                Json(ErrorBody {
                    error: ErrorDetail { code, message },
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

//! The CLI's side of the control socket: one HTTP request per API call.

use std::path::Path;

use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::model::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not connect to the agent at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the agent answered something that is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Calls `action`; the outer error is transport, the inner one the API's answer.
pub async fn call(
    socket: &Path,
    action: &str,
    body: &Value,
) -> Result<Result<Value, ApiError>, ClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::post(format!("/{action}"))
        .header("host", "firewall-agent")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = sender.send_request(request).await?;
    let ok = response.status().is_success();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes)?;
    if ok {
        Ok(Ok(value))
    } else {
        let text = |k: &str| value["Error"][k].as_str().unwrap_or("").to_string();
        Ok(Err(ApiError {
            code: text("Code"),
            message: text("Message"),
        }))
    }
}

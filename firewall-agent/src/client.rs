//! The CLI's side of the control socket: one HTTP request per call.

use std::path::Path;

use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{
    api::{ApiResult, Call},
    front::json,
};

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
    #[error("Read timeout on endpoint URL: \"unix:{path}\" (no answer within {seconds} s)")]
    ReadTimeout { path: String, seconds: u64 },
}

/// Sends `call` and waits for the answer as long as it takes; the outer error is transport,
/// the inner one the API's answer.
pub async fn call(socket: &Path, call: &Call) -> Result<ApiResult<Value>, ClientError> {
    exchange(socket, call).await
}

/// [`call`], waiting at most `read_timeout` (`None`: for ever) for the whole exchange.
pub async fn call_within(
    socket: &Path,
    call: &Call,
    read_timeout: Option<std::time::Duration>,
) -> Result<ApiResult<Value>, ClientError> {
    let Some(limit) = read_timeout else {
        return exchange(socket, call).await;
    };
    tokio::time::timeout(limit, exchange(socket, call))
        .await
        .map_err(|_| ClientError::ReadTimeout {
            path: socket.display().to_string(),
            seconds: limit.as_secs(),
        })?
}

async fn exchange(socket: &Path, call: &Call) -> Result<ApiResult<Value>, ClientError> {
    let request = Request::post(format!("/{}", call.action.name))
        .header(json::REGION_HEADER, &call.scope.region)
        .header(json::ACCOUNT_HEADER, &call.scope.account_id);
    send(socket, request, &call.members()).await
}

/// Posts `body` to the socket's `path` (one of the agent's own routes, not an API action, such
/// as [`crate::server::CONSOLE_URL_PATH`]).
pub async fn post(
    socket: &Path,
    path: &str,
    body: &Value,
) -> Result<ApiResult<Value>, ClientError> {
    send(socket, Request::post(path), body).await
}

async fn send(
    socket: &Path,
    request: hyper::http::request::Builder,
    body: &Value,
) -> Result<ApiResult<Value>, ClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = request
        .header("host", "firewall-agent")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = sender.send_request(request).await?;
    let ok = response.status().is_success();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(json::decode_answer(ok, &bytes)?)
}

//! The limits both front ends' servers enforce, and the accept loop that enforces those of the
//! connection. Each refusal is an [`ApiError`] with an AWS-style code and a 4xx status
//! ([`status`]); each front end renders it in its own shape.
//!
//! | limit | value | answer |
//! |---|---|---|
//! | body | [`MAX_BODY`] (1 MiB) | `RequestEntityTooLarge`, 413 |
//! | request head (names + values) | [`MAX_HEADERS`] (16 KiB) | `RequestHeaderSectionTooLarge`, 431 |
//! | open connections | [`MAX_CONNECTIONS`] (128) | `RequestLimitExceeded`, 429, then closed |
//! | body slower than | [`BODY_TIMEOUT`] (10 s) | `RequestTimeout`, 408 |
//! | head slower than | [`HEADER_TIMEOUT`] (10 s) | connection closed (no request to answer) |
//! | unknown path | | `InvalidAction`, 400 |
//! | other method than `POST` | | `UnsupportedOperation`, 405 |

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    http::{HeaderMap, Method, StatusCode},
    serve::Listener,
};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::{body::Body as _, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::sync::Semaphore;

use crate::api::ApiError;

/// The largest request body read.
pub const MAX_BODY: usize = 1 << 20;
/// The largest request head answered (header names and values; hyper closes connections whose
/// head exceeds its own read buffer, [`READ_BUFFER`], with a bare 431).
pub const MAX_HEADERS: usize = 16 << 10;
/// The connections served at once per front end; as many more are accepted only to be answered
/// `RequestLimitExceeded`, and beyond those the listener waits.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a client may take to send a request head (and how long a connection may idle).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer: the hard cap on a request head.
const READ_BUFFER: usize = 64 << 10;
/// How long a shutdown waits for the requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// The HTTP status of an API error, on every front end: this module's refusals their own, 412
/// for a dry run that would have succeeded, 500 only for our own failures, 400 for every other
/// client fault.
pub fn status(error: &ApiError) -> StatusCode {
    match error.code.as_str() {
        "RequestEntityTooLarge" => StatusCode::PAYLOAD_TOO_LARGE,
        "RequestHeaderSectionTooLarge" => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "RequestLimitExceeded" => StatusCode::TOO_MANY_REQUESTS,
        "RequestTimeout" => StatusCode::REQUEST_TIMEOUT,
        "UnsupportedOperation" => StatusCode::METHOD_NOT_ALLOWED,
        "DryRunOperation" => StatusCode::PRECONDITION_FAILED,
        "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
        "Unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The request body, within the size and time limits, after checking the head's size.
pub async fn read(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let head: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if head > MAX_HEADERS {
        return Err(ApiError::new(
            "RequestHeaderSectionTooLarge",
            format!("The request headers exceed {MAX_HEADERS} bytes."),
        ));
    }
    let too_large = || {
        ApiError::new(
            "RequestEntityTooLarge",
            format!("The request body exceeds {MAX_BODY} bytes."),
        )
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::malformed(format!(
            "the body could not be read: {e}"
        ))),
        Err(_) => Err(ApiError::new(
            "RequestTimeout",
            format!("The request body was not received within {BODY_TIMEOUT:?}."),
        )),
    }
}

/// A request to a path no action is at.
pub fn unknown_path(path: &str) -> ApiError {
    ApiError::new(
        "InvalidAction",
        format!("There is no action at the path {path}."),
    )
}

/// A request with another method than `POST`.
pub fn wrong_method(method: &Method) -> ApiError {
    ApiError::new(
        "UnsupportedOperation",
        format!("The method {method} is not supported: requests are POSTed."),
    )
}

/// The answer to every request of a connection over [`MAX_CONNECTIONS`].
pub fn too_many_connections() -> ApiError {
    ApiError::new(
        "RequestLimitExceeded",
        format!("More than {MAX_CONNECTIONS} connections are open; retry later."),
    )
}

/// Serves `app` on `listener` until `shutdown`, within the connection limits; the connections
/// over [`MAX_CONNECTIONS`] get `refuse` (which answers [`too_many_connections`]) and are closed.
/// Each request carries its connection's peer address as an extension (`Extension<L::Addr>`).
pub async fn serve<L: Listener>(
    mut listener: L,
    app: Router,
    refuse: Router,
    shutdown: impl Future<Output = ()>,
) where
    L::Addr: Clone + Send + Sync + 'static,
{
    let served = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let accepted = Arc::new(Semaphore::new(2 * MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let Ok(slot) = accepted.clone().acquire_owned().await else {
            break;
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (service, permit) = match served.clone().try_acquire_owned() {
            Ok(permit) => (app.clone().layer(Extension(peer)), Some(permit)),
            Err(_) => (refuse.clone(), None),
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(READ_BUFFER)
            .keep_alive(permit.is_some())
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((slot, permit));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown");
    }
}

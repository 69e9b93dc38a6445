//! The console's JSON API, for the browser's pages: every request needs the session cookie and
//! the session's CSRF token in [`CSRF_HEADER`]; `POST /console/api/call/{Action}` runs a
//! catalogue call with the request members as the body, in the session key's account and the
//! region of [`REGION_HEADER`], answered as the Unix socket answers (`front::json`: the
//! members, or `{"Error": {"Code", "Message"}}` and a dry run's `"Preview"`).

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Extension, Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    Console,
    session::{CSRF_HEADER, Session, clear_cookie},
};
use crate::{
    api::ApiError,
    front::{
        json::{self, REGION_HEADER, Reply},
        limits,
        metrics::outcome,
    },
};

/// Why an API request was refused before it reached the catalogue.
pub enum Refusal {
    /// No live session: sign in first (401).
    SignedOut,
    /// The CSRF header is missing or is not the session's (403).
    BadCsrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Refusal::SignedOut => (
                StatusCode::UNAUTHORIZED,
                "AuthFailure",
                "You are not signed in to the console (or your session has ended): sign in again.",
            ),
            Refusal::BadCsrf => (
                StatusCode::FORBIDDEN,
                "InvalidCsrfToken",
                "The request's CSRF token is missing or is not this session's: reload the page.",
            ),
        };
        (
            status,
            Json(json!({"Error": {"Code": code, "Message": message}})),
        )
            .into_response()
    }
}

/// The session of a request whose CSRF header matches it.
fn authorized(console: &Console, headers: &HeaderMap) -> Result<Session, Refusal> {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let session = console.session(cookie).ok_or(Refusal::SignedOut)?;
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !session.csrf_matches(csrf) {
        return Err(Refusal::BadCsrf);
    }
    Ok(session)
}

/// `GET /console/api/session`: who is signed in, the CSRF token the pages send back, and the
/// address the browser connects from (the rule editors' "My IP"). Cookie only: it changes
/// nothing, and another site's page cannot read the answer.
pub async fn session(
    State(console): State<Arc<Console>>,
    peer: Option<Extension<SocketAddr>>,
    headers: HeaderMap,
) -> Response {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let Some(session) = console.session(cookie) else {
        return Refusal::SignedOut.into_response();
    };
    let source_ip = peer.map(|Extension(addr)| addr.ip().to_canonical().to_string());
    Json(json!({
        "AccessKeyId": session.access_key,
        "AccountId": session.account_id,
        "CsrfToken": session.csrf,
        "SourceIp": source_ip,
    }))
    .into_response()
}

/// `POST /console/api/sign-out`.
pub async fn sign_out(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorized(&console, &headers) {
        return refusal.into_response();
    }
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    console.sessions.sign_out(cookie);
    (
        [(header::SET_COOKIE, clear_cookie())],
        Json(json!({"Return": true})),
    )
        .into_response()
}

/// `POST /console/api/call/{Action}`: one catalogue call.
pub async fn call(
    State(console): State<Arc<Console>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Instant::now();
    let session = match authorized(&console, &headers) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let region = headers.get(REGION_HEADER).and_then(|v| v.to_str().ok());
    let decoded = async {
        let body = limits::read(&headers, body).await?;
        if region.is_none() {
            return Err(ApiError::missing("Region"));
        }
        json::decode(&action, region, Some(&session.account_id), &body)?.from_the_network()
    };
    let (name, result) = match decoded.await {
        Ok(call) => {
            let name = call.action.name;
            let call = call.received_at(arrival);
            (Some(name), crate::agent::answer(&console.agent, call).await)
        }
        Err(e) => (None, Err(e)),
    };
    let counted = outcome(name, &result);
    (Extension(counted), Reply(result)).into_response()
}

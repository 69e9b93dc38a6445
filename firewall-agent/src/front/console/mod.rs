//! The web console, served on the EC2 listener under `/console/`: a sign-in page (an access
//! key pair of the credentials file, or a one-time link from `firewall-agent console-url`),
//! the pages (one HTML page, one embedded script per view: `assets`), and the JSON API the
//! pages call (`api`), which builds the same catalogue calls as the other front ends. The
//! console holds no state of its own beyond its sessions (`session`).

pub mod api;
pub mod assets;
pub mod session;

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use axum::{
    Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use tokio::sync::Mutex;

use crate::{
    agent::Agent,
    front::ec2::{credentials::Credentials, keys::Keys},
    front::limits,
};
use session::{Session, Sessions, set_cookie};

/// What the console's handlers share.
pub struct Console {
    pub agent: Arc<Mutex<Agent>>,
    /// The keys in force (reloaded on SIGHUP and when the file changes).
    pub keys: Keys,
    pub sessions: Sessions,
}

impl Console {
    /// The live session of a `Cookie` header's value, if its key is still in force as it was
    /// when it signed in (a removed or rotated key's sessions end at once).
    pub fn session(&self, cookie_header: Option<&str>) -> Option<Session> {
        self.sessions
            .find(cookie_header)
            .filter(|s| self.keys.still_valid(&s.access_key, &s.key_fingerprint))
    }
}

/// The console's routes, to merge into the EC2 listener's router.
pub fn router(agent: Arc<Mutex<Agent>>, keys: Keys) -> Router {
    let console = Arc::new(Console {
        agent,
        keys,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(index))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-in/link", get(sign_in_link))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/console/api/session", get(api::session))
        .route("/console/api/sign-out", post(api::sign_out))
        .route("/console/api/call/{action}", post(api::call))
        .with_state(console)
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

/// `GET /console/`: the console, or the sign-in page for a browser without a session.
async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    match console.session(cookie(&headers)) {
        Some(_) => assets::page(StatusCode::OK, assets::INDEX.to_string()),
        None => Redirect::to("/console/sign-in").into_response(),
    }
}

/// The sign-in page, with `message` (HTML-escaped) above the form.
fn sign_in_form(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assets::page(status, assets::SIGN_IN.replace("{{message}}", &escaped))
}

async fn sign_in_page() -> Response {
    sign_in_form(StatusCode::OK, "")
}

/// Signed in: the session cookie, and on to the console.
fn signed_in(id: &str, session: &Session) -> Response {
    tracing::info!(access_key = %session.access_key, "console sign-in");
    (
        [(header::SET_COOKIE, set_cookie(id))],
        Redirect::to("/console/"),
    )
        .into_response()
}

/// `POST /console/sign-in`: the form's `access_key_id` and `secret_access_key`.
async fn sign_in(State(console): State<Arc<Console>>, headers: HeaderMap, body: Body) -> Response {
    let body = match limits::read(&headers, body).await {
        Ok(body) => body,
        Err(e) => return sign_in_form(limits::status(&e), &e.message),
    };
    let fields: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("").trim();
    match console.sessions.sign_in(
        &console.keys.get(),
        field("access_key_id"),
        field("secret_access_key"),
    ) {
        Ok((id, session)) => signed_in(&id, &session),
        Err(refused) => sign_in_form(StatusCode::UNAUTHORIZED, refused.0),
    }
}

/// `GET /console/sign-in/link?key=…&expires=…&nonce=…&signature=…`: a one-time link.
async fn sign_in_link(
    State(console): State<Arc<Console>>,
    Query(fields): Query<HashMap<String, String>>,
) -> Response {
    match console
        .sessions
        .sign_in_with_link(&console.keys.get(), &fields, SystemTime::now())
    {
        Ok((id, session)) => signed_in(&id, &session),
        Err(refused) => sign_in_form(StatusCode::UNAUTHORIZED, refused.0),
    }
}

/// `firewall-agent console-url`: a one-time sign-in link to the console at `endpoint` for
/// `access_key` (or the file's only key), valid for [`session::LINK_LIFETIME`].
pub fn sign_in_url(
    credentials: &Credentials,
    access_key: Option<&str>,
    endpoint: &str,
) -> Result<String, String> {
    let access_key = match access_key {
        Some(key) => key.to_string(),
        None => {
            let keys: Vec<&str> = credentials.access_keys().collect();
            match keys[..] {
                [only] => only.to_string(),
                _ => {
                    return Err(format!(
                        "the credentials file holds {} keys: choose one with --access-key-id",
                        keys.len()
                    ));
                }
            }
        }
    };
    let key = credentials
        .key(&access_key)
        .ok_or_else(|| format!("the credentials file holds no access key {access_key}"))?;
    let query = session::link_query(&access_key, key.secret(), SystemTime::now());
    Ok(format!("http://{endpoint}/console/sign-in/link?{query}"))
}

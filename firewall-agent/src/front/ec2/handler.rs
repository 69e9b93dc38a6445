//! The EC2 Query endpoint: `POST /` with a form body, signed with SigV4. The signature is
//! checked on the raw bytes, the form decoded into a catalogue call in the account of the key
//! and the region the request was signed for, the agent runs it, and the answer goes back as
//! XML (`x-amzn-requestid` carries the request ID too).

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::sync::Mutex;

use super::{
    super::limits,
    form,
    keys::Keys,
    sigv4::{self, SignedRequest},
    xml,
};
use crate::{
    agent::Agent,
    api::{ApiError, Call, Scope, Service, find},
    metrics::Outcome,
};

/// What the endpoint's handler needs.
pub struct Endpoint {
    pub agent: Arc<Mutex<Agent>>,
    /// The keys in force (reloaded on SIGHUP and when the file changes).
    pub keys: Keys,
}

/// The EC2 protocol version every client of this API sends.
const EC2_VERSION: &str = "2016-11-15";
/// STS's, for `GetCallerIdentity`.
const STS_VERSION: &str = "2011-06-15";

fn request_id() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn xml_reply(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// `response`, with what it answered for the metrics layer.
fn counted(
    mut response: Response,
    action: Option<&'static str>,
    result: &Result<(), &ApiError>,
) -> Response {
    let outcome = Outcome {
        action,
        error_code: result.err().map(|e| e.code.clone()),
    };
    response.extensions_mut().insert(outcome);
    response
}

/// An EC2 error answer, for a request that never reached the signature check.
fn refuse(error: &ApiError) -> Response {
    let id = request_id();
    let reply = xml_reply(
        limits::status(error),
        &id,
        xml::error(Service::Ec2, &id, error),
    );
    counted(reply, None, &Err(error))
}

pub async fn unknown_path(uri: Uri) -> Response {
    refuse(&limits::unknown_path(uri.path()))
}

pub async fn wrong_method(method: Method) -> Response {
    refuse(&limits::wrong_method(&method))
}

pub async fn too_many() -> Response {
    refuse(&limits::too_many_connections())
}

/// One Query request.
pub async fn query(
    State(endpoint): State<Arc<Endpoint>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = Instant::now();
    let body = match limits::read(&headers, body).await {
        Ok(body) => body,
        Err(e) => return refuse(&e),
    };
    let request = match form::decode(&body) {
        Ok(request) => request,
        Err(e) => return refuse(&e),
    };
    let id = request_id();
    let action = find(&request.action).ok().map(|a| a.name);
    let service = find(&request.action)
        .map(|a| a.service)
        .unwrap_or(Service::Ec2);
    let named: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signed = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &named,
        body: &body,
    };
    let caller = match sigv4::verify(&signed, &endpoint.keys.get(), SystemTime::now()) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(error = %e, action = %request.action, "request refused");
            let reply = e.reply(service);
            let error = ApiError::new(reply.code, reply.message);
            let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::FORBIDDEN);
            let reply = xml_reply(status, &id, xml::error(service, &id, &error));
            return counted(reply, action, &Err(&error));
        }
    };
    let answer = run(&endpoint, &caller, service, request, arrival).await;
    match answer {
        Ok((action, members)) => counted(
            xml_reply(
                StatusCode::OK,
                &id,
                xml::response(service, action, &id, &members),
            ),
            Some(action),
            &Ok(()),
        ),
        Err(e) => counted(
            xml_reply(limits::status(&e), &id, xml::error(service, &id, &e)),
            action,
            &Err(&e),
        ),
    }
}

/// Checks the version and the service the request was signed for, and runs the call.
async fn run(
    endpoint: &Endpoint,
    caller: &sigv4::Caller,
    service: Service,
    request: form::QueryRequest,
    arrival: Instant,
) -> Result<(&'static str, serde_json::Value), ApiError> {
    let (expected_service, expected_version) = match service {
        Service::Ec2 => ("ec2", EC2_VERSION),
        Service::Sts => ("sts", STS_VERSION),
    };
    if caller.service != expected_service {
        return Err(ApiError::new(
            "InvalidAction",
            format!(
                "The action {} is not valid for the service {} this request was signed for.",
                request.action, caller.service
            ),
        ));
    }
    match request.version.as_deref() {
        Some(v) if v == expected_version => {}
        Some(v) => {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("Version {v} is not supported: this endpoint speaks {expected_version}."),
            ));
        }
        None => return Err(ApiError::missing("Version")),
    }
    let scope = Scope::new(&caller.account_id, &caller.region)?;
    let call = Call::from_members(&request.action, request.members, scope)?
        .from_the_network()?
        .received_at(arrival);
    let action = call.action.name;
    let members = crate::agent::answer(&endpoint.agent, call).await?;
    Ok((action, members))
}

//! What both front ends share for observability: the layer that counts and times every request
//! by the [`Outcome`] its handler attached to the response (one place, around both routers),
//! and `GET /metrics`, served on the EC2 listener without authentication, as Prometheus scrapes.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Mutex;

use crate::{
    agent::Agent,
    api::ApiResult,
    metrics::{self, Metrics, Outcome},
};

/// The [`Outcome`] of a call answered with `result`, for the response's extensions.
pub fn outcome<T>(action: Option<&'static str>, result: &ApiResult<T>) -> Outcome {
    Outcome {
        action,
        error_code: result.as_ref().err().map(|e| e.code.clone()),
    }
}

/// Which front end a layer counts for, and where.
#[derive(Clone)]
pub struct Counted {
    pub front: &'static str,
    pub metrics: Arc<Metrics>,
}

/// The layer (`axum::middleware::from_fn_with_state`): times the request and records it when
/// its handler said what it was (the scrape itself is not counted).
pub async fn record(State(counted): State<Counted>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(outcome) = response.extensions().get::<Outcome>() {
        counted
            .metrics
            .request(counted.front, outcome, started.elapsed());
    }
    response
}

/// `GET /metrics`: the instruments, and the kernel's counters read now.
pub async fn scrape(State(agent): State<Arc<Mutex<Agent>>>) -> Response {
    let (metrics, scrape) = {
        let agent = agent.lock().await;
        (agent.metrics(), agent.scrape())
    };
    match scrape {
        Ok(scrape) => {
            // Naming and rendering every rule's series takes a while at 100k rules: on a
            // blocking thread, so the runtime's workers keep serving changes meanwhile.
            let rendered =
                tokio::task::spawn_blocking(move || metrics.render(&scrape.snapshot())).await;
            let Ok(text) = rendered else {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the metrics could not be rendered\n",
                )
                    .into_response();
            };
            let mut response = text.into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            response
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the kernel's counters could not be read: {e}\n"),
        )
            .into_response(),
    }
}

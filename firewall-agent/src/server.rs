//! The daemon: the agent behind one lock (requests apply one at a time), the JSON front end on
//! a Unix socket (mode 0600), and the periodic conntrack garbage collection.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{
    Extension, Router,
    body::Body,
    extract::{Path, State as AxumState, rejection::PathRejection},
    http::{HeaderMap, Method, Uri},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::sync::Mutex;

use crate::{
    agent::{Agent, ServeArgs},
    front::console,
    front::ec2::{
        credentials::Credentials,
        handler::{self, Endpoint},
    },
    front::json::{self, ACCOUNT_HEADER, REGION_HEADER, Reply},
    front::limits,
    front::metrics::{self, Counted, outcome},
    metrics::Metrics,
};

/// An answer of the JSON front end, with what it was for the metrics layer.
fn counted(action: Option<&'static str>, reply: Reply) -> impl IntoResponse {
    (Extension(outcome(action, &reply.0)), reply)
}

/// The JSON front end's handler: decode the call, run it, encode the answer.
async fn call(
    AxumState(agent): AxumState<Arc<Mutex<Agent>>>,
    action: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> impl IntoResponse {
    let arrival = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let call = async {
        let Path(action) = action.map_err(|_| limits::unknown_path(uri.path()))?;
        let body = limits::read(&headers, body).await?;
        json::decode(
            &action,
            header(REGION_HEADER),
            header(ACCOUNT_HEADER),
            &body,
        )
    };
    match call.await {
        Ok(call) => {
            let action = call.action.name;
            let call = call.received_at(arrival);
            counted(Some(action), Reply(agent.lock().await.handle(call)))
        }
        Err(e) => counted(None, Reply(Err(e))),
    }
}

/// The JSON front end's answer to a request no route takes.
async fn json_unknown_path(uri: Uri) -> impl IntoResponse {
    counted(None, Reply(Err(limits::unknown_path(uri.path()))))
}

async fn json_wrong_method(method: Method) -> impl IntoResponse {
    counted(None, Reply(Err(limits::wrong_method(&method))))
}

async fn json_too_many() -> Response {
    counted(None, Reply(Err(limits::too_many_connections()))).into_response()
}

/// The layer that counts and times a front end's requests.
fn counting(router: Router, front: &'static str, metrics: Arc<Metrics>) -> Router {
    router.layer(middleware::from_fn_with_state(
        Counted { front, metrics },
        metrics::record,
    ))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let agent = Arc::new(Mutex::new(Agent::start(&args)?));
    if let Some(parent) = args.socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(&args.socket);
    let listener = tokio::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))?;

    let gc_agent = agent.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let mut agent = gc_agent.lock().await;
            agent.collect_expired_flows();
            agent.collect_idle_policies();
            agent.save_compiler_ids();
        }
    });

    if let Some(mut changes) = agent.lock().await.take_remote_changes() {
        // Other hosts' agents' changes, from the shared store's watch.
        let remote_agent = agent.clone();
        tokio::spawn(async move {
            while changes.recv().await.is_some() {
                remote_agent.lock().await.apply_remote();
            }
        });
    }

    if let Some(events) = agent.lock().await.take_flow_events() {
        let period = Duration::from_secs(args.flow_log_flush_interval);
        crate::flowlogs::spawn(agent.clone(), events, period);
    }

    let instruments = agent.lock().await.metrics();
    let ec2 = ec2_endpoint(&args, agent.clone(), instruments.clone()).await?;
    let app = Router::new()
        .route("/{action}", post(call))
        .fallback(json_unknown_path)
        .method_not_allowed_fallback(json_wrong_method)
        .with_state(agent.clone());
    let app = counting(app, "socket", instruments.clone());
    let refuse = counting(Router::new().fallback(json_too_many), "socket", instruments);
    tracing::info!(socket = %args.socket.display(), "firewall-agent listening");
    println!("firewall-agent listening on {}", args.socket.display());
    tokio::spawn(async move {
        ec2.await;
        tracing::error!("the EC2 endpoint stopped");
    });
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    limits::serve(listener, app, refuse, shutdown).await;
    // The next agent then compiles to the entries the maps hold and rewrites none.
    agent.lock().await.save_compiler_ids();
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// The EC2 Query endpoint on `--ec2-listen`, with the keys of `--credentials` (or of the state
/// directory's `credentials`, written with a new key pair at first start), and `GET /metrics`.
async fn ec2_endpoint(
    args: &ServeArgs,
    agent: Arc<Mutex<Agent>>,
    instruments: Arc<Metrics>,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
    let credentials = match &args.credentials {
        Some(path) => Credentials::load(path)
            .with_context(|| format!("reading the credentials in {}", path.display()))?,
        None => {
            let path = args.state_dir.join("credentials");
            if path.exists() {
                Credentials::load(&path)
                    .with_context(|| format!("reading the credentials in {}", path.display()))?
            } else {
                let created = Credentials::create(&path)
                    .with_context(|| format!("writing new credentials to {}", path.display()))?;
                println!(
                    "firewall-agent: new EC2 API keys in {path} (mode 0600). To use them:\n  \
                     aws configure set endpoint_url http://{addr} --profile firewall\n  \
                     AWS_SHARED_CREDENTIALS_FILE={path} aws ec2 describe-security-groups \
                     --profile default --endpoint-url http://{addr} --region us-east-1",
                    path = path.display(),
                    addr = args.ec2_listen,
                );
                created
            }
        }
    };
    let listener = tokio::net::TcpListener::bind(args.ec2_listen)
        .await
        .with_context(|| {
            format!(
                "binding the EC2 endpoint to {} (--ec2-listen chooses another address)",
                args.ec2_listen
            )
        })?;
    tracing::info!(address = %args.ec2_listen, "EC2 Query endpoint listening");
    println!("firewall-agent EC2 endpoint on http://{}", args.ec2_listen);
    let scrape = Router::new()
        .route("/metrics", get(metrics::scrape))
        .with_state(agent.clone());
    let app = Router::new()
        .route("/", post(handler::query))
        .fallback(handler::unknown_path)
        .method_not_allowed_fallback(handler::wrong_method)
        .with_state(Arc::new(Endpoint {
            agent: agent.clone(),
            credentials: credentials.clone(),
        }));
    let console = console::router(agent, credentials);
    let app = counting(scrape.merge(console).merge(app), "ec2", instruments.clone());
    let refuse = counting(
        Router::new().fallback(handler::too_many),
        "ec2",
        instruments,
    );
    Ok(limits::serve(listener, app, refuse, std::future::pending()))
}

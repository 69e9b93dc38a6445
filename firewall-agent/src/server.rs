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
        keys::Keys,
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
            counted(
                Some(action),
                Reply(crate::agent::answer(&agent, call).await),
            )
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
    // First of all: SIGHUP (`systemctl reload`) must never end the agent, even while it starts.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
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
            let copy = {
                let mut agent = gc_agent.lock().await;
                agent.collect_expired_flows();
                agent.collect_idle_policies();
                agent.ids_to_save()
            };
            if let Some(copy) = copy {
                // Written off the agent's lock: changes go on meanwhile.
                let failed = match tokio::task::spawn_blocking(move || copy.save()).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(error) = failed {
                    tracing::warn!(%error, "could not save the data-plane IDs; a restart will rewrite the maps");
                    gc_agent.lock().await.ids_not_saved();
                }
            }
        }
    });

    // A stopped or detached workload's tracked flows: deleted on the agent's next turn, once
    // the change that queued them has answered.
    let flows_queued = agent.lock().await.flows_queued();
    let flush_agent = agent.clone();
    tokio::spawn(async move {
        loop {
            flows_queued.notified().await;
            flush_agent.lock().await.flush_queued_flows();
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
    let keys = load_keys(&args)?;
    tokio::spawn(reload_keys(keys.clone(), hangup));
    let ec2 = ec2_endpoint(&args, agent.clone(), keys.clone(), instruments.clone()).await?;
    let sign_in = SignIn {
        keys,
        endpoint: args.ec2_listen.to_string(),
    };
    let app = Router::new()
        .route(
            CONSOLE_URL_PATH,
            post(console_url).with_state(Arc::new(sign_in)),
        )
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
    let mut agent = agent.lock().await;
    agent.save_compiler_ids();
    agent.close_store();
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// The socket's path for `firewall-agent console-url` (ours; not an EC2 action, and only on the
/// root-only socket).
pub const CONSOLE_URL_PATH: &str = "/agent/console-url";

/// What the socket's `console-url` needs: the keys in force and where the console is.
struct SignIn {
    keys: Keys,
    endpoint: String,
}

/// `POST /agent/console-url` on the socket, `{"AccessKeyId": …, "Endpoint": …}` (the key is
/// optional when there is one, the endpoint defaults to `--ec2-listen`): `{"Url": …}`, a one-time sign-in link minted by the running agent for a key of its own
/// credentials (so the CLI needs neither the file nor its path).
async fn console_url(
    AxumState(sign_in): AxumState<Arc<SignIn>>,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let request: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => return Reply(Err(crate::api::ApiError::malformed(e))),
        }
    };
    let access_key = request["AccessKeyId"].as_str();
    let endpoint = request["Endpoint"].as_str().unwrap_or(&sign_in.endpoint);
    Reply(
        console::sign_in_url(&sign_in.keys.get(), access_key, endpoint)
            .map(|url| serde_json::json!({ "Url": url }))
            .map_err(crate::api::ApiError::invalid_value),
    )
}

/// Reloads the keys on SIGHUP (`hangup`) and when the credentials file changes (checked every
/// 2 s).
async fn reload_keys(keys: Keys, mut hangup: tokio::signal::unix::Signal) {
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    loop {
        let result = tokio::select! {
            _ = hangup.recv() => Some(keys.reload()),
            _ = poll.tick() => keys.reload_if_changed(),
        };
        match result {
            None => {}
            Some(Ok(reloaded)) => tracing::info!(
                credentials = %keys.path().display(),
                added = ?reloaded.added,
                removed = ?reloaded.removed,
                rotated = ?reloaded.changed,
                "reloaded the API keys"
            ),
            Some(Err(e)) => tracing::error!(
                credentials = %keys.path().display(),
                error = %e,
                "the credentials file does not parse: the keys in force stay"
            ),
        }
    }
}

/// The keys of `--credentials` (or of the state directory's `credentials`, written with a new
/// key pair at first start).
fn load_keys(args: &ServeArgs) -> anyhow::Result<Keys> {
    let (path, credentials) = match &args.credentials {
        Some(path) => (
            path.clone(),
            Credentials::load(path)
                .with_context(|| format!("reading the credentials in {}", path.display()))?,
        ),
        None => {
            let path = args.state_dir.join("credentials");
            let credentials = if path.exists() {
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
            };
            (path, credentials)
        }
    };
    Ok(Keys::new(credentials, &path))
}

/// The EC2 Query endpoint on `--ec2-listen`, with `keys`, the console and `GET /metrics`.
async fn ec2_endpoint(
    args: &ServeArgs,
    agent: Arc<Mutex<Agent>>,
    keys: Keys,
    instruments: Arc<Metrics>,
) -> anyhow::Result<impl std::future::Future<Output = ()> + use<>> {
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
            keys: keys.clone(),
        }));
    let console = console::router(agent, keys);
    let app = counting(scrape.merge(console).merge(app), "ec2", instruments.clone());
    let refuse = counting(
        Router::new().fallback(handler::too_many),
        "ec2",
        instruments,
    );
    Ok(limits::serve(listener, app, refuse, std::future::pending()))
}

//! The agent daemon: owns the desired state, persists every change before replying, compiles it
//! and applies the result to the kernel; serves the control API (HTTP + JSON, `POST /{Action}`
//! with the AWS request members as body) on a Unix socket.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{Path, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use firewall_common::CtTimeouts;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    compiler::{self, Ids},
    dataplane::{self, Dataplane, KernelDataplane},
    model::{ApiError, ApiResult, InstanceState, Quotas, RandomIds, State, ops},
    store::Store,
};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where the desired state is kept.
    #[arg(long, default_value = "/var/lib/firewall-agent")]
    pub state_dir: PathBuf,
    /// The control socket (mode 0600); set from the global `--socket`.
    #[arg(skip)]
    pub socket: PathBuf,
    /// Where bpffs is (mounted there when missing, e.g. under `ip netns exec`).
    #[arg(long, default_value = "/sys/fs/bpf")]
    pub bpffs: PathBuf,
    /// Idle timeout of established TCP flows in seconds (AWS TcpEstablishedTimeout, 60-432000).
    #[arg(long, default_value_t = 432_000, value_parser = clap::value_parser!(u32).range(60..=432_000))]
    pub tcp_established_timeout: u32,
    /// Tracked flows across all workloads; when the table is full new flows are refused (and
    /// counted as `conntrack-full`), established ones are never evicted. Fixed once pinned.
    #[arg(long, default_value_t = firewall_common::capacity::CONNTRACK)]
    pub conntrack_capacity: u32,
    /// Quota: inbound (and, separately, outbound) rules per group per address family.
    #[arg(long, default_value_t = 60)]
    pub rules_per_group: usize,
    /// Quota: security groups per instance.
    #[arg(long, default_value_t = 5)]
    pub groups_per_instance: usize,
}

/// Everything one request may touch, behind one lock: requests apply one at a time.
pub struct Agent {
    state: State,
    store: Store,
    dataplane: KernelDataplane,
    compiler_ids: Ids,
}

impl Agent {
    pub fn start(args: &ServeArgs) -> anyhow::Result<Agent> {
        std::fs::create_dir_all(&args.state_dir)
            .with_context(|| format!("creating {}", args.state_dir.display()))?;
        dataplane::ensure_bpffs(&args.bpffs)?;
        let store = Store::open(&args.state_dir.join("state.redb")).context("opening the store")?;
        let mut state = match store.load().context("reading the store")? {
            Some(state) => state,
            None => State::initial(&mut RandomIds),
        };
        // The quotas are configuration: the command line wins over what was stored.
        state.quotas = Quotas {
            rules_per_group: args.rules_per_group,
            groups_per_instance: args.groups_per_instance,
        };
        store.save(&state).context("saving the state")?;
        let timeouts = CtTimeouts {
            tcp_established: args.tcp_established_timeout,
            ..CtTimeouts::AWS_DEFAULT
        };
        let mut dataplane = KernelDataplane::load(&dataplane::LoadOptions {
            timeouts,
            pins: Some(args.bpffs.join("firewall-agent")),
            conntrack_capacity: args.conntrack_capacity,
        })
        .context("loading the data plane")?;
        let compiler_ids = if dataplane.restored() {
            // Same state, same IDs: the first apply after a restart then changes nothing.
            let mut ids = store
                .load_dataplane_ids()
                .context("reading the store")?
                .unwrap_or_default();
            ids.skip_past(dataplane.highest_ids());
            dataplane.assume_rule_slots(ids.slot_map());
            ids
        } else {
            Ids::default()
        };
        let mut agent = Agent {
            state,
            store,
            dataplane,
            compiler_ids,
        };
        if let Err(e) = agent.sync() {
            tracing::error!(error = %e, "some workloads could not be enforced at start");
        }
        Ok(agent)
    }

    /// Compiles the state and applies it; returns what was applied.
    fn sync(&mut self) -> Result<compiler::Desired, dataplane::DataplaneError> {
        let desired = compiler::compile(&self.state, &mut self.compiler_ids);
        self.dataplane.apply(&desired)?;
        if let Err(e) = self.store.save_dataplane_ids(&self.compiler_ids) {
            tracing::warn!(error = %e, "could not save the data-plane IDs; a restart will rewrite the maps");
        }
        Ok(desired)
    }

    /// Handles one API call: validate on a copy, persist, then apply to the kernel.
    pub fn handle(&mut self, action: &str, request: Value) -> ApiResult<Value> {
        if action == "GetDataplaneStatistics" {
            return self.statistics();
        }
        if action == "ExportNftables" {
            if request
                .get("Format")
                .and_then(Value::as_str)
                .is_some_and(|f| f != "nftables")
            {
                return Err(ApiError::invalid_value(
                    "The only export format is nftables",
                ));
            }
            let layout = match request.get("Layout").and_then(Value::as_str) {
                None | Some("sets") => crate::nft::Layout::Sets,
                Some("linear") => crate::nft::Layout::Linear,
                Some(other) => {
                    return Err(ApiError::invalid_value(format!(
                        "Unknown layout '{other}': sets or linear"
                    )));
                }
            };
            return Ok(json!({"Ruleset": crate::nft::render(&self.state, layout)}));
        }
        if !ops::is_mutating(action) {
            return ops::dispatch(&mut self.state, &mut RandomIds, action, request);
        }
        let (request, flush_flows) = take_flush_flows(action, request)?;
        let mut next = self.state.clone();
        let response = ops::dispatch(&mut next, &mut RandomIds, action, request)?;
        check_interfaces(&self.state, &next)?;
        self.store.save(&next).map_err(|e| {
            tracing::error!(error = %e, "store write failed");
            ApiError::new(
                "InternalError",
                format!("The state could not be saved: {e}"),
            )
        })?;
        self.state = next;
        let applied = self.sync().map_err(|e| {
            ApiError::new(
                "InternalError",
                format!("The change was saved but could not be applied to the data plane: {e}"),
            )
        })?;
        if flush_flows {
            let flushed = self
                .dataplane
                .flush_disallowed_flows(&applied)
                .map_err(|e| {
                    ApiError::new(
                        "InternalError",
                        format!("The change was applied but flows could not be flushed: {e}"),
                    )
                })?;
            tracing::info!(flushed, "flushed flows the change no longer allows");
        }
        Ok(response)
    }

    fn statistics(&self) -> ApiResult<Value> {
        let counters = self
            .dataplane
            .counters()
            .map_err(|e| ApiError::new("InternalError", e.to_string()))?;
        Ok(json!({
            "Drops": counters.drops,
            "Passes": counters.passes,
            "RuleHits": counters.rule_hits,
            "TrackedFlows": self.dataplane.tracked_flows(),
        }))
    }

    pub fn collect_expired_flows(&mut self) {
        match self.dataplane.collect_expired_flows() {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "conntrack garbage collected"),
            Err(e) => tracing::warn!(error = %e, "conntrack garbage collection failed"),
        }
    }
}

/// Takes our `FlushFlows` request member (revoke and group changes) out of the AWS request.
fn take_flush_flows(action: &str, mut request: Value) -> ApiResult<(Value, bool)> {
    let Some(flag) = request.as_object_mut().and_then(|o| o.remove("FlushFlows")) else {
        return Ok((request, false));
    };
    if !matches!(
        action,
        "RevokeSecurityGroupIngress" | "RevokeSecurityGroupEgress" | "ModifyInstanceAttribute"
    ) {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            format!("FlushFlows is not supported by {action}"),
        ));
    }
    let flag = flag
        .as_bool()
        .ok_or_else(|| ApiError::invalid_value("FlushFlows must be true or false"))?;
    Ok((request, flag))
}

/// A workload that starts being enforced must have its interface in our namespace.
fn check_interfaces(before: &State, after: &State) -> ApiResult<()> {
    for instance in after.instances.values() {
        if instance.state != InstanceState::Running {
            continue;
        }
        let was_enforced = before
            .instances
            .get(&instance.id)
            .is_some_and(|old| old.state == InstanceState::Running);
        if !was_enforced && dataplane::ifindex(&instance.interface).is_err() {
            return Err(ApiError::invalid_value(format!(
                "The interface '{}' does not exist in the agent's network namespace.",
                instance.interface
            )));
        }
    }
    Ok(())
}

struct ApiReply(ApiResult<Value>);

impl IntoResponse for ApiReply {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(body) => (StatusCode::OK, Json(body)).into_response(),
            Err(ApiError { code, message }) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"Error": {"Code": code, "Message": message}})),
            )
                .into_response(),
        }
    }
}

async fn call(
    AxumState(agent): AxumState<Arc<Mutex<Agent>>>,
    Path(action): Path<String>,
    body: axum::body::Bytes,
) -> ApiReply {
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => {
                return ApiReply(Err(ApiError::new(
                    "InvalidParameterValue",
                    format!("The request body is not JSON: {e}"),
                )));
            }
        }
    };
    let mut agent = agent.lock().await;
    ApiReply(agent.handle(&action, request))
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
            gc_agent.lock().await.collect_expired_flows();
        }
    });

    let app = Router::new()
        .route("/{action}", post(call))
        .with_state(agent);
    tracing::info!(socket = %args.socket.display(), "firewall-agent listening");
    println!("firewall-agent listening on {}", args.socket.display());
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

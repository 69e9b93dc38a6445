//! The agent: owns the desired state, and for each call validates on a copy, persists the result
//! (durable before the reply), compiles it and applies the difference to the kernel.

use std::path::PathBuf;

use anyhow::Context as _;
use firewall_common::CtTimeouts;
use serde_json::Value;

use crate::{
    api::{ApiError, ApiResult, DataplaneView, Handler, types::ours::DataplaneStatistics},
    compiler::{self, Ids},
    dataplane::{self, Dataplane, KernelDataplane},
    front::json::Call,
    model::{InstanceState, Quotas, RandomIds, State},
    store::{RedbStore, Store},
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
    store: Box<dyn Store>,
    dataplane: Box<dyn Dataplane>,
    compiler_ids: Ids,
}

impl Agent {
    /// Opens the store under `--state-dir`, loads (or takes over) the kernel data plane and
    /// enforces the stored state.
    pub fn start(args: &ServeArgs) -> anyhow::Result<Agent> {
        std::fs::create_dir_all(&args.state_dir)
            .with_context(|| format!("creating {}", args.state_dir.display()))?;
        dataplane::ensure_bpffs(&args.bpffs)?;
        let store =
            RedbStore::open(&args.state_dir.join("state.redb")).context("opening the store")?;
        let timeouts = CtTimeouts {
            tcp_established: args.tcp_established_timeout,
            ..CtTimeouts::AWS_DEFAULT
        };
        let dataplane = KernelDataplane::load(&dataplane::LoadOptions {
            timeouts,
            pins: Some(args.bpffs.join("firewall-agent")),
            conntrack_capacity: args.conntrack_capacity,
        })
        .context("loading the data plane")?;
        let quotas = Quotas {
            rules_per_group: args.rules_per_group,
            groups_per_instance: args.groups_per_instance,
        };
        Agent::new(Box::new(store), Box::new(dataplane), quotas)
    }

    /// The agent on `store` and `dataplane`: the stored state (or the first-start state) with
    /// `quotas` (configuration: they win over what was stored), enforced.
    pub fn new(
        store: Box<dyn Store>,
        mut dataplane: Box<dyn Dataplane>,
        quotas: Quotas,
    ) -> anyhow::Result<Agent> {
        let mut state = match store.load().context("reading the store")? {
            Some(state) => state,
            None => State::initial(&mut RandomIds),
        };
        state.quotas = quotas;
        store.save(&state).context("saving the state")?;
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

    /// Handles one call. A read is answered from the state (or the data plane); a change is made
    /// on a copy, checked, persisted, then applied to the kernel.
    pub fn handle(&mut self, call: Call) -> ApiResult<Value> {
        let run = match call.action.handler {
            Handler::Dataplane(run) => return run(self, call.request),
            Handler::State(run) if !call.action.mutates => {
                return run(&mut self.state, &mut RandomIds, call.request);
            }
            Handler::State(run) => run,
        };
        let mut next = self.state.clone();
        let response = run(&mut next, &mut RandomIds, call.request)?;
        check_interfaces(&self.state, &next, self.dataplane.as_ref())?;
        self.store.save(&next).map_err(|e| {
            tracing::error!(error = %e, "store write failed");
            ApiError::internal(format!("The state could not be saved: {e}"))
        })?;
        self.state = next;
        let applied = self.sync().map_err(|e| {
            ApiError::internal(format!(
                "The change was saved but could not be applied to the data plane: {e}"
            ))
        })?;
        if call.flush_flows {
            let flushed = self
                .dataplane
                .flush_disallowed_flows(&applied)
                .map_err(|e| {
                    ApiError::internal(format!(
                        "The change was applied but flows could not be flushed: {e}"
                    ))
                })?;
            tracing::info!(flushed, "flushed flows the change no longer allows");
        }
        Ok(response)
    }

    pub fn collect_expired_flows(&mut self) {
        match self.dataplane.collect_expired_flows() {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "conntrack garbage collected"),
            Err(e) => tracing::warn!(error = %e, "conntrack garbage collection failed"),
        }
    }
}

impl DataplaneView for Agent {
    fn statistics(&self) -> ApiResult<DataplaneStatistics> {
        let counters = self
            .dataplane
            .counters()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let named = |m: std::collections::BTreeMap<&'static str, u64>| {
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        };
        Ok(DataplaneStatistics {
            drops: named(counters.drops),
            passes: named(counters.passes),
            rule_hits: counters.rule_hits,
            tracked_flows: self.dataplane.tracked_flows() as u64,
        })
    }
}

/// A workload that starts being enforced must have its interface in our namespace.
fn check_interfaces(before: &State, after: &State, dataplane: &dyn Dataplane) -> ApiResult<()> {
    for instance in after.instances.values() {
        if instance.state != InstanceState::Running {
            continue;
        }
        let was_enforced = before
            .instances
            .get(&instance.id)
            .is_some_and(|old| old.state == InstanceState::Running);
        if !was_enforced && !dataplane.has_interface(&instance.interface) {
            return Err(ApiError::invalid_value(format!(
                "The interface '{}' does not exist in the agent's network namespace.",
                instance.interface
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;

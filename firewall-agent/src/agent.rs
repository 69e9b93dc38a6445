//! The agent: owns the desired state, and for each call validates on a copy, persists the result
//! (durable before the reply), compiles it and applies the difference to the kernel.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use serde_json::Value;

use crate::{
    api::{ApiError, ApiResult, Call, Handler, Scope, explain, types::ours::ChangePreview},
    compiler::{self, Ids, Incremental},
    dataplane::{self, Dataplane},
    flowlogs,
    metrics::{Metrics, Snapshot, Stage},
    model::{Quotas, RandomIds, State, preview},
    store::{Store, StoreError},
    workloads::{self, Launcher},
};

/// Everything one request may touch, behind one lock: requests apply one at a time.
pub struct Agent {
    /// The state of every account and region used so far.
    states: BTreeMap<Scope, State>,
    /// Configuration: they win over what was stored, in every scope.
    quotas: Quotas,
    /// Shared with the tick, which saves the compiler's IDs without holding the agent.
    store: Arc<dyn Store>,
    dataplane: Box<dyn Dataplane>,
    /// What the states compile to, kept up to date change by change.
    compiler: Incremental,
    /// The compiler's IDs changed since they were last saved.
    ids_unsaved: bool,
    /// The IDs as saved last: a save writes what changed since.
    ids_saver: Arc<IdsSaver>,
    metrics: Arc<Metrics>,
    /// Builds and removes local instances' namespaces.
    launcher: Box<dyn Launcher>,
    /// Where flow-log files go, and the flow logs an account may have.
    flow_logs: flowlogs::Config,
    /// `serve --refuse-deleting-self-referenced-groups`, set on every state handed to the model.
    refuse_deleting_self_referenced: bool,
    /// `serve --run-user-data`: where the instances' user data and console output live.
    pub(crate) user_data_dir: Option<std::path::PathBuf>,
    /// Notified when a change queued tracked flows to delete (a stopped or detached workload's):
    /// the daemon deletes them on the agent's next turn, after the answer.
    flows_queued: Arc<tokio::sync::Notify>,
}

impl Agent {
    /// The agent with flow-log files under `config.dir` and its quota (the default:
    /// [`flowlogs::Config::default`]).
    pub fn with_flow_logs(mut self, config: flowlogs::Config) -> Agent {
        self.flow_logs = config;
        self
    }

    /// Where flow-log files go, and the quota.
    pub fn flow_log_config(&self) -> &flowlogs::Config {
        &self.flow_logs
    }

    /// Recompiles what the change of `scope` from `before` touched and writes it to the kernel.
    /// Should the maps have missed an earlier change, the whole compiled state is written as a
    /// difference instead.
    fn enforce(
        &mut self,
        before: Option<&State>,
        scope: &Scope,
    ) -> Result<(), dataplane::DataplaneError> {
        let t0 = Instant::now();
        let delta = self.compiler.update(before, &self.states, scope);
        self.ids_unsaved = true;
        let compiled = Instant::now();
        self.metrics.stage(Stage::Compile, compiled - t0);
        self.write(&delta)?;
        self.metrics.stage(Stage::Maps, compiled.elapsed());
        Ok(())
    }

    /// Writes a delta of the compiler's. Should that fail (the maps missed an earlier change, or
    /// are full), the idle policies go and the whole compiled state is written as a difference.
    fn write(&mut self, delta: &compiler::Delta) -> Result<(), dataplane::DataplaneError> {
        if let Err(e) = self.dataplane.apply_delta(delta) {
            tracing::warn!(error = %e, "the change could not be written as is; writing the difference from the maps");
            self.compiler.collect_idle(true);
            self.ids_unsaved = true;
            self.dataplane.apply(self.compiler.desired())?;
        }
        if self.dataplane.flows_queued() {
            self.flows_queued.notify_one();
        }
        Ok(())
    }

    /// What the daemon waits on to call [`Agent::flush_queued_flows`].
    pub fn flows_queued(&self) -> Arc<tokio::sync::Notify> {
        self.flows_queued.clone()
    }

    /// Deletes the tracked flows of the workloads the last changes stopped or detached (see
    /// [`Dataplane::flush_queued_flows`]).
    pub fn flush_queued_flows(&mut self) {
        match self.dataplane.flush_queued_flows() {
            Ok(0) => {}
            Ok(n) => tracing::debug!(
                flushed = n,
                "tracked flows of stopped or detached workloads deleted"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "tracked flows of stopped or detached workloads could not be deleted")
            }
        }
    }

    /// Deletes the policies no workload has used for a whole tick (see
    /// [`compiler::Incremental::collect_idle`]); called on the agent's 10 s tick.
    pub fn collect_idle_policies(&mut self) {
        let delta = self.compiler.collect_idle(false);
        if !delta.touches_policy_maps() {
            return;
        }
        self.ids_unsaved = true;
        if let Err(e) = self.write(&delta) {
            tracing::warn!(error = %e, "idle policies could not be deleted");
        }
    }

    /// The agent stops: a shared store's lease is revoked (see [`Store::close`]).
    pub fn close_store(&self) {
        self.store.close();
    }

    /// A copy of the compiler's IDs to save, if they changed since the last save: the tick
    /// writes the records that changed without holding the agent (older IDs after a crash
    /// only cost rewriting entries at start). A change meanwhile marks them unsaved again for
    /// the next tick.
    pub fn ids_to_save(&mut self) -> Option<IdsCopy> {
        if !self.ids_unsaved {
            return None;
        }
        self.ids_unsaved = false;
        Some(self.ids_saver.copy(self.store.clone(), self.compiler.ids()))
    }

    /// A save of [`Agent::ids_to_save`]'s IDs failed: the next tick tries again.
    pub fn ids_not_saved(&mut self) {
        self.ids_unsaved = true;
    }

    /// Saves the compiler's IDs now if they changed (at stop).
    pub fn save_compiler_ids(&mut self) {
        if !self.ids_unsaved {
            return;
        }
        let copy = self.ids_saver.copy(self.store.clone(), self.compiler.ids());
        match copy.save() {
            Ok(()) => self.ids_unsaved = false,
            Err(e) => {
                tracing::warn!(error = %e, "could not save the data-plane IDs; a restart will rewrite the maps");
            }
        }
    }

    /// The state of `scope`; a region used for the first time gets its default VPC and group,
    /// stored at once so its IDs stay the same.
    fn state(&mut self, scope: &Scope) -> ApiResult<&mut State> {
        if !self.states.contains_key(scope) {
            let state = State::initial_in(&scope.account_id, &scope.region, &mut RandomIds);
            self.store.save(None, &state).map_err(store_failed)?;
            self.states.insert(scope.clone(), state);
            // Its rules get their counter slots; it has no workloads yet.
            self.enforce(None, scope).map_err(|e| {
                ApiError::internal(format!("The region could not be enforced: {e}"))
            })?;
        }
        let state = self.states.get_mut(scope).expect("inserted above");
        // Configuration, not stored: set on every state handed to the model, as loaded,
        // created or received from another agent.
        state.flow_log_dir = self.flow_logs.dir.clone();
        state.refuse_deleting_self_referenced = self.refuse_deleting_self_referenced;
        state.quotas = self.quotas;
        Ok(state)
    }

    /// Handles one call. A read is answered from the state (or the data plane); a change is made
    /// on a copy, checked, persisted, then applied to the kernel. With `DryRun`, the call runs
    /// on a copy and answers `DryRunOperation` where it would have succeeded. With a shared
    /// store, a change that lost a race against another agent is made again on the state as
    /// the store now holds it (validated again), a few times at most.
    pub fn handle(&mut self, call: Call) -> ApiResult<Value> {
        let mut call = call;
        for _ in 0..remote::LOST_RACE_RETRIES {
            let again = Call {
                request: call.request.clone(),
                scope: call.scope.clone(),
                ..call
            };
            match self.handle_once(call) {
                Err(e) if e.code == remote::UNAVAILABLE => match self.store.refresh() {
                    Ok(true) => self.apply_remote(),
                    Ok(false) | Err(_) => return Err(e),
                },
                answer => return answer,
            }
            call = again;
        }
        self.handle_once(call)
    }

    fn handle_once(&mut self, call: Call) -> ApiResult<Value> {
        let run = match call.action.handler {
            Handler::Dataplane(run) => {
                let response = run(self, &call.scope, call.request)?;
                return if call.dry_run {
                    Err(dry_run_succeeded())
                } else {
                    Ok(response)
                };
            }
            Handler::Deferred(run) => {
                let later = run(self, &call.scope, call.request)?;
                return if call.dry_run {
                    Err(dry_run_succeeded())
                } else {
                    later()
                };
            }
            Handler::State(run) => run,
        };
        let current = self.state(&call.scope)?;
        if !call.action.mutates && !call.dry_run {
            return run(current, &mut RandomIds, call.request);
        }
        let started = Instant::now();
        // Groups are shared with `current` until the change edits one (copy on write).
        let mut next = current.clone();
        let response = run(&mut next, &mut RandomIds, call.request)?;
        if let Some(host) = self.store.host_id() {
            remote::owned_by(host, &mut next);
        }
        let modelled = Instant::now();
        self.metrics
            .stage(Stage::Parse, started - call.received.min(started));
        self.metrics.stage(Stage::Model, modelled - started);
        if call.dry_run {
            let mut answer = dry_run_succeeded();
            if call.action.mutates {
                answer.preview = Some(Box::new(self.preview(&call.scope, &next)?));
            }
            return Err(answer);
        }
        flowlogs::check_new(&self.states, &next, &self.flow_logs)?;
        let before = self.states.get(&call.scope);
        let launched = workloads::to_launch(before, &next);
        let removed = before.map_or_else(Vec::new, |before| workloads::to_remove(before, &next));
        if !launched.is_empty() {
            self.check_local_instances(&next)?;
        }
        check_registrations(&self.states, &next, self.launcher.as_ref())?;
        self.launch(&launched)?;
        let saved = check_interfaces(&self.states, &next, self.dataplane.as_ref()).and_then(|()| {
            self.store
                .save(self.states.get(&call.scope), &next)
                .map_err(store_failed)
        });
        if let Err(e) = saved {
            self.unlaunch(&launched);
            return Err(e);
        }
        self.metrics.stage(Stage::Store, modelled.elapsed());
        let before = self.states.insert(call.scope.clone(), next);
        self.enforce(before.as_ref(), &call.scope).map_err(|e| {
            ApiError::internal(format!(
                "The change was saved but could not be applied to the data plane: {e}"
            ))
        })?;
        self.metrics.enforced(call.received.elapsed());
        // Detached by now: the namespaces and veths of terminated instances can go.
        self.unlaunch(&removed);
        if call.flush_flows {
            let flushed = self
                .dataplane
                .flush_disallowed_flows(self.compiler.desired())
                .map_err(|e| {
                    ApiError::internal(format!(
                        "The change was applied but flows could not be flushed: {e}"
                    ))
                })?;
            tracing::info!(flushed, "flushed flows the change no longer allows");
        }
        Ok(response)
    }

    /// What applying `next` in `scope` would do: the rules it adds and removes, and the tracked
    /// flows the compiled result no longer allows (those `FlushFlows` cuts).
    fn preview(&self, scope: &Scope, next: &State) -> ApiResult<ChangePreview> {
        let before = &self.states[scope];
        let (rules_added, rules_removed) = preview::rule_changes(before, next);
        let mut states = self.states.clone();
        states.insert(scope.clone(), next.clone());
        let desired = compile_all(&states, &mut self.compiler.ids().clone());
        let flows = self
            .dataplane
            .disallowed_flows(&desired)
            .map_err(|e| ApiError::internal(format!("The flows could not be read: {e}")))?;
        Ok(ChangePreview {
            rules_added,
            rules_removed,
            flows_no_longer_allowed: flows.iter().map(explain::flow_view).collect(),
        })
    }

    /// The instruments the front ends record requests into.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// What a scrape reads while holding the agent: the kernel's counters and a copy of the
    /// states (their groups and rules shared, not copied). The rest is built from them after
    /// the agent is let go ([`Scrape::snapshot`]), so a scrape delays changes by the counter
    /// reads alone.
    pub fn scrape(&self) -> anyhow::Result<Scrape> {
        Ok(Scrape {
            counters: self.dataplane.raw_counters()?,
            states: self.states.values().cloned().collect(),
            tracked_flows: self.dataplane.flow_counter(),
            flow_log_lost: self.dataplane.flow_log_lost(),
            conntrack_capacity: u64::from(self.dataplane.conntrack_capacity()),
        })
    }

    /// The kernel's flow-log event ring buffer, once, for the flow-log writer.
    pub fn take_flow_events(&mut self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        self.dataplane.take_flow_events()
    }

    /// One flush of the flow logs: the aggregated records as lines, by destination.
    pub fn flow_log_lines(
        &mut self,
        aggregator: &mut flowlogs::aggregate::Aggregator,
    ) -> BTreeMap<flowlogs::Destination, Vec<String>> {
        let lines = flowlogs::lines(
            &self.states,
            self.dataplane.as_ref(),
            aggregator,
            &self.flow_logs.dir,
        );
        let records: usize = lines.values().map(Vec::len).sum();
        self.metrics.flow_log_records(records as u64);
        lines
    }

    pub fn collect_expired_flows(&mut self) {
        match self.dataplane.collect_expired_flows() {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "conntrack garbage collected"),
            Err(e) => tracing::warn!(error = %e, "conntrack garbage collection failed"),
        }
    }
}

impl Drop for Agent {
    /// A stopping agent leaves its IDs saved (the next one then rewrites nothing) and no
    /// tracked flow of a stopped workload behind.
    fn drop(&mut self) {
        self.flush_queued_flows();
        self.save_compiler_ids();
    }
}

fn store_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(_) | StoreError::Conflict => {
            tracing::warn!(error = %e, "the change was not saved");
            ApiError::new(
                remote::UNAVAILABLE,
                format!("The change was not made: {e}. Nothing was changed; retry later."),
            )
        }
        StoreError::Refused(_) => ApiError::invalid_value(format!(
            "The change is too large for one write to the shared store ({e}); make it in smaller requests."
        )),
        e => {
            tracing::error!(error = %e, "store write failed");
            ApiError::internal(format!("The state could not be saved: {e}"))
        }
    }
}

/// EC2's answer to a `DryRun` call that would have succeeded.
fn dry_run_succeeded() -> ApiError {
    ApiError::new(
        "DryRunOperation",
        "Request would have succeeded, but DryRun flag is set.",
    )
}

/// What every scope's state compiles to, with `ids`.
fn compile_all(states: &BTreeMap<Scope, State>, ids: &mut Ids) -> compiler::Desired {
    match states.len() {
        1 => compiler::compile(states.values().next().expect("one state"), ids),
        _ => compiler::compile(&combined(states), ids),
    }
}

/// Every scope's resources in one state, for the compiler: IDs are unique across scopes, and a
/// rule only ever references resources of its own scope.
fn combined(states: &BTreeMap<Scope, State>) -> State {
    let mut all = states.values().next().expect("at least one scope").clone();
    for state in states.values().skip(1) {
        all.vpcs.extend(state.vpcs.clone());
        all.groups.extend(state.groups.clone());
        all.instances.extend(state.instances.clone());
        all.subnets.extend(state.subnets.clone());
        all.network_interfaces
            .extend(state.network_interfaces.clone());
        all.prefix_lists.extend(state.prefix_lists.clone());
        all.flow_logs.extend(state.flow_logs.clone());
        all.launch_templates.extend(state.launch_templates.clone());
    }
    all
}

#[path = "agent_args.rs"]
mod args;
pub use args::ServeArgs;

#[path = "agent_workloads.rs"]
mod host;
use host::{check_interfaces, check_registrations};

#[path = "agent_view.rs"]
mod view;

#[path = "agent_remote.rs"]
mod remote;

#[path = "agent_read.rs"]
mod read;

#[path = "agent_ids.rs"]
mod ids;
pub use ids::{IdsCopy, IdsSaver};

#[path = "agent_start.rs"]
mod start;
pub use read::{Prepared, Read, answer};

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;

/// The data plane's counters and the states, as read for one scrape under the agent's lock:
/// the hits still by slot, the states sharing their groups (both taken in O(1) per group).
pub struct Scrape {
    counters: crate::dataplane::RawCounters,
    states: Vec<State>,
    /// Counted after the agent is let go (a walk of `CONNTRACK`).
    tracked_flows: crate::dataplane::FlowCounter,
    flow_log_lost: u64,
    conntrack_capacity: u64,
}

impl Scrape {
    /// The counters named (each rule's hits by its ID, each rule's group, each interface's
    /// network interface), off the agent's lock.
    pub fn snapshot(self) -> Snapshot {
        let rule_groups = (self.states.iter())
            .flat_map(|state| state.groups.values())
            .flat_map(|group| {
                (group.ingress.iter().chain(&group.egress))
                    .map(|rule| (rule.id.clone(), group.id.clone()))
            })
            .collect();
        let interface_ids = (self.states.iter())
            .flat_map(|state| state.enforced())
            .map(|(eni, _)| (eni.host_interface.clone(), eni.id.clone()))
            .collect();
        Snapshot {
            counters: self.counters.named(),
            rule_groups,
            interface_ids,
            tracked_flows: (self.tracked_flows)() as u64,
            flow_log_lost: self.flow_log_lost,
            conntrack_capacity: self.conntrack_capacity,
        }
    }
}

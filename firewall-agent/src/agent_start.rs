//! An agent's start: the store read and the kernel data plane loaded side by side (at 100k rules
//! each takes a few hundred milliseconds: decoding the records; verifying the programs and reading
//! the pinned maps back), then the state compiled whole and the difference written. Each step is
//! logged with its time.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use anyhow::Context as _;
use firewall_common::CtTimeouts;

use super::{Agent, IdsSaver, ServeArgs, remote};
use crate::{
    api::Scope,
    compiler::{Ids, Incremental},
    dataplane::{self, Dataplane, KernelDataplane},
    flowlogs,
    model::{Quotas, RandomIds, State},
    store::{EtcdStore, RedbStore, Store, StoreError},
    workloads::{self, IpLauncher, Launcher, NoLauncher, register::Allowed},
};

/// Runs `step`, and logs how long it took.
fn timed<T>(what: &'static str, step: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let done = step();
    tracing::info!(took = ?started.elapsed(), "{what}");
    done
}

impl Agent {
    /// Opens the store under `--state-dir`, loads (or takes over) the kernel data plane and
    /// enforces the stored state.
    pub fn start(args: &ServeArgs) -> anyhow::Result<Agent> {
        let started = Instant::now();
        std::fs::create_dir_all(&args.state_dir)
            .with_context(|| format!("creating {}", args.state_dir.display()))?;
        let flow_logs = flowlogs::Config::from_args(args)?;
        let pins =
            dataplane::pin_dir(&args.bpffs, args.netns_pins).context("choosing where to pin")?;
        let redb = args.state_dir.join("state.redb");
        let store: Box<dyn Store> = if args.etcd_endpoints.is_empty() {
            Box::new(RedbStore::open(&redb).context("opening the store")?)
        } else {
            Box::new(
                EtcdStore::open(&remote::etcd_options(args), &redb)
                    .context("connecting to etcd")?,
            )
        };
        let options = dataplane::LoadOptions {
            timeouts: CtTimeouts {
                tcp_established: args.tcp_established_timeout,
                ..CtTimeouts::AWS_DEFAULT
            },
            pins: Some(pins),
            conntrack_capacity: args.conntrack_capacity,
            attach: args.attach,
        };
        // Independent of each other. The thread is made after `main` left any private mount
        // namespace, so it pins where the agent does.
        let (dataplane, states) = std::thread::scope(|s| {
            let dataplane =
                s.spawn(|| timed("loaded the data plane", || KernelDataplane::load(&options)));
            let states = timed("read the store", || read_states(store.as_ref()));
            let dataplane = dataplane
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (dataplane, states)
        });
        let dataplane = dataplane.context("loading the data plane")?;
        let quotas = Quotas {
            rules_per_group: args.rules_per_group,
            groups_per_instance: args.groups_per_instance,
            vpcs_per_region: args.vpcs_per_region,
            local_instances: args.max_local_instances,
            interfaces_per_region: args.interfaces_per_region,
        };
        let allowed = Allowed::new(&args.allow_interfaces).map_err(anyhow::Error::msg)?;
        let user_data_dir = args.run_user_data.then(|| args.state_dir.join("user-data"));
        let launcher = IpLauncher::new(args.host_routes, allowed, user_data_dir.clone());
        let mut agent = Agent::enforcing(
            store,
            states?,
            Box::new(dataplane),
            quotas,
            Box::new(launcher),
        )?
        .with_flow_logs(flow_logs);
        agent.refuse_deleting_self_referenced = args.refuse_deleting_self_referenced_groups;
        agent.user_data_dir = user_data_dir;
        tracing::info!(took = ?started.elapsed(), "started");
        Ok(agent)
    }

    /// The agent on `store` and `dataplane`: the stored states (or, at first start, the local
    /// region's) with `quotas`, enforced; it launches no local instances.
    pub fn new(
        store: Box<dyn Store>,
        dataplane: Box<dyn Dataplane>,
        quotas: Quotas,
    ) -> anyhow::Result<Agent> {
        Agent::with_launcher(store, dataplane, quotas, Box::new(NoLauncher))
    }

    /// [`Agent::new`] with local instances built by `launcher`; those of the stored state are
    /// made to exist again (kept as they are when they do).
    pub fn with_launcher(
        store: Box<dyn Store>,
        dataplane: Box<dyn Dataplane>,
        quotas: Quotas,
        launcher: Box<dyn Launcher>,
    ) -> anyhow::Result<Agent> {
        let states = read_states(store.as_ref())?;
        Agent::enforcing(store, states, dataplane, quotas, launcher)
    }

    /// The agent holding `states` (as `store` has them), enforced on `dataplane`.
    fn enforcing(
        store: Box<dyn Store>,
        mut states: BTreeMap<Scope, State>,
        mut dataplane: Box<dyn Dataplane>,
        quotas: Quotas,
        mut launcher: Box<dyn Launcher>,
    ) -> anyhow::Result<Agent> {
        for state in states.values_mut() {
            // Configuration of this agent, not shared: set on every state it holds.
            state.quotas = quotas;
        }
        // The IDs as stored, when the maps were taken over: saved again only if they changed.
        let mut stored_ids = None;
        let compiler_ids = if dataplane.restored() {
            // Same state, same IDs: the first apply after a restart then changes nothing.
            let mut ids = timed("read the data plane's IDs", || store.load_dataplane_ids())
                .context("reading the store")?
                .unwrap_or_default();
            ids.skip_past(dataplane.highest_ids());
            dataplane.assume_rule_slots(ids.slot_map());
            // Persistent maps: an O(1) copy.
            stored_ids = Some(ids.clone());
            ids
        } else {
            Ids::default()
        };
        for plan in states
            .values()
            .flat_map(|state| workloads::to_launch(None, state))
        {
            if let Err(e) = launcher.ensure(&plan) {
                tracing::error!(instance = %plan.instance_id, error = %e, "local instance could not be rebuilt");
            }
        }
        let compiler = timed("compiled the state", || {
            Incremental::new(&states, compiler_ids)
        });
        let ids_unsaved = stored_ids.as_ref() != Some(compiler.ids());
        let mut agent = Agent {
            states,
            quotas,
            store: store.into(),
            dataplane,
            compiler,
            ids_unsaved,
            ids_saver: IdsSaver::new(stored_ids),
            metrics: Arc::default(),
            launcher,
            flow_logs: flowlogs::Config::default(),
            refuse_deleting_self_referenced: false,
            user_data_dir: None,
            flows_queued: Default::default(),
        };
        let applied = timed("wrote the difference to the maps", || {
            agent.dataplane.apply(agent.compiler.desired())
        });
        if let Err(e) = applied {
            tracing::error!(error = %e, "some workloads could not be enforced at start");
        }
        agent.save_compiler_ids();
        Ok(agent)
    }
}

/// The stored states by scope; at the first start on an empty store, the local region's.
fn read_states(store: &dyn Store) -> anyhow::Result<BTreeMap<Scope, State>> {
    let states = by_scope(store.load().context("reading the store")?);
    if states.is_empty() {
        return first_state(store);
    }
    Ok(states)
}

fn by_scope(states: Vec<State>) -> BTreeMap<Scope, State> {
    (states.into_iter())
        .map(|state| (state.scope(), state))
        .collect()
}

/// The local region's state at the first start on an empty store: made and saved; when another
/// agent made it at the same moment (a shared store), the winner's, as the store now holds it.
fn first_state(store: &dyn Store) -> anyhow::Result<BTreeMap<Scope, State>> {
    let state = State::initial(&mut RandomIds);
    match store.save(None, &state) {
        Ok(()) => Ok(BTreeMap::from([(state.scope(), state)])),
        Err(StoreError::Conflict) => {
            store
                .refresh()
                .context("reading the state another agent made")?;
            let states = by_scope(store.take_remote_states());
            anyhow::ensure!(
                !states.is_empty(),
                "another agent made the state at the same time, and it could not be read"
            );
            tracing::info!(
                "another agent made the region's defaults at the same time: using theirs"
            );
            Ok(states)
        }
        Err(e) => Err(e).context("saving the state"),
    }
}

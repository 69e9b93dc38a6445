//! The agent's side of a store shared by several hosts (`--etcd-endpoints`): other agents'
//! changes applied, the instances this host owns, and the etcd options from `serve`'s.

use super::{Agent, ServeArgs};
use crate::{
    model::{State, TableExt},
    store::EtcdOptions,
    workloads,
};

/// The code of a change the shared store could not take (etcd unreachable, or a race lost to
/// another agent): EC2's answer when it cannot serve a request now (503).
pub(super) const UNAVAILABLE: &str = "Unavailable";
/// How many times a change that lost a race is made again.
pub(super) const LOST_RACE_RETRIES: usize = 8;

impl Agent {
    /// Makes the states of scopes another agent changed (from the shared store) this agent's,
    /// and enforces them: its own instances that appeared are built, those terminated removed.
    pub fn apply_remote(&mut self) {
        let states = self.store.take_remote_states();
        if states.is_empty() {
            return;
        }
        let mut removed = Vec::new();
        for mut state in states {
            // This agent's own configuration, not the store's.
            state.quotas = self.quotas;
            let scope = state.scope();
            let before = self.states.get(&scope);
            let launched = workloads::to_launch(before, &state);
            removed.extend(before.map_or_else(Vec::new, |b| workloads::to_remove(b, &state)));
            for plan in &launched {
                if let Err(e) = self.launcher.ensure(plan) {
                    tracing::error!(instance = %plan.instance_id, error = %e, "local instance could not be built");
                }
            }
            let before = self.states.insert(scope.clone(), state);
            if let Err(e) = self.enforce(before.as_ref(), &scope) {
                tracing::error!(error = %e, "another agent's change could not be fully enforced");
            }
        }
        self.unlaunch(&removed);
    }

    /// The shared store's stream of other agents' changes (once), for the daemon to apply.
    pub fn take_remote_changes(&mut self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        self.store.remote_changes()
    }
}

/// Instances a change registered belong to `host`, the host of this agent.
pub(super) fn owned_by(host: &str, state: &mut State) {
    state.instances.edit_where(
        |instance| instance.host.is_none(),
        |instance| instance.host = Some(host.to_string()),
    );
}

/// This host's name (`/proc/sys/kernel/hostname`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The shared store's options from `serve`'s.
pub(super) fn etcd_options(args: &ServeArgs) -> EtcdOptions {
    EtcdOptions {
        endpoints: args.etcd_endpoints.clone(),
        ca_cert: args.etcd_cacert.clone(),
        cert: args.etcd_cert.clone(),
        key: args.etcd_key.clone(),
        host_id: args.host_id.clone().unwrap_or_else(hostname),
        lease_ttl: args.host_lease_ttl,
    }
}

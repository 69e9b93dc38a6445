//! The agent's data-plane actions (`DataplaneView`): statistics, explain-verdict and
//! verify-dataplane, answered from the kernel's maps and the compiled state; and the console
//! output of local instances' user data.

use crate::{
    api::{
        ApiError, ApiResult, DataplaneView, Scope,
        catalogue::Later,
        explain,
        types::{
            instance_details::{GetConsoleOutputRequest, GetConsoleOutputResponse},
            ours::{
                DataplaneStatistics, DataplaneVerification, ExplainVerdictRequest,
                ExplainVerdictResponse,
            },
        },
    },
    dataplane,
    model::{lookup, rfc3339},
    workloads::user_data,
};

use super::{Agent, compile_all};

/// The most differences `verify-dataplane` lists.
const DIFFERENCES_SHOWN: usize = 100;

impl DataplaneView for Agent {
    fn console_output(
        &self,
        scope: &Scope,
        request: GetConsoleOutputRequest,
    ) -> ApiResult<GetConsoleOutputResponse> {
        use base64::Engine as _;
        let id = request
            .instance_id
            .ok_or_else(|| ApiError::missing("InstanceId"))?;
        match self.states.get(scope) {
            Some(state) => lookup::check_instances_exist(state, std::slice::from_ref(&id))?,
            None => {
                return Err(ApiError::new(
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{id}' does not exist"),
                ));
            }
        }
        let found = self
            .user_data_dir
            .as_deref()
            .and_then(|root| user_data::console_output(root, &id));
        Ok(GetConsoleOutputResponse {
            instance_id: id,
            timestamp: found.as_ref().map(|(_, modified)| {
                let secs = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                rfc3339(secs)
            }),
            output: found.map(|(bytes, _)| base64::engine::general_purpose::STANDARD.encode(bytes)),
        })
    }

    /// Under the lock: the counters by slot (batched reads) and the slots' rules (O(1)).
    fn statistics(&self) -> ApiResult<Later<DataplaneStatistics>> {
        let raw = self
            .dataplane
            .raw_counters()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let tracked_flows = self.dataplane.flow_counter();
        let flow_log_lost_records = self.dataplane.flow_log_lost();
        Ok(Box::new(move || {
            let counters = raw.named();
            let named = |m: std::collections::BTreeMap<&'static str, u64>| {
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            };
            DataplaneStatistics {
                drops: named(counters.drops),
                passes: named(counters.passes),
                rule_hits: counters.rule_hits,
                tracked_flows: tracked_flows() as u64,
                flow_log_lost_records,
            }
        }))
    }

    fn explain(
        &self,
        scope: &Scope,
        request: ExplainVerdictRequest,
    ) -> ApiResult<ExplainVerdictResponse> {
        match self.states.get(scope) {
            Some(state) => explain::explain(state, self.dataplane.as_ref(), request),
            None => Err(ApiError::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{}' does not exist", request.instance_id),
            )),
        }
    }

    /// Compiles the state with the IDs in use (a copy: same state, same entries) and compares
    /// the result with what the kernel's maps hold.
    fn verify(&self) -> ApiResult<DataplaneVerification> {
        let whole = compile_all(&self.states, &mut self.compiler.ids().clone());
        // Idle policies are kept until the next tick collects them.
        let expected = self.compiler.with_idle(whole);
        let held = self
            .dataplane
            .read_back()
            .map_err(|e| ApiError::internal(format!("The maps could not be read: {e}")))?;
        let mut differences = dataplane::differences(&expected, &held);
        if differences.len() > DIFFERENCES_SHOWN {
            let more = differences.len() - DIFFERENCES_SHOWN;
            differences.truncate(DIFFERENCES_SHOWN);
            differences.push(format!("… and {more} more"));
        }
        Ok(DataplaneVerification {
            in_sync: differences.is_empty(),
            interfaces: held.ifaces.len() as u64,
            peers: held.peers.len() as u64,
            ports: held.ports.len() as u64,
            differences,
        })
    }
}

//! Reads of the desired state answered off the agent's lock. Describing every rule of 100k takes
//! about half a second to build, and a change arriving meanwhile must not wait for it: under the
//! lock a read only takes its snapshot, a copy of its scope's state whose groups (and their rule
//! lists) stay shared, so O(groups + instances) pointer copies. The answer is built from the
//! snapshot on a blocking thread after the lock is released. The snapshot is taken after every
//! change answered before the read arrived, so a client still reads its own writes.

use serde_json::Value;

use crate::{
    api::{ApiError, ApiResult, Call, Handler, catalogue::LaterAnswer},
    model::{IdSource, RandomIds, State},
};

use super::Agent;

/// A call as the agent's lock leaves it.
pub enum Prepared {
    /// Answered under the lock: a change, a data-plane action, a dry run, or a refusal.
    Answered(ApiResult<Value>),
    /// A read, still to run on its snapshot.
    Read(Box<Read>),
    /// A data-plane read, its answer still to build from what was read.
    Later(LaterAnswer),
}

/// A read of the desired state with the snapshot it reads.
pub struct Read {
    state: State,
    run: fn(&mut State, &mut dyn IdSource, Value) -> ApiResult<Value>,
    request: Value,
}

impl Read {
    /// The read's answer, from its snapshot (nothing it does reaches the agent).
    pub fn run(mut self) -> ApiResult<Value> {
        (self.run)(&mut self.state, &mut RandomIds, self.request)
    }
}

impl Agent {
    /// Under the lock: a change is made and answered; a read takes its snapshot. A region read
    /// for the first time is created first (stored, as on any call), and a read whose region
    /// could not be created goes the change path, which retries a race lost to another agent.
    pub fn prepare(&mut self, call: Call) -> Prepared {
        let run = match call.action.handler {
            Handler::State(run) => run,
            Handler::Deferred(read) if !call.dry_run => {
                return match read(self, &call.scope, call.request) {
                    Ok(later) => Prepared::Later(later),
                    Err(e) => Prepared::Answered(Err(e)),
                };
            }
            Handler::Deferred(_) | Handler::Dataplane(_) => {
                return Prepared::Answered(self.handle(call));
            }
        };
        if call.action.mutates || call.dry_run {
            return Prepared::Answered(self.handle(call));
        }
        match self.state(&call.scope) {
            Ok(state) => Prepared::Read(Box::new(Read {
                state: state.clone(),
                run,
                request: call.request,
            })),
            Err(_) => Prepared::Answered(self.handle(call)),
        }
    }
}

/// A call's answer through the agent behind its lock: a change under the lock, a read from its
/// snapshot on a blocking thread once the lock is free.
pub async fn answer(agent: &tokio::sync::Mutex<Agent>, call: Call) -> ApiResult<Value> {
    let prepared = agent.lock().await.prepare(call);
    match prepared {
        Prepared::Answered(answer) => answer,
        Prepared::Read(read) => tokio::task::spawn_blocking(move || read.run())
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("The read failed: {e}")))),
        Prepared::Later(later) => tokio::task::spawn_blocking(later)
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("The read failed: {e}")))),
    }
}

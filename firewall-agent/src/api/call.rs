//! One call, as every front end hands it to the agent: the catalogue row, the request members,
//! where it runs (the account and region), and the two members that are about the call rather
//! than the operation: EC2's `DryRun` and our `FlushFlows`.

use std::time::Instant;

use serde_json::Value;

use super::{Action, ApiError, ApiResult, Operation, find, regions};

/// The account and region a call acts in: each pair holds its own resources, with its own
/// default VPC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub account_id: String,
    pub region: String,
}

impl Scope {
    /// The account of the local socket and of keys without an `aws_account_id`.
    pub const DEFAULT_ACCOUNT: &'static str = "000000000000";

    /// `account_id` (12 digits) in `region`, which must be a region we know.
    pub fn new(account_id: &str, region: &str) -> ApiResult<Scope> {
        regions::check(region)?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid_value(format!(
                "Invalid account ID '{account_id}': 12 digits."
            )));
        }
        Ok(Scope {
            account_id: account_id.to_string(),
            region: region.to_string(),
        })
    }

    /// The scope of the local socket without a region: our `local` region.
    pub fn local() -> Scope {
        Scope {
            account_id: Self::DEFAULT_ACCOUNT.into(),
            region: regions::LOCAL.into(),
        }
    }
}

/// EC2's member: check the call would succeed, change nothing, answer `DryRunOperation`.
const DRY_RUN: &str = "DryRun";
/// Our member: also cut the tracked flows that the change no longer allows.
pub const FLUSH_FLOWS: &str = "FlushFlows";

/// Members only the root-only socket takes (our CLI, the CNI plugin), by action: they reach the
/// host beyond the workloads the agent made (`HostInterface` puts the data plane on an existing
/// interface of the agent's namespace). The AWS clients never send them, so the network front
/// ends (the EC2 endpoint, the console) refuse them as AWS refuses a member it does not know.
const OPERATOR_ONLY: &[(&str, &str)] = &[("RunInstances", "HostInterface")];

pub struct Call {
    pub action: &'static Action,
    pub request: Value,
    pub scope: Scope,
    pub dry_run: bool,
    pub flush_flows: bool,
    /// When the request arrived (a change's "enforced" latency counts from it).
    pub received: Instant,
}

impl Call {
    /// A typed request for the action `O`, in the local scope.
    pub fn new<O: Operation>(request: &O::Request) -> ApiResult<Call> {
        let request = serde_json::to_value(request).map_err(ApiError::malformed)?;
        Ok(Call {
            action: find(O::NAME)?,
            request,
            scope: Scope::local(),
            dry_run: false,
            flush_flows: false,
            received: Instant::now(),
        })
    }

    /// A call decoded from a front end's members: `DryRun` and `FlushFlows` are taken out of
    /// them. `FlushFlows` only where the catalogue row takes it; reads leave it in place, where it
    /// is an unknown parameter like any other.
    pub fn from_members(action: &str, mut request: Value, scope: Scope) -> ApiResult<Call> {
        let action = find(action)?;
        let members = request.as_object_mut();
        let (dry_run, flush_flows) = match members {
            Some(members) => {
                let dry_run = members.remove(DRY_RUN);
                let flush_flows = if action.mutates {
                    members.remove(FLUSH_FLOWS)
                } else {
                    None
                };
                (dry_run, flush_flows)
            }
            None => (None, None),
        };
        if flush_flows.is_some() && !action.flush_flows {
            return Err(ApiError::new(
                "InvalidParameterCombination",
                format!("FlushFlows is not supported by {}", action.name),
            ));
        }
        Ok(Call {
            action,
            request,
            scope,
            dry_run: flag(DRY_RUN, dry_run)?,
            flush_flows: flag(FLUSH_FLOWS, flush_flows)?,
            received: Instant::now(),
        })
    }

    /// The call as a network front end may make it: an [`OPERATOR_ONLY`] member is refused with
    /// `UnknownParameter`.
    pub fn from_the_network(self) -> ApiResult<Call> {
        let members = self.request.as_object();
        for (action, member) in OPERATOR_ONLY {
            if self.action.name == *action && members.is_some_and(|m| m.contains_key(*member)) {
                return Err(ApiError::unknown_parameter(member));
            }
        }
        Ok(self)
    }

    /// The call as received at `arrival`.
    pub fn received_at(mut self, arrival: Instant) -> Call {
        self.received = arrival;
        self
    }

    pub fn with_flush_flows(mut self, flush_flows: bool) -> Call {
        self.flush_flows = flush_flows;
        self
    }

    /// The call in another account or region (each `None` keeps the current one).
    pub fn in_scope(mut self, account_id: Option<&str>, region: Option<&str>) -> ApiResult<Call> {
        let account_id = account_id.unwrap_or(&self.scope.account_id).to_string();
        let region = region.unwrap_or(&self.scope.region).to_string();
        self.scope = Scope::new(&account_id, &region)?;
        Ok(self)
    }

    /// The members as they travel, with `DryRun` and `FlushFlows` when set.
    pub fn members(&self) -> Value {
        let mut body = self.request.clone();
        if let Some(members) = body.as_object_mut() {
            if self.dry_run {
                members.insert(DRY_RUN.into(), Value::Bool(true));
            }
            if self.flush_flows {
                members.insert(FLUSH_FLOWS.into(), Value::Bool(true));
            }
        }
        body
    }
}

/// A boolean member: JSON `true`/`false`, or the Query protocol's `"true"`/`"false"`.
fn flag(name: &str, value: Option<Value>) -> ApiResult<bool> {
    match value {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(ApiError::invalid_value(format!(
            "{name} must be true or false"
        ))),
    }
}

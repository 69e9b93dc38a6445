//! Requests run directly on the agent's model (no server, no data plane), as the agent's
//! operations would run them. The kit's only calls into `firewall_agent::model`.

use firewall_agent::{
    api::catalogue::call_json,
    model::{RandomIds, State},
};
use serde_json::{Value, json};

/// The agent's initial state: the default VPC and its `default` group.
pub fn initial_state() -> State {
    State::initial(&mut RandomIds)
}

/// Runs one action (`"AuthorizeSecurityGroupIngress"`, …) on `state`; it must succeed.
pub fn call(state: &mut State, action: &str, request: Value) -> Value {
    try_call(state, action, request).unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// Runs one action that may be refused, as a user's request may be; like the agent, on a copy
/// kept only if it succeeds.
pub fn try_call(state: &mut State, action: &str, request: Value) -> Result<Value, String> {
    let mut copy = state.clone();
    let answer =
        call_json(&mut copy, &mut RandomIds, action, request).map_err(|e| e.to_string())?;
    *state = copy;
    Ok(answer)
}

/// Creates a group with these inbound permissions and returns its ID.
pub fn create_group(state: &mut State, name: &str, ingress: Value) -> String {
    let id = call(
        state,
        "CreateSecurityGroup",
        json!({"GroupName": name, "Description": name}),
    )["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    if ingress.as_array().is_some_and(|a| !a.is_empty()) {
        call(
            state,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": ingress}),
        );
    }
    id
}

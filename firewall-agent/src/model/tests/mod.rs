//! The model's tests, by resource: each calls actions through the catalogue as the JSON front
//! end does, and checks that a failing call changes nothing.

mod flow_logs;
mod groups;
mod instance_attributes;
mod instances;
mod prefix_lists;
mod rules;
mod state;
mod tags;
mod vpcs;

use serde_json::{Value, json};

use super::{State, testing::SeqIds};
use crate::api::{ApiResult, catalogue::call_json};

pub struct Fixture {
    pub state: State,
    pub ids: SeqIds,
}

impl Fixture {
    pub fn new() -> Fixture {
        let mut ids = SeqIds::default();
        let state = State::initial(&mut ids);
        Fixture { state, ids }
    }
    pub fn call(&mut self, action: &str, request: Value) -> ApiResult<Value> {
        call_json(&mut self.state, &mut self.ids, action, request)
    }
    pub fn ok(&mut self, action: &str, request: Value) -> Value {
        self.call(action, request)
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }
    /// Asserts the call fails with `code` and leaves the state untouched.
    pub fn fails(&mut self, action: &str, request: Value, code: &str) {
        let before = self.state.clone();
        let err = self.call(action, request).expect_err(action);
        assert_eq!(err.code, code, "{action}: {}", err.message);
        assert_eq!(
            self.state, before,
            "{action} changed the state while failing"
        );
    }
    pub fn group(&mut self, name: &str) -> String {
        let out = self.ok(
            "CreateSecurityGroup",
            json!({"GroupName": name, "Description": "d"}),
        );
        out["GroupId"].as_str().unwrap().to_string()
    }
}

pub fn tcp(port: i64, cidr: &str) -> Value {
    json!({"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]})
}

//! The BPF_PROG_TEST_RUN harness: the data plane loaded with one workload on `lo` (run it inside
//! [`crate::netns::in_private_netns`], so attaching there touches nothing outside the test), its
//! maps written by the real compiler and data-plane code, and frames run through its programs.
//! The kit's only calls into `firewall_agent::{compiler, dataplane}`.
//!
//! What the workload sends runs through the TC program, or, with `FIREWALL_OUTBOUND_HOOK=xdp`
//! (`cargo xtask test` runs the packet tests both ways), through the XDP program, its verdict
//! given in TC's terms: the same test bodies check both hooks.

use aya::programs::{TestRun as _, TestRunOptions};
use std::collections::BTreeMap;

use firewall_agent::{
    api::Scope,
    compiler::{self, Ids, Incremental},
    dataplane::{Dataplane as _, KernelDataplane, LoadOptions, programs},
    model::State,
};
use serde_json::{Value, json};

use crate::{
    frame::Frame,
    model::{call, initial_state},
};

pub const PASS: u32 = u32::MAX; // TCX_NEXT (-1): no objection
pub const DROP: u32 = 2; // TC_ACT_SHOT

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Which program judges what the workload sends in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundHook {
    Tc,
    Xdp,
}

impl OutboundHook {
    /// `FIREWALL_OUTBOUND_HOOK` (`tc`, the default, or `xdp`).
    pub fn from_env() -> OutboundHook {
        match std::env::var("FIREWALL_OUTBOUND_HOOK").as_deref() {
            Ok("xdp") => OutboundHook::Xdp,
            Ok("tc") | Err(_) => OutboundHook::Tc,
            Ok(other) => panic!("FIREWALL_OUTBOUND_HOOK={other}: expected tc or xdp"),
        }
    }
}

pub const WORKLOAD: &str = "172.31.0.5";
pub const WORKLOAD6: &str = "fd00:ec2::5";

/// The data plane loaded, with one workload on `lo` whose groups `setup` configures.
pub struct Harness {
    pub dataplane: KernelDataplane,
    pub state: State,
    /// The agent's compiler: each sync recompiles what changed since the last one and writes
    /// the delta, as the agent does.
    compiler: Incremental,
    /// The state the last sync compiled.
    applied: BTreeMap<Scope, State>,
    /// What the last sync applied.
    pub last: compiler::Desired,
    pub outbound_hook: OutboundHook,
}

impl Harness {
    pub fn new(setup: impl FnOnce(&mut State) -> Vec<String>) -> Harness {
        Self::with_options(&LoadOptions::default(), setup)
    }

    pub fn with_options(
        options: &LoadOptions,
        setup: impl FnOnce(&mut State) -> Vec<String>,
    ) -> Harness {
        let mut state = initial_state();
        let groups = setup(&mut state);
        call(
            &mut state,
            "RunInstances",
            json!({
                "SecurityGroupIds": groups, "PrivateIpAddress": WORKLOAD,
                "Ipv6Addresses": [{"Ipv6Address": WORKLOAD6}], "HostInterface": "lo",
            }),
        );
        let applied = BTreeMap::from([(state.scope(), state.clone())]);
        let compiler = Incremental::new(&applied, Ids::default());
        let mut dataplane = KernelDataplane::load(options).expect("load");
        dataplane.apply(compiler.desired()).expect("apply");
        Harness {
            dataplane,
            last: compiler.desired().clone(),
            state,
            compiler,
            applied,
            outbound_hook: OutboundHook::from_env(),
        }
    }

    /// Enforces `state`: the changes since the last sync, as one delta.
    pub fn sync(&mut self) {
        let scope = self.state.scope();
        let before = self.applied.insert(scope.clone(), self.state.clone());
        let delta = self.compiler.update(before.as_ref(), &self.applied, &scope);
        self.dataplane.apply_delta(&delta).expect("apply");
        self.last = self.compiler.desired().clone();
    }

    pub fn change(&mut self, action: &str, request: Value) {
        call(&mut self.state, action, request);
        self.sync();
    }

    pub fn run(&mut self, program: &'static str, frame: &Frame) -> u32 {
        let data = frame.bytes();
        self.run_raw(program, &data)
    }

    /// The program's verdict on `data`; what the workload sends goes through the XDP program
    /// in an XDP run (its verdict in TC's terms).
    pub fn run_raw(&mut self, program: &'static str, data: &[u8]) -> u32 {
        let mut out = vec![0u8; data.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(data),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        };
        if program == programs::FROM_WORKLOAD && self.outbound_hook == OutboundHook::Xdp {
            let verdict = self
                .dataplane
                .xdp_program()
                .test_run(opts)
                .expect("BPF_PROG_TEST_RUN (XDP)")
                .return_value;
            return match verdict {
                XDP_PASS => PASS,
                XDP_DROP => DROP,
                other => panic!("XDP verdict {other}: neither XDP_PASS nor XDP_DROP"),
            };
        }
        self.dataplane
            .program(program)
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .return_value
    }

    /// A packet delivered to the workload (inbound rules).
    pub fn inbound(&mut self, frame: &Frame) -> u32 {
        self.run(programs::TO_WORKLOAD, frame)
    }

    /// A packet sent by the workload (outbound rules).
    pub fn outbound(&mut self, frame: &Frame) -> u32 {
        self.run(programs::FROM_WORKLOAD, frame)
    }
}

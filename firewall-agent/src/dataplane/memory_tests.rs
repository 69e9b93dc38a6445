use firewall_common::{
    CtKey, CtTimeouts, CtValue, Direction, IFACE_ENFORCING, IFACE_MANAGED, ct_state, family, proto,
};
use serde_json::{Value, json};

use super::MemoryDataplane;
use crate::{
    api::catalogue::call_json as dispatch,
    compiler::{Desired, Ids, compile},
    dataplane::{Dataplane, DataplaneError},
    model::{State, testing::SeqIds},
};

/// A state whose default group allows tcp/22 from 10.0.0.0/8, and its compiler.
struct Fixture {
    state: State,
    ids: SeqIds,
    compiler: Ids,
    group: String,
}

impl Fixture {
    fn new() -> Fixture {
        let mut ids = SeqIds::default();
        let state = State::initial(&mut ids);
        let group = state.groups.keys().next().unwrap().clone();
        let mut fixture = Fixture {
            state,
            ids,
            compiler: Ids::default(),
            group,
        };
        fixture.ingress("AuthorizeSecurityGroupIngress", 22);
        fixture
    }

    fn call(&mut self, action: &str, request: Value) -> Value {
        dispatch(&mut self.state, &mut self.ids, action, request).unwrap()
    }

    fn ingress(&mut self, action: &str, port: u16) {
        let request = json!({"GroupId": self.group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
        self.call(action, request);
    }

    /// Runs an instance in the group on `interface`; returns its ID.
    fn run(&mut self, ip: &str, interface: &str) -> String {
        let request = json!({"SecurityGroupIds": [self.group], "PrivateIpAddress": ip, "HostInterface": interface});
        self.call("RunInstances", request)["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn compile(&mut self) -> Desired {
        compile(&self.state, &mut self.compiler)
    }
}

/// An inbound TCP flow from `peer` to port `port` of a workload at 172.31.0.5 on `ifindex`.
pub(crate) fn inbound_tcp(ifindex: u32, peer: [u8; 4], port: u16) -> (CtKey, CtValue) {
    let mut lo = [0u8; 16];
    lo[..4].copy_from_slice(&peer);
    let mut hi = [0u8; 16];
    hi[..4].copy_from_slice(&[172, 31, 0, 5]);
    let key = CtKey {
        ifindex,
        family: family::IPV4,
        proto: proto::TCP,
        _pad: [0; 2],
        addr_lo: lo,
        addr_hi: hi,
        port_lo: 40000u16.to_be_bytes(),
        port_hi: port.to_be_bytes(),
    };
    let value = CtValue::opened(
        1_000,
        false,
        Direction::Inbound,
        ct_state::TCP_ESTABLISHED,
        60,
        0x02,
    );
    (key, value)
}

#[test]
fn apply_writes_exactly_the_desired_entries_and_removes_stale_ones() {
    let mut f = Fixture::new();
    f.run("172.31.0.5", "veth-a");
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dp.add_interface("veth-a", 7);
    let first = f.compile();
    dp.apply(&first).unwrap();
    assert_eq!(dp.peers(), &first.peers);
    assert_eq!(dp.ports(), &first.ports);
    let config = first.ifaces["veth-a"];
    assert_eq!(config.flags, IFACE_MANAGED | IFACE_ENFORCING);
    assert_eq!(dp.ifaces().get(&7), Some(&config));
    let slots: Vec<u32> = first.rule_slots.keys().copied().collect();
    assert_eq!(dp.cleared_rule_hits(), slots, "fresh slots start at zero");

    dp.apply(&first).unwrap();
    assert_eq!(dp.cleared_rule_hits(), slots, "re-applying writes nothing");

    f.ingress("RevokeSecurityGroupIngress", 22);
    f.ingress("AuthorizeSecurityGroupIngress", 80);
    let second = f.compile();
    dp.apply(&second).unwrap();
    assert_eq!(dp.peers(), &second.peers);
    assert_eq!(dp.ports(), &second.ports);
    assert_eq!(dp.highest_ids().0, config.policy_id);
}

#[test]
fn an_unknown_interface_fails_without_stopping_the_others() {
    let mut f = Fixture::new();
    f.run("172.31.0.5", "veth-a");
    f.run("172.31.0.6", "veth-gone");
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dp.add_interface("veth-a", 7);
    let desired = f.compile();
    match dp.apply(&desired) {
        Err(DataplaneError::Interface { name, .. }) => assert_eq!(name, "veth-gone"),
        other => panic!("{other:?}"),
    }
    assert_eq!(dp.ifaces().len(), 1);
    assert_eq!(dp.peers(), &desired.peers, "the policy is in place");
}

#[test]
fn flushing_cuts_only_the_flows_the_new_rules_refuse() {
    let mut f = Fixture::new();
    f.run("172.31.0.5", "veth-a");
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dp.add_interface("veth-a", 7);
    f.ingress("AuthorizeSecurityGroupIngress", 80);
    dp.apply(&f.compile()).unwrap();
    for port in [22, 80] {
        let (key, value) = inbound_tcp(7, [10, 1, 2, 3], port);
        dp.track(key, value);
    }
    let (elsewhere, value) = inbound_tcp(9, [10, 1, 2, 3], 22);
    dp.track(elsewhere, value);
    f.ingress("RevokeSecurityGroupIngress", 22);
    let desired = f.compile();
    dp.apply(&desired).unwrap();
    assert_eq!(
        dp.tracked_flows(),
        3,
        "a revoke alone keeps flows, as on AWS"
    );
    assert_eq!(dp.flush_disallowed_flows(&desired).unwrap(), 1);
    assert_eq!(
        dp.tracked_flows(),
        2,
        "port 80 and the unmanaged interface remain"
    );
}

#[test]
fn expired_flows_are_collected_by_their_idle_timeout() {
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    let (key, value) = inbound_tcp(7, [10, 1, 2, 3], 22);
    dp.track(key, value);
    let established = u64::from(CtTimeouts::AWS_DEFAULT.tcp_established) * 1_000_000_000;
    dp.set_now_ns(value.last_seen_ns + established);
    assert_eq!(dp.collect_expired_flows().unwrap(), 0);
    dp.set_now_ns(value.last_seen_ns + established + 1);
    assert_eq!(dp.collect_expired_flows().unwrap(), 1);
    assert_eq!(dp.tracked_flows(), 0);
}

#[test]
fn stopping_drops_the_flows_and_terminating_frees_the_slot() {
    let mut f = Fixture::new();
    let instance = f.run("172.31.0.5", "veth-a");
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dp.add_interface("veth-a", 7);
    dp.apply(&f.compile()).unwrap();
    let (key, value) = inbound_tcp(7, [10, 1, 2, 3], 22);
    dp.track(key, value);
    f.call("StopInstances", json!({"InstanceIds": [instance]}));
    dp.apply(&f.compile()).unwrap();
    assert_eq!(
        dp.ifaces()[&7].flags,
        IFACE_MANAGED,
        "managed, not enforcing"
    );
    assert_eq!(dp.tracked_flows(), 0);
    dp.track(key, value);
    f.call("TerminateInstances", json!({"InstanceIds": [instance]}));
    let desired = f.compile();
    dp.apply(&desired).unwrap();
    assert!(dp.ifaces().is_empty());
    assert!(dp.peers().is_empty() && desired.peers.is_empty());
    assert_eq!(dp.tracked_flows(), 0);
}

#[test]
fn counters_name_every_reason_and_rule_and_stay_zero() {
    let mut f = Fixture::new();
    f.run("172.31.0.5", "veth-a");
    let mut dp = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dp.add_interface("veth-a", 7);
    let desired = f.compile();
    dp.apply(&desired).unwrap();
    let counters = dp.counters().unwrap();
    assert_eq!(
        counters.passes.keys().copied().collect::<Vec<_>>(),
        ["conntrack", "exempt", "fragment", "related", "rule"]
    );
    assert_eq!(counters.drops.len(), 5);
    assert_eq!(counters.rule_hits.len(), desired.rule_slots.len());
    let all = counters.drops.values().chain(counters.passes.values());
    assert!(all.chain(counters.rule_hits.values()).all(|n| *n == 0));
}

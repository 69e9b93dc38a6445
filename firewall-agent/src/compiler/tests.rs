//! Unit tests of the eBPF back end, checked through [`super::evaluate`].
use std::net::IpAddr;

use firewall_common::Direction;
use serde_json::{Value, json};

use super::{Desired, Ids, compile, evaluate, range_to_prefixes};
use crate::{
    api::catalogue::call_json as dispatch,
    model::{State, testing::SeqIds},
};

#[test]
fn port_ranges_split_into_aligned_prefixes() {
    assert_eq!(range_to_prefixes(0, 65535), vec![(0, 0)]);
    assert_eq!(range_to_prefixes(80, 80), vec![(80, 16)]);
    assert_eq!(range_to_prefixes(1024, 2047), vec![(1024, 6)]);
    assert_eq!(range_to_prefixes(1, 65535).len(), 16);
    // The worst case is 30 prefixes.
    assert_eq!(range_to_prefixes(1, 65534).len(), 30);
    for (lo, hi) in [(5u16, 9u16), (100, 1000), (0, 1), (65535, 65535)] {
        let covered: u32 = range_to_prefixes(lo, hi)
            .iter()
            .map(|(_, l)| 1u32 << (16 - l))
            .sum();
        assert_eq!(covered, u32::from(hi - lo) + 1);
    }
}

fn allowed(
    d: &Desired,
    policy: u32,
    dir: Direction,
    peer: std::net::Ipv4Addr,
    proto: u8,
    port: u16,
) -> bool {
    evaluate(d, policy, dir, IpAddr::V4(peer), proto, port).is_some()
}

fn setup(permissions: Value) -> (State, Desired, u32) {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let out = dispatch(
        &mut state,
        &mut ids,
        "CreateSecurityGroup",
        json!({"GroupName": "web", "Description": "d"}),
    )
    .unwrap();
    let web = out["GroupId"].as_str().unwrap().to_string();
    dispatch(
        &mut state,
        &mut ids,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": permissions}),
    )
    .unwrap();
    dispatch(&mut state, &mut ids, "RunInstances", json!({"SecurityGroupIds": [web], "PrivateIpAddress": "172.31.0.5", "HostInterface": "veth-w"})).unwrap();
    let mut cids = Ids::default();
    let desired = compile(&state, &mut cids);
    let policy = desired.ifaces["veth-w"].policy_id;
    (state, desired, policy)
}

#[test]
fn overlapping_cidrs_union_their_rules() {
    let (_, d, p) = setup(json!([
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]},
    ]));
    let inside = "10.1.2.3".parse().unwrap();
    let outside = "10.2.0.1".parse().unwrap();
    assert!(
        allowed(&d, p, Direction::Inbound, inside, 6, 22),
        "the /8 rule still applies inside the /16"
    );
    assert!(allowed(&d, p, Direction::Inbound, inside, 6, 80));
    assert!(allowed(&d, p, Direction::Inbound, outside, 6, 22));
    assert!(
        !allowed(&d, p, Direction::Inbound, outside, 6, 80),
        "the /16 rule does not reach outside it"
    );
    assert!(
        !allowed(&d, p, Direction::Inbound, inside, 17, 22),
        "protocol matters"
    );
    assert!(
        allowed(&d, p, Direction::Outbound, outside, 17, 53),
        "default outbound rule"
    );
}

#[test]
fn icmp_type_and_code_wildcards() {
    let (_, d, p) = setup(json!([
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]));
    let a = "192.0.2.1".parse().unwrap();
    assert!(allowed(&d, p, Direction::Inbound, a, 1, 8 << 8));
    assert!(allowed(&d, p, Direction::Inbound, a, 1, (8 << 8) | 5));
    assert!(allowed(&d, p, Direction::Inbound, a, 1, (3 << 8) | 4));
    assert!(!allowed(&d, p, Direction::Inbound, a, 1, (3 << 8) | 3));
    assert!(!allowed(&d, p, Direction::Inbound, a, 1, 0));
}

#[test]
fn referenced_groups_expand_to_running_members() {
    let (state, d, p) = setup(json!([
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "web"}]},
    ]));
    assert!(allowed(
        &d,
        p,
        Direction::Inbound,
        "172.31.0.5".parse().unwrap(),
        6,
        1
    ));
    assert!(!allowed(
        &d,
        p,
        Direction::Inbound,
        "172.31.0.6".parse().unwrap(),
        6,
        1
    ));
    assert_eq!(state.instances.len(), 1);
}

#[test]
fn instances_with_the_same_groups_share_one_policy_and_sets_are_shared() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    for (ip, ifname) in [("172.31.0.5", "a"), ("172.31.0.6", "b")] {
        dispatch(
            &mut state,
            &mut ids,
            "RunInstances",
            json!({"PrivateIpAddress": ip, "HostInterface": ifname}),
        )
        .unwrap();
    }
    let mut cids = Ids::default();
    let first = compile(&state, &mut cids);
    assert_eq!(first.ifaces["a"].policy_id, first.ifaces["b"].policy_id);
    let again = compile(&state, &mut cids);
    assert_eq!(first, again, "compiling twice yields the same entries");
}

#[test]
fn a_freed_rule_slot_is_not_reused_by_the_compilation_that_frees_it() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let group = state.groups.keys().next().unwrap().clone();
    let tcp = |port: u16| json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    dispatch(
        &mut state,
        &mut ids,
        "AuthorizeSecurityGroupIngress",
        tcp(1),
    )
    .unwrap();
    let mut cids = Ids::default();
    let first = compile(&state, &mut cids);
    let slot_of = |d: &Desired, id: &str| {
        d.rule_slots
            .iter()
            .find(|(_, r)| r.as_str() == id)
            .map(|(s, _)| *s)
    };
    let old_rule = state.groups[&group].ingress.last().unwrap().id.clone();
    let old_slot = slot_of(&first, &old_rule).unwrap();

    dispatch(&mut state, &mut ids, "RevokeSecurityGroupIngress", tcp(1)).unwrap();
    dispatch(
        &mut state,
        &mut ids,
        "AuthorizeSecurityGroupIngress",
        tcp(2),
    )
    .unwrap();
    let second = compile(&state, &mut cids);
    let new_rule = state.groups[&group].ingress.last().unwrap().id.clone();
    assert_ne!(slot_of(&second, &new_rule), Some(old_slot));
    assert_eq!(slot_of(&second, &old_rule), None);

    dispatch(
        &mut state,
        &mut ids,
        "AuthorizeSecurityGroupIngress",
        tcp(3),
    )
    .unwrap();
    let third = compile(&state, &mut cids);
    let newest = state.groups[&group].ingress.last().unwrap().id.clone();
    assert_eq!(
        slot_of(&third, &newest),
        Some(old_slot),
        "reused one compilation later"
    );
}

#[test]
fn a_rule_is_written_once_however_many_prefixes_nest_inside_it() {
    let mut many = vec![
        json!({"IpProtocol": "tcp", "FromPort": 1, "ToPort": 65534, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}),
    ];
    for i in 0..50 {
        many.push(json!({"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": format!("10.{i}.0.0/16")}]}));
    }
    let (_, d, p) = setup(json!(many));
    // The /8 range splits into 30 blocks written once (a closure would copy them into each
    // nested /16: 50 × 31 + 30 entries); each /16 rule adds its udp/53 entry (a set per rule,
    // for its hit counter), and the default egress rules two more.
    assert_eq!(d.ports.len(), 30 + 50 + 2);
    assert!(allowed(
        &d,
        p,
        Direction::Inbound,
        "10.7.1.1".parse().unwrap(),
        6,
        443
    ));
    assert!(allowed(
        &d,
        p,
        Direction::Inbound,
        "10.7.1.1".parse().unwrap(),
        17,
        53
    ));
    assert!(!allowed(
        &d,
        p,
        Direction::Inbound,
        "10.70.1.1".parse().unwrap(),
        17,
        53
    ));
}

#[test]
fn only_policies_open_to_the_world_both_ways_are_marked_for_untracked_flows() {
    use firewall_common::{IFACE_UNTRACKED_V4, IFACE_UNTRACKED_V6};
    let flags = |permissions: Value| setup(permissions).1.ifaces["veth-w"].flags;
    // The group keeps its default outbound rules: all traffic to 0.0.0.0/0 and ::/0 (the
    // default VPC has an IPv6 block).
    let open4 = flags(json!([
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]));
    assert_ne!(open4 & IFACE_UNTRACKED_V4, 0);
    assert_eq!(open4 & IFACE_UNTRACKED_V6, 0, "no ::/0 inbound rule");
    let open6 = flags(json!([
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    ]));
    assert_eq!(open6 & IFACE_UNTRACKED_V4, 0, "no 0.0.0.0/0 inbound rule");
    assert_ne!(open6 & IFACE_UNTRACKED_V6, 0);
    let narrow = flags(json!([
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ]));
    assert_eq!(narrow & (IFACE_UNTRACKED_V4 | IFACE_UNTRACKED_V6), 0);
}

//! Packet-level tests of the rules: peers, ports, protocols, unions of groups, references,
//! nested prefixes and hit counters. Crafted
//! frames run through the loaded programs with BPF_PROG_TEST_RUN, the maps written by the real
//! compiler and data-plane code. Each test runs on a thread inside a private network namespace
//! whose `lo` (ifindex 1, the device test runs use) is the workload's interface, so attaching
//! there touches nothing outside the test.

use firewall_agent::dataplane::Dataplane as _;
use firewall_testkit::{
    frame::*,
    harness::*,
    model::{call, create_group},
    netns::{in_private_netns, ip_here},
};
use serde_json::json;

#[test]
fn inbound_tcp_is_allowed_only_from_the_rule_peer_and_port() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "web",
                json!([{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "172.31.1.10/32"}]}]),
            )]
        });
        assert_eq!(
            h.inbound(&tcp("172.31.1.10", 40000, WORKLOAD, 8080, SYN)),
            PASS
        );
        assert_eq!(
            h.inbound(&tcp("172.31.1.11", 40000, WORKLOAD, 8080, SYN)),
            DROP,
            "other source"
        );
        assert_eq!(
            h.inbound(&tcp("172.31.1.10", 40000, WORKLOAD, 9090, SYN)),
            DROP,
            "other port"
        );
        assert_eq!(
            h.inbound(&udp("172.31.1.10", 40000, WORKLOAD, 8080)),
            DROP,
            "other protocol"
        );
    });
}

#[test]
fn overlapping_cidrs_across_groups_union_their_rules() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![
                create_group(
                    s,
                    "ssh",
                    json!([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
                ),
                create_group(
                    s,
                    "web",
                    json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}]),
                ),
            ]
        });
        assert_eq!(
            h.inbound(&tcp("10.1.2.3", 1000, WORKLOAD, 22, SYN)),
            PASS,
            "the /8 rule inside the /16"
        );
        assert_eq!(h.inbound(&tcp("10.1.2.3", 1001, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(h.inbound(&tcp("10.2.0.1", 1002, WORKLOAD, 22, SYN)), PASS);
        assert_eq!(
            h.inbound(&tcp("10.2.0.1", 1003, WORKLOAD, 80, SYN)),
            DROP,
            "the /16 rule does not reach out"
        );
    });
}

#[test]
fn referenced_group_membership_changes_apply_at_once() {
    in_private_netns(|| {
        let mut lb = String::new();
        let mut h = Harness::new(|s| {
            lb = create_group(s, "lb", json!([]));
            vec![create_group(
                s,
                "web",
                json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb}]}]),
            )]
        });
        assert_eq!(
            h.inbound(&tcp("172.31.9.9", 1, WORKLOAD, 80, SYN)),
            DROP,
            "no lb member yet"
        );
        ip_here(&["link", "add", "lb0", "type", "veth", "peer", "name", "lb1"]);
        let out = call(
            &mut h.state,
            "RunInstances",
            json!({"SecurityGroupIds": [lb], "PrivateIpAddress": "172.31.9.9", "HostInterface": "lb0"}),
        );
        h.sync();
        assert_eq!(
            h.inbound(&tcp("172.31.9.9", 2, WORKLOAD, 80, SYN)),
            PASS,
            "lb member joined"
        );
        assert_eq!(
            h.inbound(&tcp("172.31.9.8", 3, WORKLOAD, 80, SYN)),
            DROP,
            "not a member"
        );
        let instance = out["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string();
        h.change("TerminateInstances", json!({"InstanceIds": [instance]}));
        assert_eq!(
            h.inbound(&tcp("172.31.9.9", 4, WORKLOAD, 80, SYN)),
            DROP,
            "member left"
        );
    });
}

#[test]
fn other_protocols_ignore_ports_and_are_tracked_by_addresses_and_protocol() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "gre",
                json!([{"IpProtocol": "47", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]),
            )]
        });
        let gre = |src: &str, dst: &str| frame(src, dst, 47, vec![0u8; 8]);
        assert_eq!(
            h.inbound(&gre("192.0.2.1", WORKLOAD)),
            PASS,
            "protocol 47, ports ignored"
        );
        assert_eq!(
            h.inbound(&frame("192.0.2.1", WORKLOAD, 50, vec![0u8; 8])),
            DROP,
            "protocol 50 has no rule"
        );
        // The workload answers the tracked pseudo-flow; a reply needs no outbound rule ...
        h.change("RevokeSecurityGroupEgress", json!({"GroupId": h.state.groups.values().find(|g| g.name == "gre").unwrap().id.clone(),
            "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]}));
        assert_eq!(
            h.outbound(&gre(WORKLOAD, "192.0.2.1")),
            PASS,
            "same addresses and protocol"
        );
        assert_eq!(
            h.outbound(&gre(WORKLOAD, "192.0.2.2")),
            DROP,
            "other address"
        );
    });
}

#[test]
fn a_rule_keeps_its_hit_counter_when_modified_in_place() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "ssh",
                json!([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
            )]
        });
        let group = h
            .state
            .groups
            .values()
            .find(|g| g.name == "ssh")
            .unwrap()
            .clone();
        let rule = group.ingress.first().unwrap().id.clone();
        assert_eq!(h.inbound(&tcp("10.0.0.1", 1, WORKLOAD, 22, SYN)), PASS);
        assert_eq!(h.dataplane.counters().unwrap().rule_hits[&rule], 1);
        h.change("ModifySecurityGroupRules", json!({"GroupId": group.id, "SecurityGroupRules": [{"SecurityGroupRuleId": rule,
            "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "CidrIpv4": "10.0.0.0/8"}}]}));
        assert_eq!(
            h.inbound(&tcp("10.0.0.1", 2, WORKLOAD, 22, SYN)),
            DROP,
            "the old port is gone"
        );
        assert_eq!(h.inbound(&tcp("10.0.0.1", 3, WORKLOAD, 2222, SYN)), PASS);
        assert_eq!(
            h.dataplane.counters().unwrap().rule_hits[&rule],
            2,
            "same sgr-, same counter"
        );
    });
}

#[test]
fn deeply_nested_prefixes_fold_into_the_chain_and_every_covering_rule_still_applies() {
    in_private_netns(|| {
        // 12 nested prefixes (/8 … /19), each allowing its own port: deeper than the chain.
        let lens: Vec<u8> = (8..20).collect();
        let mut h = Harness::new(|s| {
            let rules: Vec<_> = lens
                .iter()
                .map(|len| json!({"IpProtocol": "tcp", "FromPort": 1000 + u16::from(*len), "ToPort": 1000 + u16::from(*len), "IpRanges": [{"CidrIp": format!("10.1.2.3/{len}")}]}))
                .collect();
            vec![create_group(s, "nested", json!(rules))]
        });
        for len in &lens {
            let port = 1000 + u16::from(*len);
            assert_eq!(
                h.inbound(&tcp("10.1.2.3", port, WORKLOAD, port, SYN)),
                PASS,
                "/{len} rule from inside all of them"
            );
        }
        assert_eq!(h.inbound(&tcp("10.1.2.3", 999, WORKLOAD, 999, SYN)), DROP);
        // Outside the /10 but inside the /8 and /9 only those two apply.
        assert_eq!(h.inbound(&tcp("10.128.0.1", 1, WORKLOAD, 1008, SYN)), PASS);
        assert_eq!(h.inbound(&tcp("10.128.0.1", 2, WORKLOAD, 1010, SYN)), DROP);
        // Each rule's entries are written once: no copies into nested prefixes' sets.
        assert!(
            h.last.ports.len() < 2 * lens.len() + 8,
            "{} PORTS entries",
            h.last.ports.len()
        );
    });
}

//! Batched map writes on the running kernel: `PEERS`, `PORTS` and `RULE_HITS` take
//! `BPF_MAP_UPDATE_BATCH`, and a large change written in batches (thousands of entries, then
//! their deletion) reads back from the kernel exactly as compiled; the rules' hit counters are
//! read back in batches too.

use firewall_agent::dataplane::Dataplane as _;
use firewall_testkit::{
    frame::{SYN, tcp},
    harness::{Harness, PASS, WORKLOAD},
    model::create_group,
    netns::in_private_netns,
};
use serde_json::{Value, json};

/// A harness whose workload has one group, `name`, with no rules yet (up to 10,000 allowed).
fn with_empty_group(name: &str) -> (Harness, String) {
    let mut group = String::new();
    let h = Harness::new(|s| {
        s.quotas.rules_per_group = 10_000;
        group = create_group(s, name, json!([]));
        vec![group.clone()]
    });
    (h, group)
}

#[test]
fn policy_maps_are_written_in_batches_and_read_back_as_compiled() {
    in_private_netns(|| {
        let (mut h, group) = with_empty_group("batched");
        assert_eq!(
            h.dataplane.batched_maps(),
            ["PEERS", "PORTS", "RULE_HITS"],
            "this kernel batches every policy map"
        );
        let permissions: Vec<Value> = (0..3000)
            .map(|i| {
                json!({"IpProtocol": "tcp", "FromPort": 1 + i % 700, "ToPort": 1 + i % 700 + i % 9,
                            "IpRanges": [{"CidrIp": format!("10.{}.{}.0/24", i / 250, i % 250)}]})
            })
            .collect();
        let request = json!({"GroupId": group, "IpPermissions": permissions});
        h.change("AuthorizeSecurityGroupIngress", request.clone());
        assert!(h.last.peers.len() >= 3000 && h.last.ports.len() > 3000);
        let held = h.dataplane.read_back().expect("read back");
        assert_eq!(held.peers, h.last.peers, "PEERS as compiled");
        assert_eq!(held.ports, h.last.ports, "PORTS as compiled");
        h.change("RevokeSecurityGroupIngress", request);
        let held = h.dataplane.read_back().expect("read back");
        assert_eq!(held.peers, h.last.peers, "the deletions, batched too");
        assert_eq!(held.ports, h.last.ports);
        assert!(
            held.ports.len() < 10,
            "only the default rules' entries are left"
        );
    });
}

#[test]
fn hit_counters_are_read_in_batches_and_each_rule_gets_its_own_hits() {
    in_private_netns(|| {
        let (mut h, group) = with_empty_group("counted");
        // More rules than one lookup batch reads (4096 slots): tcp/(10000 + i) from 10.x.y.0/24.
        let rules = 5000;
        let source = |i: usize| format!("10.{}.{}.7", i / 250, i % 250);
        let permissions: Vec<Value> = (0..rules)
            .map(|i| {
                json!({"IpProtocol": "tcp", "FromPort": 10_000 + i, "ToPort": 10_000 + i,
                       "IpRanges": [{"CidrIp": format!("10.{}.{}.0/24", i / 250, i % 250)}]})
            })
            .collect();
        let request = json!({"GroupId": group, "IpPermissions": permissions});
        h.change("AuthorizeSecurityGroupIngress", request);
        let rule_id = |h: &Harness, i: usize| {
            let group = &h.state.groups[&group];
            let port = Some((10_000 + i as i32, 10_000 + i as i32));
            group
                .ingress
                .iter()
                .find(|r| r.ports == port)
                .unwrap()
                .id
                .clone()
        };
        // The first rule once, the last twice, one in the middle not at all.
        for (i, times) in [(0, 1), (rules - 1, 2)] {
            for n in 0..times {
                let frame = tcp(&source(i), 1000 + n, WORKLOAD, 10_000 + i as u16, SYN);
                assert_eq!(h.inbound(&frame), PASS, "rule {i}");
            }
        }
        let hits = h.dataplane.counters().expect("counters").rule_hits;
        let all_rules = h.state.groups.values();
        let all_rules: usize = all_rules.map(|g| g.ingress.len() + g.egress.len()).sum();
        assert!(all_rules > rules);
        assert_eq!(hits.len(), all_rules, "every rule of every group counted");
        assert_eq!(hits[&rule_id(&h, 0)], 1);
        assert_eq!(hits[&rule_id(&h, rules - 1)], 2);
        assert_eq!(hits[&rule_id(&h, rules / 2)], 0);
        assert_eq!(
            hits.values().sum::<u64>(),
            3,
            "no hit counted twice or elsewhere"
        );
    });
}

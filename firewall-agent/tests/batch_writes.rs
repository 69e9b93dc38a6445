//! Batched map writes on the running kernel: `PEERS`, `PORTS` and `RULE_HITS` take
//! `BPF_MAP_UPDATE_BATCH`, and a large change written in batches (thousands of entries, then
//! their deletion) reads back from the kernel exactly as compiled.

use firewall_agent::dataplane::Dataplane as _;
use firewall_testkit::{harness::Harness, model::create_group, netns::in_private_netns};
use serde_json::{Value, json};

#[test]
fn policy_maps_are_written_in_batches_and_read_back_as_compiled() {
    in_private_netns(|| {
        let mut group = String::new();
        let mut h = Harness::new(|s| {
            s.quotas.rules_per_group = 10_000;
            group = create_group(s, "batched", json!([]));
            vec![group.clone()]
        });
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

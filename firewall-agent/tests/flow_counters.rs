//! The per-flow counters of map layout 4 (for flow logs), maintained by the data plane on the
//! tracked path: packets, bytes and the OR of the TCP flags, by direction of the flow. Crafted
//! frames through BPF_PROG_TEST_RUN, inside a private network namespace (see `packets_policy.rs`).

use firewall_common::{CT_ORIGINAL, CT_REPLY, ct_state};
use firewall_testkit::{frame::*, harness::*, model::create_group, netns::in_private_netns};
use serde_json::json;

#[test]
fn a_tracked_tcp_flow_counts_packets_bytes_and_tcp_flags_in_each_direction() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "web",
                json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]),
            )]
        });
        let syn = tcp("192.0.2.7", 40000, WORKLOAD, 443, SYN);
        let syn_ack = tcp(WORKLOAD, 443, "192.0.2.7", 40000, SYN | ACK);
        let ack = tcp("192.0.2.7", 40000, WORKLOAD, 443, ACK);
        let fin = tcp("192.0.2.7", 40000, WORKLOAD, 443, FIN | ACK);
        for (frame, inbound) in [(&syn, true), (&syn_ack, false), (&ack, true), (&fin, true)] {
            let verdict = if inbound {
                h.inbound(frame)
            } else {
                h.outbound(frame)
            };
            assert_eq!(verdict, PASS);
        }
        let flows = h.dataplane.flows();
        assert_eq!(flows.len(), 1, "one entry for both directions");
        let (_, flow) = flows[0];
        assert_eq!(flow.state, ct_state::TCP_CLOSING);
        assert_eq!(
            flow.packets[CT_ORIGINAL], 3,
            "SYN, ACK, FIN from the opener"
        );
        assert_eq!(flow.packets[CT_REPLY], 1, "the SYN-ACK");
        let len = |f: &Frame| f.bytes().len() as u64;
        assert_eq!(flow.bytes[CT_ORIGINAL], len(&syn) + len(&ack) + len(&fin));
        assert_eq!(flow.bytes[CT_REPLY], len(&syn_ack));
        assert_eq!(flow.tcp_flags[CT_ORIGINAL], SYN | ACK | FIN);
        assert_eq!(flow.tcp_flags[CT_REPLY], SYN | ACK);
    });
}

#[test]
fn a_packet_the_rules_refuse_counts_nowhere_and_udp_carries_no_tcp_flags() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "dns",
                json!([{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]),
            )]
        });
        let query = udp("192.0.2.7", 5353, WORKLOAD, 53).with_udp_payload(100);
        assert_eq!(h.inbound(&query), PASS);
        assert_eq!(h.outbound(&udp(WORKLOAD, 53, "192.0.2.7", 5353)), PASS);
        assert_eq!(
            h.inbound(&udp("192.0.2.7", 5353, WORKLOAD, 54)),
            DROP,
            "another flow, refused"
        );
        let flows = h.dataplane.flows();
        assert_eq!(flows.len(), 1);
        let (_, flow) = flows[0];
        assert_eq!(flow.packets, [1, 1]);
        assert_eq!(flow.bytes[CT_ORIGINAL], query.bytes().len() as u64);
        assert_eq!(flow.tcp_flags, [0, 0]);
    });
}

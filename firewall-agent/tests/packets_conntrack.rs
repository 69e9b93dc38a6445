//! Packet-level tests of connection tracking: replies, revokes, untracked flows, ICMP errors,
//! what opens a flow, a full table and idle expiry. Crafted
//! frames run through the loaded programs with BPF_PROG_TEST_RUN, the maps written by the real
//! compiler and data-plane code. Each test runs on a thread inside a private network namespace
//! whose `lo` (ifindex 1, the device test runs use) is the workload's interface, so attaching
//! there touches nothing outside the test.

use firewall_agent::dataplane::{Dataplane as _, LoadOptions};
use firewall_testkit::{
    frame::*,
    harness::*,
    model::{call, create_group},
    netns::in_private_netns,
};
use serde_json::json;

#[test]
fn replies_to_tracked_flows_pass_and_unsolicited_packets_do_not() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| vec![create_group(s, "client", json!([]))]);
        // The workload opens a connection (default outbound rule), the server answers.
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 50000, "192.0.2.1", 443, SYN)),
            PASS
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.1", 443, WORKLOAD, 50000, SYN | ACK)),
            PASS,
            "reply"
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.1", 443, WORKLOAD, 50001, SYN | ACK)),
            DROP,
            "not a reply"
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.1", 444, WORKLOAD, 22, SYN)),
            DROP,
            "no inbound rule"
        );
        // UDP and ICMP echo likewise.
        assert_eq!(h.outbound(&udp(WORKLOAD, 5000, "192.0.2.53", 53)), PASS);
        assert_eq!(h.inbound(&udp("192.0.2.53", 53, WORKLOAD, 5000)), PASS);
        assert_eq!(h.outbound(&icmp(WORKLOAD, "192.0.2.1", 1, 8, 0, 77)), PASS);
        assert_eq!(
            h.inbound(&icmp("192.0.2.1", WORKLOAD, 1, 0, 0, 77)),
            PASS,
            "echo reply, same id"
        );
        assert_eq!(
            h.inbound(&icmp("192.0.2.1", WORKLOAD, 1, 0, 0, 78)),
            DROP,
            "echo reply, other id"
        );
    });
}

#[test]
fn a_revoked_rule_keeps_its_tracked_flow_but_admits_no_new_one() {
    in_private_netns(|| {
        // Not open to the world: the flow is tracked (see the untracked-flow tests below).
        let rule = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]);
        let mut h = Harness::new(|s| vec![create_group(s, "web", rule.clone())]);
        assert_eq!(h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, SYN)), PASS);
        let group = group_id(&h, "web");
        h.change(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": group, "IpPermissions": rule}),
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, ACK)),
            PASS,
            "tracked flow survives"
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.9", 1235, WORKLOAD, 80, SYN)),
            DROP,
            "new flow refused"
        );
    });
}

fn group_id(h: &Harness, name: &str) -> String {
    h.state
        .groups
        .values()
        .find(|g| g.name == name)
        .unwrap()
        .id
        .clone()
}

/// AWS's own example (EC2 user guide, "Untracked connections"): inbound tcp/80 from 0.0.0.0/0,
/// tcp/22 from one address, ICMP from 0.0.0.0/0, and the default outbound rule (all traffic to
/// 0.0.0.0/0): HTTP is not tracked, SSH and ICMP are.
#[test]
fn flows_open_to_the_world_both_ways_are_untracked_and_cut_when_their_rule_goes() {
    in_private_netns(|| {
        let http = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "web",
                json!([
                    http[0],
                    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.1/32"}]},
                    {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
                    {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                ]),
            )]
        });
        assert_eq!(h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(h.dataplane.tracked_flows(), 0, "HTTP costs no entry");
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 80, "192.0.2.9", 1234, SYN | ACK)),
            PASS,
            "the reply passes by the outbound rule"
        );
        assert_eq!(h.inbound(&udp("192.0.2.9", 4000, WORKLOAD, 53)), PASS);
        assert_eq!(
            h.outbound(&udp(WORKLOAD, 53, "192.0.2.9", 4000)),
            PASS,
            "the DNS answer"
        );
        assert_eq!(
            h.dataplane.tracked_flows(),
            0,
            "neither end of the DNS flow tracks it"
        );
        assert_eq!(
            h.inbound(&tcp("203.0.113.1", 1234, WORKLOAD, 22, SYN)),
            PASS
        );
        assert_eq!(h.dataplane.tracked_flows(), 1, "SSH is tracked");
        assert_eq!(h.inbound(&icmp("192.0.2.9", WORKLOAD, 1, 8, 0, 7)), PASS);
        assert_eq!(h.dataplane.tracked_flows(), 2, "ICMP is tracked");
        let group = group_id(&h, "web");
        h.change(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": group, "IpPermissions": http}),
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, ACK)),
            DROP,
            "the untracked HTTP flow is cut at once"
        );
        assert_eq!(
            h.inbound(&tcp("203.0.113.1", 1234, WORKLOAD, 22, ACK)),
            PASS,
            "the tracked SSH flow is not"
        );
    });
}

/// The two `/0` rules that leave a flow untracked may be in different groups of the workload
/// (each group is its own chain in the data plane): web allows tcp/80 from the world and has no
/// outbound rule, egress has only the default outbound rule.
#[test]
fn the_two_world_rules_of_an_untracked_flow_may_be_in_different_groups() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            let http = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
            let web = create_group(s, "web", http);
            call(
                s,
                "RevokeSecurityGroupEgress",
                json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
            );
            vec![web, create_group(s, "egress", json!([]))]
        });
        assert_eq!(h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(
            h.dataplane.tracked_flows(),
            0,
            "tcp/80 from the world in one group, all out to the world in the other: untracked"
        );
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 80, "192.0.2.9", 1234, SYN | ACK)),
            PASS,
            "the reply passes by the other group's outbound rule"
        );
    });
}

/// "If you remove the outbound rule for IPv4 traffic, all inbound and outbound IPv4 traffic is
/// tracked, including traffic on port 80."
#[test]
fn without_an_all_ports_rule_back_the_same_flow_is_tracked() {
    in_private_netns(|| {
        let http = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
        let mut h = Harness::new(|s| vec![create_group(s, "web", http.clone())]);
        let group = group_id(&h, "web");
        h.change(
            "RevokeSecurityGroupEgress",
            json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
        );
        h.change(
            "AuthorizeSecurityGroupEgress",
            json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}),
        );
        assert_eq!(h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(h.dataplane.tracked_flows(), 1, "tracked");
        h.change(
            "RevokeSecurityGroupIngress",
            json!({"GroupId": group, "IpPermissions": http}),
        );
        assert_eq!(
            h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, ACK)),
            PASS,
            "a tracked flow outlives its rule"
        );
    });
}

#[test]
fn icmp_errors_about_tracked_flows_pass_so_path_mtu_discovery_works() {
    in_private_netns(|| {
        // The default group: no inbound rule admits ICMP from outside.
        let mut h = Harness::new(|s| vec![create_group(s, "client", json!([]))]);
        let syn = tcp(WORKLOAD, 40000, "192.0.2.80", 80, SYN);
        assert_eq!(h.outbound(&syn), PASS);
        let frag_needed = icmp_error("198.51.100.1", WORKLOAD, 1, 3, 4, &syn);
        assert_eq!(
            h.inbound(&frag_needed),
            PASS,
            "fragmentation needed for a live flow"
        );
        let unrelated = icmp_error(
            "198.51.100.1",
            WORKLOAD,
            1,
            3,
            4,
            &tcp(WORKLOAD, 40001, "192.0.2.80", 80, SYN),
        );
        assert_eq!(
            h.inbound(&unrelated),
            DROP,
            "about a flow that does not exist"
        );

        let syn6 = tcp(WORKLOAD6, 40000, "2001:db8::80", 80, SYN);
        assert_eq!(h.outbound(&syn6), PASS);
        assert_eq!(
            h.inbound(&icmp_error("2001:db8:ffff::1", WORKLOAD6, 58, 2, 0, &syn6)),
            PASS,
            "packet too big"
        );
        assert_eq!(h.dataplane.counters().unwrap().passes["related"], 2);
        // An error never opens a flow: the quoted flow's reply is still not admitted.
        assert_eq!(
            h.inbound(&tcp("192.0.2.81", 80, WORKLOAD, 40000, SYN | ACK)),
            DROP
        );
    });
}

#[test]
fn only_a_syn_opens_a_tcp_flow_so_a_mid_stream_segment_tracks_nothing() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            let id = create_group(
                s,
                "web",
                json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
            );
            // No outbound rules at all: replies pass only through conntrack.
            call(
                s,
                "RevokeSecurityGroupEgress",
                json!({"GroupId": id, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]}),
            );
            vec![id]
        });
        assert_eq!(
            h.inbound(&tcp("192.0.2.1", 1000, WORKLOAD, 80, ACK)),
            PASS,
            "the rule allows it"
        );
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 80, "192.0.2.1", 1000, ACK)),
            DROP,
            "but it opened no flow"
        );
        assert_eq!(h.inbound(&tcp("192.0.2.1", 1001, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 80, "192.0.2.1", 1001, SYN | ACK)),
            PASS,
            "a SYN did"
        );
    });
}

fn options(conntrack_capacity: u32, timeouts: firewall_common::CtTimeouts) -> LoadOptions {
    LoadOptions {
        timeouts,
        pins: None,
        conntrack_capacity,
        ..LoadOptions::default()
    }
}

#[test]
fn a_full_conntrack_table_refuses_new_flows_and_keeps_established_ones() {
    in_private_netns(|| {
        let opts = options(2, firewall_common::CtTimeouts::AWS_DEFAULT);
        let mut h = Harness::with_options(&opts, |s| vec![create_group(s, "client", json!([]))]);
        assert_eq!(h.outbound(&tcp(WORKLOAD, 1, "192.0.2.1", 80, SYN)), PASS);
        assert_eq!(h.outbound(&tcp(WORKLOAD, 2, "192.0.2.1", 80, SYN)), PASS);
        assert_eq!(
            h.outbound(&tcp(WORKLOAD, 3, "192.0.2.1", 80, SYN)),
            DROP,
            "table full: fail closed"
        );
        assert_eq!(h.dataplane.counters().unwrap().drops["conntrack-full"], 1);
        assert_eq!(
            h.inbound(&tcp("192.0.2.1", 80, WORKLOAD, 1, SYN | ACK)),
            PASS,
            "established flows keep going"
        );
        assert_eq!(h.dataplane.tracked_flows(), 2);
    });
}

#[test]
fn idle_flows_expire_udp_streams_live_longer_and_the_agent_collects_them() {
    in_private_netns(|| {
        let timeouts = firewall_common::CtTimeouts {
            udp: 1,
            udp_stream: 3,
            ..firewall_common::CtTimeouts::AWS_DEFAULT
        };
        let mut h = Harness::with_options(&options(1024, timeouts), |s| {
            vec![create_group(s, "client", json!([]))]
        });
        // One request/response: 1 s idle timeout.
        assert_eq!(h.outbound(&udp(WORKLOAD, 5000, "192.0.2.53", 53)), PASS);
        assert_eq!(h.inbound(&udp("192.0.2.53", 53, WORKLOAD, 5000)), PASS);
        // A second request makes it a stream: 3 s.
        assert_eq!(h.outbound(&udp(WORKLOAD, 6000, "192.0.2.53", 53)), PASS);
        assert_eq!(h.inbound(&udp("192.0.2.53", 53, WORKLOAD, 6000)), PASS);
        assert_eq!(h.outbound(&udp(WORKLOAD, 6000, "192.0.2.53", 53)), PASS);
        std::thread::sleep(std::time::Duration::from_millis(1300));
        assert_eq!(
            h.inbound(&udp("192.0.2.53", 53, WORKLOAD, 5000)),
            DROP,
            "expired after 1 s idle"
        );
        assert_eq!(
            h.inbound(&udp("192.0.2.53", 53, WORKLOAD, 6000)),
            PASS,
            "a stream lives 3 s"
        );
        assert_eq!(h.outbound(&udp(WORKLOAD, 7000, "192.0.2.53", 53)), PASS);
        assert_eq!(h.dataplane.tracked_flows(), 2);
        std::thread::sleep(std::time::Duration::from_millis(1300));
        assert_eq!(
            h.dataplane.collect_expired_flows().unwrap(),
            1,
            "the idle 7000 flow"
        );
        assert_eq!(h.dataplane.tracked_flows(), 1, "the stream is still live");
    });
}

#[test]
fn a_stopped_workload_drops_at_once_and_its_flows_are_gone_before_it_starts_again() {
    in_private_netns(|| {
        let rule = json!([{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]);
        let mut h = Harness::new(|s| vec![create_group(s, "web", rule)]);
        assert_eq!(h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, SYN)), PASS);
        assert_eq!(h.dataplane.tracked_flows(), 1);
        let instance = h.state.instances.keys().next().unwrap().clone();
        h.change("StopInstances", json!({"InstanceIds": [instance]}));
        assert_eq!(
            h.inbound(&tcp("192.0.2.9", 1234, WORKLOAD, 80, ACK)),
            DROP,
            "a stopped workload has no traffic, tracked or not"
        );
        // Queued, not yet deleted: the change answered without walking the table.
        assert!(h.dataplane.flows_queued());
        assert_eq!(h.dataplane.tracked_flows(), 1);
        h.change("StartInstances", json!({"InstanceIds": [instance]}));
        assert!(!h.dataplane.flows_queued());
        assert_eq!(
            h.dataplane.tracked_flows(),
            0,
            "deleted before the workload enforced again"
        );
        h.change("StopInstances", json!({"InstanceIds": [instance]}));
        assert_eq!(h.dataplane.flush_queued_flows().unwrap(), 0, "none left");
    });
}

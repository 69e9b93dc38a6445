//! Packet-level tests: crafted frames run through the loaded programs with BPF_PROG_TEST_RUN,
//! the maps written by the real compiler and data-plane code. Each test runs on a thread inside a
//! private network namespace whose `lo` (ifindex 1, the device test runs use) is the workload's
//! interface, so attaching there touches nothing outside the test.

use firewall_agent::dataplane::{Dataplane as _, LoadOptions, programs};
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
fn ipv6_extension_headers_are_walked_to_the_l4_header() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "v6",
                json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}]),
            )]
        });
        assert_eq!(
            h.inbound(&tcp("2001:db8::1", 999, WORKLOAD6, 443, SYN)),
            PASS
        );
        assert_eq!(
            h.inbound(&tcp("2001:db8::1", 998, WORKLOAD6, 443, SYN).with_hop_by_hop()),
            PASS
        );
        assert_eq!(
            h.inbound(&tcp("2001:db8::1", 997, WORKLOAD6, 444, SYN).with_hop_by_hop()),
            DROP
        );
        assert_eq!(
            h.inbound(&tcp("2001:db9::1", 996, WORKLOAD6, 443, SYN)),
            DROP
        );
        // Neighbour discovery is never filtered.
        assert_eq!(h.inbound(&icmp("fe80::1", WORKLOAD6, 58, 135, 0, 0)), PASS);
    });
}

#[test]
fn malformed_and_fragmented_packets_are_dropped_and_arp_passes() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "all",
                json!([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
            )]
        });
        let good = tcp("192.0.2.1", 1, WORKLOAD, 2, SYN).bytes();
        assert_eq!(h.run_raw(programs::TO_WORKLOAD, &good), PASS);
        // (BPF_PROG_TEST_RUN itself refuses IPv4 frames shorter than a 20-byte IP header.)
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &good[..14 + 20 + 6]),
            DROP,
            "truncated TCP header"
        );
        let mut short_ihl = good.clone();
        short_ihl[14] = 0x44;
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &short_ihl),
            DROP,
            "IHL below 5"
        );
        let mut long_ihl = good.clone();
        long_ihl[14] = 0x4f;
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &long_ihl),
            DROP,
            "IHL points past the end"
        );
        let v6 = tcp("2001:db8::1", 1, WORKLOAD6, 2, SYN)
            .with_hop_by_hop()
            .bytes();
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &v6[..14 + 40 + 1]),
            DROP,
            "truncated extension header"
        );
        let mut bad_version = good.clone();
        bad_version[14] = 0x65;
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &bad_version),
            DROP,
            "IPv4 ethertype, version 6"
        );
        let mut later = udp("192.0.2.1", 1, WORKLOAD, 2);
        later.fragment_offset = 1480;
        assert_eq!(h.inbound(&later), DROP, "non-first fragment");
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert_eq!(
            h.run_raw(programs::TO_WORKLOAD, &arp),
            PASS,
            "ARP is not IP"
        );
        let counters = h.dataplane.counters().unwrap();
        assert_eq!(counters.drops["malformed"], 5, "{counters:?}");
        assert_eq!(counters.drops["fragment"], 1, "{counters:?}");
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
fn later_fragments_follow_an_allowed_first_fragment_only() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            vec![create_group(
                s,
                "dns",
                json!([{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
            )]
        });
        let mut first = udp("192.0.2.1", 5000, WORKLOAD, 53);
        first.more_fragments = true;
        let mut later = frame("192.0.2.1", WORKLOAD, 17, vec![0u8; 16]);
        later.fragment_offset = 1480;
        assert_eq!(h.inbound(&later), DROP, "no first fragment seen yet");
        assert_eq!(h.inbound(&first), PASS);
        assert_eq!(h.inbound(&later), PASS, "follows its first fragment");

        let mut denied_first = udp("192.0.2.2", 5000, WORKLOAD, 54);
        denied_first.more_fragments = true;
        let mut denied_later = frame("192.0.2.2", WORKLOAD, 17, vec![0u8; 16]);
        denied_later.fragment_offset = 1480;
        assert_eq!(h.inbound(&denied_first), DROP);
        assert_eq!(
            h.inbound(&denied_later),
            DROP,
            "its first fragment was dropped"
        );
        let counters = h.dataplane.counters().unwrap();
        assert_eq!(
            (counters.passes["fragment"], counters.drops["fragment"]),
            (1, 2),
            "{counters:?}"
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
fn neighbour_discovery_and_dhcp_are_never_filtered() {
    in_private_netns(|| {
        let mut h = Harness::new(|s| {
            let id = create_group(s, "closed", json!([]));
            call(
                s,
                "RevokeSecurityGroupEgress",
                json!({"GroupId": id, "IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]}),
            );
            vec![id]
        });
        // No rule in either direction.
        assert_eq!(h.outbound(&tcp(WORKLOAD, 1, "192.0.2.1", 80, SYN)), DROP);
        for icmp_type in [133, 134, 135, 136, 137] {
            assert_eq!(
                h.inbound(&icmp("fe80::1", WORKLOAD6, 58, icmp_type, 0, 0)),
                PASS,
                "ND type {icmp_type} in"
            );
            assert_eq!(
                h.outbound(&icmp(WORKLOAD6, "fe80::1", 58, icmp_type, 0, 0)),
                PASS,
                "ND type {icmp_type} out"
            );
        }
        assert_eq!(
            h.outbound(&udp(WORKLOAD, 68, "255.255.255.255", 67)),
            PASS,
            "DHCP discover"
        );
        assert_eq!(
            h.inbound(&udp("172.31.0.1", 67, WORKLOAD, 68)),
            PASS,
            "DHCP offer"
        );
        assert_eq!(
            h.outbound(&udp(WORKLOAD6, 546, "ff02::1:2", 547)),
            PASS,
            "DHCPv6 solicit"
        );
        assert_eq!(
            h.inbound(&udp("fe80::1", 547, WORKLOAD6, 546)),
            PASS,
            "DHCPv6 advertise"
        );
        assert_eq!(
            h.inbound(&udp("192.0.2.1", 67, WORKLOAD, 69)),
            DROP,
            "only the DHCP port pair"
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
        let rule = group.ingress[0].id.clone();
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

//! Packet-level tests of parsing: IPv6 extension headers, malformed packets, fragments, and the
//! ND/MLD and DHCP exemptions. Crafted
//! frames run through the loaded programs with BPF_PROG_TEST_RUN, the maps written by the real
//! compiler and data-plane code. Each test runs on a thread inside a private network namespace
//! whose `lo` (ifindex 1, the device test runs use) is the workload's interface, so attaching
//! there touches nothing outside the test.

use firewall_agent::dataplane::{Dataplane as _, programs};
use firewall_testkit::{
    frame::*,
    harness::*,
    model::{call, create_group},
    netns::in_private_netns,
};
use serde_json::json;

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

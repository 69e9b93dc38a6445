//! Matching on real traffic between namespaces: ICMP echo and type rules (v4, v6), port ranges,
//! overlapping CIDRs across several groups, referenced-group membership changing live, and path
//! MTU discovery with no ICMP rule at all, and a set of groups taken again after its rules
//! changed.

use std::{net::IpAddr, time::Duration};

use firewall_testkit::{
    agent::Agent,
    netns::Netns,
    shell::ns_sh,
    topology::{HOST_IP, Topology},
    traffic::{EchoServer, echoes, eventually, ping, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

#[test]
fn icmp_echo_follows_type_rules_in_both_families() {
    let topo = Topology::new(&["172.31.20.10", "172.31.21.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, server] = agent.create_groups(["pinger", "pinged"]);
    agent.run_instance(a, &[&client]);
    agent.run_instance(b, &[&server]);

    assert!(!ping(&a.ns, b.ip, SHORT), "no ICMP rule yet");
    let a4 = a.cidr();
    let a6 = format!("{}/128", a.ip6);
    // Timestamp requests (13) are not echo requests (8).
    agent.cli(&["authorize-security-group-ingress", "--group-id", &server, "--ip-permissions",
        &format!(r#"[{{"IpProtocol":"icmp","FromPort":13,"ToPort":-1,"IpRanges":[{{"CidrIp":"{a4}"}}]}}]"#)]);
    assert!(
        !ping(&a.ns, b.ip, SHORT),
        "type 13 does not admit echo requests"
    );
    agent.cli(&[
        "authorize-security-group-ingress",
        "--group-id",
        &server,
        "--ip-permissions",
        &format!(
            r#"[{{"IpProtocol":"icmp","FromPort":8,"ToPort":-1,"IpRanges":[{{"CidrIp":"{a4}"}}]}}]"#
        ),
    ]);
    assert!(ping(&a.ns, b.ip, SHORT), "echo request, any code");
    assert!(!ping(&b.ns, a.ip, SHORT), "A has no ICMP rule");

    assert!(!ping(&a.ns, b.ip6, SHORT), "no ICMPv6 rule yet");
    agent.cli(&["authorize-security-group-ingress", "--group-id", &server, "--ip-permissions",
        &format!(r#"[{{"IpProtocol":"icmpv6","FromPort":128,"ToPort":-1,"Ipv6Ranges":[{{"CidrIpv6":"{a6}"}}]}}]"#)]);
    assert!(ping(&a.ns, b.ip6, SHORT), "ICMPv6 echo request allowed");
}

#[test]
fn port_ranges_and_overlapping_cidrs_across_two_groups_union_exactly() {
    let topo = Topology::new(&["172.31.22.10", "172.31.23.10", "172.31.24.10"]);
    let (a, b, c) = (&topo.workloads[0], &topo.workloads[1], &topo.workloads[2]);
    let agent = Agent::start(&topo.host);
    let [clients, wide, narrow] = agent.create_groups(["clients", "wide", "narrow"]);
    agent.authorize_ingress(&wide, "tcp", "7000-7010", "172.0.0.0/8");
    agent.authorize_ingress(&wide, "tcp", "7000-7010", "fd00:ec2::/56");
    agent.authorize_ingress(&narrow, "tcp", "7020", &a.cidr());
    agent.run_instance(a, &[&clients]);
    agent.run_instance(c, &[&clients]);
    agent.run_instance(b, &[&wide, &narrow]);
    let _servers: Vec<EchoServer> = [7000u16, 7005, 7010, 7011, 7020]
        .iter()
        .flat_map(|p| {
            [
                EchoServer::tcp(&b.ns, b.ip, *p),
                EchoServer::tcp(&b.ns, b.ip6, *p),
            ]
        })
        .collect();

    for (port, from_a, from_c) in [
        (7000, true, true),
        (7005, true, true),
        (7010, true, true),
        (7011, false, false),
        (7020, true, false),
    ] {
        assert_eq!(
            tcp_round_trip(&a.ns, b.ip, port, SHORT),
            from_a,
            "A → B:{port}"
        );
        assert_eq!(
            tcp_round_trip(&c.ns, b.ip, port, SHORT),
            from_c,
            "C → B:{port}"
        );
    }
    assert!(tcp_round_trip(&a.ns, b.ip6, 7005, SHORT), "IPv6 range rule");
    assert!(
        !tcp_round_trip(&a.ns, b.ip6, 7020, SHORT),
        "the /32 rule is IPv4 only"
    );
}

#[test]
fn referenced_group_membership_changes_reach_running_traffic_at_once() {
    let topo = Topology::new(&["172.31.25.10", "172.31.26.10", "172.31.27.10"]);
    let (a, b, lb) = (&topo.workloads[0], &topo.workloads[1], &topo.workloads[2]);
    let agent = Agent::start(&topo.host);
    let [lb_group, web, other] = agent.create_groups(["lb", "web", "other"]);
    agent.authorize_ingress(&web, "tcp", "8443", &lb_group);
    agent.run_instance(a, &[&other]);
    agent.run_instance(b, &[&web]);
    let lb_instance = agent.run_instance(lb, &[&lb_group]);
    let _web4 = EchoServer::tcp(&b.ns, b.ip, 8443);
    let _web6 = EchoServer::tcp(&b.ns, b.ip6, 8443);

    assert!(tcp_round_trip(&lb.ns, b.ip, 8443, SHORT), "lb member → web");
    assert!(
        tcp_round_trip(&lb.ns, b.ip6, 8443, SHORT),
        "members count with their IPv6 address too"
    );
    assert!(!tcp_round_trip(&a.ns, b.ip, 8443, SHORT), "not a member");

    agent.cli(&["terminate-instances", "--instance-ids", &lb_instance]);
    assert!(!tcp_round_trip(&lb.ns, b.ip, 8443, SHORT), "left the group");
    agent.run_instance(lb, &[&lb_group]);
    let took = eventually(Duration::from_secs(1), || {
        tcp_round_trip(&lb.ns, b.ip, 8443, Duration::from_millis(300))
    });
    assert!(took.is_some(), "joined again");
}

/// The path MTU the kernel of `ns` has learnt towards `to`, through a connected UDP socket after
/// sending one datagram of `size` bytes with DF.
fn learnt_path_mtu(ns: &Netns, to: IpAddr, size: usize) -> u32 {
    ns.run(move || {
        use std::os::fd::AsRawFd as _;
        let socket =
            std::net::UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).unwrap();
        socket.connect((to, 9)).unwrap();
        let fd = socket.as_raw_fd();
        let (level, discover, mtu) = if to.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_MTU)
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_MTU)
        };
        let always_df: libc::c_int = 2; // IP_PMTUDISC_DO / IPV6_PMTUDISC_DO
        // SAFETY: valid fd and option buffers.
        unsafe {
            libc::setsockopt(fd, level, discover, (&raw const always_df).cast(), 4);
        }
        let _ = socket.send(&vec![0u8; size]);
        std::thread::sleep(Duration::from_millis(300));
        let mut value: libc::c_int = 0;
        let mut len: libc::socklen_t = 4;
        // SAFETY: valid fd and option buffers.
        unsafe { libc::getsockopt(fd, level, mtu, (&raw mut value).cast(), &mut len) };
        value as u32
    })
}

#[test]
fn path_mtu_discovery_works_without_any_icmp_rule() {
    let topo = Topology::new(&["172.31.28.10", "172.31.29.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    // Both ends have only the default outbound rules: no inbound ICMP at all.
    let group = agent.create_group("plain");
    agent.run_instance(a, &[&group]);
    agent.run_instance(b, &[&group]);
    // The path to B narrows at the host: its veth carries 1280 bytes.
    ns_sh(
        &topo.host.name,
        &["ip", "link", "set", &b.host_if, "mtu", "1280"],
    );
    ns_sh(&b.ns.name, &["ip", "link", "set", "eth0", "mtu", "1280"]);

    assert_eq!(
        learnt_path_mtu(&a.ns, b.ip.into(), 1400),
        1280,
        "fragmentation needed from {HOST_IP} reached A"
    );
    assert_eq!(
        learnt_path_mtu(&a.ns, b.ip6.into(), 1400),
        1280,
        "packet too big reached A"
    );
    let stats = agent.cli(&["get-dataplane-statistics"]);
    assert!(stats["Passes"]["related"].as_u64().unwrap() >= 2, "{stats}");
}

#[test]
fn stop_cuts_all_traffic_start_restores_it_and_group_changes_apply_live() {
    let topo = Topology::new(&["172.31.30.10", "172.31.31.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [lb, web, plain] = agent.create_groups(["lb", "web", "plain"]);
    agent.authorize_ingress(&web, "tcp", "8080", &lb);
    let a_id = agent.run_instance(a, &[&plain]);
    let b_id = agent.run_instance(b, &[&web]);
    let _server = EchoServer::tcp(&b.ns, b.ip, 8080);

    assert!(!tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "A is not in lb");
    let out = agent.modify_instance_groups(&a_id, &[&lb, &plain]);
    assert!(out.is_null(), "prints nothing, like the AWS CLI: {out}");
    assert!(tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "A joined lb");
    let mut established = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("connects");
    assert!(echoes(&mut established, "hello\n"));

    let out = agent.cli(&["stop-instances", "--instance-ids", &b_id]);
    assert_eq!(
        out["StoppingInstances"][0]["CurrentState"]["Name"],
        "stopped"
    );
    assert!(
        !echoes(&mut established, "stopped?\n"),
        "a stopped workload has no traffic"
    );
    assert!(!ping(&b.ns, a.ip, SHORT), "not even outbound");
    agent.cli(&["start-instances", "--instance-ids", &b_id]);
    assert!(
        tcp_round_trip(&a.ns, b.ip, 8080, SHORT),
        "enforcement is back"
    );

    agent.cli(&["stop-instances", "--instance-ids", &a_id]);
    agent.cli(&["start-instances", "--instance-ids", &a_id]);
    let mut tracked = tcp_connect(&a.ns, b.ip, 8080, SHORT).expect("connects");
    assert!(echoes(&mut tracked, "hello\n"));
    agent.modify_instance_groups(&a_id, &[&plain]);
    assert!(!tcp_round_trip(&a.ns, b.ip, 8080, SHORT), "A left lb");
    assert!(
        echoes(&mut tracked, "still\n"),
        "its tracked flow survives (AWS)"
    );
    agent.modify_instance_groups(&a_id, &[&lb]);
    agent.cli(&[
        "modify-instance-attribute",
        "--instance-id",
        &a_id,
        "--groups",
        &plain,
        "--flush-flows",
    ]);
    assert!(!echoes(&mut tracked, "cut?\n"), "--flush-flows cuts it");
}

#[test]
fn prefix_list_edits_apply_to_referencing_rules_at_once() {
    let topo = Topology::new(&["172.31.32.10", "172.31.33.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let out = agent.cli(&[
        "create-managed-prefix-list",
        "--prefix-list-name",
        "partners",
        "--max-entries",
        "5",
        "--address-family",
        "IPv4",
        "--entries",
        "Cidr=10.0.0.0/8,Description=elsewhere",
    ]);
    let list = out["PrefixList"]["PrefixListId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out["PrefixList"]["State"], "create-complete");
    let [clients, server] = agent.create_groups(["clients", "server"]);
    agent.cli(&["authorize-security-group-ingress", "--group-id", &server, "--ip-permissions",
        &format!(r#"[{{"IpProtocol":"tcp","FromPort":9443,"ToPort":9443,"PrefixListIds":[{{"PrefixListId":"{list}","Description":"partners"}}]}}]"#)]);
    let described = agent.cli(&["describe-security-groups", "--group-ids", &server]);
    assert_eq!(
        described["SecurityGroups"][0]["IpPermissions"][0]["PrefixListIds"][0]["PrefixListId"],
        list.as_str()
    );
    agent.run_instance(a, &[&clients]);
    agent.run_instance(b, &[&server]);
    let _server = EchoServer::tcp(&b.ns, b.ip, 9443);

    assert!(
        !tcp_round_trip(&a.ns, b.ip, 9443, SHORT),
        "A is not in the list"
    );
    let a_cidr = format!("Cidr={}", a.cidr());
    let out = agent.cli(&[
        "modify-managed-prefix-list",
        "--prefix-list-id",
        &list,
        "--current-version",
        "1",
        "--add-entries",
        &a_cidr,
    ]);
    assert_eq!(out["PrefixList"]["Version"], 2);
    assert!(tcp_round_trip(&a.ns, b.ip, 9443, SHORT), "A was added");
    let err = agent
        .try_cli(&[
            "modify-managed-prefix-list",
            "--prefix-list-id",
            &list,
            "--current-version",
            "1",
            "--remove-entries",
            &a_cidr,
        ])
        .unwrap_err();
    assert_eq!(err.code(), "PrefixListVersionMismatch");
    agent.cli(&[
        "modify-managed-prefix-list",
        "--prefix-list-id",
        &list,
        "--current-version",
        "2",
        "--remove-entries",
        &a_cidr,
    ]);
    assert!(!tcp_round_trip(&a.ns, b.ip, 9443, SHORT), "A was removed");
    // Deleting a referenced list is accepted, as on AWS, and completes once the last rule
    // referencing it goes; meanwhile it is `delete-in-progress` and still enforced.
    let out = agent.cli(&["delete-managed-prefix-list", "--prefix-list-id", &list]);
    assert_eq!(out["PrefixList"]["State"], "delete-in-progress");
    let add_a = [
        "modify-managed-prefix-list",
        "--prefix-list-id",
        &list,
        "--current-version",
        "3",
        "--add-entries",
        &a_cidr,
    ];
    agent.cli(&add_a);
    assert!(
        tcp_round_trip(&a.ns, b.ip, 9443, SHORT),
        "a list being deleted is still enforced"
    );
    agent.cli(&["revoke-security-group-ingress", "--group-id", &server, "--ip-permissions",
        &format!(r#"[{{"IpProtocol":"tcp","FromPort":9443,"ToPort":9443,"PrefixListIds":[{{"PrefixListId":"{list}"}}]}}]"#)]);
    let err = agent
        .try_cli(&["describe-managed-prefix-lists", "--prefix-list-ids", &list])
        .unwrap_err();
    assert_eq!(
        err.code(),
        "InvalidPrefixListID.NotFound",
        "the deletion completed with the last reference"
    );
}

#[test]
fn the_default_group_lets_its_members_talk_to_each_other_through_its_self_reference() {
    let topo = Topology::new(&["172.31.34.10", "172.31.35.10", "172.31.36.10"]);
    let (a, b, outsider) = (&topo.workloads[0], &topo.workloads[1], &topo.workloads[2]);
    let agent = Agent::start(&topo.host);
    // No --security-group-ids: the VPC's default group.
    agent.run_instance(a, &[]);
    agent.run_instance(b, &[]);
    let other = agent.create_group("other");
    agent.run_instance(outsider, &[&other]);
    let _b4 = EchoServer::tcp(&b.ns, b.ip, 12345);
    let _b6 = EchoServer::tcp(&b.ns, b.ip6, 12345);

    assert!(
        tcp_round_trip(&a.ns, b.ip, 12345, SHORT),
        "member to member, any port"
    );
    assert!(tcp_round_trip(&a.ns, b.ip6, 12345, SHORT), "and over IPv6");
    assert!(ping(&a.ns, b.ip, SHORT), "any protocol");
    assert!(
        !tcp_round_trip(&outsider.ns, b.ip, 12345, SHORT),
        "not a member"
    );
}

#[test]
fn a_set_of_groups_taken_again_is_enforced_with_the_rules_changed_meanwhile() {
    let topo = Topology::new(&["172.31.32.10", "172.31.33.10"]);
    let (a, b) = (&topo.workloads[0], &topo.workloads[1]);
    let agent = Agent::start(&topo.host);
    let [client, web, extra] = agent.create_groups(["client", "web", "extra"]);
    let from_a = format!("{}/32", a.ip);
    agent.authorize_ingress(&web, "tcp", "8080", &from_a);
    agent.authorize_ingress(&extra, "tcp", "9191", &from_a);
    agent.run_instance(a, &[&client]);
    let b_id = agent.run_instance(b, &[&web]);
    let _servers = [8080, 9090, 9191].map(|port| EchoServer::tcp(&b.ns, b.ip, port));
    let answers = |port| tcp_round_trip(&a.ns, b.ip, port, SHORT);
    assert!(answers(8080) && !answers(9090) && !answers(9191));

    // B alone had web: its policy is idle while B has web and extra.
    agent.modify_instance_groups(&b_id, &[&web, &extra]);
    assert!(answers(8080) && answers(9191));
    agent.authorize_ingress(&web, "tcp", "9090", &from_a);
    agent.revoke_ingress(&web, "tcp", "8080", &from_a);
    // Back to web alone: the kept policy has the rules web has now.
    agent.modify_instance_groups(&b_id, &[&web]);
    assert!(answers(9090), "authorized while the policy was idle");
    assert!(!answers(8080), "revoked while the policy was idle");
    assert!(!answers(9191), "extra's rule went with extra");
}

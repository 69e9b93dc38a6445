//! Differential testing of the data plane: random rulesets, put in through the API and changed
//! between packets, and random frames (replies, ICMP errors about live and dead flows, fragments
//! in any order, malformed ones); every verdict of the loaded programs (BPF_PROG_TEST_RUN) must
//! be the reference evaluator's (`firewall_testkit::reference`), which shares no code with the
//! compiler or the data plane.
//!
//! `FIREWALL_DIFF_PACKETS` (default 100 000) sets the budget, `FIREWALL_DIFF_SEED` the seed
//! (default 1); `cargo xtask fuzz --packets N [--seed S]` runs long campaigns.

use std::collections::VecDeque;

use firewall_agent::dataplane::{LoadOptions, programs};
use firewall_common::{CtTimeouts, Direction};
use firewall_testkit::{
    harness::{Harness, PASS, WORKLOAD, WORKLOAD6},
    model::try_call,
    netns::{in_private_netns, ip_here},
    random::{Packets, Peers, Probe, Rng, Universe, permission, rule_request},
    reference::Reference,
};
use serde_json::{Value, json};

/// Packets per scenario: one ruleset, loaded once, then changed as the packets go.
const PACKETS_PER_SCENARIO: usize = 5_000;
/// Workloads other than the one under test, members of the groups that rules reference.
const MEMBERS: usize = 3;
/// Full reports printed; further mismatches are only counted.
const REPORTS: usize = 3;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect(name))
}

#[test]
fn the_data_plane_agrees_with_the_reference_on_random_rules_and_packets() {
    let budget = env_or("FIREWALL_DIFF_PACKETS", 100_000) as usize;
    let seed = env_or("FIREWALL_DIFF_SEED", 1);
    let totals = in_private_netns(move || {
        for i in 0..MEMBERS {
            ip_here(&[
                "link",
                "add",
                &format!("df{i}"),
                "type",
                "veth",
                "peer",
                "name",
                &format!("df{i}p"),
            ]);
        }
        let mut totals = Totals::default();
        let mut scenario = 0;
        while totals.packets < budget {
            let packets = PACKETS_PER_SCENARIO.min(budget - totals.packets);
            run_scenario(seed.wrapping_add(scenario), packets, &mut totals);
            scenario += 1;
        }
        totals
    });
    println!(
        "differential: seed {seed}, {} packets compared, {} mismatches; {} changes applied, {} refused by the API",
        totals.packets, totals.mismatches, totals.changes, totals.refused
    );
    assert_eq!(
        totals.mismatches, 0,
        "the kernel and the reference disagree (reports above)"
    );
}

#[derive(Default)]
struct Totals {
    packets: usize,
    mismatches: usize,
    changes: usize,
    refused: usize,
}

/// The names a scenario's random choices pick from, in creation order (so a seed replays the
/// same choices whatever IDs the model draws).
struct Names {
    groups: Vec<String>,
    prefix_lists: Vec<String>,
    members: Vec<String>,
    workload: String,
}

fn run_scenario(seed: u64, packets: usize, totals: &mut Totals) {
    let mut rng = Rng::new(seed);
    let member_addrs: Vec<_> = (0..MEMBERS as u8)
        .map(|i| {
            (
                format!("172.31.1.{}", 10 + i).parse().unwrap(),
                format!("fd00:ec2::1:{}", 10 + i).parse().unwrap(),
            )
        })
        .collect();
    let universe = Universe::new(
        &mut rng,
        (WORKLOAD.parse().unwrap(), WORKLOAD6.parse().unwrap()),
        &member_addrs,
    );
    let mut names = Names {
        groups: Vec::new(),
        prefix_lists: Vec::new(),
        members: Vec::new(),
        workload: String::new(),
    };
    let mut h = Harness::with_options(&long_timeouts(), |state| {
        let mut setup = |action: &str, request: Value| try_call(state, action, request).ok();
        for (i, family) in ["IPv4", "IPv6"].into_iter().enumerate() {
            let entries: Vec<_> = (0..rng.below(4))
                .map(|_| json!({"Cidr": universe.cidr(&mut rng, i == 0)}))
                .collect();
            let request = json!({"PrefixListName": format!("pl{i}"), "AddressFamily": family, "MaxEntries": 10});
            let created = setup(
                "CreateManagedPrefixList",
                merge(&request, json!({"Entries": entries})),
            )
            .or_else(|| setup("CreateManagedPrefixList", request.clone()));
            names.prefix_lists.push(
                created.expect("an empty prefix list")["PrefixList"]["PrefixListId"]
                    .as_str()
                    .unwrap()
                    .into(),
            );
        }
        for i in 0..2 + rng.below(4) {
            let created = setup(
                "CreateSecurityGroup",
                json!({"GroupName": format!("g{i}"), "Description": "random"}),
            );
            names.groups.push(
                created.expect("a group")["GroupId"]
                    .as_str()
                    .unwrap()
                    .into(),
            );
        }
        for group in names.groups.clone() {
            if rng.one_in(2) {
                let everything = json!([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]);
                setup(
                    "RevokeSecurityGroupEgress",
                    json!({"GroupId": group, "IpPermissions": everything}),
                );
            }
            for (action, count) in [
                ("AuthorizeSecurityGroupIngress", 1 + rng.below(8)),
                ("AuthorizeSecurityGroupEgress", rng.below(6)),
            ] {
                for _ in 0..count {
                    let p = permission(&mut rng, &peers(&universe, &names));
                    setup(action, json!({"GroupId": group, "IpPermissions": [p]}));
                }
            }
        }
        some_groups(&mut rng, &names.groups)
    });
    names.workload = h
        .state
        .network_interfaces
        .values()
        .find(|i| i.host_interface == "lo")
        .and_then(|i| i.instance_id())
        .unwrap()
        .to_string();
    for (i, (v4, v6)) in member_addrs.iter().enumerate() {
        let groups = some_groups(&mut rng, &names.groups);
        let out = try_call(
            &mut h.state,
            "RunInstances",
            json!({"SecurityGroupIds": groups, "PrivateIpAddress": v4.to_string(),
            "Ipv6Addresses": [{"Ipv6Address": v6.to_string()}], "HostInterface": format!("df{i}")}),
        )
        .expect("a member");
        names
            .members
            .push(out["Instances"][0]["InstanceId"].as_str().unwrap().into());
    }
    h.sync();

    let mut reference = Reference::default();
    let mut frames = Packets::default();
    let mut changes = VecDeque::new();
    for n in 0..packets {
        if rng.one_in(40) {
            let (action, request) = random_change(&mut rng, &h, &universe, &names);
            match try_call(&mut h.state, action, request.clone()) {
                Ok(_) => {
                    h.sync();
                    totals.changes += 1;
                    changes.push_back(format!("{action} {request}"));
                    if changes.len() > 5 {
                        changes.pop_front();
                    }
                }
                Err(_) => totals.refused += 1,
            }
        }
        let probe = frames.next(&mut rng, &universe);
        let (program, dir) = if probe.inbound {
            (programs::TO_WORKLOAD, Direction::Inbound)
        } else {
            (programs::FROM_WORKLOAD, Direction::Outbound)
        };
        let kernel = h.run_raw(program, &probe.bytes) == PASS;
        let expected = reference.passes(&h.state, "lo", dir, &probe.bytes);
        totals.packets += 1;
        if kernel != expected {
            totals.mismatches += 1;
            if totals.mismatches <= REPORTS {
                report(seed, packets, n, &probe, kernel, &h, &changes);
            }
        }
    }
}

/// Idle timeouts far longer than any run: the reference does not model expiry.
fn long_timeouts() -> LoadOptions {
    let day = 86_400;
    LoadOptions {
        timeouts: CtTimeouts {
            tcp_established: day,
            tcp_transitory: day,
            tcp_reset: day,
            udp: day,
            udp_stream: day,
            icmp: day,
            other: day,
            _pad: 0,
        },
        ..LoadOptions::default()
    }
}

fn merge(a: &Value, b: Value) -> Value {
    let mut out = a.clone();
    out.as_object_mut()
        .unwrap()
        .extend(b.as_object().unwrap().clone());
    out
}

fn peers<'a>(universe: &'a Universe, names: &'a Names) -> Peers<'a> {
    Peers {
        universe,
        groups: &names.groups,
        prefix_lists: &names.prefix_lists,
    }
}

/// One to four of the groups (the quota is five per instance).
fn some_groups(rng: &mut Rng, groups: &[String]) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let g = rng.pick(groups);
        if !chosen.contains(&g) {
            chosen.push(g);
        }
    }
    chosen
}

/// A change as users make them: rules authorized, revoked or modified, instances moved between
/// groups, stopped or started, prefix lists edited. The API may refuse it (a duplicate rule…).
fn random_change(
    rng: &mut Rng,
    h: &Harness,
    universe: &Universe,
    names: &Names,
) -> (&'static str, Value) {
    let group = rng.pick(&names.groups);
    let ingress = rng.one_in(2);
    let rules = if ingress {
        &h.state.groups[&group].ingress
    } else {
        &h.state.groups[&group].egress
    };
    let rule = (!rules.is_empty()).then(|| {
        let at = rng.below(rules.len() as u64) as usize;
        rules.iter().nth(at).expect("within the list").id.clone()
    });
    let p = permission(rng, &peers(universe, names));
    match (rng.below(6), rule) {
        (0, _) | (1 | 2, None) => {
            let action = if ingress {
                "AuthorizeSecurityGroupIngress"
            } else {
                "AuthorizeSecurityGroupEgress"
            };
            (action, json!({"GroupId": group, "IpPermissions": [p]}))
        }
        (1, Some(rule)) => {
            let action = if ingress {
                "RevokeSecurityGroupIngress"
            } else {
                "RevokeSecurityGroupEgress"
            };
            (
                action,
                json!({"GroupId": group, "SecurityGroupRuleIds": [rule]}),
            )
        }
        (2, Some(rule)) => (
            "ModifySecurityGroupRules",
            json!({"GroupId": group, "SecurityGroupRules": [{"SecurityGroupRuleId": rule, "SecurityGroupRule": rule_request(&p)}]}),
        ),
        (3, _) => {
            let instance = if rng.one_in(3) {
                names.workload.clone()
            } else {
                rng.pick(&names.members)
            };
            (
                "ModifyInstanceAttribute",
                json!({"InstanceId": instance, "Groups": some_groups(rng, &names.groups)}),
            )
        }
        (4, _) => {
            let action = if rng.one_in(2) {
                "StopInstances"
            } else {
                "StartInstances"
            };
            (action, json!({"InstanceIds": [rng.pick(&names.members)]}))
        }
        _ => {
            let list = &h.state.prefix_lists[&rng.pick(&names.prefix_lists)];
            let ipv4 = list.family.name() == "IPv4";
            let mut request = json!({"PrefixListId": list.id, "CurrentVersion": list.version()});
            match list.entries() {
                [] => request["AddEntries"] = json!([{"Cidr": universe.cidr(rng, ipv4)}]),
                entries if rng.one_in(2) => {
                    request["RemoveEntries"] =
                        json!([{"Cidr": rng.pick(entries).cidr.to_string()}]);
                }
                _ => request["AddEntries"] = json!([{"Cidr": universe.cidr(rng, ipv4)}]),
            }
            ("ModifyManagedPrefixList", request)
        }
    }
}

/// Everything needed to reproduce a mismatch: the seed, the ruleset, the frame.
fn report(
    seed: u64,
    packets: usize,
    n: usize,
    probe: &Probe,
    kernel: bool,
    h: &Harness,
    changes: &VecDeque<String>,
) {
    let verdict = |pass: bool| if pass { "PASS" } else { "DROP" };
    let hex: String = probe.bytes.iter().map(|b| format!("{b:02x}")).collect();
    let workload = h
        .state
        .network_interfaces
        .values()
        .find(|i| i.host_interface == "lo")
        .unwrap();
    eprintln!(
        "MISMATCH (reproduce: FIREWALL_DIFF_SEED={seed} FIREWALL_DIFF_PACKETS={packets}) at packet {n}: {} {} frame, kernel {}, reference {}\n  {} -> {} proto {}\n  frame {hex}\n  workload groups {:?}\n  groups {}\n  interfaces {}\n  prefix lists {}\n  last changes {changes:#?}",
        if probe.inbound { "inbound" } else { "outbound" },
        probe.kind,
        verdict(kernel),
        verdict(!kernel),
        probe.frame.src,
        probe.frame.dst,
        probe.frame.proto,
        workload.group_ids,
        serde_json::to_string(&h.state.groups).unwrap(),
        serde_json::to_string(&h.state.network_interfaces).unwrap(),
        serde_json::to_string(&h.state.prefix_lists).unwrap(),
    );
}

//! The incremental compiler against the whole compile, its reference: after every step of long
//! seeded sequences of changes through the catalogue (two scopes; rules with nested CIDRs,
//! group and prefix-list peers; instances run, stopped, started, terminated and moved between
//! groups; prefix lists edited; refused requests among them; now and then several compiled as
//! one change), the kept contents equal a whole
//! compile's with the same IDs, and the delta turns the previous contents into them. Policies no
//! workload uses any more stay idle for a while: then the contents are the whole compile's plus
//! theirs, and collecting them deletes exactly theirs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::compiler::{Delta, Desired, Ids, Incremental, compile};
use crate::{
    api::{Scope, catalogue::call_json},
    model::{
        InstanceState, NetworkInterface, State,
        testing::{Seeded, SeqIds},
    },
};

/// What every scope compiles to as one state (as the agent compiles them).
fn whole(states: &BTreeMap<Scope, State>, ids: &mut Ids) -> Desired {
    let mut all = states.values().next().expect("a scope").clone();
    for state in states.values().skip(1) {
        all.groups.extend(state.groups.clone());
        all.instances.extend(state.instances.clone());
        all.subnets.extend(state.subnets.clone());
        all.network_interfaces
            .extend(state.network_interfaces.clone());
        all.prefix_lists.extend(state.prefix_lists.clone());
        all.flow_logs.extend(state.flow_logs.clone());
    }
    compile(&all, ids)
}

/// `delta` written onto `maps` in the data plane's order.
fn written(maps: &mut Desired, delta: &Delta) {
    maps.ports.extend(delta.ports.iter().copied());
    maps.peers.extend(delta.peers.iter().copied());
    maps.ifaces = delta.ifaces.clone();
    maps.policies = delta.policies.clone();
    for key in &delta.stale_peers {
        assert!(maps.peers.remove(key).is_some(), "a stale peer was held");
    }
    for key in &delta.stale_ports {
        assert!(maps.ports.remove(key).is_some(), "a stale port was held");
    }
    for slot in &delta.freed_slots {
        maps.rule_slots.remove(slot);
    }
    maps.rule_slots.extend(delta.fresh_slots.iter().cloned());
}

fn cidr(rng: &mut Seeded) -> String {
    match rng.below(8) {
        0 => "0.0.0.0/0".into(),
        1 => format!("10.{}.0.0/16", rng.below(3)),
        2 => "10.0.0.0/8".into(),
        3 => format!("10.0.{}.0/24", rng.below(3)),
        4 => format!("172.31.0.{}/32", 10 + rng.below(8)),
        _ => format!("10.0.0.{}/32", rng.below(4)),
    }
}

fn ids_of(state: &State, kind: &str) -> Vec<String> {
    match kind {
        "sg" => state.groups.keys().cloned().collect(),
        "pl" => state.prefix_lists.keys().cloned().collect(),
        _ => state
            .instances
            .values()
            .filter(|i| i.state != InstanceState::Terminated)
            .map(|i| i.id.clone())
            .collect(),
    }
}

/// One random request, valid or not.
fn random_request(state: &State, rng: &mut Seeded, step: usize) -> (&'static str, Value) {
    let groups = ids_of(state, "sg");
    let group = rng.pick(&groups).cloned().unwrap_or_default();
    let other = rng.pick(&groups).cloned().unwrap_or_default();
    let instance = rng.pick(&ids_of(state, "i")).cloned().unwrap_or_default();
    let list = rng.pick(&ids_of(state, "pl")).cloned().unwrap_or_default();
    let port = 20 + rng.below(6);
    let peer = match rng.below(4) {
        0 => json!({"UserIdGroupPairs": [{"GroupId": other}]}),
        1 => json!({"PrefixListIds": [{"PrefixListId": list}]}),
        _ => json!({"IpRanges": [{"CidrIp": cidr(rng)}]}),
    };
    let mut permission =
        json!({"IpProtocol": "tcp", "FromPort": port, "ToPort": port + rng.below(3)});
    if rng.below(6) == 0 {
        permission = json!({"IpProtocol": "-1"});
    }
    for (k, v) in peer.as_object().expect("object") {
        permission[k] = v.clone();
    }
    let rule = json!({"GroupId": group, "IpPermissions": [permission]});
    let some_groups: Vec<String> = (0..1 + rng.below(2))
        .filter_map(|_| rng.pick(&groups).cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rule_ids: Vec<String> = state
        .groups
        .get(&group)
        .map(|g| g.ingress.iter().map(|r| r.id.clone()).collect())
        .unwrap_or_default();
    let enis: Vec<&NetworkInterface> = state.network_interfaces.values().collect();
    let eni = rng.pick(&enis).map(|e| (*e).clone());
    let eni_id = eni.as_ref().map(|e| e.id.clone()).unwrap_or_default();
    match rng.below(21) {
        16 => ("RunInstances", json!({"SecurityGroupIds": some_groups})),
        17 => (
            "CreateNetworkInterface",
            json!({"SubnetId": state.subnets.keys().next().cloned().unwrap_or_default(),
                   "Groups": some_groups}),
        ),
        18 => (
            "AttachNetworkInterface",
            json!({"NetworkInterfaceId": eni_id, "InstanceId": instance,
                   "DeviceIndex": 1 + rng.below(2)}),
        ),
        19 => match eni.and_then(|e| e.attachment) {
            Some(a) if rng.below(2) == 0 => {
                ("DetachNetworkInterface", json!({"AttachmentId": a.id}))
            }
            _ => (
                "DeleteNetworkInterface",
                json!({"NetworkInterfaceId": eni_id}),
            ),
        },
        20 => (
            "ModifyNetworkInterfaceAttribute",
            json!({"NetworkInterfaceId": eni_id, "Groups": some_groups}),
        ),
        0..=2 => ("AuthorizeSecurityGroupIngress", rule),
        3 => ("AuthorizeSecurityGroupEgress", rule),
        4 => ("RevokeSecurityGroupIngress", rule),
        5 => match rng.pick(&rule_ids) {
            Some(id) => (
                "RevokeSecurityGroupIngress",
                json!({"GroupId": group, "SecurityGroupRuleIds": [id]}),
            ),
            None => ("RevokeSecurityGroupEgress", rule),
        },
        6 => (
            "CreateSecurityGroup",
            json!({"GroupName": format!("g{step}"), "Description": "d"}),
        ),
        7 => ("DeleteSecurityGroup", json!({"GroupId": group})),
        8 | 9 => (
            "RunInstances",
            json!({"PrivateIpAddress": format!("172.31.0.{}", 10 + rng.below(8)), "HostInterface": format!("v{step}"), "SecurityGroupIds": some_groups}),
        ),
        10 => ("StopInstances", json!({"InstanceIds": [instance]})),
        11 => ("StartInstances", json!({"InstanceIds": [instance]})),
        12 => ("TerminateInstances", json!({"InstanceIds": [instance]})),
        13 => (
            "ModifyInstanceAttribute",
            json!({"InstanceId": instance, "Groups": some_groups}),
        ),
        14 => (
            "CreateManagedPrefixList",
            json!({"PrefixListName": format!("l{step}"), "MaxEntries": 4, "AddressFamily": "IPv4",
                   "Entries": [{"Cidr": cidr(rng)}]}),
        ),
        _ => {
            let version = state.prefix_lists.get(&list).map_or(1, |l| l.version());
            let entries: Vec<String> = state
                .prefix_lists
                .get(&list)
                .map(|l| l.entries().iter().map(|e| e.cidr.to_string()).collect())
                .unwrap_or_default();
            let change = match rng.pick(&entries) {
                Some(cidr) if rng.below(2) == 0 => json!({"RemoveEntries": [{"Cidr": cidr}]}),
                _ => json!({"AddEntries": [{"Cidr": cidr(rng)}]}),
            };
            let mut request = json!({"PrefixListId": list, "CurrentVersion": version});
            for (k, v) in change.as_object().expect("object") {
                request[k] = v.clone();
            }
            ("ModifyManagedPrefixList", request)
        }
    }
}

#[test]
fn after_every_step_of_seeded_change_sequences_incremental_equals_whole() {
    for seed in [1u64, 2, 3, 42, 1234] {
        let mut ids = SeqIds::default();
        let mut rng = Seeded::new(seed);
        let mut states = BTreeMap::new();
        for state in [
            State::initial(&mut ids),
            State::initial_in("123456789012", "eu-west-1", &mut ids),
        ] {
            states.insert(state.scope(), state);
        }
        let scopes: Vec<Scope> = states.keys().cloned().collect();
        let mut incremental = Incremental::new(&states, Ids::default());
        let mut maps = incremental.desired().clone();
        let (mut applied, mut refused, mut idle_kept, mut batched) = (0, 0, 0, 0);
        for step in 0..400 {
            let scope = rng.pick(&scopes).expect("scopes").clone();
            let before = states[&scope].clone();
            let mut next = before.clone();
            let (action, request) = random_request(&before, &mut rng, step);
            let mut context = format!("seed {seed} step {step}: {action} {request}");
            if call_json(&mut next, &mut ids, action, request).is_err() {
                refused += 1;
                // A refused request leaves the state as it was: the update writes nothing.
                assert_eq!(next, before, "{context}");
                let delta = incremental.update(Some(&before), &states, &scope);
                assert!(!delta.touches_policy_maps(), "{context}");
                continue;
            }
            // Now and then several changes arrive as one (a shared store's watch): rules given
            // and taken back while members move, compiled together.
            if rng.below(5) == 0 {
                for _ in 0..2 {
                    let (action, request) = random_request(&next, &mut rng, step);
                    context += &format!(", then {action} {request}");
                    let _ = call_json(&mut next, &mut ids, action, request);
                }
                batched += 1;
            }
            // Now and then an instance is another host's (a shared store's view): a member of
            // its groups, never enforced here.
            let instances: Vec<String> = next.instances.keys().cloned().collect();
            if rng.below(6) == 0
                && let Some(id) = rng.pick(&instances)
                && let Some(instance) = next.instances.get_mut(id)
            {
                instance.remote = !instance.remote;
            }
            applied += 1;
            states.insert(scope.clone(), next);
            let delta = incremental.update(Some(&before), &states, &scope);
            written(&mut maps, &delta);
            assert_eq!(&maps, incremental.desired(), "the delta, {context}");
            let mut reference_ids = incremental.ids().clone();
            let reference = whole(&states, &mut reference_ids);
            if incremental.has_idle() && rng.below(3) != 0 {
                // Idle policies kept (and revived when wanted again): the rest is the whole
                // compile's.
                idle_kept += 1;
                assert_eq!(
                    incremental.desired(),
                    &incremental.with_idle(reference),
                    "with idle policies, {context}"
                );
                continue;
            }
            let delta = incremental.collect_idle(rng.below(2) == 0);
            written(&mut maps, &delta);
            assert_eq!(&maps, incremental.desired(), "the collection, {context}");
            if incremental.has_idle() {
                continue;
            }
            assert_eq!(incremental.desired(), &reference, "{context}");
            assert_eq!(incremental.ids(), &reference_ids, "IDs, {context}");
        }
        assert!(
            applied > 150 && refused > 20 && idle_kept > 10 && batched > 20,
            "seed {seed}: {applied} applied, {refused} refused, {idle_kept} with idle policies, \
             {batched} batched"
        );
        // A restart: the same states and saved IDs compile to the same contents.
        incremental.collect_idle(true);
        let restarted = Incremental::new(&states, incremental.ids().clone());
        assert_eq!(restarted.desired(), incremental.desired(), "seed {seed}");
    }
}

#[test]
fn a_rule_added_to_a_large_group_writes_only_its_own_entries() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    state.quotas.rules_per_group = 10_000;
    let group = state.groups.keys().next().unwrap().clone();
    let permissions: Vec<Value> = (0..2000)
        .map(|i| json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": format!("10.{}.{}.0/24", i / 250, i % 250)}]}))
        .collect();
    let request = json!({"GroupId": group, "IpPermissions": permissions});
    call_json(
        &mut state,
        &mut ids,
        "AuthorizeSecurityGroupIngress",
        request,
    )
    .unwrap();
    let run = json!({"PrivateIpAddress": "172.31.0.5", "HostInterface": "w", "SecurityGroupIds": [group]});
    call_json(&mut state, &mut ids, "RunInstances", run).unwrap();
    let mut states = BTreeMap::new();
    states.insert(state.scope(), state.clone());
    let mut incremental = Incremental::new(&states, Ids::default());
    let peers_before = incremental.desired().peers.len();
    let one = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "192.168.1.1/32"}]}]});
    let mut next = state.clone();
    call_json(&mut next, &mut ids, "AuthorizeSecurityGroupIngress", one).unwrap();
    let scope = state.scope();
    states.insert(scope.clone(), next);
    let delta = incremental.update(Some(&state), &states, &scope);
    assert_eq!(delta.peers.len(), 1, "one new PEERS entry: {delta:?}");
    assert_eq!(delta.ports.len(), 1, "one new port set of one entry");
    assert_eq!(delta.fresh_slots.len(), 1, "the new rule's counter");
    assert!(delta.stale_peers.is_empty() && delta.stale_ports.is_empty());
    assert_eq!(incremental.desired().peers.len(), peers_before + 1);
}

/// A scope's state being changed call by call, compiled incrementally.
struct Steps {
    ids: SeqIds,
    scope: Scope,
    states: BTreeMap<Scope, State>,
    incremental: Incremental,
    maps: Desired,
}

impl Steps {
    /// `setup` builds the state with calls (`call(state, action, request)`).
    fn new(setup: impl FnOnce(&mut dyn FnMut(&str, Value) -> Value)) -> Steps {
        let mut ids = SeqIds::default();
        let mut state = State::initial(&mut ids);
        state.quotas.rules_per_group = 10_000;
        setup(&mut |action, request| call_json(&mut state, &mut ids, action, request).unwrap());
        let scope = state.scope();
        let states = BTreeMap::from([(scope.clone(), state)]);
        let incremental = Incremental::new(&states, Ids::default());
        let maps = incremental.desired().clone();
        Steps {
            ids,
            scope,
            states,
            incremental,
            maps,
        }
    }

    /// Compiles the state whole again, as a starting agent does (after `state()` was edited).
    fn restart(&mut self) {
        self.incremental = Incremental::new(&self.states, Ids::default());
        self.maps = self.incremental.desired().clone();
    }

    fn state(&mut self) -> &mut State {
        self.states.get_mut(&self.scope).expect("the scope")
    }

    /// Makes one call, compiles it and checks the delta and the contents (IDs included)
    /// against a whole compile; returns the delta.
    fn call(&mut self, action: &str, request: Value) -> Delta {
        let before = self.states[&self.scope].clone();
        let mut next = before.clone();
        let context = format!("{action} {request}");
        call_json(&mut next, &mut self.ids, action, request).unwrap();
        self.states.insert(self.scope.clone(), next);
        let delta = self
            .incremental
            .update(Some(&before), &self.states, &self.scope);
        written(&mut self.maps, &delta);
        assert_eq!(
            &self.maps,
            self.incremental.desired(),
            "the delta, {context}"
        );
        let mut reference_ids = self.incremental.ids().clone();
        let reference = whole(&self.states, &mut reference_ids);
        assert_eq!(self.incremental.desired(), &reference, "{context}");
        assert_eq!(self.incremental.ids(), &reference_ids, "IDs, {context}");
        delta
    }
}

/// A group in the default VPC.
fn group(call: &mut dyn FnMut(&str, Value) -> Value, name: &str) -> String {
    let request = json!({"GroupName": name, "Description": name});
    call("CreateSecurityGroup", request)["GroupId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A running instance of `groups` at `ip`.
fn run(call: &mut dyn FnMut(&str, Value) -> Value, ip: &str, groups: &[&String]) -> String {
    let request = json!({"PrivateIpAddress": ip, "HostInterface": format!("w{ip}"), "SecurityGroupIds": groups});
    call("RunInstances", request)["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_member_that_moves_rewrites_only_its_address_however_many_rules_reference_its_groups() {
    let (mut others, mut names) = (Vec::new(), Vec::new());
    let mut steps = Steps::new(|call| {
        let (web, lb, db) = (group(call, "web"), group(call, "lb"), group(call, "db"));
        // web allows 1000 ports from the lb group and 1000 others from the db group.
        let permissions: Vec<Value> = (0..2000)
            .map(|n| json!({"IpProtocol": "tcp", "FromPort": 1000 + n, "ToPort": 1000 + n, "UserIdGroupPairs": [{"GroupId": if n % 2 == 0 { &lb } else { &db }}]}))
            .collect();
        let request = json!({"GroupId": web, "IpPermissions": permissions});
        call("AuthorizeSecurityGroupIngress", request);
        run(call, "172.31.0.5", &[&web]);
        // Members on other hosts (below): only web's policy is enforced here. Each group keeps
        // a member besides the one that moves.
        others = vec![
            run(call, "172.31.0.6", &[&lb]),
            run(call, "172.31.0.8", &[&db]),
            run(call, "172.31.0.7", &[&lb, &db]),
        ];
        names = vec![lb, db];
    });
    for id in &others {
        steps.state().instances.get_mut(id).unwrap().remote = true;
    }
    steps.restart();
    let (member, lb, db) = (&others[2], &names[0], &names[1]);
    let changes = [
        ("StopInstances", json!({"InstanceIds": [member]}), 0, 1),
        ("StartInstances", json!({"InstanceIds": [member]}), 1, 0),
        (
            "ModifyInstanceAttribute",
            json!({"InstanceId": member, "Groups": [db]}),
            1,
            0,
        ),
        (
            "ModifyInstanceAttribute",
            json!({"InstanceId": member, "Groups": [lb, db]}),
            1,
            0,
        ),
    ];
    for (action, request, peers, stale_peers) in changes {
        let context = format!("{action} {request}");
        let delta = steps.call(action, request);
        assert_eq!(delta.peers.len(), peers, "{context}: {:?}", delta.peers);
        assert_eq!(delta.stale_peers.len(), stale_peers, "{context}");
        assert!(
            delta.ports.is_empty() && delta.stale_ports.is_empty(),
            "{context}: no port set is written or deleted"
        );
    }
}

#[test]
fn a_rule_referencing_a_group_writes_only_its_own_entries_in_the_groups_part() {
    let mut names = Vec::new();
    let mut steps = Steps::new(|call| {
        let (web, lb) = (group(call, "web"), group(call, "lb"));
        let permissions: Vec<Value> = (0..1000)
            .map(|n| json!({"IpProtocol": "tcp", "FromPort": 1000 + n, "ToPort": 1000 + n, "UserIdGroupPairs": [{"GroupId": lb}]}))
            .collect();
        let request = json!({"GroupId": web, "IpPermissions": permissions});
        call("AuthorizeSecurityGroupIngress", request);
        run(call, "172.31.0.5", &[&web]);
        run(call, "172.31.0.6", &[&lb]);
        names = vec![web, lb];
    });
    let rule = json!({"GroupId": names[0], "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [{"GroupId": names[1]}]}]});
    for (action, written, deleted) in [
        ("AuthorizeSecurityGroupIngress", 1, 0),
        ("RevokeSecurityGroupIngress", 0, 1),
    ] {
        let delta = steps.call(action, rule.clone());
        assert_eq!(delta.ports.len(), written, "{action}: {:?}", delta.ports);
        assert_eq!(delta.stale_ports.len(), deleted, "{action}");
        assert!(
            delta.peers.is_empty() && delta.stale_peers.is_empty(),
            "{action}: the members' chains are as they were"
        );
    }
    // Many at once (the part's entries are then diffed whole), overlapping the others' ports.
    let many: Vec<Value> = (0..100)
        .map(|n| json!({"IpProtocol": "tcp", "FromPort": 990 + 3 * n, "ToPort": 1000 + 3 * n, "UserIdGroupPairs": [{"GroupId": names[1]}]}))
        .collect();
    let request = json!({"GroupId": names[0], "IpPermissions": many});
    steps.call("AuthorizeSecurityGroupIngress", request.clone());
    steps.call("RevokeSecurityGroupIngress", request);
}

#[test]
fn a_referenced_list_folded_into_a_deep_chain_follows_its_rules_changes() {
    let mut names = Vec::new();
    let mut steps = Steps::new(|call| {
        let web = group(call, "web");
        let request = json!({"PrefixListName": "corp", "MaxEntries": 5, "AddressFamily": "IPv4",
                             "Entries": [{"Cidr": "10.0.0.0/10"}]});
        let list = call("CreateManagedPrefixList", request)["PrefixList"]["PrefixListId"]
            .as_str()
            .unwrap()
            .to_string();
        // Nine CIDR rules nested inside the list's entry: the /19's chain has ten links, and
        // its tail (the /12, the /11 and the list's part at /10) is folded into one set.
        let mut permissions: Vec<Value> = (11..=19)
            .map(|len| json!({"IpProtocol": "tcp", "FromPort": 100 + len, "ToPort": 100 + len, "IpRanges": [{"CidrIp": format!("10.0.0.0/{len}")}]}))
            .collect();
        permissions.push(json!({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": list}]}));
        let request = json!({"GroupId": web, "IpPermissions": permissions});
        call("AuthorizeSecurityGroupIngress", request);
        run(call, "172.31.0.5", &[&web]);
        names = vec![web, list];
    });
    let rule = json!({"GroupId": names[0], "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "PrefixListIds": [{"PrefixListId": names[1]}]}]});
    for action in [
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
    ] {
        let delta = steps.call(action, rule.clone());
        assert!(
            delta.peers.iter().any(|(_, v)| v.port_sets[7] != 0),
            "{action}: the deep chain's folded tail is rewritten"
        );
    }
}

#[test]
fn a_new_set_of_groups_costs_one_policies_entry_whatever_the_size_of_its_groups() {
    let mut names = Vec::new();
    let mut steps = Steps::new(|call| {
        let (web, lb, db) = (group(call, "web"), group(call, "lb"), group(call, "db"));
        let permissions: Vec<Value> = (0..2000)
            .map(|i| json!({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": format!("10.{}.{}.0/24", i / 250, i % 250)}]}))
            .collect();
        call(
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": web, "IpPermissions": permissions}),
        );
        run(call, "172.31.0.5", &[&web]);
        run(call, "172.31.0.6", &[&lb]);
        names = vec![web, lb, db];
    });
    let (web, lb, db) = (&names[0], &names[1], &names[2]);
    // web and lb have chains: an instance of both composes them.
    let delta = steps.call("RunInstances", json!({"PrivateIpAddress": "172.31.0.7", "HostInterface": "both", "SecurityGroupIds": [web, lb]}));
    assert!(
        delta.peers.is_empty() && delta.ports.is_empty(),
        "no PEERS or PORTS entry for a new set of known groups: {} peers, {} ports",
        delta.peers.len(),
        delta.ports.len()
    );
    assert!(delta.stale_peers.is_empty() && delta.stale_ports.is_empty());
    assert_eq!(delta.policies.len(), 3, "web, lb, and web+lb");
    let both = delta.ifaces["both"].policy_id;
    let chains: Vec<u32> = delta.policies[&both].iter().collect();
    assert_eq!(chains.len(), 2, "two chains: {chains:?}");
    // A group no workload had: its own chain only (its one outbound rule, per family).
    let instance = steps.state().instances.keys().next_back().unwrap().clone();
    let delta = steps.call(
        "ModifyInstanceAttribute",
        json!({"InstanceId": instance, "Groups": [web, db]}),
    );
    assert_eq!(
        delta.peers.len(),
        2,
        "db's 0.0.0.0/0 and ::/0: {:?}",
        delta.peers
    );
    assert_eq!(delta.ports.len(), 2, "{:?}", delta.ports);
    assert_eq!(delta.policies.len(), 3, "web, lb, and web+db");
}

//! The agent's path of a call on a real store (redb in a temporary directory) and the in-memory
//! data plane: a change is validated, persisted and applied, a failing one touches nothing, our
//! `FlushFlows` cuts the flows a change disallows, and a restarted agent finds its state.

use std::path::PathBuf;

use firewall_common::CtTimeouts;
use serde_json::{Value, json};

use super::Agent;
use crate::{
    api::ApiError,
    dataplane::{MemoryDataplane, inbound_tcp},
    front::json,
    model::Quotas,
    store::RedbStore,
};

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("fw-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ifindex of the one workload interface, `veth-web`.
const WEB_IFINDEX: u32 = 7;

fn agent(dir: &TempDir, dataplane: MemoryDataplane) -> Agent {
    let store = RedbStore::open(&dir.0.join("state.redb")).expect("store");
    Agent::new(Box::new(store), Box::new(dataplane), Quotas::default()).expect("agent")
}

fn dataplane() -> MemoryDataplane {
    let mut dataplane = MemoryDataplane::new(CtTimeouts::AWS_DEFAULT);
    dataplane.add_interface("veth-web", WEB_IFINDEX);
    dataplane
}

fn call(agent: &mut Agent, action: &str, body: Value) -> Result<Value, ApiError> {
    let call = json::decode(action, None, None, body.to_string().as_bytes())?;
    agent.handle(call)
}

fn ok(agent: &mut Agent, action: &str, body: Value) -> Value {
    call(agent, action, body).unwrap_or_else(|e| panic!("{action}: {e}"))
}

fn code(agent: &mut Agent, action: &str, body: Value) -> String {
    call(agent, action, body).expect_err(action).code
}

/// A `web` group admitting tcp/80 from 10.0.0.0/8, with one instance on `veth-web`.
fn web(agent: &mut Agent) -> String {
    let group = group_admitting(agent, "web", 80, "10.0.0.0/8");
    ok(
        agent,
        "RunInstances",
        json!({"SecurityGroupIds": [group], "PrivateIpAddress": "172.31.0.5", "HostInterface": "veth-web"}),
    );
    group
}

#[test]
fn a_change_is_applied_and_a_restarted_agent_finds_it() {
    let dir = TempDir::new("restart");
    let mut first = agent(&dir, dataplane());
    let group = web(&mut first);
    let stats = ok(&mut first, "GetDataplaneStatistics", json!({}));
    let rule = ok(
        &mut first,
        "DescribeSecurityGroupRules",
        json!({"Filters": [{"Name": "group-id", "Values": [group]}]}),
    )["SecurityGroupRules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["IsEgress"] == false)
        .unwrap()["SecurityGroupRuleId"]
        .clone();
    assert_eq!(
        stats["RuleHits"][rule.as_str().unwrap()],
        0,
        "the new rule has a hit counter in the data plane: {stats}"
    );
    let before = ok(&mut first, "DescribeSecurityGroups", json!({}));
    drop(first);
    let mut second = agent(&dir, dataplane());
    assert_eq!(ok(&mut second, "DescribeSecurityGroups", json!({})), before);
}

#[test]
fn a_failing_change_is_neither_stored_nor_applied() {
    let dir = TempDir::new("failing");
    let mut agent = agent(&dir, dataplane());
    let group = web(&mut agent);
    let before = ok(&mut agent, "DescribeSecurityGroups", json!({}));
    let stats = ok(&mut agent, "GetDataplaneStatistics", json!({}));
    assert_eq!(
        code(
            &mut agent,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
        ),
        "InvalidPermission.Duplicate"
    );
    // An interface the data plane does not have cannot be enforced: refused before storing.
    assert_eq!(
        code(
            &mut agent,
            "RunInstances",
            json!({"SecurityGroupIds": [group], "PrivateIpAddress": "172.31.0.6", "HostInterface": "veth-none"}),
        ),
        "InvalidParameterValue"
    );
    assert_eq!(ok(&mut agent, "DescribeSecurityGroups", json!({})), before);
    assert_eq!(ok(&mut agent, "GetDataplaneStatistics", json!({})), stats);
    drop(agent);
    let mut restarted = self::agent(&dir, dataplane());
    assert_eq!(
        ok(&mut restarted, "DescribeSecurityGroups", json!({})),
        before
    );
}

#[test]
fn flush_flows_cuts_what_a_revoke_disallows_and_only_where_the_catalogue_takes_it() {
    let dir = TempDir::new("flush");
    let mut dataplane = dataplane();
    let (key, value) = inbound_tcp(WEB_IFINDEX, [10, 1, 2, 3], 80);
    dataplane.track(key, value);
    let mut agent = agent(&dir, dataplane);
    let group = web(&mut agent);
    let revoke = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    let flows =
        |agent: &mut Agent| ok(agent, "GetDataplaneStatistics", json!({}))["TrackedFlows"].clone();
    assert_eq!(flows(&mut agent), 1);
    assert_eq!(
        code(
            &mut agent,
            "AuthorizeSecurityGroupEgress",
            json!({"GroupId": group, "FlushFlows": true}),
        ),
        "InvalidParameterCombination"
    );
    assert_eq!(
        code(
            &mut agent,
            "DescribeSecurityGroups",
            json!({"FlushFlows": true}),
        ),
        "UnknownParameter"
    );
    let mut with_flush = revoke.clone();
    with_flush["FlushFlows"] = json!("yes");
    assert_eq!(
        code(&mut agent, "RevokeSecurityGroupIngress", with_flush.clone()),
        "InvalidParameterValue"
    );
    // Without it, a revoke keeps the flow (as AWS does).
    ok(&mut agent, "RevokeSecurityGroupIngress", revoke.clone());
    assert_eq!(flows(&mut agent), 1);
    ok(&mut agent, "AuthorizeSecurityGroupIngress", revoke.clone());
    with_flush["FlushFlows"] = json!(true);
    ok(&mut agent, "RevokeSecurityGroupIngress", with_flush);
    assert_eq!(flows(&mut agent), 0, "the revoked rule's flow is cut");
}

#[test]
fn the_data_plane_statistics_name_every_reason() {
    let dir = TempDir::new("stats");
    let mut agent = agent(&dir, dataplane());
    let stats = ok(&mut agent, "GetDataplaneStatistics", json!({}));
    let names = |member: &str| -> Vec<String> {
        stats[member].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(
        names("Drops"),
        [
            "conntrack-full",
            "fragment",
            "malformed",
            "no-rule",
            "not-running"
        ]
    );
    assert_eq!(
        names("Passes"),
        ["conntrack", "exempt", "fragment", "related", "rule"]
    );
    assert_eq!(stats["TrackedFlows"], 0);
    assert_eq!(
        code(
            &mut agent,
            "GetDataplaneStatistics",
            json!({"Verbose": true})
        ),
        "UnknownParameter"
    );
    assert_eq!(code(&mut agent, "Frobnicate", json!({})), "InvalidAction");
}

#[test]
fn every_region_is_enforced_and_a_copy_stays_in_its_region() {
    let dir = TempDir::new("regions");
    let mut agent = agent(&dir, dataplane());
    let in_region = |agent: &mut Agent, action: &str, body: Value| {
        let call = json::decode(action, Some("eu-west-1"), None, body.to_string().as_bytes())?;
        agent.handle(call)
    };
    let group = in_region(
        &mut agent,
        "CreateSecurityGroup",
        json!({"GroupName": "web", "Description": "web"}),
    )
    .unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    let rule = in_region(
        &mut agent,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
    )
    .unwrap()["SecurityGroupRules"][0]["SecurityGroupRuleId"]
        .as_str()
        .unwrap()
        .to_string();
    in_region(
        &mut agent,
        "RunInstances",
        json!({"SecurityGroupIds": [group], "PrivateIpAddress": "172.31.0.5", "HostInterface": "veth-web"}),
    )
    .unwrap();
    let stats = ok(&mut agent, "GetDataplaneStatistics", json!({}));
    assert_eq!(
        stats["RuleHits"][rule.as_str()],
        0,
        "eu-west-1's rule is in the data plane: {stats}"
    );
    // The local region does not know the group, and a copy cannot leave its region.
    assert_eq!(
        code(
            &mut agent,
            "DescribeSecurityGroups",
            json!({"GroupIds": [group]})
        ),
        "InvalidGroup.NotFound"
    );
    let local_vpc = ok(&mut agent, "DescribeVpcs", json!({}))["Vpcs"][0]["VpcId"].clone();
    let copy = in_region(
        &mut agent,
        "CopySecurityGroup",
        json!({"GroupId": group, "GroupName": "web-copy", "VpcId": local_vpc}),
    );
    assert_eq!(copy.unwrap_err().code, "InvalidVpcID.NotFound");
    // The same interface cannot be registered again from another region.
    let local_default =
        ok(&mut agent, "DescribeSecurityGroups", json!({}))["SecurityGroups"][0]["GroupId"].clone();
    assert_eq!(
        code(
            &mut agent,
            "RunInstances",
            json!({"SecurityGroupIds": [local_default], "PrivateIpAddress": "172.31.0.6", "HostInterface": "veth-web"}),
        ),
        "InvalidParameterValue"
    );
}

#[test]
fn verify_dataplane_compares_the_maps_read_back_with_the_compiled_state() {
    let dir = TempDir::new("verify");
    let mut first = agent(&dir, dataplane());
    web(&mut first);
    let report = ok(&mut first, "VerifyDataplane", json!({}));
    assert_eq!(report["InSync"], true, "{report}");
    assert_eq!(report["Differences"], json!([]));
    assert_eq!(report["Interfaces"], 1);
    assert!(report["Peers"].as_u64().unwrap() > 0 && report["Ports"].as_u64().unwrap() > 0);
    drop(first);

    // Restarted where veth-web does not exist: its policy cannot be enforced, and it says so.
    let mut second = agent(&dir, MemoryDataplane::new(CtTimeouts::AWS_DEFAULT));
    let report = ok(&mut second, "VerifyDataplane", json!({}));
    assert_eq!(report["InSync"], false, "{report}");
    let differences = report["Differences"].as_array().unwrap();
    assert!(
        differences.iter().any(|d| d
            .as_str()
            .unwrap()
            .starts_with("IFACES \"veth-web\": missing")),
        "{report}"
    );
}

#[test]
fn changes_in_two_scopes_leave_the_maps_as_a_whole_compile_and_a_refused_one_writes_nothing() {
    let dir = TempDir::new("incremental");
    let mut dataplane = dataplane();
    dataplane.add_interface("veth-other", WEB_IFINDEX + 1);
    let mut agent = agent(&dir, dataplane);
    let in_sync = |agent: &mut Agent, step: &str| {
        let report = ok(agent, "VerifyDataplane", json!({}));
        assert_eq!(report["InSync"], true, "{step}: {report}");
    };
    let web = web(&mut agent);
    in_sync(&mut agent, "the web group");
    // Another account's region, first used by this change.
    let elsewhere = |agent: &mut Agent, action: &str, body: Value| {
        let call = json::decode(
            action,
            Some("eu-west-1"),
            Some("123456789012"),
            body.to_string().as_bytes(),
        )
        .expect("a call");
        agent.handle(call)
    };
    let other = elsewhere(
        &mut agent,
        "CreateSecurityGroup",
        json!({"GroupName": "db", "Description": "db"}),
    )
    .expect("created")["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    let from_itself = json!({"GroupId": other, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": other}]}]});
    elsewhere(
        &mut agent,
        "AuthorizeSecurityGroupIngress",
        from_itself.clone(),
    )
    .expect("added");
    elsewhere(
        &mut agent,
        "RunInstances",
        json!({"SecurityGroupIds": [other], "PrivateIpAddress": "172.31.0.9", "HostInterface": "veth-other"}),
    )
    .expect("run");
    in_sync(&mut agent, "the other scope's member");
    let peers = ok(&mut agent, "VerifyDataplane", json!({}))["Peers"].clone();
    let refused = elsewhere(&mut agent, "AuthorizeSecurityGroupIngress", from_itself);
    assert_eq!(
        refused.expect_err("a duplicate").code,
        "InvalidPermission.Duplicate"
    );
    assert_eq!(ok(&mut agent, "VerifyDataplane", json!({}))["Peers"], peers);
    ok(
        &mut agent,
        "RevokeSecurityGroupIngress",
        json!({"GroupId": web, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
    );
    in_sync(&mut agent, "the revoke");
}

/// A new group admitting tcp/`port` from `cidr`.
fn group_admitting(agent: &mut Agent, name: &str, port: u16, cidr: &str) -> String {
    let group = ok(
        agent,
        "CreateSecurityGroup",
        json!({"GroupName": name, "Description": name}),
    )["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        agent,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}]}),
    );
    group
}

/// The ID of the one instance.
fn the_instance(agent: &mut Agent) -> Value {
    ok(agent, "DescribeInstances", json!({}))["Reservations"][0]["Instances"][0]["InstanceId"]
        .clone()
}

#[test]
fn a_set_of_groups_no_workload_has_stays_idle_for_a_tick_and_is_reused_or_then_deleted() {
    let dir = TempDir::new("idle");
    let mut agent = agent(&dir, dataplane());
    let web = web(&mut agent);
    let db = group_admitting(&mut agent, "db", 5432, "192.168.0.0/16");
    let instance = the_instance(&mut agent);
    let peers = |agent: &mut Agent| {
        let report = ok(agent, "VerifyDataplane", json!({}));
        assert_eq!(report["InSync"], true, "{report}");
        report["Peers"].as_u64().unwrap()
    };
    let only_web = peers(&mut agent);
    let moved = |agent: &mut Agent, groups: &[&String]| {
        ok(
            agent,
            "ModifyInstanceAttribute",
            json!({"InstanceId": instance, "Groups": groups}),
        );
    };
    // To web + db: a new policy; web's own stays, idle.
    moved(&mut agent, &[&web, &db]);
    let both = peers(&mut agent);
    assert!(both > only_web, "{only_web} → {both}");
    // Back: web's policy is reused, nothing new is compiled; web + db's goes idle in turn.
    moved(&mut agent, &[&web]);
    assert_eq!(peers(&mut agent), both, "no third policy");
    // The first tick notes them idle, the second deletes them.
    agent.collect_idle_policies();
    assert_eq!(peers(&mut agent), both);
    agent.collect_idle_policies();
    assert_eq!(peers(&mut agent), only_web, "web + db's entries are gone");
}

#[test]
fn at_most_four_idle_policies_are_kept() {
    let dir = TempDir::new("idle-cap");
    let mut agent = agent(&dir, dataplane());
    let web = web(&mut agent);
    let instance = the_instance(&mut agent);
    let mut peers = Vec::new();
    for i in 1..=7 {
        let other = group_admitting(
            &mut agent,
            &format!("g{i}"),
            22,
            &format!("192.168.{i}.0/24"),
        );
        // Each move makes a new policy of the same size and idles the one before.
        ok(
            &mut agent,
            "ModifyInstanceAttribute",
            json!({"InstanceId": instance, "Groups": [web, other]}),
        );
        let report = ok(&mut agent, "VerifyDataplane", json!({}));
        assert_eq!(report["InSync"], true, "{report}");
        peers.push(report["Peers"].as_u64().unwrap());
    }
    // From the fifth move on: the live policy and the four most recent idle ones.
    assert_eq!(peers[4], peers[5], "{peers:?}");
    assert_eq!(peers[5], peers[6], "{peers:?}");
    assert!(
        peers[1] < peers[2] && peers[2] < peers[3],
        "grows until then: {peers:?}"
    );
}

/// The rules of `group` a describe-security-groups lists, as (from port, CIDR).
fn described_ports(answer: &Value, group: &str) -> Vec<u64> {
    let groups = answer["SecurityGroups"].as_array().expect("SecurityGroups");
    let group = groups.iter().find(|g| g["GroupId"] == group).expect(group);
    let permissions = group["IpPermissions"].as_array().expect("IpPermissions");
    permissions
        .iter()
        .filter_map(|p| p["FromPort"].as_u64())
        .collect()
}

#[test]
fn a_read_sees_every_change_answered_before_it_and_none_made_after_its_snapshot() {
    let dir = TempDir::new("read-snapshot");
    let mut agent = agent(&dir, dataplane());
    let group = web(&mut agent);
    let describe = |action: &str| {
        json::decode(action, None, None, json!({}).to_string().as_bytes()).expect("call")
    };
    let super::Prepared::Read(read) = agent.prepare(describe("DescribeSecurityGroups")) else {
        panic!("a describe is a read of a snapshot");
    };
    // Made while the read's answer is still to be built: the lock is free.
    ok(
        &mut agent,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
    );
    assert_eq!(described_ports(&read.run().expect("read"), &group), [80]);
    let super::Prepared::Read(after) = agent.prepare(describe("DescribeSecurityGroups")) else {
        panic!("a describe is a read of a snapshot");
    };
    assert_eq!(
        described_ports(&after.run().expect("read"), &group),
        [80, 443]
    );
}

#[test]
fn changes_dry_runs_and_data_plane_checks_are_answered_under_the_lock() {
    let dir = TempDir::new("read-prepared");
    let mut agent = agent(&dir, dataplane());
    let group = web(&mut agent);
    let under_lock = |agent: &mut Agent, action: &str, body: Value| {
        let call = json::decode(action, None, None, body.to_string().as_bytes()).expect("call");
        match agent.prepare(call) {
            super::Prepared::Answered(answer) => answer,
            super::Prepared::Read(_) | super::Prepared::Later(_) => {
                panic!("{action} went off the lock")
            }
        }
    };
    let revoke = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]});
    let dry = json!({"DryRun": true, "GroupIds": [group]});
    assert_eq!(
        under_lock(&mut agent, "DescribeSecurityGroups", dry)
            .expect_err("dry run")
            .code,
        "DryRunOperation"
    );
    let dry = json!({"DryRun": true});
    assert_eq!(
        under_lock(&mut agent, "GetDataplaneStatistics", dry)
            .expect_err("dry run")
            .code,
        "DryRunOperation"
    );
    under_lock(&mut agent, "VerifyDataplane", json!({})).expect("verify");
    under_lock(&mut agent, "RevokeSecurityGroupIngress", revoke).expect("revoke");
    assert_eq!(
        described_ports(&ok(&mut agent, "DescribeSecurityGroups", json!({})), &group),
        Vec::<u64>::new()
    );
}

#[test]
fn statistics_read_the_counters_under_the_lock_and_name_them_after_it() {
    let dir = TempDir::new("statistics-later");
    let mut agent = agent(&dir, dataplane());
    let group = web(&mut agent);
    let call = json::decode("GetDataplaneStatistics", None, None, b"{}").expect("call");
    let super::Prepared::Later(later) = agent.prepare(call) else {
        panic!("statistics are named off the lock");
    };
    // A rule added after the read is not in its answer; the rule before it is.
    ok(
        &mut agent,
        "AuthorizeSecurityGroupIngress",
        json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}),
    );
    let rules = |stats: &Value| stats["RuleHits"].as_object().expect("RuleHits").len();
    let read = later().expect("statistics");
    let now = ok(&mut agent, "GetDataplaneStatistics", json!({}));
    assert_eq!(rules(&now), rules(&read) + 1, "{read}\n{now}");
}

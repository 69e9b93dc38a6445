//! Prefix lists: versions, the weight in quotas, dependencies.

#[allow(unused_imports)]
use serde_json::{Value, json};

use crate::{
    api::catalogue::call_json as dispatch,
    model::{State, testing::SeqIds},
};

fn setup() -> (State, SeqIds, String) {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let out = dispatch(
        &mut state,
        &mut ids,
        "CreateManagedPrefixList",
        json!({
        "PrefixListName": "office", "MaxEntries": 2, "AddressFamily": "IPv4",
        "Entries": [{"Cidr": "10.0.0.5/8", "Description": "hq"}]}),
    )
    .unwrap();
    let id = out["PrefixList"]["PrefixListId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out["PrefixList"]["Version"], 1);
    (state, ids, id)
}

#[test]
fn entries_change_in_versions_guarded_by_current_version() {
    let (mut state, mut ids, id) = setup();
    let add = |v: u64, cidr: &str| json!({"PrefixListId": id, "CurrentVersion": v, "AddEntries": [{"Cidr": cidr}]});
    let out = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        add(1, "192.168.0.0/24"),
    )
    .unwrap();
    assert_eq!(out["PrefixList"]["Version"], 2);
    let err = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        add(1, "172.16.0.0/12"),
    )
    .unwrap_err();
    assert_eq!(err.code, "PrefixListVersionMismatch");
    let err = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        add(2, "172.16.0.0/12"),
    )
    .unwrap_err();
    assert_eq!(
        err.code, "InvalidParameterValue",
        "MaxEntries is 2: {}",
        err.message
    );
    let err = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        add(2, "::/0"),
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue", "wrong family");
    let v1 = dispatch(
        &mut state,
        &mut ids,
        "GetManagedPrefixListEntries",
        json!({"PrefixListId": id, "TargetVersion": 1}),
    )
    .unwrap();
    assert_eq!(
        v1,
        json!({"Entries": [{"Cidr": "10.0.0.0/8", "Description": "hq"}]})
    );
    let now = dispatch(
        &mut state,
        &mut ids,
        "GetManagedPrefixListEntries",
        json!({"PrefixListId": id}),
    )
    .unwrap();
    assert_eq!(now["Entries"].as_array().unwrap().len(), 2);
}

#[test]
fn a_referenced_list_weighs_its_max_entries_and_is_deleted_once_its_last_reference_goes() {
    let (mut state, mut ids, id) = setup();
    state.quotas.rules_per_group = 3;
    let group = state.groups.keys().next().unwrap().clone();
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": id}]}]});
    // The default group has 1 inbound rule (self-reference, both families): 1 + 2 = 3.
    dispatch(&mut state, &mut ids, "AuthorizeSecurityGroupIngress", rule).unwrap();
    let err = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        json!({"PrefixListId": id, "MaxEntries": 5}),
    )
    .unwrap_err();
    assert_eq!(err.code, "RulesPerSecurityGroupLimitExceeded");
    // As on AWS (moto's test verified against AWS deletes a referenced list without an
    // error): accepted, in progress while the rule references it, done when it goes.
    let out = dispatch(
        &mut state,
        &mut ids,
        "DeleteManagedPrefixList",
        json!({"PrefixListId": id}),
    )
    .unwrap();
    assert_eq!(out["PrefixList"]["State"], "delete-in-progress");
    let described = dispatch(
        &mut state,
        &mut ids,
        "DescribeManagedPrefixLists",
        json!({"PrefixListIds": [id]}),
    )
    .unwrap();
    assert_eq!(described["PrefixLists"][0]["State"], "delete-in-progress");
    let rule = json!({"GroupId": group, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": id}]}]});
    dispatch(&mut state, &mut ids, "RevokeSecurityGroupIngress", rule).unwrap();
    assert!(
        !state.prefix_lists.contains_key(&id),
        "the revoke removed the last reference: the deletion completed"
    );
    let err = dispatch(
        &mut state,
        &mut ids,
        "DescribeManagedPrefixLists",
        json!({"PrefixListIds": ["pl-00000000000000fff"]}),
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidPrefixListID.NotFound");
}

#[test]
fn a_list_describes_as_create_complete_until_its_first_modification_then_modify_complete() {
    let (mut state, mut ids, id) = setup();
    let state_of = |state: &mut State, ids: &mut SeqIds| {
        let out = dispatch(
            state,
            ids,
            "DescribeManagedPrefixLists",
            json!({"PrefixListIds": [id]}),
        )
        .unwrap();
        out["PrefixLists"][0]["State"].as_str().unwrap().to_string()
    };
    assert_eq!(state_of(&mut state, &mut ids), "create-complete");
    // A rename alone is a modification too (Terraform waits for modify-complete after each).
    let out = dispatch(
        &mut state,
        &mut ids,
        "ModifyManagedPrefixList",
        json!({"PrefixListId": id, "PrefixListName": "office-2"}),
    )
    .unwrap();
    assert_eq!(out["PrefixList"]["State"], "modify-complete");
    assert_eq!(
        out["PrefixList"]["Version"], 1,
        "no new version without entries"
    );
    assert_eq!(state_of(&mut state, &mut ids), "modify-complete");
}

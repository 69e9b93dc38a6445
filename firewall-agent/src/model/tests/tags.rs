//! Tags: added, overwritten, filtered, removed, all or nothing.

#[allow(unused_imports)]
use serde_json::{Value, json};

use crate::{
    api::catalogue::call_json as dispatch,
    model::{State, testing::SeqIds},
};

#[test]
fn tags_are_added_overwritten_filtered_and_removed_all_or_nothing() {
    let mut ids = SeqIds::default();
    let mut state = State::initial(&mut ids);
    let group = state.groups.keys().next().unwrap().clone();
    let rule = state.groups[&group].ingress.first().unwrap().id.clone();
    let call = |state: &mut State, ids: &mut SeqIds, action: &str, req: Value| {
        dispatch(state, ids, action, req)
    };
    call(
        &mut state,
        &mut ids,
        "CreateTags",
        json!({"Resources": [group, rule], "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .unwrap();
    call(
        &mut state,
        &mut ids,
        "CreateTags",
        json!({"Resources": [group], "Tags": [{"Key": "env", "Value": "prod"}]}),
    )
    .unwrap();
    let out = call(
        &mut state,
        &mut ids,
        "DescribeTags",
        json!({"Filters": [{"Name": "key", "Values": ["env"]}]}),
    )
    .unwrap();
    assert_eq!(out["Tags"].as_array().unwrap().len(), 2);
    assert_eq!(
        out["Tags"][0],
        json!({"Key": "env", "ResourceId": group, "ResourceType": "security-group", "Value": "prod"})
    );
    let before = state.clone();
    let err = call(
        &mut state,
        &mut ids,
        "CreateTags",
        json!({"Resources": [group, "sg-00000000000000fff"], "Tags": [{"Key": "a", "Value": "b"}]}),
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidGroup.NotFound");
    assert_eq!(state, before, "nothing tagged");
    let err = call(
        &mut state,
        &mut ids,
        "CreateTags",
        json!({"Resources": [group], "Tags": [{"Key": "aws:x", "Value": "b"}]}),
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    call(
        &mut state,
        &mut ids,
        "DeleteTags",
        json!({"Resources": [group], "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .unwrap();
    assert_eq!(
        state.groups[&group].tags.len(),
        1,
        "the value did not match"
    );
    call(
        &mut state,
        &mut ids,
        "DeleteTags",
        json!({"Resources": [group, rule]}),
    )
    .unwrap();
    let out = call(&mut state, &mut ids, "DescribeTags", json!({})).unwrap();
    assert_eq!(out["Tags"], json!([]));
}

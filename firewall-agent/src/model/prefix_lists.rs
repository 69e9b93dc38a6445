//! Customer-managed prefix lists: named, versioned sets of CIDRs of one address family that rules
//! reference as a peer. A rule referencing a list counts as the list's `MaxEntries` against the
//! group's rule quota, as on AWS.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    ApiError, ApiResult, IdSource, Peer, State, Tag,
    ops::{TagSpecification, check_rule_quota, tags_for},
    rules::{parse_cidr4, parse_cidr6},
};

/// The largest `MaxEntries` AWS accepts.
const MAX_ENTRIES_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressFamily {
    IPv4,
    IPv6,
}

impl AddressFamily {
    fn parse(text: &str) -> ApiResult<AddressFamily> {
        match text {
            "IPv4" => Ok(AddressFamily::IPv4),
            "IPv6" => Ok(AddressFamily::IPv6),
            other => Err(ApiError::invalid_value(format!(
                "Invalid value '{other}' for AddressFamily. Valid values: IPv4, IPv6"
            ))),
        }
    }
    fn name(self) -> &'static str {
        match self {
            AddressFamily::IPv4 => "IPv4",
            AddressFamily::IPv6 => "IPv6",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub cidr: IpNet,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    pub id: String,
    pub name: String,
    pub family: AddressFamily,
    pub max_entries: u32,
    /// Entries of every version; `versions[v - 1]` is version `v`, the last one is current.
    pub versions: Vec<Vec<Entry>>,
    pub tags: Vec<Tag>,
}

impl PrefixList {
    pub fn version(&self) -> u64 {
        self.versions.len() as u64
    }
    pub fn entries(&self) -> &[Entry] {
        self.versions.last().map(Vec::as_slice).unwrap_or(&[])
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidPrefixListID.NotFound",
        format!("The prefix list ID '{id}' does not exist"),
    )
}

pub fn get<'a>(state: &'a State, id: &str) -> ApiResult<&'a PrefixList> {
    state.prefix_lists.get(id).ok_or_else(|| not_found(id))
}

fn view(state: &State, list: &PrefixList, status: &str) -> Value {
    let mut out = Map::new();
    out.insert("PrefixListId".into(), json!(list.id));
    out.insert("AddressFamily".into(), json!(list.family.name()));
    out.insert("State".into(), json!(status));
    out.insert(
        "PrefixListArn".into(),
        json!(format!(
            "arn:aws:ec2:{}:{}:prefix-list/{}",
            state.region, state.account_id, list.id
        )),
    );
    out.insert("PrefixListName".into(), json!(list.name));
    out.insert("MaxEntries".into(), json!(list.max_entries));
    out.insert("Version".into(), json!(list.version()));
    if !list.tags.is_empty() {
        out.insert("Tags".into(), super::views::tags(&list.tags));
    }
    out.insert("OwnerId".into(), json!(state.account_id));
    Value::Object(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct EntryRequest {
    cidr: Option<String>,
    description: Option<String>,
}

fn parse_entry(family: AddressFamily, entry: &EntryRequest) -> ApiResult<Entry> {
    let text = entry
        .cidr
        .as_deref()
        .ok_or_else(|| ApiError::missing("Cidr"))?;
    let cidr = match family {
        AddressFamily::IPv4 => IpNet::V4(parse_cidr4(text)?),
        AddressFamily::IPv6 => IpNet::V6(parse_cidr6(text)?),
    };
    if let Some(d) = &entry.description
        && d.chars().count() > 255
    {
        return Err(ApiError::invalid_value(
            "Entry descriptions have at most 255 characters.",
        ));
    }
    Ok(Entry {
        cidr,
        description: entry.description.clone(),
    })
}

fn check_name(name: Option<&str>) -> ApiResult<String> {
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::missing("PrefixListName"))?;
    if name.chars().count() > 255 || name.to_ascii_lowercase().starts_with("com.amazonaws") {
        return Err(ApiError::invalid_value(format!(
            "Invalid prefix list name '{name}': at most 255 characters, not starting with 'com.amazonaws'."
        )));
    }
    Ok(name.to_string())
}

fn check_max_entries(max: Option<i64>) -> ApiResult<u32> {
    let max = max.ok_or_else(|| ApiError::missing("MaxEntries"))?;
    if !(1..=i64::from(MAX_ENTRIES_LIMIT)).contains(&max) {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{max}' for MaxEntries. It must be between 1 and {MAX_ENTRIES_LIMIT}."
        )));
    }
    Ok(max as u32)
}

fn too_many_entries(id: &str, max: u32) -> ApiError {
    ApiError::invalid_value(format!(
        "The prefix list {id} would exceed its maximum number of entries ({max})."
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateRequest {
    prefix_list_name: Option<String>,
    max_entries: Option<i64>,
    address_family: Option<String>,
    #[serde(default)]
    entries: Vec<EntryRequest>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
}

pub fn create(state: &mut State, ids: &mut dyn IdSource, req: CreateRequest) -> ApiResult<Value> {
    let name = check_name(req.prefix_list_name.as_deref())?;
    let max_entries = check_max_entries(req.max_entries)?;
    let family = AddressFamily::parse(
        req.address_family
            .as_deref()
            .ok_or_else(|| ApiError::missing("AddressFamily"))?,
    )?;
    let mut entries: Vec<Entry> = Vec::new();
    for request in &req.entries {
        let entry = parse_entry(family, request)?;
        if entries.iter().any(|e| e.cidr == entry.cidr) {
            return Err(ApiError::invalid_value(format!(
                "The CIDR {} appears more than once in the request.",
                entry.cidr
            )));
        }
        entries.push(entry);
    }
    let tags = tags_for(&req.tag_specifications, "prefix-list")?;
    let id = ids.next_id("pl");
    if entries.len() > max_entries as usize {
        return Err(too_many_entries(&id, max_entries));
    }
    let list = PrefixList {
        id: id.clone(),
        name,
        family,
        max_entries,
        versions: vec![entries],
        tags,
    };
    let out = view(state, &list, "create-complete");
    state.prefix_lists.insert(id, list);
    Ok(json!({ "PrefixList": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyRequest {
    prefix_list_id: Option<String>,
    current_version: Option<u64>,
    prefix_list_name: Option<String>,
    #[serde(default)]
    add_entries: Vec<EntryRequest>,
    #[serde(default)]
    remove_entries: Vec<EntryRequest>,
    max_entries: Option<i64>,
}

/// Adds and removes entries as one new version (and may rename or resize). Our change completes
/// at once: the answer already carries the new version, state `modify-complete`.
pub fn modify(state: &mut State, req: ModifyRequest) -> ApiResult<Value> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    let list = get(state, &id)?.clone();
    let changes_entries = !req.add_entries.is_empty() || !req.remove_entries.is_empty();
    if changes_entries && req.max_entries.is_some() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "MaxEntries cannot be changed in the same request as entries.",
        ));
    }
    if changes_entries {
        match req.current_version {
            None => return Err(ApiError::missing("CurrentVersion")),
            Some(v) if v != list.version() => {
                return Err(ApiError::new(
                    "PrefixListVersionMismatch",
                    format!(
                        "The prefix list {id} has version {}, not {v}. Describe it again and retry.",
                        list.version()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let mut entries = list.entries().to_vec();
    for request in &req.remove_entries {
        let entry = parse_entry(list.family, request)?;
        let before = entries.len();
        entries.retain(|e| e.cidr != entry.cidr);
        if entries.len() == before {
            return Err(ApiError::invalid_value(format!(
                "The CIDR {} is not an entry of prefix list {id}.",
                entry.cidr
            )));
        }
    }
    for request in &req.add_entries {
        let entry = parse_entry(list.family, request)?;
        match entries.iter_mut().find(|e| e.cidr == entry.cidr) {
            // Adding an existing CIDR updates its description.
            Some(existing) => existing.description = entry.description,
            None => entries.push(entry),
        }
    }
    let mut updated = list.clone();
    if let Some(name) = req.prefix_list_name.as_deref() {
        updated.name = check_name(Some(name))?;
    }
    if req.max_entries.is_some() {
        updated.max_entries = check_max_entries(req.max_entries)?;
    }
    if entries.len() > updated.max_entries as usize {
        return Err(too_many_entries(&id, updated.max_entries));
    }
    if changes_entries {
        updated.versions.push(entries);
    }
    state.prefix_lists.insert(id.clone(), updated);
    if req.max_entries.is_some() {
        // A bigger list weighs more in every referencing group.
        let over_quota = state.groups.values().find_map(|group| {
            let references = group
                .ingress
                .iter()
                .chain(&group.egress)
                .any(|r| r.peer == Peer::PrefixList(id.clone()));
            let check = || {
                check_rule_quota(state, &group.ingress)?;
                check_rule_quota(state, &group.egress)
            };
            if references { check().err() } else { None }
        });
        if let Some(error) = over_quota {
            state.prefix_lists.insert(id, list);
            return Err(error);
        }
    }
    let list = &state.prefix_lists[&id];
    Ok(json!({ "PrefixList": view(state, list, "modify-complete") }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IdRequest {
    prefix_list_id: Option<String>,
    target_version: Option<u64>,
}

pub fn get_entries(state: &State, req: IdRequest) -> ApiResult<Value> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    let list = get(state, &id)?;
    let version = req.target_version.unwrap_or(list.version());
    let entries = list
        .versions
        .get((version as usize).wrapping_sub(1))
        .ok_or_else(|| {
            ApiError::invalid_value(format!(
                "The prefix list {id} has no version {version} (current: {}).",
                list.version()
            ))
        })?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut out = Map::new();
            out.insert("Cidr".into(), json!(e.cidr.to_string()));
            if let Some(d) = &e.description {
                out.insert("Description".into(), json!(d));
            }
            Value::Object(out)
        })
        .collect();
    Ok(json!({ "Entries": entries }))
}

pub fn delete(state: &mut State, req: IdRequest) -> ApiResult<Value> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    get(state, &id)?;
    let referenced = state
        .groups
        .values()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .any(|r| r.peer == Peer::PrefixList(id.clone()));
    if referenced {
        return Err(ApiError::new(
            "DependencyViolation",
            format!("resource {id} has a dependent object"),
        ));
    }
    let list = state.prefix_lists.remove(&id).expect("checked above");
    Ok(json!({ "PrefixList": view(state, &list, "delete-complete") }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeRequest {
    #[serde(default)]
    prefix_list_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<super::ops::Filter>,
}

pub fn describe(state: &State, req: DescribeRequest) -> ApiResult<Value> {
    for id in &req.prefix_list_ids {
        get(state, id)?;
    }
    let mut out = Vec::new();
    for list in state.prefix_lists.values() {
        if !req.prefix_list_ids.is_empty() && !req.prefix_list_ids.contains(&list.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= match filter.name.as_str() {
                "prefix-list-id" => filter.matches(&list.id),
                "prefix-list-name" => filter.matches(&list.name),
                "owner-id" => filter.matches(&state.account_id),
                other => {
                    return Err(ApiError::invalid_value(format!(
                        "The filter '{other}' is invalid"
                    )));
                }
            };
        }
        if keep {
            out.push(view(state, list, "create-complete"));
        }
    }
    Ok(json!({ "PrefixLists": out }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ops::dispatch, testing::SeqIds};

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
    fn a_referenced_list_weighs_its_max_entries_and_cannot_be_deleted() {
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
        let err = dispatch(
            &mut state,
            &mut ids,
            "DeleteManagedPrefixList",
            json!({"PrefixListId": id}),
        )
        .unwrap_err();
        assert_eq!(err.code, "DependencyViolation");
        let err = dispatch(
            &mut state,
            &mut ids,
            "DescribeManagedPrefixLists",
            json!({"PrefixListIds": ["pl-00000000000000fff"]}),
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidPrefixListID.NotFound");
    }
}

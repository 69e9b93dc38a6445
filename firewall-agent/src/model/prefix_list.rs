//! Customer-managed prefix lists: named, versioned sets of CIDRs of one address family that rules
//! reference as a peer. A rule referencing a list counts as the list's `MaxEntries` against the
//! group's rule quota, as on AWS.

use ipnet::IpNet;

use super::{
    ids::IdSource,
    lookup,
    permission::check_rule_quota,
    query::invalid_filter,
    rule::{Peer, parse_cidr4, parse_cidr6},
    state::{AddressFamily, Entry, PrefixList, State},
    tagging::{self, tags_for},
};
use crate::api::{
    ApiError, ApiResult,
    types::prefix_lists::{
        CreateManagedPrefixListRequest, DescribeManagedPrefixListsRequest,
        DescribeManagedPrefixListsResponse, GetManagedPrefixListEntriesResponse, ManagedPrefixList,
        ModifyManagedPrefixListRequest, PrefixListEntry, PrefixListIdRequest, PrefixListResponse,
    },
};

/// The largest `MaxEntries` AWS accepts.
const MAX_ENTRIES_LIMIT: u32 = 1000;

/// A list as `describe-managed-prefix-lists` prints it, in the state `status`.
fn view(state: &State, list: &PrefixList, status: &str) -> ManagedPrefixList {
    ManagedPrefixList {
        prefix_list_id: list.id.clone(),
        address_family: list.family.name().into(),
        state: status.into(),
        prefix_list_arn: format!(
            "arn:aws:ec2:{}:{}:prefix-list/{}",
            state.region, state.account_id, list.id
        ),
        prefix_list_name: list.name.clone(),
        max_entries: list.max_entries,
        version: list.version(),
        tags: tagging::views(&list.tags),
        owner_id: state.account_id.clone(),
    }
}

fn parse_entry(family: AddressFamily, entry: &PrefixListEntry) -> ApiResult<Entry> {
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

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateManagedPrefixListRequest,
) -> ApiResult<PrefixListResponse> {
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
        modified: false,
        deleting: false,
    };
    let out = view(state, &list, "create-complete");
    state.prefix_lists.insert(id, list);
    Ok(PrefixListResponse { prefix_list: out })
}

/// Adds and removes entries as one new version (and may rename or resize). Our change completes
/// at once: the answer already carries the new version, state `modify-complete`.
pub fn modify(
    state: &mut State,
    req: ModifyManagedPrefixListRequest,
) -> ApiResult<PrefixListResponse> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    let list = lookup::prefix_list(state, &id)?.clone();
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
    updated.modified = true;
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
                check_rule_quota(state, group.ingress.iter().map(|r| &**r))?;
                check_rule_quota(state, group.egress.iter().map(|r| &**r))
            };
            if references { check().err() } else { None }
        });
        if let Some(error) = over_quota {
            state.prefix_lists.insert(id, list);
            return Err(error);
        }
    }
    let list = &state.prefix_lists[&id];
    Ok(PrefixListResponse {
        prefix_list: view(state, list, "modify-complete"),
    })
}

pub fn get_entries(
    state: &State,
    req: PrefixListIdRequest,
) -> ApiResult<GetManagedPrefixListEntriesResponse> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    let list = lookup::prefix_list(state, &id)?;
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
    let entries = entries
        .iter()
        .map(|e| PrefixListEntry {
            cidr: Some(e.cidr.to_string()),
            description: e.description.clone(),
        })
        .collect();
    Ok(GetManagedPrefixListEntriesResponse { entries })
}

pub fn delete(state: &mut State, req: PrefixListIdRequest) -> ApiResult<PrefixListResponse> {
    let id = req
        .prefix_list_id
        .ok_or_else(|| ApiError::missing("PrefixListId"))?;
    lookup::prefix_list(state, &id)?;
    let referenced = state
        .groups
        .values()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .any(|r| r.peer == Peer::PrefixList(id.clone()));
    if referenced {
        // As on AWS, the deletion is accepted and completes once nothing references the list.
        let list = state.prefix_lists.get_mut(&id).expect("checked above");
        list.deleting = true;
        let list = &state.prefix_lists[&id];
        return Ok(PrefixListResponse {
            prefix_list: view(state, list, "delete-in-progress"),
        });
    }
    let list = state.prefix_lists.remove(&id).expect("checked above");
    Ok(PrefixListResponse {
        prefix_list: view(state, &list, "delete-complete"),
    })
}

pub fn describe(
    state: &State,
    req: DescribeManagedPrefixListsRequest,
) -> ApiResult<DescribeManagedPrefixListsResponse> {
    for id in &req.prefix_list_ids {
        lookup::prefix_list(state, id)?;
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
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            let status = if list.deleting {
                "delete-in-progress"
            } else if list.modified {
                "modify-complete"
            } else {
                "create-complete"
            };
            out.push(view(state, list, status));
        }
    }
    Ok(DescribeManagedPrefixListsResponse { prefix_lists: out })
}

impl State {
    /// Completes the deletions of prefix lists nothing references any more (see
    /// [`PrefixList::deleting`](super::state::PrefixList::deleting)); run after every change.
    pub fn settle_deletions(&mut self) {
        let pending: Vec<String> = self
            .prefix_lists
            .values()
            .filter(|l| l.deleting)
            .map(|l| l.id.clone())
            .collect();
        for id in pending {
            let referenced = self
                .groups
                .values()
                .flat_map(|g| g.ingress.iter().chain(&g.egress))
                .any(|r| r.peer == Peer::PrefixList(id.clone()));
            if !referenced {
                self.prefix_lists.remove(&id);
            }
        }
    }
}

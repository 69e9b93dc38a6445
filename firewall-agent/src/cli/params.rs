//! Option values as the AWS CLI reads them: `file://` contents, JSON, the shorthand
//! `Key=Value,Key=Value` for lists of structures, `Name=…,Values=…` filters, and the
//! `--protocol/--port/--cidr/--source-group` form of a permission. Each becomes the typed
//! member of the request; a member the API would refuse fails as the API would answer.

use anyhow::{Context as _, anyhow};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{args::RuleChange, shorthand};
use crate::api::{
    ApiError,
    error::decode,
    types::{
        common::Filter,
        rules::{IpPermission, IpRange, Ipv6Range, UserIdGroupPair},
    },
};

/// Why a verb's options do not make a request.
#[derive(Debug)]
pub enum ParamError {
    /// The options themselves are wrong (the AWS CLI's exit status 252).
    Options(anyhow::Error),
    /// A member the API refuses, reported as its answer.
    Api(ApiError),
}

impl From<anyhow::Error> for ParamError {
    fn from(e: anyhow::Error) -> Self {
        ParamError::Options(e)
    }
}

impl From<ApiError> for ParamError {
    fn from(e: ApiError) -> Self {
        ParamError::Api(e)
    }
}

pub type Params<T> = Result<T, ParamError>;

/// Reads a parameter value the way the AWS CLI does: `file://path` means the file's content.
fn read_param(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(value.to_string()),
    }
}

fn json_value(name: &str, value: &str) -> anyhow::Result<Value> {
    let text = read_param(value)?;
    serde_json::from_str(&text)
        .with_context(|| format!("Error parsing parameter '--{name}': Invalid JSON: {text}"))
}

/// A JSON (or `file://`) option as its typed member.
pub fn json<T: DeserializeOwned>(name: &str, value: &str) -> Params<T> {
    Ok(decode(json_value(name, value)?)?)
}

/// An optional JSON option.
pub fn json_opt<T: DeserializeOwned>(name: &str, value: &Option<String>) -> Params<Option<T>> {
    value.as_deref().map(|v| json(name, v)).transpose()
}

/// An optional JSON option holding a list; absent is empty.
pub fn json_list<T: DeserializeOwned>(name: &str, value: &Option<String>) -> Params<Vec<T>> {
    Ok(json_opt(name, value)?.unwrap_or_default())
}

/// JSON items: one object, or a list of them.
fn items(name: &str, text: &str, out: &mut Vec<Value>) -> anyhow::Result<()> {
    match json_value(name, text)? {
        Value::Array(list) => out.extend(list),
        item => out.push(item),
    }
    Ok(())
}

/// A list of structures: each argument the AWS shorthand (`Key=Value,Key=[…],Key={…}`, see
/// [`super::shorthand`]) for one item, or JSON (`file://` too) for one item or a list of them.
pub fn structures<T: DeserializeOwned>(name: &str, values: &[String]) -> Params<Vec<T>> {
    let mut out = Vec::new();
    for value in values {
        let text = read_param(value.trim())?;
        let text = text.trim();
        if text.starts_with('[') || text.starts_with('{') {
            items(name, text, &mut out)?;
            continue;
        }
        let item = shorthand::parse(text)
            .map_err(|e| anyhow!("Error parsing parameter '--{name}': {e}"))?;
        out.push(item);
    }
    Ok(decode(Value::Array(out))?)
}

/// `Name=x,Values=a,b` or JSON (an object or a list of them).
pub fn filters(values: &[String]) -> Params<Vec<Filter>> {
    let mut out = Vec::new();
    for value in values {
        let text = value.trim();
        if text.starts_with('[') || text.starts_with('{') {
            items("filters", text, &mut out)?;
            continue;
        }
        let rest = text.strip_prefix("Name=").ok_or_else(|| {
            anyhow!(
                "Error parsing parameter '--filters': expected Name=...,Values=... or JSON: {text}"
            )
        })?;
        let (name, values) = rest.split_once(",Values=").ok_or_else(|| {
            anyhow!("Error parsing parameter '--filters': expected Name=...,Values=...: {text}")
        })?;
        out.push(json!({"Name": name, "Values": values.split(',').collect::<Vec<_>>()}));
    }
    Ok(decode(Value::Array(out))?)
}

/// The permission the AWS CLI builds from `--protocol/--port/--cidr/--source-group`.
fn shorthand_permission(change: &RuleChange) -> anyhow::Result<Option<IpPermission>> {
    if change.protocol.is_none()
        && change.port.is_none()
        && change.cidr.is_none()
        && change.source_group.is_none()
    {
        return Ok(None);
    }
    if !change.ip_permissions.is_empty() {
        return Err(anyhow!(
            "The --ip-permissions option cannot be combined with --protocol, --port, --cidr or --source-group"
        ));
    }
    let protocol = match change.protocol.as_deref() {
        Some("all") => "-1".to_string(),
        Some(p) => p.to_string(),
        None => {
            return Err(anyhow!(
                "The --protocol option is required with --port, --cidr or --source-group"
            ));
        }
    };
    let mut permission = IpPermission {
        ip_protocol: Some(protocol),
        ..IpPermission::default()
    };
    if let Some(port) = &change.port {
        let (from, to) = match port.split_once('-') {
            Some((from, to)) if !port.starts_with('-') => (from, to),
            _ => (port.as_str(), port.as_str()),
        };
        let parse = |p: &str| -> anyhow::Result<i64> {
            p.trim().parse().with_context(|| {
                format!("port parameter should be of the form <from[-to]> (got {port})")
            })
        };
        permission.from_port = Some(parse(from)?);
        permission.to_port = Some(parse(to)?);
    }
    if let Some(cidr) = &change.cidr {
        if cidr.contains(':') {
            permission.ipv6_ranges.push(Ipv6Range {
                cidr_ipv6: Some(cidr.clone()),
                ..Ipv6Range::default()
            });
        } else {
            permission.ip_ranges.push(IpRange {
                cidr_ip: Some(cidr.clone()),
                ..IpRange::default()
            });
        }
    }
    if let Some(group) = &change.source_group {
        let mut pair = UserIdGroupPair::default();
        if group.starts_with("sg-") {
            pair.group_id = Some(group.clone());
        } else {
            pair.group_name = Some(group.clone());
        }
        permission.user_id_group_pairs.push(pair);
    }
    Ok(Some(permission))
}

/// The permissions of a rule change: the one of `--protocol/--port/--cidr/--source-group`, then
/// those of `--ip-permissions`.
pub fn permissions(change: &RuleChange) -> Params<Vec<IpPermission>> {
    let mut out: Vec<IpPermission> = shorthand_permission(change)?.into_iter().collect();
    out.extend(structures::<IpPermission>(
        "ip-permissions",
        &change.ip_permissions,
    )?);
    Ok(out)
}

//! A Query request's form body (`Action=…&Version=…&GroupId.1=…`) as the members the catalogue
//! decodes. The body is form-urlencoded (`form_urlencoded` decodes it); EC2's own flattening is
//! ours: dotted names nest structures, a numeric part indexes a list (`IpPermissions.1.IpRanges.2.
//! CidrIp`), and each name is the model's (see [`super::names`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::names::request_member;
use crate::api::{ApiError, ApiResult};

/// The parts of a Query request.
#[derive(Debug)]
pub struct QueryRequest {
    pub action: String,
    pub version: Option<String>,
    /// The members, named and nested as the typed requests are (values are text).
    pub members: Value,
}

/// A parameter tree: structures by name, lists by index, text at the leaves.
#[derive(Debug)]
enum Node {
    Text(String),
    Struct(BTreeMap<String, Node>),
    List(BTreeMap<u32, Node>),
}

impl Node {
    fn insert(&mut self, path: &[&str], value: String, full: &str) -> ApiResult<()> {
        let malformed = || {
            ApiError::invalid_value(format!(
                "The parameter {full} is malformed or conflicts with another parameter"
            ))
        };
        let Some((first, rest)) = path.split_first() else {
            return match self {
                Node::Struct(m) if m.is_empty() => {
                    *self = Node::Text(value);
                    Ok(())
                }
                _ => Err(malformed()),
            };
        };
        let child = match (first.parse::<u32>(), &mut *self) {
            (Ok(index), Node::List(items)) => items.entry(index).or_insert_with(empty),
            (Ok(index), Node::Struct(m)) if m.is_empty() => {
                *self = Node::List(BTreeMap::new());
                let Node::List(items) = self else {
                    unreachable!("just set")
                };
                items.entry(index).or_insert_with(empty)
            }
            (Err(_), Node::Struct(m)) if !first.is_empty() => {
                m.entry(first.to_string()).or_insert_with(empty)
            }
            _ => return Err(malformed()),
        };
        child.insert(rest, value, full)
    }

    /// The members, with the model's member names for `context`.
    fn into_value(self, context: &str) -> Value {
        match self {
            Node::Text(text) => Value::String(text),
            Node::List(items) => Value::Array(
                items
                    .into_values()
                    .map(|item| item.into_value(context))
                    .collect(),
            ),
            Node::Struct(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(wire, node)| {
                        let member = request_member(context, &wire);
                        let value = node.into_value(&member);
                        (member, value)
                    })
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

fn empty() -> Node {
    Node::Struct(BTreeMap::new())
}

/// The most parts a parameter name has (EC2's deepest have 6, `A.1.B.1.C`): deeper ones are
/// refused before they nest.
const MAX_DEPTH: usize = 16;

/// Reads a Query request body.
pub fn decode(body: &[u8]) -> ApiResult<QueryRequest> {
    let mut action = None;
    let mut version = None;
    let mut tree = empty();
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "Action" => action = Some(value.into_owned()),
            "Version" => version = Some(value.into_owned()),
            _ => {
                let path: Vec<&str> = name.split('.').collect();
                if path.len() > MAX_DEPTH {
                    return Err(ApiError::invalid_value(format!(
                        "The parameter {name} has more than {MAX_DEPTH} parts"
                    )));
                }
                tree.insert(&path, value.into_owned(), &name)?;
            }
        }
    }
    let action = action.ok_or_else(|| {
        ApiError::new(
            "MissingAction",
            "The request must contain the parameter Action",
        )
    })?;
    let mut members = tree.into_value(&action);
    legacy_permission(&action, &mut members);
    Ok(QueryRequest {
        action,
        version,
        members,
    })
}

/// Authorize and revoke also take one permission as top-level members (`IpProtocol`,
/// `FromPort`, `ToPort`, `CidrIp`, `SourceSecurityGroupName`, `SourceSecurityGroupOwnerId`), as
/// older clients send it: they become one more `IpPermissions` item.
fn legacy_permission(action: &str, members: &mut Value) {
    const LEGACY: [&str; 6] = [
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
    ];
    let rules_action =
        action.starts_with("AuthorizeSecurityGroup") || action.starts_with("RevokeSecurityGroup");
    let Some(top) = members.as_object_mut().filter(|_| rules_action) else {
        return;
    };
    if !LEGACY.iter().any(|name| top.contains_key(*name)) {
        return;
    }
    let mut permission = Map::new();
    for name in ["IpProtocol", "FromPort", "ToPort"] {
        if let Some(v) = top.remove(name) {
            permission.insert(name.into(), v);
        }
    }
    if let Some(cidr) = top.remove("CidrIp") {
        permission.insert(
            "IpRanges".into(),
            Value::Array(vec![json_object("CidrIp", cidr)]),
        );
    }
    let group = top.remove("SourceSecurityGroupName");
    let owner = top.remove("SourceSecurityGroupOwnerId");
    if group.is_some() || owner.is_some() {
        let mut pair = Map::new();
        if let Some(name) = group {
            pair.insert("GroupName".into(), name);
        }
        if let Some(owner) = owner {
            pair.insert("UserId".into(), owner);
        }
        permission.insert(
            "UserIdGroupPairs".into(),
            Value::Array(vec![Value::Object(pair)]),
        );
    }
    let permissions = top
        .entry("IpPermissions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = permissions {
        items.push(Value::Object(permission));
    }
}

fn json_object(name: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(name.into(), value);
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dotted_names_nest_and_numbers_index_lists_in_order() {
        let body = b"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1\
            &IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80\
            &IpPermissions.1.IpRanges.2.CidrIp=10.0.0.0%2F8&IpPermissions.1.IpRanges.1.CidrIp=192.0.2.0%2F24\
            &IpPermissions.1.IpRanges.1.Description=web+tier&IpPermissions.1.Groups.1.GroupId=sg-2";
        let request = decode(body).unwrap();
        assert_eq!(request.action, "AuthorizeSecurityGroupIngress");
        assert_eq!(request.version.as_deref(), Some("2016-11-15"));
        assert_eq!(
            request.members,
            json!({"GroupId": "sg-1", "IpPermissions": [{
                "IpProtocol": "tcp", "FromPort": "80", "ToPort": "80",
                "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "web tier"}, {"CidrIp": "10.0.0.0/8"}],
                "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]})
        );
    }

    #[test]
    fn lists_take_their_members_names_from_the_model() {
        let body = b"Action=DescribeSecurityGroups&GroupId.1=sg-1&GroupId.2=sg-2\
            &Filter.1.Name=group-name&Filter.1.Value.1=web&Filter.1.Value.2=db";
        assert_eq!(
            decode(body).unwrap().members,
            json!({"GroupIds": ["sg-1", "sg-2"], "Filters": [{"Name": "group-name", "Values": ["web", "db"]}]})
        );
        let body = b"Action=CreateSecurityGroup&GroupName=web&GroupDescription=d\
            &TagSpecification.1.ResourceType=security-group&TagSpecification.1.Tag.1.Key=env";
        assert_eq!(
            decode(body).unwrap().members,
            json!({"GroupName": "web", "Description": "d",
                   "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "env"}]}]})
        );
    }

    #[test]
    fn the_legacy_single_permission_becomes_an_ip_permission() {
        let body = b"Action=AuthorizeSecurityGroupIngress&GroupName=web&IpProtocol=tcp&FromPort=22\
            &ToPort=22&CidrIp=10.0.0.0/8";
        assert_eq!(
            decode(body).unwrap().members,
            json!({"GroupName": "web", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": "22",
                   "ToPort": "22", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]})
        );
    }

    #[test]
    fn conflicting_or_missing_parts_are_refused() {
        assert_eq!(
            decode(b"Action=X&GroupId=a&GroupId.1=b").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            decode(b"Version=2016-11-15").unwrap_err().code,
            "MissingAction"
        );
        assert_eq!(
            decode(b"Action=X&A..B=c").unwrap_err().code,
            "InvalidParameterValue"
        );
        let deep = format!("Action=X&{}=c", vec!["A"; 100_000].join("."));
        assert_eq!(
            decode(deep.as_bytes()).unwrap_err().code,
            "InvalidParameterValue"
        );
    }
}

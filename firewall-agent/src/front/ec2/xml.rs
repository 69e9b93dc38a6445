//! Answers as XML: the typed response's members, named as the model names them in XML
//! ([`super::names`]), lists as `<item>` children, under `<{Action}Response>` with its namespace
//! and `requestId` (STS: inside `<{Action}Result>`, with `ResponseMetadata`); errors in AWS's
//! error document (a dry run's preview, ours, in `<preview>` after `<RequestID>`). quick-xml's serde serializer writes it (and escapes the text).

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

use super::names::response_name;
use crate::api::{ApiError, Service};

const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An element's content: text, or child elements in order (names may repeat, as `item` does).
enum Content {
    Text(String),
    Children(Vec<(String, Content)>),
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Text(text) => serializer.serialize_str(text),
            Content::Children(children) => {
                let mut map = serializer.serialize_map(Some(children.len()))?;
                for (name, content) in children {
                    map.serialize_entry(name, content)?;
                }
                map.end()
            }
        }
    }
}

/// A JSON member value as XML content; `None` for a null (absent) member.
fn content(context: &str, value: &Value, name: &dyn Fn(&str, &str) -> String) -> Option<Content> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => Content::Text(b.to_string()),
        Value::Number(n) => Content::Text(n.to_string()),
        Value::String(s) => Content::Text(s.clone()),
        Value::Array(items) => Content::Children(
            items
                .iter()
                .filter_map(|item| content(context, item, name))
                .map(|item| ("item".to_string(), item))
                .collect(),
        ),
        Value::Object(members) => Content::Children(
            members
                .iter()
                .filter_map(|(member, v)| {
                    content(member, v, name).map(|c| (name(context, member), c))
                })
                .collect(),
        ),
    })
}

fn document(root: &str, content: &Content) -> String {
    let body = quick_xml::se::to_string_with_root(root, content)
        .expect("serialising element trees to a string cannot fail");
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

/// The answer to `action` of `service`.
pub fn response(service: Service, action: &str, request_id: &str, members: &Value) -> String {
    let root = format!("{action}Response");
    let mut children = vec![];
    match service {
        Service::Ec2 => {
            children.push(("@xmlns".to_string(), Content::Text(EC2_NAMESPACE.into())));
            children.push(("requestId".to_string(), Content::Text(request_id.into())));
            if let Some(Content::Children(members)) = content(action, members, &response_name) {
                children.extend(members);
            }
        }
        Service::Sts => {
            // The Query protocol of STS: members as the model names them, in a Result element.
            let same = |_: &str, member: &str| member.to_string();
            children.push(("@xmlns".to_string(), Content::Text(STS_NAMESPACE.into())));
            let result = content(action, members, &same).unwrap_or(Content::Children(Vec::new()));
            children.push((format!("{action}Result"), result));
            children.push((
                "ResponseMetadata".to_string(),
                Content::Children(vec![(
                    "RequestId".to_string(),
                    Content::Text(request_id.into()),
                )]),
            ));
        }
    }
    document(&root, &Content::Children(children))
}

/// An error, in the document of `service`.
pub fn error(service: Service, request_id: &str, error: &ApiError) -> String {
    let text = |s: &str| Content::Text(s.to_string());
    let detail = |extra: Vec<(String, Content)>| {
        let mut fields = extra;
        fields.push(("Code".into(), text(&error.code)));
        fields.push(("Message".into(), text(&error.message)));
        Content::Children(fields)
    };
    match service {
        Service::Ec2 => {
            let mut children = vec![
                (
                    "Errors".into(),
                    Content::Children(vec![("Error".into(), detail(Vec::new()))]),
                ),
                ("RequestID".into(), text(request_id)),
            ];
            // Ours, after AWS's members (clients read `Errors` and `RequestID` only): a dry
            // run's preview, its members in the responses' lowerCamel.
            let preview = error
                .preview
                .as_ref()
                .and_then(|p| serde_json::to_value(p).ok());
            if let Some(preview) = preview.and_then(|p| content("Preview", &p, &response_name)) {
                children.push(("preview".into(), preview));
            }
            document("Response", &Content::Children(children))
        }
        Service::Sts => document(
            "ErrorResponse",
            &Content::Children(vec![
                ("@xmlns".into(), text(STS_NAMESPACE)),
                (
                    "Error".into(),
                    detail(vec![("Type".into(), text("Sender"))]),
                ),
                ("RequestId".into(), text(request_id)),
            ]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_take_their_xml_names_and_lists_hold_items() {
        let members = json!({"SecurityGroups": [{"GroupId": "sg-1", "Description": "a < b",
            "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 80, "UserIdGroupPairs": []}],
            "Tags": [{"Key": "k", "Value": "v"}]}]});
        let xml = response(Service::Ec2, "DescribeSecurityGroups", "r-1", &members);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>r-1</requestId><securityGroupInfo><item><groupId>sg-1</groupId>\
             <groupDescription>a &lt; b</groupDescription><ipPermissions><item><ipProtocol>tcp</ipProtocol>\
             <fromPort>80</fromPort><groups/></item></ipPermissions><tagSet><item><key>k</key>\
             <value>v</value></item></tagSet></item></securityGroupInfo></DescribeSecurityGroupsResponse>"
        );
    }

    #[test]
    fn sts_answers_in_a_result_with_response_metadata() {
        let members = json!({"UserId": "1", "Account": "1", "Arn": "arn:aws:iam::1:root"});
        let xml = response(Service::Sts, "GetCallerIdentity", "r-2", &members);
        assert!(xml.contains("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><UserId>1</UserId><Account>1</Account><Arn>arn:aws:iam::1:root</Arn></GetCallerIdentityResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></GetCallerIdentityResponse>"), "{xml}");
    }

    #[test]
    fn a_dry_runs_preview_follows_the_aws_error() {
        let mut e = ApiError::new("DryRunOperation", "Request would have succeeded.");
        e.preview = Some(Box::default());
        assert_eq!(
            error(Service::Ec2, "r-4", &e),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>DryRunOperation</Code>\
             <Message>Request would have succeeded.</Message></Error></Errors><RequestID>r-4</RequestID>\
             <preview><rulesAdded/><rulesRemoved/><flowsNoLongerAllowed/></preview></Response>"
        );
    }

    #[test]
    fn errors_are_aws_error_documents() {
        let e = ApiError::new(
            "InvalidGroup.NotFound",
            "The security group 'sg-1' does not exist",
        );
        assert_eq!(
            error(Service::Ec2, "r-3", &e),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidGroup.NotFound</Code>\
             <Message>The security group 'sg-1' does not exist</Message></Error></Errors>\
             <RequestID>r-3</RequestID></Response>"
        );
    }
}

//! Security-group rules: the `IpPermission` request shape, its validation and normalisation into
//! one [`Rule`] per peer, and rule identity (what makes two rules "the same rule" for duplicate
//! detection and revoke matching).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, State};

/// A normalised IP protocol: `-1` / `all` is [`Protocol::All`]; names and numbers are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    All,
    Number(u8),
}

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;

impl Protocol {
    /// Parses what a user may write: `tcp`, `TCP`, `6`, `-1`, `all`, `icmpv6`, `58`, `47`…
    pub fn parse(text: &str) -> ApiResult<Protocol> {
        let lower = text.trim().to_ascii_lowercase();
        let protocol = match lower.as_str() {
            "-1" | "all" => Protocol::All,
            "tcp" => Protocol::Number(TCP),
            "udp" => Protocol::Number(UDP),
            "icmp" => Protocol::Number(ICMP),
            "icmpv6" => Protocol::Number(ICMPV6),
            number => match number.parse::<u8>() {
                Ok(n) => Protocol::Number(n),
                Err(_) => {
                    return Err(ApiError::invalid_value(format!(
                        "Invalid value '{text}' for IP protocol. Unknown protocol."
                    )));
                }
            },
        };
        Ok(protocol)
    }

    /// `IpProtocol` as AWS prints it.
    pub fn api_name(self) -> String {
        match self {
            Protocol::All => "-1".into(),
            Protocol::Number(TCP) => "tcp".into(),
            Protocol::Number(UDP) => "udp".into(),
            Protocol::Number(ICMP) => "icmp".into(),
            Protocol::Number(ICMPV6) => "icmpv6".into(),
            Protocol::Number(n) => n.to_string(),
        }
    }

    /// Whether the rule's ports mean something (TCP/UDP ranges, ICMP type/code).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Number(TCP | UDP | ICMP | ICMPV6))
    }
}

/// The one peer of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Peer {
    Cidr4(Ipv4Net),
    Cidr6(Ipv6Net),
    Group(String),
    PrefixList(String),
}

/// One rule: one protocol and port range, one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub protocol: Protocol,
    /// TCP/UDP: the inclusive port range. ICMP/ICMPv6: type and code, `-1` meaning any.
    /// `None` for protocol `-1` and protocols without ports.
    pub ports: Option<(i32, i32)>,
    pub peer: Peer,
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<super::Tag>,
}

impl Rule {
    pub fn new(id: String, protocol: Protocol, peer: Peer) -> Rule {
        Rule {
            id,
            protocol,
            ports: None,
            peer,
            description: None,
            tags: Vec::new(),
        }
    }

    /// Two rules are the same rule when protocol, ports and peer match; the description and the
    /// ID are not part of identity.
    pub fn same_rule(&self, other: &Rule) -> bool {
        self.protocol == other.protocol && self.ports == other.ports && self.peer == other.peer
    }

    /// The text AWS puts in `InvalidPermission.Duplicate` messages.
    pub fn aws_summary(&self) -> String {
        let peer = match &self.peer {
            Peer::Cidr4(net) => net.to_string(),
            Peer::Cidr6(net) => net.to_string(),
            Peer::Group(id) | Peer::PrefixList(id) => id.clone(),
        };
        let protocol = match self.protocol {
            Protocol::All => "ALL".to_string(),
            p => p.api_name().to_ascii_uppercase(),
        };
        match self.ports {
            Some((from, to)) => {
                format!("peer: {peer}, {protocol}, from port: {from}, to port: {to}, ALLOW")
            }
            None => format!("peer: {peer}, {protocol}, ALLOW"),
        }
    }
}

/// `IpPermission` as it travels in requests and in the grouped `describe-security-groups` view.
/// Absent members are left out when it is echoed (`UnknownIpPermissions`), as AWS does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IpPermission {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i64>,
    #[serde(default)]
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    #[serde(default)]
    pub ip_ranges: Vec<IpRange>,
    #[serde(default)]
    pub ipv6_ranges: Vec<Ipv6Range>,
    #[serde(default)]
    pub prefix_list_ids: Vec<PrefixListId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IpRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Ipv6Range {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ipv6: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PrefixListId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UserIdGroupPair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
}

/// Validates one permission of a request against `state` (for referenced groups, which must be
/// in `vpc_id`) and expands it into one rule per peer, without IDs yet.
pub fn rules_from_permission(
    state: &State,
    vpc_id: &str,
    permission: &IpPermission,
) -> ApiResult<Vec<Rule>> {
    let protocol_text = permission
        .ip_protocol
        .as_deref()
        .ok_or_else(|| ApiError::missing("IpProtocol"))?;
    let protocol = Protocol::parse(protocol_text)?;
    let ports = normalise_ports(protocol, permission.from_port, permission.to_port)?;

    let mut peers: Vec<(Peer, Option<String>)> = Vec::new();
    for range in &permission.ip_ranges {
        let text = range
            .cidr_ip
            .as_deref()
            .ok_or_else(|| ApiError::missing("CidrIp"))?;
        peers.push((
            Peer::Cidr4(parse_cidr4(text)?),
            checked_description(&range.description)?,
        ));
    }
    for range in &permission.ipv6_ranges {
        let text = range
            .cidr_ipv6
            .as_deref()
            .ok_or_else(|| ApiError::missing("CidrIpv6"))?;
        peers.push((
            Peer::Cidr6(parse_cidr6(text)?),
            checked_description(&range.description)?,
        ));
    }
    for list in &permission.prefix_list_ids {
        let id = list
            .prefix_list_id
            .as_deref()
            .ok_or_else(|| ApiError::missing("PrefixListId"))?;
        super::prefix_lists::get(state, id)?;
        peers.push((
            Peer::PrefixList(id.to_string()),
            checked_description(&list.description)?,
        ));
    }
    for pair in &permission.user_id_group_pairs {
        let group = match (&pair.group_id, &pair.group_name) {
            (Some(id), _) => {
                super::ops::check_group_id_format(id)?;
                state
                    .groups
                    .get(id)
                    .filter(|g| g.vpc_id == vpc_id)
                    .ok_or_else(|| {
                        ApiError::new(
                            "InvalidGroup.NotFound",
                            format!("The security group '{id}' does not exist in VPC '{vpc_id}'"),
                        )
                    })?
            }
            (None, Some(name)) => state
                .groups
                .values()
                .find(|g| g.vpc_id == vpc_id && g.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidGroup.NotFound",
                        format!("The security group '{name}' does not exist in VPC '{vpc_id}'"),
                    )
                })?,
            (None, None) => return Err(ApiError::missing("GroupId")),
        };
        peers.push((
            Peer::Group(group.id.clone()),
            checked_description(&pair.description)?,
        ));
    }
    if peers.is_empty() {
        return Err(ApiError::missing(
            "IpRanges, Ipv6Ranges, PrefixListIds or UserIdGroupPairs",
        ));
    }
    Ok(peers
        .into_iter()
        .map(|(peer, description)| Rule {
            id: String::new(),
            protocol,
            ports,
            peer,
            description,
            tags: Vec::new(),
        })
        .collect())
}

/// Applies AWS's port rules: TCP/UDP need a range within 0–65535 with from ≤ to; ICMP needs type
/// and code (-1 for any, and type -1 forces code -1); ICMPv6 may omit both; other protocols
/// ignore ports.
pub fn normalise_ports(
    protocol: Protocol,
    from: Option<i64>,
    to: Option<i64>,
) -> ApiResult<Option<(i32, i32)>> {
    match protocol {
        Protocol::Number(TCP | UDP) => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(ApiError::invalid_value(
                    "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
                ));
            };
            // AWS treats -1/-1 on TCP/UDP as all ports.
            if from == -1 && to == -1 {
                return Ok(Some((0, 65535)));
            }
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                return Err(ApiError::invalid_value(format!(
                    "Invalid port range: from port {from} to port {to}. Ports must be 0-65535 and from must not exceed to."
                )));
            }
            Ok(Some((from as i32, to as i32)))
        }
        Protocol::Number(p @ (ICMP | ICMPV6)) => {
            let (icmp_type, code) = match (from, to) {
                (None, None) if p == ICMPV6 => (-1, -1),
                (Some(t), Some(c)) => (t, c),
                _ => {
                    return Err(ApiError::invalid_value(
                        "Invalid value for portRange. Must specify both ICMP type (FromPort) and code (ToPort).",
                    ));
                }
            };
            if !(-1..=255).contains(&icmp_type) || !(-1..=255).contains(&code) {
                return Err(ApiError::invalid_value(format!(
                    "Invalid ICMP type {icmp_type} or code {code}: each must be -1 or 0-255."
                )));
            }
            if icmp_type == -1 && code != -1 {
                return Err(ApiError::invalid_value(
                    "Invalid value for portRange. If the ICMP type is -1 (all types), the ICMP code must be -1 (all codes).",
                ));
            }
            Ok(Some((icmp_type as i32, code as i32)))
        }
        _ => Ok(None),
    }
}

/// Parses an IPv4 CIDR and zeroes host bits, as AWS canonicalises them.
pub fn parse_cidr4(text: &str) -> ApiResult<Ipv4Net> {
    match text.parse::<IpNet>() {
        Ok(IpNet::V4(net)) if text.contains('/') => Ok(net.trunc()),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({text}) for parameter cidrIp is invalid. This is not a valid CIDR block."
        ))),
    }
}

/// Parses an IPv6 CIDR and zeroes host bits.
pub fn parse_cidr6(text: &str) -> ApiResult<Ipv6Net> {
    match text.parse::<IpNet>() {
        Ok(IpNet::V6(net)) if text.contains('/') => Ok(net.trunc()),
        _ => Err(ApiError::invalid_value(format!(
            "Value ({text}) for parameter cidrIpv6 is invalid. This is not a valid IPv6 CIDR block."
        ))),
    }
}

/// Characters AWS allows in names and descriptions.
pub fn is_aws_text_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}

fn checked_description(description: &Option<String>) -> ApiResult<Option<String>> {
    match description {
        None => Ok(None),
        Some(text) if text.chars().count() > 255 => Err(ApiError::invalid_value(
            "Invalid rule description: it must be at most 255 characters.",
        )),
        Some(text) if !text.chars().all(is_aws_text_char) => Err(ApiError::invalid_value(format!(
            "Invalid rule description '{text}'. Valid characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{{}}!$*"
        ))),
        Some(text) => Ok(Some(text.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_and_numbers_normalise_to_one_value() {
        for (text, expected) in [
            ("tcp", Protocol::Number(6)),
            ("TCP", Protocol::Number(6)),
            ("6", Protocol::Number(6)),
            ("-1", Protocol::All),
            ("all", Protocol::All),
            ("icmpv6", Protocol::Number(58)),
            ("58", Protocol::Number(58)),
            ("47", Protocol::Number(47)),
        ] {
            assert_eq!(Protocol::parse(text), Ok(expected), "{text}");
        }
        assert_eq!(
            Protocol::parse("tcpx").unwrap_err().code,
            "InvalidParameterValue"
        );
        assert_eq!(
            Protocol::parse("256").unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn port_rules_follow_aws() {
        let tcp = Protocol::Number(TCP);
        assert_eq!(normalise_ports(tcp, Some(80), Some(80)), Ok(Some((80, 80))));
        assert!(normalise_ports(tcp, Some(80), None).is_err(), "needs both");
        assert!(
            normalise_ports(tcp, Some(90), Some(80)).is_err(),
            "from > to"
        );
        assert!(normalise_ports(tcp, Some(0), Some(65536)).is_err(), "range");
        let icmp = Protocol::Number(ICMP);
        assert_eq!(normalise_ports(icmp, Some(8), Some(-1)), Ok(Some((8, -1))));
        assert!(
            normalise_ports(icmp, Some(-1), Some(0)).is_err(),
            "type -1 forces code -1"
        );
        assert!(
            normalise_ports(icmp, None, None).is_err(),
            "icmp needs type and code"
        );
        let icmpv6 = Protocol::Number(ICMPV6);
        assert_eq!(normalise_ports(icmpv6, None, None), Ok(Some((-1, -1))));
        assert_eq!(
            normalise_ports(Protocol::Number(47), Some(1), Some(2)),
            Ok(None)
        );
        assert_eq!(normalise_ports(Protocol::All, Some(1), Some(2)), Ok(None));
    }

    #[test]
    fn cidrs_are_canonicalised_and_families_checked() {
        assert_eq!(
            parse_cidr4("100.68.0.18/18").unwrap().to_string(),
            "100.68.0.0/18"
        );
        assert!(parse_cidr4("10.0.0.0/33").is_err());
        assert!(
            parse_cidr4("10.0.0.1").is_err(),
            "a CIDR needs a prefix length"
        );
        assert!(parse_cidr4("::/0").is_err(), "v6 in the v4 field");
        assert_eq!(
            parse_cidr6("2001:db8::1/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert!(parse_cidr6("10.0.0.0/8").is_err());
    }
}

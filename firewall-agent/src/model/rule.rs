//! One security-group rule as the model keeps it: a normalised protocol, port range and one peer,
//! with rule identity (what makes two rules "the same rule" for duplicate detection and revoke
//! matching), and the normalisation of protocols, ports and CIDRs that requests go through.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::ids::IdSource;
use crate::api::{ApiError, ApiResult};

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
    pub tags: Vec<super::tagging::Tag>,
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

    /// The outbound rules every new group starts with: all traffic to `0.0.0.0/0`, and to `::/0`
    /// when its VPC has an IPv6 block.
    pub fn default_egress(ids: &mut dyn IdSource, ipv6: bool) -> super::RuleList {
        let mut egress = vec![std::sync::Arc::new(Rule::new(
            ids.next_id("sgr"),
            Protocol::All,
            Peer::Cidr4(Ipv4Net::default()),
        ))];
        if ipv6 {
            egress.push(std::sync::Arc::new(Rule::new(
                ids.next_id("sgr"),
                Protocol::All,
                Peer::Cidr6(Ipv6Net::default()),
            )));
        }
        egress.into_iter().collect()
    }

    /// What makes two rules of a group the same rule: protocol, ports and peer; the description
    /// and the ID are not part of it.
    pub fn identity(&self) -> (Protocol, Option<(i32, i32)>, &Peer) {
        (self.protocol, self.ports, &self.peer)
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

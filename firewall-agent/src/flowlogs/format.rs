//! A record as one line of its flow log's format (`${field}` names as AWS spells them, the
//! values as AWS writes them: `-` where a field has no value).

use firewall_common::{Direction, proto};

use super::aggregate::Record;
use crate::model::flow_log::{format_version, parse_format};

/// Who the record's interface belongs to.
pub struct Owner<'a> {
    pub account_id: &'a str,
    pub region: &'a str,
    pub interface_id: &'a str,
    pub instance_id: &'a str,
    pub vpc_id: &'a str,
}

/// Monotonic (kernel) nanoseconds → Unix seconds, with `offset_ns` = wall clock − monotonic.
fn unix_seconds(monotonic_ns: u64, offset_ns: i128) -> i128 {
    (i128::from(monotonic_ns) + offset_ns) / 1_000_000_000
}

/// The line of `record` in `format` (checked when the flow log was created).
pub fn line(format: &str, record: &Record, owner: &Owner<'_>, offset_ns: i128) -> String {
    let fields = parse_format(format).unwrap_or_default();
    let version = format_version(&fields);
    let ports = !matches!(record.proto, proto::ICMP | proto::ICMPV6) || record.sport != 0;
    fields
        .iter()
        .map(|field| match *field {
            "version" => version.to_string(),
            "account-id" => owner.account_id.to_string(),
            "interface-id" => owner.interface_id.to_string(),
            "instance-id" => owner.instance_id.to_string(),
            "vpc-id" => owner.vpc_id.to_string(),
            "region" => owner.region.to_string(),
            "srcaddr" | "pkt-srcaddr" => record.src.to_string(),
            "dstaddr" | "pkt-dstaddr" => record.dst.to_string(),
            "srcport" => if ports { record.sport } else { 0 }.to_string(),
            "dstport" => if ports { record.dport } else { 0 }.to_string(),
            "protocol" => record.proto.to_string(),
            "packets" => record.packets.to_string(),
            "bytes" => record.bytes.to_string(),
            "start" => unix_seconds(record.start_ns, offset_ns).to_string(),
            "end" => unix_seconds(record.end_ns, offset_ns).to_string(),
            "action" => if record.accepted { "ACCEPT" } else { "REJECT" }.to_string(),
            "log-status" => "OK".to_string(),
            "tcp-flags" => u32::from(record.tcp_flags & 0x3f).to_string(),
            "type" => if record.src.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
            "flow-direction" => match record.direction {
                Direction::Inbound => "ingress",
                Direction::Outbound => "egress",
            }
            .to_string(),
            "reject-reason" => record
                .drop_reason
                .map_or_else(|| "-".to_string(), |r| r.name().to_string()),
            "security-group-rule-id" => record.rule_id.clone().unwrap_or_else(|| "-".into()),
            _ => "-".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

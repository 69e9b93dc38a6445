//! `explain-verdict` (ours): one packet, seen from an instance, checked against the kernel's own
//! maps in the programs' order — the interface's `IFACES` slot, a live `CONNTRACK` entry of the
//! flow, then the `PEERS`/`PORTS` longest-prefix lookups — and the rule and group (or the
//! tracked flow) that decide. Platform exemptions (ND/MLD, DHCP), fragments and ICMP errors are
//! not asked about: the packet is a first, unfragmented one.

use std::net::IpAddr;

use firewall_common::Direction;

use super::{
    ApiError, ApiResult,
    types::ours::{ExplainVerdictRequest, ExplainVerdictResponse, TrackedFlow},
};
use crate::{
    dataplane::{self, Answer, Dataplane, Probe},
    model::{
        Instance, InstanceState, NetworkInterface, Protocol, State, lookup, network_interface,
        rule, views,
    },
};

/// The AWS direction name of a [`Direction`].
pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "ingress",
        Direction::Outbound => "egress",
    }
}

/// A tracked flow as the API shows it.
pub fn flow_view(flow: &dataplane::TrackedFlow) -> TrackedFlow {
    TrackedFlow {
        interface: flow.interface.clone(),
        direction: direction_name(flow.direction).into(),
        protocol: Protocol::Number(flow.proto).api_name(),
        source: flow.source.to_string(),
        source_port: flow.source_port,
        destination: flow.destination.to_string(),
        destination_port: flow.destination_port,
    }
}

fn port_member(name: &str, value: Option<i32>) -> ApiResult<Option<u16>> {
    value
        .map(|v| {
            u16::try_from(v).map_err(|_| {
                ApiError::invalid_value(format!("{name} {v} is not a port (0-65535)."))
            })
        })
        .transpose()
}

fn icmp_member(name: &str, value: Option<i32>, default: u8) -> ApiResult<u8> {
    match value {
        None => Ok(default),
        Some(v) => u8::try_from(v).map_err(|_| {
            ApiError::invalid_value(format!("{name} {v} is not an ICMP {name} (0-255)."))
        }),
    }
}

/// The probe the request describes, from `local` (the instance's address of the peer's family).
fn probe(
    request: &ExplainVerdictRequest,
    instance_v6: Option<IpAddr>,
    v4: IpAddr,
) -> ApiResult<Probe> {
    let direction = match request.direction.as_str() {
        "ingress" => Direction::Inbound,
        "egress" => Direction::Outbound,
        other => {
            return Err(ApiError::invalid_value(format!(
                "Invalid direction '{other}': ingress or egress."
            )));
        }
    };
    let Protocol::Number(proto) = Protocol::parse(&request.protocol)? else {
        return Err(ApiError::invalid_value(
            "A packet has one protocol: -1 (all) is not one.",
        ));
    };
    let peer: IpAddr = request.peer.parse().map_err(|_| {
        ApiError::invalid_value(format!("Invalid peer address '{}'.", request.peer))
    })?;
    let local = match peer {
        IpAddr::V4(_) => v4,
        IpAddr::V6(_) => instance_v6.ok_or_else(|| {
            ApiError::invalid_value("The instance has no IPv6 address for an IPv6 peer.")
        })?,
    };
    let other_port = port_member("PeerPort", request.peer_port)?;
    let port = match proto {
        rule::TCP | rule::UDP => {
            port_member("Port", request.port)?.ok_or_else(|| ApiError::missing("Port"))?
        }
        rule::ICMP | rule::ICMPV6 => {
            let echo = if proto == rule::ICMP { 8 } else { 128 };
            let kind = icmp_member("type", request.icmp_type, echo)?;
            let code = icmp_member("code", request.icmp_code, 0)?;
            u16::from(kind) << 8 | u16::from(code)
        }
        _ => 0,
    };
    Ok(Probe {
        direction,
        local,
        peer,
        proto,
        port,
        other_port,
    })
}

/// The interface a request names (by itself, or as an instance's primary one; none for a
/// terminated instance) and its instance.
fn judged<'a>(
    state: &'a State,
    request: &ExplainVerdictRequest,
) -> ApiResult<(Option<&'a NetworkInterface>, &'a Instance)> {
    if let Some(id) = &request.network_interface_id {
        let eni = network_interface::lookup(state, id)?;
        let instance = eni
            .instance_id()
            .and_then(|i| state.instances.get(i))
            .ok_or_else(|| {
                ApiError::new(
                    "IncorrectState",
                    format!(
                        "The network interface '{id}' is not attached: nothing judges its traffic."
                    ),
                )
            })?;
        return Ok((Some(eni), instance));
    }
    if request.instance_id.is_empty() {
        return Err(ApiError::missing("InstanceId or NetworkInterfaceId"));
    }
    lookup::check_instances_exist(state, std::slice::from_ref(&request.instance_id))?;
    let instance = &state.instances[&request.instance_id];
    Ok((state.primary(instance), instance))
}

/// What the kernel decides for the request's packet on the network interface's veth.
pub fn explain(
    state: &State,
    dataplane: &dyn Dataplane,
    request: ExplainVerdictRequest,
) -> ApiResult<ExplainVerdictResponse> {
    let (eni, instance) = judged(state, &request)?;
    let probe = probe(
        &request,
        eni.and_then(|e| e.ipv6).map(IpAddr::V6),
        IpAddr::V4(eni.map_or(std::net::Ipv4Addr::UNSPECIFIED, |e| e.private_ip)),
    )?;
    let interface = eni.map(|e| e.host_interface.clone()).unwrap_or_default();
    let group_ids = eni.map(|e| e.group_ids.clone()).unwrap_or_default();
    let answer = match eni {
        Some(_) if instance.state != InstanceState::Terminated => dataplane
            .lookup(&interface, &probe)
            .map_err(|e| ApiError::internal(format!("The maps could not be read: {e}")))?,
        _ => Answer::Unmanaged,
    };
    let mut response = ExplainVerdictResponse {
        verdict: "denied".into(),
        reason: String::new(),
        security_group_rule: None,
        group_ids: group_ids.clone(),
        tracked_flow: None,
        message: String::new(),
    };
    let direction = direction_name(probe.direction);
    match answer {
        Answer::Unmanaged => {
            response.verdict = "allowed".into();
            response.reason = "not-enforced".into();
            response.message = format!(
                "No program judges {}: the agent does not filter it.",
                if interface.is_empty() {
                    "it (the instance is terminated)"
                } else {
                    &interface
                }
            );
        }
        Answer::NotRunning => {
            response.reason = "not-running".into();
            response.message = "The instance is stopped: every packet drops.".into();
        }
        Answer::Tracked(flow) => {
            response.verdict = "allowed".into();
            response.reason = "conntrack".into();
            response.message = "The packet belongs to a live tracked flow, which passes it \
                                whatever the rules say."
                .into();
            response.tracked_flow = Some(flow_view(&flow));
        }
        Answer::NoRule => {
            response.reason = "no-rule".into();
            response.message =
                format!("No {direction} rule of {} allows it.", group_ids.join(", "));
        }
        Answer::Rule(slot) => {
            response.verdict = "allowed".into();
            response.reason = "rule".into();
            let rule_id = dataplane.rule_of_slot(slot).unwrap_or_default();
            let found = state.groups.values().find_map(|group| {
                let rule = group.rules(probe.direction).by_id(&rule_id)?;
                Some(views::security_group_rule(
                    state,
                    group,
                    rule,
                    probe.direction,
                ))
            });
            response.message = match &found {
                Some(view) => format!(
                    "The {direction} rule {} of {} allows it.",
                    view.security_group_rule_id, view.group_id
                ),
                None => format!("Rule slot {slot} of the kernel's maps allows it."),
            };
            response.security_group_rule = found;
        }
    }
    Ok(response)
}

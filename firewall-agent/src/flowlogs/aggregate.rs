//! Per-flow aggregation of the kernel's flow-log events into records, one per flow, direction
//! and aggregation interval. Accepted flows the kernel tracks take their packets, bytes and TCP
//! flags from their conntrack entry (the tracked path sends no events); packets a rule passed
//! untracked and dropped packets are counted from their events.

use std::{collections::HashMap, net::IpAddr};

use firewall_common::{
    CT_ORIGINAL, CT_REPLY, CtKey, CtValue, Direction, DropReason, FLOW_EVENT_DROP, FlowEvent,
    family, proto,
};

/// One flow-log record: one direction of one flow over one interval, as the interface saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ifindex: u32,
    /// Relative to the workload: inbound is AWS's `ingress`.
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub packets: u64,
    pub bytes: u64,
    /// Monotonic (kernel) nanoseconds of the interval's first and last packet.
    pub start_ns: u64,
    pub end_ns: u64,
    pub accepted: bool,
    pub tcp_flags: u8,
    /// The `sgr-` rule that admitted the flow (accepted records, when known).
    pub rule_id: Option<String>,
    /// Why the packets dropped (rejected records).
    pub drop_reason: Option<DropReason>,
}

/// The packet 5-tuple of an event, in the packet's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tuple {
    ifindex: u32,
    direction: u8,
    family: u8,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: [u8; 2],
    dport: [u8; 2],
}

impl Tuple {
    fn of(event: &FlowEvent) -> Tuple {
        let icmp = matches!(event.proto, proto::ICMP | proto::ICMPV6);
        Tuple {
            ifindex: event.ifindex,
            direction: event.direction,
            family: event.family,
            proto: event.proto,
            src: event.src,
            dst: event.dst,
            // AWS reports no ports for ICMP.
            sport: if icmp { [0; 2] } else { event.sport },
            dport: if icmp { [0; 2] } else { event.dport },
        }
    }

    fn reversed(&self) -> Tuple {
        Tuple {
            direction: Direction::from_u8(self.direction)
                .map_or(self.direction, |d| d.reverse().as_u8()),
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// The conntrack key of this packet's flow, normalised as the kernel does.
    fn ct_key(event: &FlowEvent) -> CtKey {
        let a = (event.src, event.sport);
        let b = (event.dst, event.dport);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        CtKey {
            ifindex: event.ifindex,
            family: event.family,
            proto: event.proto,
            _pad: [0; 2],
            addr_lo: lo.0,
            addr_hi: hi.0,
            port_lo: lo.1,
            port_hi: hi.1,
        }
    }
}

/// Packets counted from events (untracked passes, drops) in the current interval.
#[derive(Debug, Clone)]
struct Counted {
    packets: u64,
    bytes: u64,
    tcp_flags: u8,
    start_ns: u64,
    end_ns: u64,
    reason: Option<DropReason>,
    rule_id: Option<String>,
}

/// A flow the kernel tracks: its opening packet's tuple and what was already reported.
#[derive(Debug, Clone)]
struct Tracked {
    origin: Tuple,
    rule_id: Option<String>,
    reported_packets: [u64; 2],
    reported_bytes: [u64; 2],
    interval_start_ns: u64,
}

/// What the aggregation needs of the running system at a flush.
pub trait Sources {
    /// The kernel's conntrack entry of `key`, if the flow is tracked.
    fn tracked(&self, key: &CtKey) -> Option<CtValue>;
    /// The `sgr-` rule that admits this packet as a new flow, as the maps answer now.
    fn rule_for(&self, event: &FlowEvent) -> Option<String>;
}

/// The flows seen, across intervals.
#[derive(Debug, Default)]
pub struct Aggregator {
    pending: Vec<FlowEvent>,
    tracked: HashMap<CtKey, Tracked>,
}

fn addr(fam: u8, bytes: [u8; 16]) -> IpAddr {
    if fam == family::IPV4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(bytes)
    }
}

impl Aggregator {
    /// Queues an event for the next flush.
    pub fn push(&mut self, event: FlowEvent) {
        self.pending.push(event);
    }

    /// The records of the interval ending at `now_ns`: the queued events folded per flow, and
    /// what each tracked flow's counters moved by since the last flush. Flows whose conntrack
    /// entry is gone are forgotten.
    pub fn flush(&mut self, sources: &dyn Sources, now_ns: u64) -> Vec<Record> {
        let mut counted: HashMap<(Tuple, bool), Counted> = HashMap::new();
        for event in std::mem::take(&mut self.pending) {
            let accepted = event.kind != FLOW_EVENT_DROP;
            let tuple = Tuple::of(&event);
            if accepted {
                let key = Tuple::ct_key(&event);
                if self.tracked.contains_key(&key) {
                    // A new connection on a tuple already tracked: its counters carry it.
                    continue;
                }
                if sources.tracked(&key).is_some() {
                    self.tracked.insert(
                        key,
                        Tracked {
                            origin: tuple,
                            rule_id: sources.rule_for(&event),
                            reported_packets: [0; 2],
                            reported_bytes: [0; 2],
                            interval_start_ns: event.time_ns,
                        },
                    );
                    continue;
                }
            }
            let entry = counted.entry((tuple, accepted)).or_insert_with(|| Counted {
                packets: 0,
                bytes: 0,
                tcp_flags: 0,
                start_ns: event.time_ns,
                end_ns: event.time_ns,
                reason: (!accepted)
                    .then(|| DropReason::ALL.get(event.reason as usize).copied())
                    .flatten(),
                rule_id: if accepted {
                    sources.rule_for(&event)
                } else {
                    None
                },
            });
            entry.packets += 1;
            entry.bytes += u64::from(event.len);
            entry.tcp_flags |= event.tcp_flags;
            entry.start_ns = entry.start_ns.min(event.time_ns);
            entry.end_ns = entry.end_ns.max(event.time_ns);
        }
        let mut records: Vec<Record> = counted
            .into_iter()
            .map(|((t, accepted), c)| Record {
                ifindex: t.ifindex,
                direction: Direction::from_u8(t.direction).unwrap_or(Direction::Inbound),
                src: addr(t.family, t.src),
                dst: addr(t.family, t.dst),
                sport: u16::from_be_bytes(t.sport),
                dport: u16::from_be_bytes(t.dport),
                proto: t.proto,
                packets: c.packets,
                bytes: c.bytes,
                start_ns: c.start_ns,
                end_ns: c.end_ns,
                accepted,
                tcp_flags: c.tcp_flags,
                rule_id: c.rule_id,
                drop_reason: c.reason,
            })
            .collect();
        self.tracked.retain(|key, flow| {
            let Some(value) = sources.tracked(key) else {
                return false;
            };
            let counts = FlowCounts::of(&value);
            // The kernel's origin is the endpoint that opened the flow: our origin tuple.
            for (index, tuple) in [
                (CT_ORIGINAL, flow.origin),
                (CT_REPLY, flow.origin.reversed()),
            ] {
                let packets = counts.packets[index].saturating_sub(flow.reported_packets[index]);
                if packets == 0 {
                    continue;
                }
                records.push(Record {
                    ifindex: tuple.ifindex,
                    direction: Direction::from_u8(tuple.direction).unwrap_or(Direction::Inbound),
                    src: addr(tuple.family, tuple.src),
                    dst: addr(tuple.family, tuple.dst),
                    sport: u16::from_be_bytes(tuple.sport),
                    dport: u16::from_be_bytes(tuple.dport),
                    proto: tuple.proto,
                    packets,
                    bytes: counts.bytes[index].saturating_sub(flow.reported_bytes[index]),
                    start_ns: flow.interval_start_ns,
                    end_ns: value.last_seen_ns.max(flow.interval_start_ns),
                    accepted: true,
                    tcp_flags: counts.tcp_flags[index],
                    rule_id: flow.rule_id.clone(),
                    drop_reason: None,
                });
            }
            flow.reported_packets = counts.packets;
            flow.reported_bytes = counts.bytes;
            flow.interval_start_ns = now_ns;
            true
        });
        records.sort_by_key(|r| (r.start_ns, r.ifindex, !r.accepted));
        records
    }
}

/// A tracked flow's statistics per direction (original, reply), as its `CtValue` holds them.
struct FlowCounts {
    packets: [u64; 2],
    bytes: [u64; 2],
    tcp_flags: [u8; 2],
}

impl FlowCounts {
    fn of(value: &firewall_common::CtValue) -> FlowCounts {
        FlowCounts {
            packets: value.packets,
            bytes: value.bytes,
            tcp_flags: value.tcp_flags,
        }
    }
}

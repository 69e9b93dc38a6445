//! The flow-log writer (I/O, outside the model): a tokio task reads the kernel's `FLOW_EVENTS`
//! ring buffer, aggregates the events per flow (`aggregate`), and every flush period turns the
//! interval's flows into records, written in each covering flow log's format (`format`) to its
//! file (appended) or to standard output.
//!
//! The flush period is 60 s, the shortest `MaxAggregationInterval` (AWS's is a maximum: a record
//! never spans more than it); `serve --flow-log-flush-interval` shortens it (tests).

pub mod aggregate;
pub mod format;

use std::{
    collections::BTreeMap,
    io::Write as _,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use firewall_common::FlowEvent;
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::Mutex,
};

use crate::{
    agent::Agent,
    api::Scope,
    dataplane::{self, Dataplane, Probe},
    model::State,
};
use aggregate::{Aggregator, Record, Sources};
use format::Owner;

/// The default flush period: the shortest aggregation interval AWS offers.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(60);

/// Where a flow log's lines go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    File(String),
    Stdout,
}

/// Starts the writer on the agent's ring buffer (none without a kernel data plane).
pub fn spawn(agent: Arc<Mutex<Agent>>, events: RingBuf<MapData>, period: Duration) {
    let aggregator = Arc::new(std::sync::Mutex::new(Aggregator::default()));
    let reader = aggregator.clone();
    tokio::spawn(async move {
        // SAFETY: the ring buffer owns its map fd, which stays open and the same while the
        // AsyncFd owns the ring buffer.
        let mut fd = match unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) } {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "flow logs: the ring buffer cannot be polled");
                return;
            }
        };
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            let ring = guard.get_inner_mut();
            let mut queue = reader.lock().expect("aggregator lock");
            while let Some(item) = ring.next() {
                if item.len() >= size_of::<FlowEvent>() {
                    // SAFETY: the kernel wrote a whole FlowEvent (plain data); read unaligned.
                    let event =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<FlowEvent>()) };
                    queue.push(event);
                }
            }
            drop(queue);
            guard.clear_ready();
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let lines = {
                let mut agent = agent.lock().await;
                let mut aggregator = aggregator.lock().expect("aggregator lock");
                agent.flow_log_lines(&mut aggregator)
            };
            write(lines).await;
        }
    });
}

/// Appends each destination's lines (a file is opened, appended to and closed each flush).
async fn write(lines: BTreeMap<Destination, Vec<String>>) {
    for (destination, lines) in lines {
        let mut text = lines.join("\n");
        text.push('\n');
        let result = match &destination {
            Destination::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Destination::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes())),
        };
        if let Err(e) = result {
            tracing::warn!(destination = ?destination, error = %e, "flow-log records not written");
        }
    }
}

/// The running system as the aggregation sees it.
struct Live<'a> {
    dataplane: &'a dyn Dataplane,
    interfaces: &'a BTreeMap<u32, String>,
}

impl Sources for Live<'_> {
    fn tracked(&self, key: &firewall_common::CtKey) -> Option<firewall_common::CtValue> {
        self.dataplane.tracked_flow(key)
    }

    fn rule_for(&self, event: &FlowEvent) -> Option<String> {
        let interface = self.interfaces.get(&event.ifindex)?;
        let direction = firewall_common::Direction::from_u8(event.direction)?;
        let v4 = event.family == firewall_common::family::IPV4;
        let ip = |b: [u8; 16]| -> std::net::IpAddr {
            if v4 {
                [b[0], b[1], b[2], b[3]].into()
            } else {
                b.into()
            }
        };
        let (local, peer, port) = match direction {
            firewall_common::Direction::Inbound => (event.dst, event.src, event.dport),
            firewall_common::Direction::Outbound => (event.src, event.dst, event.dport),
        };
        let port = match event.proto {
            firewall_common::proto::ICMP | firewall_common::proto::ICMPV6 => {
                u16::from(event.icmp_type) << 8 | u16::from(event.icmp_code)
            }
            firewall_common::proto::TCP | firewall_common::proto::UDP => u16::from_be_bytes(port),
            _ => 0,
        };
        let probe = Probe {
            direction,
            local: ip(local),
            peer: ip(peer),
            proto: event.proto,
            port,
            other_port: None,
        };
        match self.dataplane.lookup(interface, &probe).ok()? {
            dataplane::Answer::Rule(slot) => self.dataplane.rule_of_slot(slot),
            _ => None,
        }
    }
}

/// The flush: the aggregated records, as lines of every flow log that covers their interface
/// and traffic type, by destination.
pub fn lines(
    states: &BTreeMap<Scope, State>,
    dataplane: &dyn Dataplane,
    aggregator: &mut Aggregator,
) -> BTreeMap<Destination, Vec<String>> {
    let mut interfaces = BTreeMap::new();
    for state in states.values() {
        for instance in state.instances.values() {
            if state.flow_logs.values().any(|f| f.covers(instance))
                && let Ok(index) = dataplane::ifindex(&instance.interface)
            {
                interfaces.insert(index, instance.interface.clone());
            }
        }
    }
    let now = dataplane::monotonic_ns();
    let records: Vec<Record> = aggregator.flush(
        &Live {
            dataplane,
            interfaces: &interfaces,
        },
        now,
    );
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let offset = wall - i128::from(now);
    let mut out: BTreeMap<Destination, Vec<String>> = BTreeMap::new();
    for record in &records {
        let Some(interface) = interfaces.get(&record.ifindex) else {
            continue;
        };
        for state in states.values() {
            let Some(instance) = state.instances.values().find(|i| {
                &i.interface == interface && i.state != crate::model::InstanceState::Terminated
            }) else {
                continue;
            };
            let owner = Owner {
                account_id: &state.account_id,
                region: &state.region,
                interface_id: &instance.eni_id,
                instance_id: &instance.id,
                vpc_id: &instance.vpc_id,
            };
            for flow_log in state.flow_logs.values().filter(|f| f.covers(instance)) {
                let wanted = if record.accepted {
                    flow_log.logs_accepted()
                } else {
                    flow_log.logs_rejected()
                };
                if !wanted {
                    continue;
                }
                let destination = match &flow_log.destination {
                    Some(path) => Destination::File(path.clone()),
                    None => Destination::Stdout,
                };
                out.entry(destination).or_default().push(format::line(
                    &flow_log.log_format,
                    record,
                    &owner,
                    offset,
                ));
            }
        }
    }
    out
}

//! The agent's metrics in the Prometheus/OpenMetrics text format (`prometheus-client`, the
//! Prometheus project's own Rust client). Two kinds:
//!
//! * instruments the agent records into as requests go by ([`Metrics`]): API requests by front
//!   end, action and error code, their latency, and the time from a change's arrival to the end
//!   of its kernel map writes;
//! * the data plane's counters, read from the kernel maps at scrape time ([`Snapshot`]), so a
//!   scrape shows what the kernel counted, also what a previous agent's programs counted.

use std::{collections::BTreeMap, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::dataplane::Counters;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `socket` (the JSON Unix socket) or `ec2` (the EC2 Query API).
    front: &'static str,
    /// The catalogue's action name, or `unknown` for a request naming none.
    action: String,
    /// The AWS error code answered, or `OK`.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    /// See [`Stage`].
    stage: &'static str,
}

/// The steps of a change, timed one by one.
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    /// From the request's arrival to the agent (reading and parsing it, waiting for the lock).
    Parse,
    /// The model on a copy of the state.
    Model,
    /// The interfaces checked, the change saved (durable).
    Store,
    /// The incremental compile.
    Compile,
    /// The kernel map writes.
    Maps,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Model => "model",
            Stage::Store => "store",
            Stage::Compile => "compile",
            Stage::Maps => "maps",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    front: &'static str,
    action: String,
}

/// What one API request was, for counting it: set by the front end on its response.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub action: Option<&'static str>,
    /// `None` for a success.
    pub error_code: Option<String>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// The instruments requests are recorded into; shared by both front ends and the agent.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    enforced: Histogram,
    stages: Family<StageLabels, Histogram, fn() -> Histogram>,
    flow_log_records: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            enforced: latency_histogram(),
            stages: Family::new_with_constructor(latency_histogram),
            flow_log_records: Counter::default(),
        }
    }
}

/// The data plane's state at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub counters: Counters,
    /// The `sg-` ID of each `sgr-` rule counted in `counters.rule_hits`.
    pub rule_groups: BTreeMap<String, String>,
    /// The `eni-` ID of each host-side veth counted in `counters.interfaces`.
    pub interface_ids: BTreeMap<String, String>,
    pub tracked_flows: u64,
    pub conntrack_capacity: u64,
    /// Flow-log events the kernel's ring buffer had no room for.
    pub flow_log_lost: u64,
}

impl Metrics {
    /// One API request answered by `front` after `took`.
    pub fn request(&self, front: &'static str, outcome: &Outcome, took: Duration) {
        let action = outcome.action.unwrap_or("unknown").to_string();
        let code = outcome.error_code.clone().unwrap_or_else(|| "OK".into());
        self.requests
            .get_or_create(&RequestLabels {
                front,
                action: action.clone(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { front, action })
            .observe(took.as_secs_f64());
    }

    /// A change enforced `took` after its request arrived (its map writes done).
    pub fn enforced(&self, took: Duration) {
        self.enforced.observe(took.as_secs_f64());
    }

    /// One step of a change took `took`.
    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.name(),
            })
            .observe(took.as_secs_f64());
    }

    /// Flow-log records written (one line per record and flow log).
    pub fn flow_log_records(&self, n: u64) {
        self.flow_log_records.inc_by(n);
    }

    /// Every metric as OpenMetrics text (ending in `# EOF`), the kernel's counters from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        let mut registry = Registry::with_prefix("firewall");
        registry.register(
            "api_requests",
            "API requests by front end, action and answer (an AWS error code, or OK)",
            self.requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "API request latency by front end and action",
            self.latency.clone(),
        );
        registry.register(
            "change_enforced_seconds",
            "From a change's arrival to the end of its kernel map writes",
            self.enforced.clone(),
        );
        registry.register(
            "change_stage_seconds",
            "The steps of a change: parse (arrival to the agent), model, store, compile, maps",
            self.stages.clone(),
        );
        registry.register(
            "flow_log_records",
            "Flow-log records written, one per line and flow log",
            self.flow_log_records.clone(),
        );
        register_dataplane(&mut registry, now);
        let mut out = String::new();
        text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

/// Counters of one scrape: fresh, set to what the kernel holds.
fn counter_family<S: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug>(
    values: impl IntoIterator<Item = (S, u64)>,
) -> Family<S, Counter> {
    let family: Family<S, Counter> = Family::default();
    for (labels, value) in values {
        family.get_or_create(&labels).inc_by(value);
    }
    family
}

type Labels = Vec<(&'static str, String)>;

fn register_dataplane(registry: &mut Registry, now: &Snapshot) {
    let c = &now.counters;
    let by_reason = |m: &BTreeMap<&'static str, u64>| -> Vec<(Labels, u64)> {
        m.iter()
            .map(|(reason, n)| (vec![("reason", reason.to_string())], *n))
            .collect()
    };
    let by_interface =
        |pick: fn(&crate::dataplane::InterfaceCounters) -> &BTreeMap<&'static str, u64>| {
            c.interfaces
                .iter()
                .flat_map(|(interface, counters)| {
                    let eni = now
                        .interface_ids
                        .get(interface)
                        .cloned()
                        .unwrap_or_default();
                    pick(counters).iter().map(move |(reason, n)| {
                        let labels: Labels = vec![
                            ("interface", interface.clone()),
                            ("network_interface_id", eni.clone()),
                            ("reason", reason.to_string()),
                        ];
                        (labels, *n)
                    })
                })
                .collect::<Vec<_>>()
        };
    registry.register(
        "drops",
        "Packets dropped, by reason, on every workload interface",
        counter_family(by_reason(&c.drops)),
    );
    registry.register(
        "passes",
        "Packets passed, by reason, on every workload interface",
        counter_family(by_reason(&c.passes)),
    );
    registry.register(
        "interface_drops",
        "Packets dropped, by attached interface and reason",
        counter_family(by_interface(|i| &i.drops)),
    );
    registry.register(
        "interface_passes",
        "Packets passed, by attached interface and reason",
        counter_family(by_interface(|i| &i.passes)),
    );
    let group_of = |rule: &str| now.rule_groups.get(rule).cloned().unwrap_or_default();
    registry.register(
        "rule_hits",
        "New flows (or untracked packets) admitted, by the rule that allowed them",
        counter_family(c.rule_hits.iter().map(|(rule, n)| {
            let labels: Labels = vec![("rule", rule.clone()), ("group", group_of(rule))];
            (labels, *n)
        })),
    );
    let mut by_group: BTreeMap<String, u64> = BTreeMap::new();
    for (rule, n) in &c.rule_hits {
        *by_group.entry(group_of(rule)).or_default() += n;
    }
    registry.register(
        "group_hits",
        "New flows (or untracked packets) admitted, by the group of the allowing rule",
        counter_family(
            by_group
                .into_iter()
                .map(|(group, n)| (vec![("group", group)] as Labels, n)),
        ),
    );
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    registry.register(
        "tracked_flows",
        "Entries in the conntrack table",
        gauge(now.tracked_flows as i64),
    );
    registry.register(
        "conntrack_capacity",
        "Entries the conntrack table holds at most (new flows are refused beyond)",
        gauge(now.conntrack_capacity as i64),
    );
    let fill: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    fill.set(if now.conntrack_capacity == 0 {
        0.0
    } else {
        now.tracked_flows as f64 / now.conntrack_capacity as f64
    });
    let lost: Counter = Counter::default();
    lost.inc_by(now.flow_log_lost);
    registry.register(
        "flow_log_lost_events",
        "Flow-log events lost because the kernel's ring buffer was full",
        lost,
    );
    registry.register(
        "conntrack_fill_ratio",
        "Tracked flows over the table's capacity",
        fill,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_holds_requests_latency_and_kernel_counters() {
        let metrics = Metrics::default();
        let outcome = |code: Option<&str>| Outcome {
            action: Some("DescribeVpcs"),
            error_code: code.map(str::to_string),
        };
        metrics.request("socket", &outcome(None), Duration::from_millis(1));
        metrics.request(
            "socket",
            &outcome(Some("InvalidVpcID.NotFound")),
            Duration::ZERO,
        );
        metrics.enforced(Duration::from_millis(3));
        let mut snapshot = Snapshot {
            tracked_flows: 5,
            conntrack_capacity: 10,
            ..Snapshot::default()
        };
        snapshot.counters.drops.insert("no-rule", 7);
        snapshot.counters.rule_hits.insert("sgr-1".into(), 4);
        snapshot.rule_groups.insert("sgr-1".into(), "sg-1".into());
        let mut web = crate::dataplane::InterfaceCounters::default();
        web.drops.insert("no-rule", 3);
        snapshot.counters.interfaces.insert("fwi1".into(), web);
        snapshot.interface_ids.insert("fwi1".into(), "eni-1".into());
        let text = metrics.render(&snapshot);
        for line in [
            r#"firewall_api_requests_total{front="socket",action="DescribeVpcs",code="OK"} 1"#,
            r#"firewall_api_requests_total{front="socket",action="DescribeVpcs",code="InvalidVpcID.NotFound"} 1"#,
            r#"firewall_api_request_duration_seconds_count{front="socket",action="DescribeVpcs"} 2"#,
            "firewall_change_enforced_seconds_count 1",
            r#"firewall_drops_total{reason="no-rule"} 7"#,
            r#"firewall_rule_hits_total{rule="sgr-1",group="sg-1"} 4"#,
            r#"firewall_group_hits_total{group="sg-1"} 4"#,
            r#"firewall_interface_drops_total{interface="fwi1",network_interface_id="eni-1",reason="no-rule"} 3"#,
            "firewall_tracked_flows 5",
            "firewall_conntrack_fill_ratio 0.5",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}

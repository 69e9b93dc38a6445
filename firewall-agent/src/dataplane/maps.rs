//! The agent's typed handles on the kernel maps, taken from the loaded object once (the only
//! place that names a map). Layouts: `firewall_common` and `docs/architecture.md`.

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
};
use firewall_common::{
    CtKey, CtValue, IfaceConfig, IfaceCounters, PeerKey, PeerValue, PolicyValue, PortKey,
    PortValue, layout,
};

use super::{DataplaneError, Result};

pub(super) const IFACES: &str = "IFACES";
pub(super) const POLICIES: &str = "POLICIES";
pub(super) const PEERS: &str = "PEERS";
pub(super) const PORTS: &str = "PORTS";
pub(super) const CONNTRACK: &str = "CONNTRACK";
pub(super) const FRAGMENTS: &str = "FRAGMENTS";
pub(super) const DROPS: &str = "DROPS";
pub(super) const PASSES: &str = "PASSES";
pub(super) const RULE_HITS: &str = "RULE_HITS";
pub(super) const IFACE_COUNTERS: &str = "IFACE_COUNTERS";
pub(super) const FLOW_EVENTS: &str = "FLOW_EVENTS";
pub(super) const FLOW_LOG_LOST: &str = "FLOW_LOG_LOST";

/// Maps that outlive the agent process when pinned (everything but the per-CPU scratch slot and
/// the flow-log ring buffer and its loss counter, which belong to the agent that reads them).
/// (`POLICIES` is not in an object of layout 4: a pin path for a map the object lacks is unused.)
pub(super) const PERSISTENT: &[&str] = &[
    IFACES,
    POLICIES,
    PEERS,
    PORTS,
    CONNTRACK,
    FRAGMENTS,
    DROPS,
    PASSES,
    RULE_HITS,
    IFACE_COUNTERS,
];

/// The maps the agent reads or writes (`FRAGMENTS` and `SCRATCH` are the kernel's alone).
pub(super) struct Maps {
    /// `IFACES`: `BPF_MAP_TYPE_ARRAY` indexed by ifindex → [`IfaceConfig`]. Array slots always
    /// exist: an unused slot is all zero (no `IFACE_MANAGED` flag), deleting is writing zero.
    pub ifaces: Array<MapData, IfaceConfig>,
    /// `POLICIES`: `BPF_MAP_TYPE_HASH`, the `policy_id` of `IFACES` → the chains it composes
    /// (`None` in an agent of layout 4, which has no such map).
    pub policies: Option<HashMap<MapData, u32, PolicyValue>>,
    /// `PEERS`: `BPF_MAP_TYPE_LPM_TRIE`, key `chain(be32) · direction · family · addr[16]`,
    /// prefix length 48 + the peer prefix bits → the chain of port sets.
    pub peers: LpmTrie<MapData, PeerKey, PeerValue>,
    /// `PORTS`: `BPF_MAP_TYPE_LPM_TRIE`, key `port_set(be32) · proto · port(be16)`, prefix length
    /// 32 (any protocol), 40 (any port) or 40 + k (a port block) → the rule slot.
    pub ports: LpmTrie<MapData, PortKey, PortValue>,
    /// `CONNTRACK`: preallocated `BPF_MAP_TYPE_HASH` keyed by the normalised 5-tuple and
    /// ifindex. The kernel deletes expired entries it meets; the agent the others.
    pub conntrack: HashMap<MapData, CtKey, CtValue>,
    /// `DROPS`: `BPF_MAP_TYPE_PERCPU_ARRAY` indexed by `DropReason as u32`.
    pub drops: PerCpuArray<MapData, u64>,
    /// `PASSES`: `BPF_MAP_TYPE_PERCPU_ARRAY` indexed by `PassReason as u32`.
    pub passes: PerCpuArray<MapData, u64>,
    /// `RULE_HITS`: `BPF_MAP_TYPE_PERCPU_ARRAY` indexed by the rule slot of `PortValue`.
    pub rule_hits: PerCpuArray<MapData, u64>,
    /// `IFACE_COUNTERS`: `BPF_MAP_TYPE_PERCPU_HASH` by ifindex → [`IfaceCounters`]; the agent
    /// creates an entry on attach and deletes it on detach, the programs count into it.
    pub iface_counters: PerCpuHashMap<MapData, u32, IfaceCounters>,
    /// `FLOW_EVENTS`: `BPF_MAP_TYPE_RINGBUF` of `FlowEvent`s, until the flow-log writer takes it.
    pub flow_events: Option<RingBuf<MapData>>,
    /// `FLOW_LOG_LOST`: `BPF_MAP_TYPE_PERCPU_ARRAY`, slot 0: events the ring buffer had no room for.
    pub flow_log_lost: PerCpuArray<MapData, u64>,
}

/// Wraps a map call's error with the map's name.
pub(super) fn map_err(name: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

impl Maps {
    /// Takes the maps out of the loaded object, checking each one's type and sizes once. The
    /// programs keep their own references: taking a map only moves the agent's file descriptor.
    pub(super) fn take(ebpf: &mut Ebpf) -> Result<Maps> {
        Ok(Maps {
            ifaces: take(ebpf, IFACES, Array::try_from)?,
            policies: if layout::COMPOSED {
                Some(take(ebpf, POLICIES, HashMap::try_from)?)
            } else {
                None
            },
            peers: take(ebpf, PEERS, LpmTrie::try_from)?,
            ports: take(ebpf, PORTS, LpmTrie::try_from)?,
            conntrack: take(ebpf, CONNTRACK, HashMap::try_from)?,
            drops: take(ebpf, DROPS, PerCpuArray::try_from)?,
            passes: take(ebpf, PASSES, PerCpuArray::try_from)?,
            rule_hits: take(ebpf, RULE_HITS, PerCpuArray::try_from)?,
            iface_counters: take(ebpf, IFACE_COUNTERS, PerCpuHashMap::try_from)?,
            flow_events: Some(take(ebpf, FLOW_EVENTS, RingBuf::try_from)?),
            flow_log_lost: take(ebpf, FLOW_LOG_LOST, PerCpuArray::try_from)?,
        })
    }
}

fn take<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    typed: impl FnOnce(aya::maps::Map) -> Result<T, MapError>,
) -> Result<T> {
    let map = ebpf
        .take_map(name)
        .ok_or(DataplaneError::MissingMap { name })?;
    typed(map).map_err(map_err(name))
}

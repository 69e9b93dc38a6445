//! Map keys, values and constants shared by the eBPF data plane and the agent.
//!
//! Everything here is plain `#[repr(C)]` data with explicit padding (no implicit holes: the kernel
//! hashes every byte of a key) and multi-byte packet fields stored as byte arrays in network order,
//! so the kernel side and the agent can never disagree about endianness.
//!
//! # How one packet is judged (a bounded number of lookups, whatever the rule count)
//!
//! 1. `IFACES[ifindex]` (an array) → the workload's `policy_id` (one per distinct set of attached
//!    groups), and `POLICIES[policy_id]` → the **chains** it composes, one per attached group
//!    (layout 5; before it the policy was its own single chain, see [`layout::previous`]).
//! 2. `CONNTRACK[normalised 5-tuple + ifindex]`: a live entry admits the packet in both directions.
//! 3. For each chain in turn until one allows: `PEERS` (LPM trie) with key
//!    `chain | direction | family | peer address` returns, for the
//!    *longest* matching peer prefix, the chain of port sets of that prefix and of its nearest
//!    covering prefixes that have rules (nearest first, at most [`PEER_CHAIN`]). Every rule covering
//!    an address is written at one of these prefixes, so the chain holds everything they allow: a
//!    /8 tcp/22 rule and a /16 tcp/80 rule give the /16 entry [{tcp/80}, {tcp/22}] and the /8 entry
//!    [{tcp/22}]. Each port set holds only the rules written at its own prefix, so a rule's entries
//!    exist once however many prefixes nest inside it; a prefix may have several (its CIDR rules,
//!    and the rules referencing each group or prefix list it is an address of, shared by every
//!    member); a chain deeper than [`PEER_CHAIN`] folds its tail into the last set.
//! 4. `PORTS` (LPM trie) with key `port_set | protocol | port`, tried along the chain until one
//!    answers (at most [`PEER_CHAIN`] lookups; the first answer is the most specific rule). Protocol
//!    `-1` is the 32-bit prefix (the port set alone), "this protocol, any port" the 40-bit prefix, and
//!    a port range is split into at most 30 aligned prefixes. ICMP uses `type << 8 | code` as port.
//!
//! Port sets are content-addressed and immutable once written: a change writes new sets first, then
//! repoints `PEERS`, then deletes what nothing points at, so every packet sees either the old or the
//! new policy.
#![no_std]

pub mod layout;

/// The direction of a packet relative to the workload, i.e. which security-group rules apply:
/// a group's inbound (ingress) or outbound (egress) rules. Stored as its `u8` value in keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Traffic delivered to the workload (tc egress on the host-side veth): SG inbound rules.
    Inbound = 0,
    /// Traffic sent by the workload (tc ingress on the host-side veth): SG outbound rules.
    Outbound = 1,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// The value kept in map keys and values.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The direction kept in a key byte; any other value is `None`.
    pub const fn from_u8(value: u8) -> Option<Direction> {
        match value {
            0 => Some(Direction::Inbound),
            1 => Some(Direction::Outbound),
            _ => None,
        }
    }

    /// AWS's `IsEgress`: outbound rules are egress rules.
    pub const fn is_egress(self) -> bool {
        matches!(self, Direction::Outbound)
    }

    /// From AWS's `IsEgress`.
    pub const fn from_egress(egress: bool) -> Direction {
        if egress {
            Direction::Outbound
        } else {
            Direction::Inbound
        }
    }

    /// The other direction (the reply of a flow travels it).
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::Inbound => Direction::Outbound,
            Direction::Outbound => Direction::Inbound,
        }
    }
}

/// Address family tags used inside keys (the Linux values).
pub mod family {
    pub const IPV4: u8 = 2;
    pub const IPV6: u8 = 10;
}

/// IP protocol numbers the data plane treats specially.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// Per-interface configuration: which compiled policy enforces this workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct IfaceConfig {
    pub policy_id: u32,
    /// [`IFACE_MANAGED`] on every slot the agent uses (the array's other slots are zero), plus
    /// [`IFACE_ENFORCING`] while the workload runs; a stopped workload's traffic is all dropped.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<IfaceConfig>() == 8);

/// [`IfaceConfig::flags`] bit: the workload is running and its policy is enforced.
pub const IFACE_ENFORCING: u32 = 1;
/// [`IfaceConfig::flags`] bit: the slot belongs to a workload (`IFACES` is an array by ifindex).
pub const IFACE_MANAGED: u32 = 2;
/// [`IfaceConfig::flags`] bits: the workload's policy has rules with the peer `0.0.0.0/0`
/// (resp. `::/0`) in both directions, so some of its IPv4 (IPv6) TCP and UDP flows may be
/// untracked (AWS): the data plane looks for that only where these bits are set.
pub const IFACE_UNTRACKED_V4: u32 = 4;
pub const IFACE_UNTRACKED_V6: u32 = 8;
/// [`IfaceConfig::flags`] bit: a flow log covers the interface, so its new flows admitted by a
/// rule, its packets a rule passes untracked and its dropped packets are sent to `FLOW_EVENTS`.
pub const IFACE_FLOW_LOG: u32 = 16;

/// [`FlowEvent::kind`]: a rule passed the packet (it opened a tracked flow, or passed untracked).
pub const FLOW_EVENT_RULE_PASS: u8 = 0;
/// [`FlowEvent::kind`]: the packet was dropped ([`FlowEvent::reason`] says why).
pub const FLOW_EVENT_DROP: u8 = 1;

/// One record of the `FLOW_EVENTS` ring buffer: a packet of a flow-logged interface that took the
/// slow path (judged by the rules, or dropped). Packets of tracked flows send nothing; their
/// counts are in the flow's `CtValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FlowEvent {
    /// The coarse clock when the packet was judged (`conntrack::now_ns`, the clock of
    /// `CtValue::last_seen_ns`).
    pub time_ns: u64,
    pub ifindex: u32,
    /// `skb->len`, from the Ethernet header on.
    pub len: u32,
    /// [`FLOW_EVENT_RULE_PASS`] or [`FLOW_EVENT_DROP`].
    pub kind: u8,
    /// The [`DropReason`] of a drop, as its `u8`.
    pub reason: u8,
    /// [`Direction`], as its `u8`.
    pub direction: u8,
    pub family: u8,
    pub proto: u8,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// The packet's source and destination (IPv4 in the first 4 bytes), as it travels.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// TCP/UDP ports; the echo identifier for ICMP echo; zero otherwise.
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub _pad2: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<FlowEvent>() == 64);

/// Key data of the `PEERS` LPM trie. The LPM prefix covers `policy_id`, `direction`, `family`
/// (48 bits) and then the peer prefix bits of `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C)]
pub struct PeerKey {
    /// Big-endian ID of the chain (one attached group's rules; a whole policy's in layout 4),
    /// so the LPM prefix bits run in key order.
    pub policy_id: [u8; 4],
    pub direction: u8,
    pub family: u8,
    /// IPv4 addresses use the first 4 bytes; the rest is zero.
    pub addr: [u8; 16],
    pub _pad: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<PeerKey>() == 24);

/// Bits of [`PeerKey`] before the address.
pub const PEER_KEY_FIXED_BITS: u32 = 48;

/// Port sets a `PEERS` entry can chain (its own and its nearest covering prefixes').
pub const PEER_CHAIN: usize = 8;

/// Value of the `PEERS` trie: the port sets of this prefix and its nearest covering prefixes with
/// rules, nearest first (a prefix's own sets first); 0 ends the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PeerValue {
    pub port_sets: [u32; PEER_CHAIN],
}

/// Chains one policy can compose: AWS's largest quota of security groups per network interface.
pub const POLICY_CHAINS: usize = 16;

/// Value of the `POLICIES` hash (key: the `policy_id` of [`IfaceConfig`]): the `PEERS` chains of
/// the policy's attached groups, one per group; 0 ends the list. A new set of groups costs one
/// entry here once its groups have chains; a packet tries the chains in order (at most
/// [`POLICY_CHAINS`] `PEERS` lookups) and the first that allows it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PolicyValue {
    pub chains: [u32; POLICY_CHAINS],
}
const _: () = assert!(core::mem::size_of::<PolicyValue>() == 64);

impl PolicyValue {
    /// The chains, in order, without the trailing zeros.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.chains.iter().copied().take_while(|c| *c != 0)
    }
}

/// Key data of the `PORTS` LPM trie. The prefix covers `port_set` (32 bits), then `proto`
/// (8 bits), then `port` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C)]
pub struct PortKey {
    pub port_set: [u8; 4],
    pub proto: u8,
    pub port: [u8; 2],
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<PortKey>() == 8);

/// Bits of [`PortKey`] before the protocol, and before the port.
pub const PORT_KEY_SET_BITS: u32 = 32;
pub const PORT_KEY_PROTO_BITS: u32 = 40;

/// Value of the `PORTS` trie: presence means allowed; `rule_slot` indexes `RULE_HITS`, the hit
/// counter of the rule the agent attributes this entry to (the one with the most specific peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PortValue {
    pub rule_slot: u32,
}

/// A rule beyond the counter capacity: allowed, not counted.
pub const NO_RULE_SLOT: u32 = u32::MAX;

/// Connection-tracking key: the 5-tuple normalised so both directions of a flow share one entry
/// (the lower `(addr, port)` endpoint first), scoped to the workload's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct CtKey {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub _pad: [u8; 2],
    pub addr_lo: [u8; 16],
    pub addr_hi: [u8; 16],
    /// TCP/UDP ports of each endpoint; the ICMP echo identifier on both for ICMP echo; zero for
    /// other protocols (tracked by addresses and protocol, as AWS does).
    pub port_lo: [u8; 2],
    pub port_hi: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<CtKey>() == 44);

/// Key of the fragment map: one datagram (IPv4 identification or IPv6 fragment ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FragKey {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub _pad: [u8; 2],
    pub id: u32,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<FragKey>() == 44);

/// Connection-tracking value (the same in layouts 4 and 5).
///
/// The per-flow counters are statistics for flow logs: the kernel adds to them with plain,
/// non-atomic additions on the entry it has already looked up, so two CPUs handling packets of
/// the same flow at the same instant may lose an increment. Verdicts never depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CtValue {
    /// `bpf_ktime_get_coarse_ns()` of the last packet.
    pub last_seen_ns: u64,
    /// Which normalised endpoint opened the flow: 0 = `lo`, 1 = `hi`.
    pub origin_is_hi: u8,
    /// [`Direction`] of the packet that opened the flow, as its `u8`.
    pub origin_direction: u8,
    /// One of [`ct_state`].
    pub state: u8,
    /// [`CT_FLAG_REPLIED`], [`CT_FLAG_STREAM`].
    pub flags: u8,
    /// The OR of the TCP flags seen, by [`CT_ORIGINAL`] / [`CT_REPLY`] (0 for other protocols).
    pub tcp_flags: [u8; 2],
    pub _pad: [u8; 2],
    /// Packets seen, by [`CT_ORIGINAL`] / [`CT_REPLY`], the opening packet included.
    pub packets: [u64; 2],
    /// Bytes of those packets as tc sees them (`skb->len`: from the Ethernet header on).
    pub bytes: [u64; 2],
}
const _: () = assert!(core::mem::size_of::<CtValue>() == 48);

/// Index of the per-direction counters of [`CtValue`]: packets from the endpoint that opened the
/// flow, and from the other one.
pub const CT_ORIGINAL: usize = 0;
pub const CT_REPLY: usize = 1;

impl CtValue {
    /// The entry of a flow `len` bytes of its opening packet (TCP flags `tcp_flags`) have just
    /// opened at `now_ns`.
    #[inline(always)]
    pub const fn opened(
        now_ns: u64,
        origin_is_hi: bool,
        origin_direction: Direction,
        state: u8,
        len: u32,
        tcp_flags: u8,
    ) -> CtValue {
        CtValue {
            last_seen_ns: now_ns,
            origin_is_hi: origin_is_hi as u8,
            origin_direction: origin_direction.as_u8(),
            state,
            flags: 0,
            tcp_flags: [tcp_flags, 0],
            _pad: [0; 2],
            packets: [1, 0],
            bytes: [len as u64, 0],
        }
    }

    /// Counts one more packet of `len` bytes in one direction (non-atomic: see the type's docs).
    #[inline(always)]
    pub fn count(&mut self, is_reply: bool, len: u32, tcp_flags: u8) {
        let i = is_reply as usize;
        self.packets[i] += 1;
        self.bytes[i] += len as u64;
        self.tcp_flags[i] |= tcp_flags;
    }
}

/// Conntrack states (TCP follows the handshake; others use `OPEN`).
pub mod ct_state {
    pub const OPEN: u8 = 0;
    pub const TCP_SYN: u8 = 1;
    pub const TCP_ESTABLISHED: u8 = 2;
    pub const TCP_CLOSING: u8 = 3;
    pub const TCP_RESET: u8 = 4;
}

/// The responder has answered at least once.
pub const CT_FLAG_REPLIED: u8 = 1;
/// UDP: more than one request/response transaction (AWS "stream", 180 s).
pub const CT_FLAG_STREAM: u8 = 2;

/// Idle timeouts in seconds. `tcp_established` is configurable (AWS `TcpEstablishedTimeout`); the
/// others are fixed at AWS's published values or, where AWS publishes none, Linux conntrack's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CtTimeouts {
    pub tcp_established: u32,
    pub tcp_transitory: u32,
    pub tcp_reset: u32,
    pub udp: u32,
    pub udp_stream: u32,
    pub icmp: u32,
    pub other: u32,
    pub _pad: u32,
}

impl CtTimeouts {
    pub const AWS_DEFAULT: CtTimeouts = CtTimeouts {
        tcp_established: 432_000,
        tcp_transitory: 120,
        tcp_reset: 10,
        udp: 30,
        udp_stream: 180,
        icmp: 30,
        other: 600,
        _pad: 0,
    };

    /// The idle timeout of an entry, in nanoseconds. Shared by the kernel (expiry on lookup) and the
    /// agent (garbage collection), so both agree on what is expired.
    #[inline(always)]
    pub fn idle_timeout_ns(&self, proto: u8, value: &CtValue) -> u64 {
        let seconds = match proto {
            proto::TCP => match value.state {
                ct_state::TCP_ESTABLISHED => self.tcp_established,
                ct_state::TCP_RESET => self.tcp_reset,
                _ => self.tcp_transitory,
            },
            proto::UDP => {
                if value.flags & CT_FLAG_STREAM != 0 {
                    self.udp_stream
                } else {
                    self.udp
                }
            }
            proto::ICMP | proto::ICMPV6 => self.icmp,
            _ => self.other,
        };
        seconds as u64 * 1_000_000_000
    }
}

/// Why a packet was dropped: a closed set shared by kernel and agent; the index into `DROPS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DropReason {
    /// No rule of any attached group allows the packet.
    NoRule = 0,
    /// A header is truncated or malformed.
    Malformed = 1,
    /// The conntrack table is full: new flows fail closed.
    CtFull = 2,
    /// A later IP fragment whose first fragment was not seen passing.
    Fragment = 3,
    /// The workload is stopped.
    NotRunning = 4,
}

impl DropReason {
    pub const COUNT: u32 = 5;
    pub const ALL: [DropReason; Self::COUNT as usize] = [
        DropReason::NoRule,
        DropReason::Malformed,
        DropReason::CtFull,
        DropReason::Fragment,
        DropReason::NotRunning,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NoRule => "no-rule",
            DropReason::Malformed => "malformed",
            DropReason::CtFull => "conntrack-full",
            DropReason::Fragment => "fragment",
            DropReason::NotRunning => "not-running",
        }
    }
}

/// Why a packet passed: a closed set shared by kernel and agent; the index into `PASSES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PassReason {
    /// A live conntrack entry.
    Conntrack = 0,
    /// A rule allowed a new flow.
    Rule = 1,
    /// Traffic security groups never filter (ARP, IPv6 neighbour discovery, DHCP).
    Exempt = 2,
    /// An ICMP error about a live tracked flow (e.g. fragmentation needed, packet too big).
    Related = 3,
    /// A later fragment of a datagram whose first fragment passed.
    Fragment = 4,
}

impl PassReason {
    pub const COUNT: u32 = 5;
    pub const ALL: [PassReason; Self::COUNT as usize] = [
        PassReason::Conntrack,
        PassReason::Rule,
        PassReason::Exempt,
        PassReason::Related,
        PassReason::Fragment,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            PassReason::Conntrack => "conntrack",
            PassReason::Rule => "rule",
            PassReason::Exempt => "exempt",
            PassReason::Related => "related",
            PassReason::Fragment => "fragment",
        }
    }
}

/// Per-interface verdict counters (`IFACE_COUNTERS`, a per-CPU hash keyed by ifindex): the
/// agent creates an interface's entry, zeroed, when it attaches the programs there and deletes
/// it when it detaches them; the programs only count into an entry that exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IfaceCounters {
    /// Indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT as usize],
    /// Indexed by `PassReason as usize`.
    pub passes: [u64; PassReason::COUNT as usize],
}
const _: () = assert!(core::mem::size_of::<IfaceCounters>() == 80);

/// Map capacities (the agent may override them at load time).
pub mod capacity {
    /// `IFACES` is an array indexed by ifindex (an inlined lookup); larger ifindexes are refused.
    pub const IFACES: u32 = 1 << 16;
    /// LPM tries allocate per entry (`BPF_F_NO_PREALLOC`): generous limits cost nothing. The
    /// closure makes `PORTS` grow faster than the rule count (≈ 9 entries per rule at 10k).
    pub const PEERS: u32 = 1 << 22;
    pub const PORTS: u32 = 1 << 22;
    /// One entry per distinct set of attached groups in use (a hash: IDs are never reused).
    pub const POLICIES: u32 = 1 << 14;
    pub const CONNTRACK: u32 = 1 << 18;
    pub const FRAGMENTS: u32 = 1 << 14;
    pub const RULE_HITS: u32 = 1 << 17;
    /// Interfaces counted one by one (preallocated per CPU); past it, only the totals count.
    pub const IFACE_COUNTERS: u32 = 1 << 12;
    /// Bytes of the `FLOW_EVENTS` ring buffer (a power of two, page-aligned): 16384 events.
    pub const FLOW_EVENTS_BYTES: u32 = 1 << 20;
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are #[repr(C)] with no implicit padding (sizes asserted above).
    unsafe impl aya::Pod for IfaceConfig {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerValue {}
    unsafe impl aya::Pod for PolicyValue {}
    unsafe impl aya::Pod for PortKey {}
    unsafe impl aya::Pod for PortValue {}
    unsafe impl aya::Pod for CtKey {}
    unsafe impl aya::Pod for CtValue {}
    unsafe impl aya::Pod for FragKey {}
    unsafe impl aya::Pod for CtTimeouts {}
    unsafe impl aya::Pod for IfaceCounters {}
    unsafe impl aya::Pod for FlowEvent {}
}

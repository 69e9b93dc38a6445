//! The kernel side, through aya: loads the embedded eBPF object, attaches its two TC programs to
//! each workload's host-side veth (tcx, falling back to netlink `clsact`), writes the compiler's
//! map contents as a make-before-break diff, and garbage-collects expired conntrack entries.

use std::{
    collections::BTreeMap,
    ffi::CString,
    io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, LpmTrie, MapData, MapError, PerCpuArray, PerCpuValues, lpm_trie::Key},
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType,
        links::{FdLink, PinnedLink},
        tc::{self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
    },
};
use firewall_common::{
    CtKey, CtTimeouts, CtValue, Direction, DropReason, IFACE_ENFORCING, IFACE_MANAGED, IfaceConfig,
    PassReason, PeerKey, PeerValue, PortKey, PortValue, family, proto,
};

use crate::compiler::{self, Desired};

/// The data-plane object, built by `build.rs` from `firewall-ebpf` (public for the benchmarks,
/// which also load its `bench_*` programs).
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/firewall-ebpf"));

/// Program seeing packets delivered to the workload (attached at tc egress of the host veth).
const PROG_TO_WORKLOAD: &str = "sg_to_workload";
/// Program seeing packets the workload sends (attached at tc ingress of the host veth).
const PROG_FROM_WORKLOAD: &str = "sg_from_workload";

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the eBPF object failed")]
    Load(#[from] aya::EbpfError),
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("interface {name}: {source}")]
    Interface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("bpffs at {path}: {source}")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pinning {path}: {message}")]
    Pin { path: PathBuf, message: String },
}

fn pin_err(path: &Path, error: impl std::fmt::Display) -> DataplaneError {
    DataplaneError::Pin {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

/// How to load the data plane.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub timeouts: CtTimeouts,
    /// A directory on bpffs to pin maps and links in (None: nothing outlives the process).
    pub pins: Option<PathBuf>,
    /// Tracked flows across all workloads; when full, new flows are refused.
    pub conntrack_capacity: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            timeouts: CtTimeouts::AWS_DEFAULT,
            pins: None,
            conntrack_capacity: firewall_common::capacity::CONNTRACK,
        }
    }
}

/// An `IFACES` slot no workload uses.
const UNUSED_IFACE: IfaceConfig = IfaceConfig {
    policy_id: 0,
    flags: 0,
};

/// A workload interface with our programs attached.
struct Attachment {
    ifindex: u32,
    to_workload: SchedClassifierLinkId,
    from_workload: SchedClassifierLinkId,
}

pub struct Dataplane {
    ebpf: Ebpf,
    attached: BTreeMap<String, Attachment>,
    /// What the maps hold now (the last successfully applied [`Desired`], entry by entry).
    current: Desired,
    timeouts: CtTimeouts,
    /// Where maps and links are pinned (`<bpffs>/firewall-agent`), if anywhere.
    pins: Option<PathBuf>,
    /// The maps were found pinned: this agent took over from a previous one.
    restored: bool,
}

/// Maps that outlive the agent process when pinned (everything but the per-CPU scratch slot).
const PERSISTENT_MAPS: [&str; 8] = [
    "IFACES",
    "PEERS",
    "PORTS",
    "CONNTRACK",
    "FRAGMENTS",
    "DROPS",
    "PASSES",
    "RULE_HITS",
];

/// Bumped whenever a persistent map's key or value layout changes, so an agent never reuses
/// maps pinned by an incompatible one.
const MAP_LAYOUT_VERSION: u32 = 3;

/// Link pin file name: `<interface>@<ingress|egress>`.
fn link_pin_name(interface: &str, attach_type: TcAttachType) -> String {
    let hook = if attach_type == TcAttachType::Ingress {
        "ingress"
    } else {
        "egress"
    };
    format!("{interface}@{hook}")
}

/// The ifindex of an interface in the agent's network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// Mounts bpffs at `path` unless one is mounted there already (`ip netns exec` gives a fresh
/// `/sys` without it).
pub fn ensure_bpffs(path: &Path) -> Result<()> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let err = |source| DataplaneError::Bpffs {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| err(io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    if stat.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    let fstype = c"bpf";
    // SAFETY: all pointers are valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c_path.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    tracing::info!(path = %path.display(), "mounted bpffs");
    Ok(())
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the clock of `bpf_ktime_get_coarse_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Drop and pass counters summed over CPUs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub drops: BTreeMap<&'static str, u64>,
    pub passes: BTreeMap<&'static str, u64>,
    /// Packets admitted by each rule (new flows; tracked packets count under `passes.conntrack`).
    pub rule_hits: BTreeMap<String, u64>,
}

impl Dataplane {
    /// Loads the programs. Without `pins`, creates fresh maps and attaches nothing. With `pins`
    /// (a directory on bpffs), reuses the maps pinned there and takes over the pinned links of a
    /// previous agent: the new programs replace the old ones in place (`bpf_link_update`), so
    /// enforcement and tracked flows continue without a gap.
    pub fn load(options: &LoadOptions) -> Result<Dataplane> {
        let LoadOptions {
            timeouts,
            pins,
            conntrack_capacity,
        } = options;
        let timeouts = *timeouts;
        let pins = pins
            .as_ref()
            .map(|dir| dir.join(format!("v{MAP_LAYOUT_VERSION}")));
        let mut loader = EbpfLoader::new();
        loader.override_global("CT_TIMEOUTS", &timeouts, true);
        // A pinned map keeps the size it was created with.
        loader.map_max_entries("CONNTRACK", *conntrack_capacity);
        let mut restored = false;
        if let Some(dir) = &pins {
            for sub in ["maps", "links"] {
                std::fs::create_dir_all(dir.join(sub)).map_err(|e| pin_err(&dir.join(sub), e))?;
            }
            for name in PERSISTENT_MAPS {
                let path = dir.join("maps").join(name);
                restored |= path.exists();
                loader.map_pin_path(name, path);
            }
        }
        let mut ebpf = loader.load(EBPF_OBJECT)?;
        for name in [PROG_TO_WORKLOAD, PROG_FROM_WORKLOAD] {
            let program: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(DataplaneError::Program {
                    name,
                    source: ProgramError::UnexpectedProgramType,
                })?
                .try_into()
                .map_err(|source| DataplaneError::Program { name, source })?;
            program
                .load()
                .map_err(|source| DataplaneError::Program { name, source })?;
        }
        let mut dataplane = Dataplane {
            ebpf,
            attached: BTreeMap::new(),
            current: Desired::default(),
            timeouts,
            pins,
            restored,
        };
        if restored {
            dataplane.restore()?;
        }
        Ok(dataplane)
    }

    /// Whether this agent took over maps and links pinned by a previous one.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// The highest policy and port-set IDs in the kernel maps (new IDs must start above them).
    pub fn highest_ids(&self) -> (u32, u32) {
        let policy = self
            .current
            .peers
            .keys()
            .map(|(_, k)| u32::from_be_bytes(k.policy_id))
            .max()
            .unwrap_or(0);
        let sets = self
            .current
            .ports
            .keys()
            .map(|(_, k)| u32::from_be_bytes(k.port_set));
        let peer_sets = self.current.peers.values().flat_map(|v| v.port_sets);
        (policy, sets.chain(peer_sets).max().unwrap_or(0))
    }

    /// Tells the data plane which rule each hit-counter slot already counts for (after a
    /// restart), so those counters are kept rather than reset.
    pub fn assume_rule_slots(&mut self, slots: BTreeMap<u32, String>) {
        self.current.rule_slots = slots;
    }

    /// Reads what the kernel holds and re-adopts the pinned links.
    fn restore(&mut self) -> Result<()> {
        {
            let peers: LpmTrie<_, PeerKey, PeerValue> =
                LpmTrie::try_from(self.ebpf.map("PEERS").expect("PEERS map"))
                    .map_err(map_err("PEERS"))?;
            for entry in peers.iter() {
                let (key, value) = entry.map_err(map_err("PEERS"))?;
                self.current
                    .peers
                    .insert((key.prefix_len(), key.data()), value);
            }
            let ports: LpmTrie<_, PortKey, PortValue> =
                LpmTrie::try_from(self.ebpf.map("PORTS").expect("PORTS map"))
                    .map_err(map_err("PORTS"))?;
            for entry in ports.iter() {
                let (key, value) = entry.map_err(map_err("PORTS"))?;
                self.current
                    .ports
                    .insert((key.prefix_len(), key.data()), value);
            }
        }
        let links_dir = self
            .pins
            .clone()
            .expect("restored implies pins")
            .join("links");
        let mut found: BTreeMap<String, Vec<(TcAttachType, PathBuf)>> = BTreeMap::new();
        for entry in std::fs::read_dir(&links_dir).map_err(|e| pin_err(&links_dir, e))? {
            let path = entry.map_err(|e| pin_err(&links_dir, e))?.path();
            let Some((interface, hook)) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit_once('@'))
            else {
                continue;
            };
            let attach_type = if hook == "ingress" {
                TcAttachType::Ingress
            } else {
                TcAttachType::Egress
            };
            found
                .entry(interface.to_string())
                .or_default()
                .push((attach_type, path.clone()));
        }
        let known: Vec<(u32, IfaceConfig)> = self
            .ifaces_map()?
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.ok().map(|c| (i as u32, c)))
            .filter(|(_, c)| c.flags & IFACE_MANAGED != 0)
            .collect();
        for (interface, links) in found {
            let index = ifindex(&interface).ok();
            let mut adopted = Vec::new();
            for (attach_type, path) in links {
                let program = if attach_type == TcAttachType::Ingress {
                    PROG_FROM_WORKLOAD
                } else {
                    PROG_TO_WORKLOAD
                };
                let link = PinnedLink::from_pin(&path).map_err(|e| pin_err(&path, e))?;
                let link = SchedClassifierLink::try_from(FdLink::from(link))
                    .map_err(|e| pin_err(&path, e))?;
                if index.is_none() {
                    // The interface is gone and its links with it.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                let id = self
                    .program(program)
                    .attach_to_link(link)
                    .map_err(|source| DataplaneError::Program {
                        name: program,
                        source,
                    })?;
                adopted.push((attach_type, id));
            }
            let Some(index) = index else { continue };
            if adopted.len() != 2 {
                // Half an attachment: detach what there is; apply() re-attaches both.
                for (attach_type, id) in adopted {
                    let program = if attach_type == TcAttachType::Ingress {
                        PROG_FROM_WORKLOAD
                    } else {
                        PROG_TO_WORKLOAD
                    };
                    let _ = self.program(program).detach(id);
                    if let Some(dir) = &self.pins {
                        let _ = std::fs::remove_file(
                            dir.join("links")
                                .join(link_pin_name(&interface, attach_type)),
                        );
                    }
                }
                continue;
            }
            let (second_type, second) = adopted.pop().expect("two links");
            let (_, first) = adopted.pop().expect("two links");
            let (to_workload, from_workload) = if second_type == TcAttachType::Ingress {
                (first, second)
            } else {
                (second, first)
            };
            if let Some((_, config)) = known.iter().find(|(i, _)| *i == index) {
                self.current.ifaces.insert(interface.clone(), *config);
            }
            self.attached.insert(
                interface,
                Attachment {
                    ifindex: index,
                    to_workload,
                    from_workload,
                },
            );
        }
        // Interfaces whose links did not survive leave no policy behind.
        let adopted: Vec<u32> = self.attached.values().map(|a| a.ifindex).collect();
        let mut ifaces = self.ifaces_map()?;
        for (index, _) in known.iter().filter(|(i, _)| !adopted.contains(i)) {
            let _ = ifaces.set(*index, UNUSED_IFACE, 0);
        }
        tracing::info!(
            interfaces = self.attached.len(),
            peers = self.current.peers.len(),
            ports = self.current.ports.len(),
            "took over pinned maps and links"
        );
        Ok(())
    }

    /// The loaded program for `name`, for `BPF_PROG_TEST_RUN`.
    pub fn program(&mut self, name: &'static str) -> &mut SchedClassifier {
        self.ebpf
            .program_mut(name)
            .and_then(|p| p.try_into().ok())
            .expect("programs are loaded in Dataplane::load")
    }

    /// Writes `desired` into the kernel: new port sets, then peers, then interfaces (attaching
    /// new ones), and only then deletes what is no longer wanted, so no packet ever meets a
    /// half-applied change.
    pub fn apply(&mut self, desired: &Desired) -> Result<()> {
        let written = desired
            .ports
            .iter()
            .filter(|(k, v)| self.current.ports.get(k) != Some(v))
            .count()
            + desired
                .peers
                .iter()
                .filter(|(k, v)| self.current.peers.get(k) != Some(v))
                .count();
        let removed = self
            .current
            .ports
            .keys()
            .filter(|k| !desired.ports.contains_key(k))
            .count()
            + self
                .current
                .peers
                .keys()
                .filter(|k| !desired.peers.contains_key(k))
                .count();
        tracing::debug!(written, removed, "applying policy entries");
        self.reset_new_rule_counters(desired)?;
        {
            let mut ports: LpmTrie<_, PortKey, PortValue> =
                LpmTrie::try_from(self.ebpf.map_mut("PORTS").expect("PORTS map"))
                    .map_err(map_err("PORTS"))?;
            for (key, value) in &desired.ports {
                if self.current.ports.get(key) != Some(value) {
                    ports
                        .insert(&Key::new(key.0, key.1), value, 0)
                        .map_err(map_err("PORTS"))?;
                    self.current.ports.insert(*key, *value);
                }
            }
        }
        {
            let mut peers: LpmTrie<_, PeerKey, PeerValue> =
                LpmTrie::try_from(self.ebpf.map_mut("PEERS").expect("PEERS map"))
                    .map_err(map_err("PEERS"))?;
            for (key, value) in &desired.peers {
                if self.current.peers.get(key) != Some(value) {
                    peers
                        .insert(&Key::new(key.0, key.1), value, 0)
                        .map_err(map_err("PEERS"))?;
                    self.current.peers.insert(*key, *value);
                }
            }
        }
        let mut first_error = None;
        for (name, config) in &desired.ifaces {
            if let Err(e) = self.ensure_attached(name, *config) {
                tracing::error!(interface = %name, error = %e, "cannot enforce on interface");
                first_error.get_or_insert(e);
            }
        }
        let gone: Vec<String> = self
            .attached
            .keys()
            .filter(|name| !desired.ifaces.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            self.detach(&name)?;
        }
        {
            let mut peers: LpmTrie<_, PeerKey, PeerValue> =
                LpmTrie::try_from(self.ebpf.map_mut("PEERS").expect("PEERS map"))
                    .map_err(map_err("PEERS"))?;
            let stale: Vec<_> = self
                .current
                .peers
                .keys()
                .filter(|k| !desired.peers.contains_key(*k))
                .copied()
                .collect();
            for key in stale {
                peers
                    .remove(&Key::new(key.0, key.1))
                    .map_err(map_err("PEERS"))?;
                self.current.peers.remove(&key);
            }
        }
        {
            let mut ports: LpmTrie<_, PortKey, PortValue> =
                LpmTrie::try_from(self.ebpf.map_mut("PORTS").expect("PORTS map"))
                    .map_err(map_err("PORTS"))?;
            let stale: Vec<_> = self
                .current
                .ports
                .keys()
                .filter(|k| !desired.ports.contains_key(*k))
                .copied()
                .collect();
            for key in stale {
                ports
                    .remove(&Key::new(key.0, key.1))
                    .map_err(map_err("PORTS"))?;
                self.current.ports.remove(&key);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A slot starts counting from zero for the rule it is (re)assigned to, before any entry
    /// attributes hits to it.
    fn reset_new_rule_counters(&mut self, desired: &Desired) -> Result<()> {
        let fresh: Vec<u32> = desired
            .rule_slots
            .iter()
            .filter(|(slot, rule)| self.current.rule_slots.get(slot) != Some(rule))
            .map(|(slot, _)| *slot)
            .collect();
        if !fresh.is_empty() {
            let cpus = aya::util::nr_cpus().map_err(|(_, source)| DataplaneError::Interface {
                name: "possible CPUs".into(),
                source,
            })?;
            let mut hits: PerCpuArray<_, u64> =
                PerCpuArray::try_from(self.ebpf.map_mut("RULE_HITS").expect("RULE_HITS map"))
                    .map_err(map_err("RULE_HITS"))?;
            for slot in fresh {
                let zeros = PerCpuValues::try_from(vec![0u64; cpus]).map_err(|source| {
                    DataplaneError::Interface {
                        name: "possible CPUs".into(),
                        source,
                    }
                })?;
                hits.set(slot, zeros, 0).map_err(map_err("RULE_HITS"))?;
            }
        }
        self.current.rule_slots = desired.rule_slots.clone();
        Ok(())
    }

    fn ifaces_map(&mut self) -> Result<Array<&mut MapData, IfaceConfig>> {
        Array::try_from(self.ebpf.map_mut("IFACES").expect("IFACES map")).map_err(map_err("IFACES"))
    }

    fn ensure_attached(&mut self, name: &str, config: IfaceConfig) -> Result<()> {
        if let Some(attachment) = self.attached.get(name) {
            let index = attachment.ifindex;
            let previous = self.current.ifaces.get(name).copied();
            if previous != Some(config) {
                self.ifaces_map()?
                    .set(index, config, 0)
                    .map_err(map_err("IFACES"))?;
                self.current.ifaces.insert(name.to_string(), config);
                let stopped = config.flags & IFACE_ENFORCING == 0;
                if stopped && previous.is_some_and(|p| p.flags & IFACE_ENFORCING != 0) {
                    // A stopped workload keeps no connections.
                    self.flush_conntrack(|key, _| key.ifindex == index)?;
                }
            }
            return Ok(());
        }
        let index = ifindex(name).map_err(|source| DataplaneError::Interface {
            name: name.to_string(),
            source,
        })?;
        if index >= firewall_common::capacity::IFACES {
            return Err(DataplaneError::Interface {
                name: name.to_string(),
                source: io::Error::other(format!(
                    "ifindex {index} is beyond the data plane's interface table"
                )),
            });
        }
        // The policy is in place before the first packet reaches the programs.
        self.ifaces_map()?
            .set(index, config, 0)
            .map_err(map_err("IFACES"))?;
        let to_workload = self.attach_program(PROG_TO_WORKLOAD, name, TcAttachType::Egress)?;
        let from_workload =
            match self.attach_program(PROG_FROM_WORKLOAD, name, TcAttachType::Ingress) {
                Ok(link) => link,
                Err(e) => {
                    let _ = self.program(PROG_TO_WORKLOAD).detach(to_workload);
                    return Err(e);
                }
            };
        self.attached.insert(
            name.to_string(),
            Attachment {
                ifindex: index,
                to_workload,
                from_workload,
            },
        );
        self.current.ifaces.insert(name.to_string(), config);
        tracing::info!(interface = %name, ifindex = index, policy = config.policy_id, "attached");
        Ok(())
    }

    fn attach_program(
        &mut self,
        program_name: &'static str,
        interface: &str,
        attach_type: TcAttachType,
    ) -> Result<SchedClassifierLinkId> {
        let pin = self.pins.as_ref().map(|dir| {
            dir.join("links")
                .join(link_pin_name(interface, attach_type))
        });
        let program = self.program(program_name);
        let program_err = |source| DataplaneError::Program {
            name: program_name,
            source,
        };
        let tcx = TcAttachOptions::TcxOrder(LinkOrder::first());
        match program.attach_with_options(interface, attach_type, tcx) {
            Ok(id) => {
                let Some(pin) = pin else { return Ok(id) };
                // Pin the tcx link so it outlives this process; the program keeps owning it.
                let link = program.take_link(id).map_err(program_err)?;
                let fd_link = FdLink::try_from(link).map_err(|e| pin_err(&pin, e))?;
                let _ = std::fs::remove_file(&pin); // a stale pin of a vanished interface
                let pinned = fd_link.pin(&pin).map_err(|e| pin_err(&pin, e))?;
                let link = SchedClassifierLink::try_from(FdLink::from(pinned))
                    .map_err(|e| pin_err(&pin, e))?;
                program.attach_to_link(link).map_err(program_err)
            }
            Err(error) => {
                tracing::warn!(%interface, %error, "tcx attach failed; falling back to netlink clsact (not kept across restarts)");
                let _ = tc::qdisc_add_clsact(interface); // already present is fine
                let netlink = TcAttachOptions::Netlink(NlOptions::default());
                program
                    .attach_with_options(interface, attach_type, netlink)
                    .map_err(program_err)
            }
        }
    }

    /// Detaches from a workload interface and forgets its policy and tracked flows.
    fn detach(&mut self, name: &str) -> Result<()> {
        let Some(attachment) = self.attached.remove(name) else {
            return Ok(());
        };
        // The interface may be gone already, taking the links with it.
        let _ = self
            .program(PROG_TO_WORKLOAD)
            .detach(attachment.to_workload);
        let _ = self
            .program(PROG_FROM_WORKLOAD)
            .detach(attachment.from_workload);
        let _ = self.ifaces_map()?.set(attachment.ifindex, UNUSED_IFACE, 0);
        self.current.ifaces.remove(name);
        self.flush_conntrack(|key, _| key.ifindex == attachment.ifindex)?;
        tracing::info!(interface = %name, "detached");
        Ok(())
    }

    /// Deletes the conntrack entries `doomed` selects; returns how many.
    fn flush_conntrack(&mut self, doomed: impl Fn(&CtKey, &CtValue) -> bool) -> Result<usize> {
        let mut conntrack: HashMap<_, CtKey, CtValue> =
            HashMap::try_from(self.ebpf.map_mut("CONNTRACK").expect("CONNTRACK map"))
                .map_err(map_err("CONNTRACK"))?;
        let victims: Vec<CtKey> = conntrack
            .iter()
            .filter_map(|entry| entry.ok())
            .filter(|(k, v)| doomed(k, v))
            .map(|(k, _)| k)
            .collect();
        for key in &victims {
            // Deleted concurrently by the kernel on expiry: fine.
            let _ = conntrack.remove(key);
        }
        Ok(victims.len())
    }

    /// Deletes the tracked flows on enforced workloads that `desired` would not admit as new
    /// flows (the explicit "cut what the change no longer allows"; AWS itself keeps them).
    /// Returns how many.
    pub fn flush_disallowed_flows(&mut self, desired: &Desired) -> Result<usize> {
        let policies: BTreeMap<u32, u32> = self
            .attached
            .iter()
            .filter_map(|(name, a)| desired.ifaces.get(name).map(|c| (a.ifindex, c.policy_id)))
            .collect();
        self.flush_conntrack(|key, value| match policies.get(&key.ifindex) {
            Some(policy) => {
                // A direction the compiler never writes matches no rule.
                let Some(direction) = Direction::from_u8(value.origin_direction) else {
                    return true;
                };
                let (peer, proto, port) = origin_packet(key, direction, value);
                compiler::evaluate(desired, *policy, direction, peer, proto, port).is_none()
            }
            None => false,
        })
    }

    /// Removes expired conntrack entries (the kernel only expires entries it meets again).
    pub fn collect_expired_flows(&mut self) -> Result<usize> {
        let now = monotonic_ns();
        let timeouts = self.timeouts;
        self.flush_conntrack(|key, value| {
            now.saturating_sub(value.last_seen_ns) > timeouts.idle_timeout_ns(key.proto, value)
        })
    }

    /// Number of live conntrack entries.
    pub fn tracked_flows(&self) -> usize {
        self.ebpf
            .map("CONNTRACK")
            .and_then(|m| HashMap::<_, CtKey, CtValue>::try_from(m).ok())
            .map(|m| m.keys().count())
            .unwrap_or(0)
    }

    pub fn counters(&self) -> Result<Counters> {
        let read = |name: &'static str, index: u32| -> Result<u64> {
            let array: PerCpuArray<_, u64> =
                PerCpuArray::try_from(self.ebpf.map(name).expect("counter map"))
                    .map_err(map_err(name))?;
            Ok(array.get(&index, 0).map_err(map_err(name))?.iter().sum())
        };
        let mut counters = Counters::default();
        for reason in DropReason::ALL {
            counters
                .drops
                .insert(reason.name(), read("DROPS", reason as u32)?);
        }
        for (slot, rule) in &self.current.rule_slots {
            counters
                .rule_hits
                .insert(rule.clone(), read("RULE_HITS", *slot)?);
        }
        for reason in PassReason::ALL {
            counters
                .passes
                .insert(reason.name(), read("PASSES", reason as u32)?);
        }
        Ok(counters)
    }
}

/// What the rules saw of the packet that opened a tracked flow: the peer address (the initiator
/// for inbound flows, the responder for outbound ones), the protocol and the matched port.
fn origin_packet(key: &CtKey, direction: Direction, value: &CtValue) -> (IpAddr, u8, u16) {
    let origin_is_hi = value.origin_is_hi != 0;
    let (initiator, responder, responder_port) = if origin_is_hi {
        (key.addr_hi, key.addr_lo, key.port_lo)
    } else {
        (key.addr_lo, key.addr_hi, key.port_hi)
    };
    let peer_bytes = if direction == Direction::Inbound {
        initiator
    } else {
        responder
    };
    let peer = if key.family == family::IPV4 {
        IpAddr::from([peer_bytes[0], peer_bytes[1], peer_bytes[2], peer_bytes[3]])
    } else {
        IpAddr::from(peer_bytes)
    };
    let port = match key.proto {
        proto::TCP | proto::UDP => u16::from_be_bytes(responder_port),
        proto::ICMP => 8 << 8,     // echo request, code 0
        proto::ICMPV6 => 128 << 8, // echo request, code 0
        _ => 0,
    };
    (peer, key.proto, port)
}

/// Programs by direction, for tests that run them through `BPF_PROG_TEST_RUN`.
pub mod programs {
    pub const TO_WORKLOAD: &str = super::PROG_TO_WORKLOAD;
    pub const FROM_WORKLOAD: &str = super::PROG_FROM_WORKLOAD;
}

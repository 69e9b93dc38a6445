//! The kernel side, through aya: loads the embedded eBPF object, attaches its two TC programs to
//! each workload's host-side veth (tcx, falling back to netlink `clsact`), writes the compiler's
//! map contents as a make-before-break diff, and garbage-collects expired conntrack entries.

use std::{
    collections::BTreeMap,
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, LpmTrie, MapData, MapError, PerCpuArray, PerCpuValues, lpm_trie::Key},
    programs::{
        LinkOrder, ProgramError, SchedClassifier, TcAttachType,
        tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions},
    },
};
use firewall_common::{
    CtKey, CtTimeouts, CtValue, DropReason, IfaceConfig, PeerKey, PeerValue, PortKey, PortValue,
    pass_reason,
};

use crate::compiler::Desired;

/// The data-plane object, built by `build.rs` from `firewall-ebpf`.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/firewall-ebpf"));

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
}

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

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

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
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
    /// Loads the programs and creates the maps; nothing is attached yet.
    pub fn load(timeouts: CtTimeouts) -> Result<Dataplane> {
        let mut ebpf = EbpfLoader::new()
            .override_global("CT_TIMEOUTS", &timeouts, true)
            .load(EBPF_OBJECT)?;
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
        Ok(Dataplane {
            ebpf,
            attached: BTreeMap::new(),
            current: Desired::default(),
            timeouts,
        })
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

    fn ifaces_map(&mut self) -> Result<HashMap<&mut MapData, u32, IfaceConfig>> {
        HashMap::try_from(self.ebpf.map_mut("IFACES").expect("IFACES map"))
            .map_err(map_err("IFACES"))
    }

    fn ensure_attached(&mut self, name: &str, config: IfaceConfig) -> Result<()> {
        if let Some(attachment) = self.attached.get(name) {
            let index = attachment.ifindex;
            if self.current.ifaces.get(name) != Some(&config) {
                self.ifaces_map()?
                    .insert(index, config, 0)
                    .map_err(map_err("IFACES"))?;
                self.current.ifaces.insert(name.to_string(), config);
            }
            return Ok(());
        }
        let index = ifindex(name).map_err(|source| DataplaneError::Interface {
            name: name.to_string(),
            source,
        })?;
        // The policy is in place before the first packet reaches the programs.
        self.ifaces_map()?
            .insert(index, config, 0)
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
        let program = self.program(program_name);
        let tcx = TcAttachOptions::TcxOrder(LinkOrder::first());
        program
            .attach_with_options(interface, attach_type, tcx)
            .or_else(|error| {
                tracing::warn!(%interface, %error, "tcx attach failed; falling back to netlink clsact");
                let _ = tc::qdisc_add_clsact(interface); // already present is fine
                let netlink = TcAttachOptions::Netlink(NlOptions::default());
                program.attach_with_options(interface, attach_type, netlink)
            })
            .map_err(|source| DataplaneError::Program {
                name: program_name,
                source,
            })
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
        let _ = self.ifaces_map()?.remove(&attachment.ifindex);
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
        for (name, index) in [
            ("conntrack", pass_reason::CONNTRACK),
            ("rule", pass_reason::RULE),
            ("exempt", pass_reason::EXEMPT),
            ("related", pass_reason::RELATED),
            ("fragment", pass_reason::FRAGMENT),
        ] {
            counters.passes.insert(name, read("PASSES", index)?);
        }
        Ok(counters)
    }
}

/// Programs by direction, for tests that run them through `BPF_PROG_TEST_RUN`.
pub mod programs {
    pub const TO_WORKLOAD: &str = super::PROG_TO_WORKLOAD;
    pub const FROM_WORKLOAD: &str = super::PROG_FROM_WORKLOAD;
}

//! Loading the embedded eBPF object: global configuration, map sizes, pinned maps reused, every
//! program (both TC programs and the XDP one) loaded (verified) before anything is attached.

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    programs::{ProgramError, SchedClassifier, Xdp},
};
use firewall_common::CtTimeouts;

use super::{AttachMode, DataplaneError, Result, maps, owner, pins, programs};

/// The data-plane object, built by `build.rs` from `firewall-ebpf` (public for the benchmarks,
/// which also load its `bench_*` programs).
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/firewall-ebpf"));

/// How to load the data plane.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub timeouts: CtTimeouts,
    /// A directory on bpffs to pin maps and links in (None: nothing outlives the process).
    pub pins: Option<PathBuf>,
    /// Tracked flows across all workloads; when full, new flows are refused.
    pub conntrack_capacity: u32,
    /// The hook judging what workloads send.
    pub attach: AttachMode,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            timeouts: CtTimeouts::AWS_DEFAULT,
            pins: None,
            conntrack_capacity: firewall_common::capacity::CONNTRACK,
            attach: AttachMode::Tc,
        }
    }
}

/// The loaded object and where its maps and links are pinned.
pub(super) struct Loaded {
    pub ebpf: Ebpf,
    /// `<pins>/v<layout version>`, if pinning.
    pub pins: Option<PathBuf>,
    /// Maps were found pinned there: a previous agent's, reused.
    pub restored: bool,
    /// Only the previous layout's pins were found: the new maps are pinned in the migration's
    /// staging directory, and the caller migrates before anything else.
    pub migration: Option<pins::Migration>,
}

/// Loads the object and its programs. Maps pinned under `options.pins` are reused (a pinned map
/// keeps the size it was created with) if they are this network namespace's
/// ([`owner::claim`]), missing ones created and pinned.
pub(super) fn load(options: &LoadOptions) -> Result<Loaded> {
    if let Some(dir) = &options.pins {
        owner::claim(dir)?;
    }
    let mut loader = EbpfLoader::new();
    loader.override_global("CT_TIMEOUTS", &options.timeouts, true);
    loader.map_max_entries(maps::CONNTRACK, options.conntrack_capacity);
    let pins = options.pins.as_deref().map(pins::versioned);
    #[cfg(not(feature = "previous-layout"))]
    let migration = options.pins.as_deref().and_then(pins::pending_migration);
    #[cfg(feature = "previous-layout")]
    let migration: Option<pins::Migration> = None;
    let pin_into = migration.as_ref().map(|m| &m.staging).or(pins.as_ref());
    let restored = match pin_into {
        // A staging directory's maps (a migration resumed) are the migration's business.
        Some(dir) => pins::pin_maps(&mut loader, dir)? && migration.is_none(),
        None => false,
    };
    let mut ebpf = loader.load(EBPF_OBJECT)?;
    for name in [programs::TO_WORKLOAD, programs::FROM_WORKLOAD] {
        load_program::<SchedClassifier>(&mut ebpf, name, SchedClassifier::load)?;
    }
    load_program::<Xdp>(&mut ebpf, programs::FROM_WORKLOAD_XDP, Xdp::load)?;
    Ok(Loaded {
        ebpf,
        pins,
        restored,
        migration,
    })
}

/// Loads (verifies) the object's program `name` as a `P`.
fn load_program<P>(
    ebpf: &mut Ebpf,
    name: &'static str,
    load: impl FnOnce(&mut P) -> std::result::Result<(), ProgramError>,
) -> Result<()>
where
    for<'a> &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program: &mut P = ebpf
        .program_mut(name)
        .ok_or(DataplaneError::Program {
            name,
            source: ProgramError::UnexpectedProgramType,
        })?
        .try_into()
        .map_err(|source| DataplaneError::Program { name, source })?;
    load(program).map_err(|source| DataplaneError::Program { name, source })
}

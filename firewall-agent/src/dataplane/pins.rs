//! Pinning on bpffs, so enforcement outlives the agent: maps under `<dir>/v<N>/maps/<MAP>`, tcx
//! links under `<dir>/v<N>/links/<interface>@<ingress|egress>`. A new agent reuses the maps and
//! swaps its freshly loaded programs into the pinned links (`bpf_link_update`), without a gap.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    programs::{
        TcAttachType,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
    },
};

use super::{
    DataplaneError, KernelDataplane, Result,
    apply::UNUSED_IFACE,
    attach::{Attachment, ifindex, program_for},
    maps, readback,
};

/// Bumped whenever a persistent map's key or value layout changes, so an agent never reuses
/// maps pinned by an incompatible one.
const MAP_LAYOUT_VERSION: u32 = 4;

pub(super) fn pin_err(path: &Path, error: impl std::fmt::Display) -> DataplaneError {
    DataplaneError::Pin {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// The pin directory of this map layout inside `dir`.
pub(super) fn versioned(dir: &Path) -> PathBuf {
    dir.join(format!("v{MAP_LAYOUT_VERSION}"))
}

/// Makes the loader pin every persistent map under `dir/maps`, reusing those pinned there;
/// returns whether any was.
pub(super) fn pin_maps(loader: &mut EbpfLoader<'_>, dir: &Path) -> Result<bool> {
    for sub in ["maps", "links"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| pin_err(&dir.join(sub), e))?;
    }
    let mut found = false;
    for name in maps::PERSISTENT {
        let path = dir.join("maps").join(name);
        found |= path.exists();
        loader.map_pin_path(name, path);
    }
    Ok(found)
}

/// Link pin file name: `<interface>@<ingress|egress>`.
pub(super) fn link_pin_name(interface: &str, attach_type: TcAttachType) -> String {
    let hook = if attach_type == TcAttachType::Ingress {
        "ingress"
    } else {
        "egress"
    };
    format!("{interface}@{hook}")
}

/// The pinned links found in `links_dir`, by interface.
fn pinned_links(links_dir: &Path) -> Result<BTreeMap<String, Vec<(TcAttachType, PathBuf)>>> {
    let mut found: BTreeMap<String, Vec<(TcAttachType, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(links_dir).map_err(|e| pin_err(links_dir, e))? {
        let path = entry.map_err(|e| pin_err(links_dir, e))?.path();
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
    Ok(found)
}

impl KernelDataplane {
    /// Reads what the kernel holds and re-adopts the pinned links in `dir`.
    pub(super) fn restore(&mut self, dir: &Path) -> Result<()> {
        readback::read_policy(&self.maps, &mut self.current)?;
        let known = readback::managed_ifaces(&self.maps);
        for (interface, links) in pinned_links(&dir.join("links"))? {
            let index = ifindex(&interface).ok();
            let mut adopted = Vec::new();
            for (attach_type, path) in links {
                let link = PinnedLink::from_pin(&path).map_err(|e| pin_err(&path, e))?;
                let link = SchedClassifierLink::try_from(FdLink::from(link))
                    .map_err(|e| pin_err(&path, e))?;
                if index.is_none() {
                    // The interface is gone and its links with it.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                let name = program_for(attach_type);
                let id = self
                    .program(name)
                    .attach_to_link(link)
                    .map_err(|source| DataplaneError::Program { name, source })?;
                adopted.push((attach_type, id));
            }
            let Some(index) = index else { continue };
            let [(first_type, first), (_, second)] = match <[_; 2]>::try_from(adopted) {
                Ok(pair) => pair,
                Err(half) => {
                    // Half an attachment: detach what there is; apply() re-attaches both.
                    for (attach_type, id) in half {
                        let _ = self.program(program_for(attach_type)).detach(id);
                        let _ = std::fs::remove_file(
                            dir.join("links")
                                .join(link_pin_name(&interface, attach_type)),
                        );
                    }
                    continue;
                }
            };
            let (to_workload, from_workload) = if first_type == TcAttachType::Ingress {
                (second, first)
            } else {
                (first, second)
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
        for (index, _) in known.iter().filter(|(i, _)| !adopted.contains(i)) {
            let _ = self.maps.ifaces.set(*index, UNUSED_IFACE, 0);
        }
        tracing::info!(
            interfaces = self.attached.len(),
            peers = self.current.peers.len(),
            ports = self.current.ports.len(),
            "took over pinned maps and links"
        );
        Ok(())
    }
}

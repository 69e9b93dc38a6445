//! Pinning on bpffs, so enforcement outlives the agent: maps under `<dir>/v<N>/maps/<MAP>`, tcx
//! and XDP links under `<dir>/v<N>/links/<interface>@<ingress|egress|xdp>`, `N` the map layout
//! (`firewall_common::layout::VERSION`). A new agent of the same layout reuses the maps and swaps
//! its freshly loaded programs into the pinned links (`bpf_link_update`), without a gap; one of
//! the next layout finding only `v<N-1>` migrates it first (`migrate.rs`), pinning its new maps
//! in `v<N>-migrating` until the migration is complete.
//!
//! An agent whose `--attach` differs from the pinned links' switches make-before-break: it
//! attaches its own hook for what the workload sends, then removes the other one. Meanwhile both
//! judge the workload's packets against the same maps (same verdicts; a tracked packet is counted
//! twice in its flow's statistics).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    programs::{
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLink,
        xdp::XdpLink,
    },
};

use super::{
    DataplaneError, KernelDataplane, Result,
    apply::UNUSED_IFACE,
    attach::{AttachMode, Attachment, FromWorkload, Hook, ifindex},
    maps, owner, programs, readback,
};

/// Bumped whenever a persistent map's key or value layout changes, so an agent never reuses
/// maps pinned by an incompatible one.
use firewall_common::layout::VERSION as MAP_LAYOUT_VERSION;

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

/// Whether `dir` holds pinned maps (of any layout: the caller names the version directory).
#[cfg(not(feature = "previous-layout"))]
pub(super) fn has_maps(dir: &Path) -> bool {
    maps::PERSISTENT
        .iter()
        .any(|name| dir.join("maps").join(name).exists())
}

/// A migration from the previous layout's pins to this one's.
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "previous-layout",
    allow(
        dead_code,
        reason = "an agent of the previous layout has nothing to migrate from"
    )
)]
pub(super) struct Migration {
    /// `<dir>/v<N-1>`: the previous layout's maps and links.
    pub from: PathBuf,
    /// `<dir>/v<N>-migrating` (bpffs refuses dots in names): where the new maps are pinned until
    /// the migration is complete (a crashed migration is resumed from it: every copy step is
    /// idempotent).
    pub staging: PathBuf,
    /// `<dir>/v<N>`: renamed from `staging` once the links point at the new programs.
    pub to: PathBuf,
}

/// The migration to do in `dir`: pins of the previous layout and none of this one. Leftovers of
/// a migration that completed but crashed before removing the old maps (no links left there) are
/// removed.
#[cfg(not(feature = "previous-layout"))]
pub(super) fn pending_migration(dir: &Path) -> Option<Migration> {
    let from = dir.join(format!("v{}", firewall_common::layout::previous::VERSION));
    let to = versioned(dir);
    if !has_maps(&from) {
        return None;
    }
    if has_maps(&to) {
        let links_left =
            std::fs::read_dir(from.join("links")).is_ok_and(|mut d| d.next().is_some());
        if !links_left {
            tracing::info!(dir = %from.display(), "removing the previous layout's leftover pins");
            let _ = std::fs::remove_dir_all(&from);
        }
        return None;
    }
    Some(Migration {
        from,
        staging: dir.join(format!("v{MAP_LAYOUT_VERSION}-migrating")),
        to,
    })
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

/// Link pin file name: `<interface>@<ingress|egress|xdp>`.
pub(super) fn link_pin_name(interface: &str, hook: Hook) -> String {
    format!("{interface}@{}", hook.name())
}

/// The pinned links found in `links_dir`, by interface.
pub(super) fn pinned_links(links_dir: &Path) -> Result<BTreeMap<String, Vec<(Hook, PathBuf)>>> {
    let mut found: BTreeMap<String, Vec<(Hook, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(links_dir).map_err(|e| pin_err(links_dir, e))? {
        let path = entry.map_err(|e| pin_err(links_dir, e))?.path();
        let Some((interface, hook)) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('@'))
            .and_then(|(interface, hook)| Some((interface, Hook::from_name(hook)?)))
        else {
            continue;
        };
        found
            .entry(interface.to_string())
            .or_default()
            .push((hook, path.clone()));
    }
    Ok(found)
}

impl KernelDataplane {
    /// Puts this agent's program of `hook` into the pinned link at `path` (`bpf_link_update`).
    pub(super) fn adopt_link(&mut self, hook: Hook, path: &Path) -> Result<Adopted> {
        let link = PinnedLink::from_pin(path).map_err(|e| pin_err(path, e))?;
        let program_err = |name| move |source| DataplaneError::Program { name, source };
        Ok(match hook {
            Hook::Xdp => {
                let link = XdpLink::try_from(FdLink::from(link)).map_err(|e| pin_err(path, e))?;
                let name = programs::FROM_WORKLOAD_XDP;
                let id = self
                    .xdp_program()
                    .attach_to_link(link)
                    .map_err(program_err(name))?;
                Adopted::From(FromWorkload::Xdp(id))
            }
            Hook::Ingress | Hook::Egress => {
                let link = SchedClassifierLink::try_from(FdLink::from(link))
                    .map_err(|e| pin_err(path, e))?;
                let name = if hook == Hook::Ingress {
                    programs::FROM_WORKLOAD
                } else {
                    programs::TO_WORKLOAD
                };
                let id = self
                    .program(name)
                    .attach_to_link(link)
                    .map_err(program_err(name))?;
                if hook == Hook::Ingress {
                    Adopted::From(FromWorkload::Tc(id))
                } else {
                    Adopted::To(id)
                }
            }
        })
    }

    /// Reads what the kernel holds and re-adopts the pinned links in `dir`.
    pub(super) fn restore(&mut self, dir: &Path) -> Result<()> {
        readback::read_policy(&self.maps, &mut self.current)?;
        let known = readback::managed_ifaces(&self.maps);
        for (interface, links) in pinned_links(&dir.join("links"))? {
            let index = ifindex(&interface).ok();
            // Severed: attached to no device (0) or to another one than the name's now. A link
            // that can't be read is not judged (adopting it reports the error).
            let severed = links
                .iter()
                .filter_map(|(_, path)| owner::pinned_link_ifindex(path).ok())
                .find(|attached_to| index.is_none() || Some(*attached_to) != index);
            let Some(index) = index.filter(|_| severed.is_none()) else {
                // The interface is gone, or was deleted and made again (its links were severed
                // with the old device): forgotten; apply() attaches afresh if it is enforced.
                tracing::warn!(
                    %interface,
                    attached_to = ?severed,
                    "the pinned links of this interface were severed (its device was deleted): forgetting them"
                );
                for (_, path) in links {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            };
            let mut to_workload = None;
            let mut from_workload = Vec::new();
            for (hook, path) in &links {
                match self.adopt_link(*hook, path)? {
                    Adopted::To(id) => to_workload = Some(id),
                    Adopted::From(link) => from_workload.push(link),
                }
            }
            let to_workload = match to_workload {
                Some(id) if !from_workload.is_empty() => id,
                half => {
                    // Half an attachment: detach what there is; apply() re-attaches both.
                    if let Some(id) = half {
                        let _ = self.program(programs::TO_WORKLOAD).detach(id);
                    }
                    for link in from_workload {
                        self.detach_from_workload(link);
                    }
                    for (_, path) in links {
                        let _ = std::fs::remove_file(&path);
                    }
                    continue;
                }
            };
            let from_workload = self.settle_mode(&interface, from_workload)?;
            if let Some((_, config)) = known.iter().find(|(i, _)| *i == index) {
                self.current.ifaces.insert(interface.clone(), *config);
            }
            // Pins of a layout without per-interface counters (or a map that was full) left
            // this interface none.
            if self.maps.iface_counters.get(&index, 0).is_err() {
                self.create_interface_counters(index);
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

    /// The one link for what the workload sends, of this agent's `--attach` mode: kept if
    /// pinned, otherwise attached before the other mode's links are removed (make-before-break).
    fn settle_mode(&mut self, interface: &str, links: Vec<FromWorkload>) -> Result<FromWorkload> {
        let (mut keep, mut others): (Vec<_>, Vec<_>) =
            links.into_iter().partition(|l| l.mode() == self.mode);
        let kept = match keep.pop() {
            Some(link) => link,
            // Only tc ingress is pinned: XDP if the veth takes it, else the pinned link stays.
            None if self.mode == AttachMode::Xdp => match self.attach_xdp(interface) {
                Ok(id) => {
                    tracing::info!(%interface, "switched the hook for what the workload sends from tc ingress to XDP");
                    FromWorkload::Xdp(id)
                }
                Err(error) => match others.pop() {
                    Some(pinned) => {
                        tracing::warn!(%interface, %error, "native XDP refused; keeping tc ingress");
                        pinned
                    }
                    None => self.attach_from_workload(interface)?,
                },
            },
            None => {
                let new = self.attach_from_workload(interface)?;
                tracing::info!(%interface, "switched the hook for what the workload sends from XDP to tc ingress");
                new
            }
        };
        for old in others.into_iter().chain(keep) {
            // A link of the kept one's hook had its pin replaced by it.
            if old.hook() != kept.hook()
                && let Some(dir) = &self.pins
            {
                let _ = std::fs::remove_file(
                    dir.join("links").join(link_pin_name(interface, old.hook())),
                );
            }
            self.detach_from_workload(old);
        }
        Ok(kept)
    }
}

/// A pinned link taken over.
pub(super) enum Adopted {
    To(aya::programs::tc::SchedClassifierLinkId),
    From(FromWorkload),
}

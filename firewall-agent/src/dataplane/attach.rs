//! Attaching the two programs to a workload's host-side veth: tcx first in the chain (pinned
//! when pinning, so the link outlives the agent), falling back to a netlink `clsact` filter on
//! kernels without tcx (not kept across restarts). With `--attach xdp` what the workload sends
//! is judged at the veth's native XDP hook instead of tc ingress (there is no XDP hook for what
//! a veth transmits, so tc egress stays); a veth that refuses native XDP (a peer MTU beyond one
//! page) keeps tc ingress.

use std::{ffi::CString, io};

use aya::maps::PerCpuValues;
use aya::programs::{
    LinkOrder, TcAttachType, XdpMode,
    links::FdLink,
    tc::{self, NlOptions, SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions},
    xdp::{XdpLink, XdpLinkId},
};
use firewall_common::{IfaceConfig, IfaceCounters};

use super::{
    DataplaneError, KernelDataplane, Result,
    maps::{self, map_err},
    pins::{link_pin_name, pin_err},
    programs,
};

/// Where the workload's own packets (SG outbound rules) are judged: `serve --attach`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// tc ingress of the host-side veth (tcx).
    #[default]
    Tc,
    /// The host-side veth's native (driver-mode) XDP hook.
    Xdp,
}

/// The hooks of a host-side veth, as link pins name them (`<interface>@<hook>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hook {
    /// tc egress: what is delivered to the workload.
    Egress,
    /// tc ingress: what the workload sends.
    Ingress,
    /// XDP: what the workload sends, before an skb is built for it.
    Xdp,
}

impl Hook {
    pub(super) fn name(self) -> &'static str {
        match self {
            Hook::Egress => "egress",
            Hook::Ingress => "ingress",
            Hook::Xdp => "xdp",
        }
    }

    pub(super) fn of(attach_type: TcAttachType) -> Hook {
        if attach_type == TcAttachType::Ingress {
            Hook::Ingress
        } else {
            Hook::Egress
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Hook> {
        [Hook::Egress, Hook::Ingress, Hook::Xdp]
            .into_iter()
            .find(|hook| hook.name() == name)
    }
}

/// The link judging what the workload sends.
pub(super) enum FromWorkload {
    Tc(SchedClassifierLinkId),
    Xdp(XdpLinkId),
}

impl FromWorkload {
    pub(super) fn mode(&self) -> AttachMode {
        match self {
            FromWorkload::Tc(_) => AttachMode::Tc,
            FromWorkload::Xdp(_) => AttachMode::Xdp,
        }
    }

    pub(super) fn hook(&self) -> Hook {
        match self {
            FromWorkload::Tc(_) => Hook::Ingress,
            FromWorkload::Xdp(_) => Hook::Xdp,
        }
    }
}

/// A workload interface with our programs attached.
pub(super) struct Attachment {
    pub ifindex: u32,
    pub to_workload: SchedClassifierLinkId,
    pub from_workload: FromWorkload,
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

/// `lookup`'s answer for interface `name`, if `IFACES` (an array by ifindex) has its slot.
pub(super) fn checked_ifindex(name: &str, lookup: io::Result<u32>) -> Result<u32> {
    let err = |source| DataplaneError::Interface {
        name: name.to_string(),
        source,
    };
    let index = lookup.map_err(err)?;
    if index >= firewall_common::capacity::IFACES {
        return Err(err(io::Error::other(format!(
            "ifindex {index} is beyond the data plane's interface table"
        ))));
    }
    Ok(index)
}

/// The program of a hook: tc ingress of the host veth sees what the workload sends.
pub(super) fn program_for(attach_type: TcAttachType) -> &'static str {
    if attach_type == TcAttachType::Ingress {
        programs::FROM_WORKLOAD
    } else {
        programs::TO_WORKLOAD
    }
}

impl KernelDataplane {
    /// Writes the interface's `IFACES` slot, then attaches both programs (neither or both).
    pub(super) fn attach_interface(&mut self, name: &str, config: IfaceConfig) -> Result<()> {
        let index = checked_ifindex(name, ifindex(name))?;
        // The policy is in place before the first packet reaches the programs.
        self.maps
            .ifaces
            .set(index, config, 0)
            .map_err(map_err(maps::IFACES))?;
        self.create_interface_counters(index);
        let to_workload = self.attach_program(name, TcAttachType::Egress)?;
        let from_workload = match self.attach_from_workload(name) {
            Ok(link) => link,
            Err(e) => {
                let _ = self.program(programs::TO_WORKLOAD).detach(to_workload);
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
        tracing::info!(interface = %name, ifindex = index, policy = config.policy_id, "attached");
        Ok(())
    }

    /// The hook for what the workload sends, as `--attach` asks; tc ingress where native XDP
    /// is refused.
    pub(super) fn attach_from_workload(&mut self, interface: &str) -> Result<FromWorkload> {
        if self.mode == AttachMode::Xdp {
            match self.attach_xdp(interface) {
                Ok(id) => return Ok(FromWorkload::Xdp(id)),
                Err(error) => {
                    tracing::warn!(%interface, %error, "native XDP refused; judging what the workload sends at tc ingress");
                }
            }
        }
        self.attach_program(interface, TcAttachType::Ingress)
            .map(FromWorkload::Tc)
    }

    pub(super) fn attach_xdp(&mut self, interface: &str) -> Result<XdpLinkId> {
        let pin = self
            .pins
            .as_ref()
            .map(|dir| dir.join("links").join(link_pin_name(interface, Hook::Xdp)));
        let name = programs::FROM_WORKLOAD_XDP;
        let program = self.xdp_program();
        let program_err = |source| DataplaneError::Program { name, source };
        let id = program
            .attach(interface, XdpMode::Driver)
            .map_err(program_err)?;
        let Some(pin) = pin else { return Ok(id) };
        // Pinned like the tcx links: a bpf_link (a netlink attachment cannot be pinned, and is
        // detached when the conversion fails and drops it).
        let link = program.take_link(id).map_err(program_err)?;
        let fd_link = FdLink::try_from(link).map_err(|e| pin_err(&pin, e))?;
        let _ = std::fs::remove_file(&pin);
        let pinned = fd_link.pin(&pin).map_err(|e| pin_err(&pin, e))?;
        let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(&pin, e))?;
        program.attach_to_link(link).map_err(program_err)
    }

    /// Lets go of the link judging what the workload sends (a pinned link stays attached).
    pub(super) fn detach_from_workload(&mut self, link: FromWorkload) {
        match link {
            FromWorkload::Tc(id) => {
                let _ = self.program(programs::FROM_WORKLOAD).detach(id);
            }
            FromWorkload::Xdp(id) => {
                let _ = self.xdp_program().detach(id);
            }
        }
    }

    fn attach_program(
        &mut self,
        interface: &str,
        attach_type: TcAttachType,
    ) -> Result<SchedClassifierLinkId> {
        let pin = self.pins.as_ref().map(|dir| {
            dir.join("links")
                .join(link_pin_name(interface, Hook::of(attach_type)))
        });
        let name = program_for(attach_type);
        let program = self.program(name);
        let program_err = |source| DataplaneError::Program { name, source };
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

    /// A zeroed `IFACE_COUNTERS` entry for `index`; when the map is full the interface is
    /// counted only in the totals.
    pub(super) fn create_interface_counters(&mut self, index: u32) {
        let zeroed = aya::util::nr_cpus()
            .ok()
            .and_then(|cpus| PerCpuValues::try_from(vec![IfaceCounters::default(); cpus]).ok());
        let created = zeroed.map(|zeroed| self.maps.iface_counters.insert(index, zeroed, 0));
        if !matches!(created, Some(Ok(()))) {
            tracing::warn!(
                ifindex = index,
                "no per-interface counters for this interface"
            );
        }
    }

    /// Detaches both programs from an interface; its ifindex, if they were attached.
    pub(super) fn detach_interface(&mut self, name: &str) -> Option<u32> {
        let attachment = self.attached.remove(name)?;
        let _ = self.maps.iface_counters.remove(&attachment.ifindex);
        // The interface may be gone already, taking the links with it.
        let _ = self
            .program(programs::TO_WORKLOAD)
            .detach(attachment.to_workload);
        self.detach_from_workload(attachment.from_workload);
        Some(attachment.ifindex)
    }
}

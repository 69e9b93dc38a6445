//! Which network namespace a pin directory belongs to, so that an agent never takes over the
//! maps, links and tracked flows of a namespace that is gone.
//!
//! A pin directory outlives its namespace: `ip netns del` destroys the namespace's veths, which
//! severs their tcx and XDP links (the kernel keeps the link objects, pinned, with no device:
//! `bpf_link_update` on them fails with `ENOLINK`), but the pins stay in the host's bpffs. A new
//! namespace under the same name (every test harness reuses names), or a new namespace entered
//! by an agent pinning in the same `--bpffs`, finds them. Its interfaces get the dead one's
//! interface indexes again, so adopting the old maps would enforce another workload's policy on
//! them.
//!
//! So the directory records its owner: an empty directory `netns-cookie-<N>` inside it (bpffs
//! holds only pins and directories), `N` the network namespace's cookie (`SO_NETNS_COOKIE`),
//! which the kernel never hands out twice until it reboots — unlike the namespace's inode
//! number, which is reused once the namespace is freed — and bpffs does not outlive a reboot.
//!
//! [`claim`] runs before anything is loaded from the directory:
//! - our own cookie: a live takeover, exactly as before;
//! - another cookie, and every pinned link severed (or none pinned): the owner is gone; its map
//!   layouts are removed (its maps and tracked flows with them) and the agent starts afresh;
//! - another cookie, and some link still attached to a device: the owner still lives somewhere
//!   (two agents given one `--bpffs` directory); the agent refuses to start and says so, since
//!   taking the directory over or moving it would leave that namespace's links pinned where
//!   neither agent manages them;
//! - no record at all (pins of an agent from before this record): taken over as before unless
//!   every pinned link is severed.
//!
//! Only the map layouts (`v<N>`, `v<N>-migrating`) are judged and removed: the root agent's
//! directory also holds the directories of agents under `ip netns exec` (`netns-<name>`).

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

use super::{Result, pins::pin_err};

const MARKER_PREFIX: &str = "netns-cookie-";

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie of the socket's network namespace.
const SO_NETNS_COOKIE: libc::c_int = 71;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The cookie of the network namespace this process runs in.
pub fn netns_cookie() -> io::Result<u64> {
    // SAFETY: a plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the option writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// `bpf_attr` for `BPF_OBJ_GET`. The tail is explicit: the kernel refuses (`EINVAL`) an attr
/// whose bytes past the command's last field are not zero, padding included.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    zero: u32,
}

/// `bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a `bpf_attr` prefix of the size given, its pointers valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The interface index of the device the link pinned at `path` is attached to: 0 once the
/// device is gone (the kernel's `bpf_link_info.tcx.ifindex` / `.xdp.ifindex`, both the first
/// field of the union at offset 16).
pub(super) fn pinned_link_ifindex(path: &Path) -> io::Result<u32> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut get = ObjGetAttr {
        pathname: c_path.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: BPF_OBJ_GET returned a new descriptor, owned from here.
    let fd = unsafe { OwnedFd::from_raw_fd(bpf(BPF_OBJ_GET, &mut get)? as i32) };
    // `struct bpf_link_info`: type, id, prog_id, then the 8-byte aligned union.
    let mut info = [0u32; 32];
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info[4])
}

/// The cookies recorded in `dir`.
fn recorded(dir: &Path) -> Vec<(u64, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let cookie = name.to_str()?.strip_prefix(MARKER_PREFIX)?.parse().ok()?;
            Some((cookie, entry.path()))
        })
        .collect()
}

/// Whether `name` is one of an agent's own entries in its pin directory: a map layout's
/// directory (`v<N>`, `v<N>-migrating`). Everything else — the owner record, and the
/// directories of agents under `ip netns exec` (`netns-<name>`), which pin inside the root
/// agent's directory — is not this directory's to judge or remove.
fn is_layout(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix('v'))
        .map(|n| n.strip_suffix("-migrating").unwrap_or(n))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The layout directories in `dir`.
fn layouts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| is_layout(&entry.file_name()))
        .map(|entry| entry.path())
        .collect()
}

/// Every pinned link of `dir`'s layouts (`<dir>/<layout>/links/*`), with whether it is still
/// attached to a device. A link that cannot be read counts as attached (never thrown away on a
/// guess).
fn links_attached(dir: &Path) -> Vec<(PathBuf, bool)> {
    layouts(dir)
        .into_iter()
        .flat_map(|layout| {
            std::fs::read_dir(layout.join("links"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|link| {
            let path = link.path();
            let attached = pinned_link_ifindex(&path).map_or(true, |ifindex| ifindex != 0);
            (path, attached)
        })
        .collect()
}

/// Makes `dir` this network namespace's pin directory (see the module's doc), recording it; an
/// error when another namespace that still has attached links owns it.
pub fn claim(dir: &Path) -> Result<()> {
    let ours = netns_cookie().map_err(|e| pin_err(dir, format!("SO_NETNS_COOKIE: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| pin_err(dir, e))?;
    let owners = recorded(dir);
    let pinned = !layouts(dir).is_empty();
    let owner = owners
        .iter()
        .map(|(cookie, _)| *cookie)
        .find(|c| *c != ours);
    if pinned && !owners.iter().any(|(cookie, _)| *cookie == ours) {
        let links = links_attached(dir);
        let any_attached = links.iter().any(|(_, attached)| *attached);
        match owner {
            // An agent from before the record: its pins are taken over unless every link died.
            None if any_attached || links.is_empty() => {}
            None => remove(dir, None)?,
            Some(owner) if any_attached => {
                return Err(pin_err(
                    dir,
                    format!(
                        "these pins belong to another network namespace (cookie {owner}) whose \
                         workloads are still enforced through them: another agent pins here. \
                         Give each agent a --bpffs directory of its own."
                    ),
                ));
            }
            Some(owner) => remove(dir, Some(owner))?,
        }
    }
    for (cookie, path) in recorded(dir) {
        if cookie != ours {
            let _ = std::fs::remove_dir(path);
        }
    }
    let marker = dir.join(format!("{MARKER_PREFIX}{ours}"));
    std::fs::create_dir_all(&marker).map_err(|e| pin_err(&marker, e))?;
    Ok(())
}

/// Removes the layouts of a namespace that is gone (nothing else of `dir`).
fn remove(dir: &Path, owner: Option<u64>) -> Result<()> {
    for layout in layouts(dir) {
        std::fs::remove_dir_all(&layout).map_err(|e| pin_err(&layout, e))?;
    }
    tracing::warn!(
        pins = %dir.display(),
        owner = owner.map(|c| c.to_string()).unwrap_or_else(|| "unrecorded".into()),
        "removed the pins of a network namespace that is gone (every link severed): \
         none of its maps or tracked flows are taken over; attaching afresh"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_map_layout_directories_are_a_pin_directorys_own() {
        for own in ["v4", "v3", "v4-migrating", "v12"] {
            assert!(is_layout(std::ffi::OsStr::new(own)), "{own}");
        }
        for other in [
            "netns-fwh01",
            "netns-cookie-7",
            "v",
            "v-migrating",
            "vx",
            "maps",
        ] {
            assert!(!is_layout(std::ffi::OsStr::new(other)), "{other}");
        }
    }
}

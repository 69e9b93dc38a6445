//! Where the pins live, so that they outlive the agent. A bpffs mount lives as long as the mount
//! namespace that holds it: mounted by the agent inside `ip netns exec` (which gives the process
//! a private mount namespace and a fresh `/sys`), it would die with the agent, the pinned links
//! with it, and every workload would be left unfiltered. So:
//!
//! - a bpffs already mounted at `--bpffs` (by the host, or bind-mounted into a container) is used
//!   as it is;
//! - under `ip netns exec`, the agent first goes back to the mount namespace it was started from
//!   ([`leave_private_mount_namespace`], before any thread exists), so what it mounts and pins is
//!   the host's; its pins go in a directory of its network namespace's own;
//! - in the mount namespace it was started from, the agent mounts a bpffs where none is (in a
//!   container that mount lasts as long as the container: it says so, and how to outlive it);
//! - if it cannot leave a private mount namespace, it refuses to start and says how to fix it.

use std::{
    ffi::CString,
    io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use super::{DataplaneError, Result};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn bpffs_err(path: &Path, source: io::Error) -> DataplaneError {
    DataplaneError::Bpffs {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a bpffs is mounted at `path`.
fn is_bpffs(path: &Path) -> Result<bool> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| bpffs_err(path, io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(bpffs_err(path, io::Error::last_os_error()));
    }
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

fn mount_bpffs(path: &Path) -> Result<()> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| bpffs_err(path, io::ErrorKind::InvalidInput.into()))?;
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
        return Err(bpffs_err(path, io::Error::last_os_error()));
    }
    tracing::info!(path = %path.display(), "mounted bpffs");
    Ok(())
}

/// The inode of one of a process's namespaces (`/proc/PID/ns/KIND`).
fn namespace(pid: &str, kind: &str) -> Result<u64> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
    std::fs::metadata(&path)
        .map(|m| m.ino())
        .map_err(|e| bpffs_err(&path, e))
}

/// Whether this process runs in a container (podman's and docker's markers, or the `container`
/// variable systemd-nspawn and podman set).
fn in_container() -> bool {
    Path::new("/run/.containerenv").exists()
        || Path::new("/.dockerenv").exists()
        || std::env::var_os("container").is_some()
}

/// The name of the network namespace this process runs in, from `/run/netns` (where `ip netns`
/// keeps them), or its inode.
fn netns_name() -> Result<String> {
    let ours = namespace("self", "net")?;
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .find(|entry| std::fs::metadata(entry.path()).is_ok_and(|m| m.ino() == ours))
        .map(|entry| entry.file_name().to_string_lossy().into_owned());
    Ok(named.unwrap_or_else(|| ours.to_string()))
}

/// The refusal to start, with how to fix it.
fn refuse(path: &Path, why: &str) -> DataplaneError {
    bpffs_err(
        path,
        io::Error::other(format!(
            "{why}: pins there would die with the agent and leave every workload unfiltered. \
             Mount bpffs where it outlives the agent (on the host: `mount -t bpf bpf /sys/fs/bpf`) \
             and pass it with --bpffs."
        )),
    )
}

/// Whether this process has another mount namespace than the one that started it (what
/// `ip netns exec` does). The first process of a PID namespace (a container's entry point) has
/// no parent it can see (`getppid` is 0), so no mount namespace to go back to.
fn private_mount_namespace() -> Result<bool> {
    let parent = std::os::unix::process::parent_id();
    if parent == 0 {
        return Ok(false);
    }
    Ok(namespace("self", "mnt")? != namespace(&parent.to_string(), "mnt")?)
}

/// Under `ip netns exec` with no bpffs at `bpffs`: joins the mount namespace of the process that
/// started the agent (the host's), so that the bpffs and the pins outlive the agent. Must run
/// while the process has one thread (`setns` refuses a mount namespace to a threaded process).
/// Returns whether it did; paths given relative to the working directory keep their meaning.
pub fn leave_private_mount_namespace(bpffs: &Path) -> Result<bool> {
    if is_bpffs(bpffs).unwrap_or(false) || !private_mount_namespace()? {
        return Ok(false);
    }
    let parent = format!("/proc/{}/ns/mnt", std::os::unix::process::parent_id());
    let cwd = std::env::current_dir().ok();
    let target = std::fs::File::open(&parent).map_err(|e| bpffs_err(Path::new(&parent), e))?;
    // SAFETY: a valid namespace fd; the process has a single thread (the caller's contract).
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&target), libc::CLONE_NEWNS) } != 0 {
        return Err(bpffs_err(Path::new(&parent), io::Error::last_os_error()));
    }
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(true)
}

/// The directory the agent pins under, in a bpffs that outlives it (see the module's doc);
/// `own_directory` after [`leave_private_mount_namespace`] joined the host's.
pub fn pin_dir(requested: &Path, own_directory: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(requested).map_err(|e| bpffs_err(requested, e))?;
    let mut dir = requested.join("firewall-agent");
    if own_directory {
        dir = dir.join(format!("netns-{}", netns_name()?));
        tracing::info!(pins = %dir.display(), "pinning in the host's bpffs, which outlives the agent");
    }
    if is_bpffs(requested)? {
        return Ok(dir);
    }
    if in_container() {
        return Err(refuse(
            requested,
            "no bpffs from the host at this path in a container",
        ));
    }
    if private_mount_namespace()? {
        return Err(refuse(
            requested,
            "this process has a private mount namespace",
        ));
    }
    mount_bpffs(requested)?;
    Ok(dir)
}

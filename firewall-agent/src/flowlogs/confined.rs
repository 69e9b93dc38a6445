//! Flow-log files opened beneath their account's directory, `<--flow-log-dir>/<account-id>/`,
//! whatever appears in it: a name the model accepted (relative, no `..`) can still meet a
//! symbolic link on disk, planted before the flow log was created or swapped in for the file
//! later. Every open here goes through the kernel's own confinement rather than a check made
//! before it (which a rename in between would defeat).
//!
//! Kernel facts this relies on (openat2(2), Linux 5.6 and later; the kernel here is 6.18):
//! - `openat2(dirfd, path, &how, size_of(how))` is `openat` with `how.resolve` flags; the
//!   struct is extensible, so an unknown flag is `EINVAL` and a wrong size `E2BIG`, never
//!   silently ignored. glibc has no wrapper: it is called through `syscall(SYS_openat2, …)`.
//! - `RESOLVE_BENEATH`: every step of the lookup, the targets of symbolic links included, must
//!   stay beneath `dirfd`; an absolute path, a `..` above `dirfd`, or a symbolic link leading
//!   out fails with `EXDEV`. The check is part of the lookup itself: should a concurrent rename
//!   make it uncertain, the call fails with `EAGAIN` (retried here) instead of escaping.
//! - `RESOLVE_NO_MAGICLINKS`: `/proc/<pid>/fd/N`-style links, which `RESOLVE_BENEATH` alone
//!   would not stop from naming any open file, fail with `ELOOP`.
//! - `RESOLVE_NO_SYMLINKS`: any symbolic link fails with `ELOOP` (used for the account's own
//!   directory, which must be a real directory in the flow-log directory).
//! - `O_NOFOLLOW`: a symbolic link as the last component fails with `ELOOP` even with
//!   `O_CREAT`, so a log file replaced by a link (to a file inside or outside) is never written
//!   through; `O_NOFOLLOW | O_PATH` opens the link itself (to tell it apart).
//! - `O_NONBLOCK`: opening a FIFO for writing fails with `ENXIO` when nothing reads it, instead
//!   of blocking the flush; on a regular file it changes nothing.
//! - `mkdirat(dirfd, name, mode)` with a single-component `name` creates in `dirfd` itself
//!   and never follows a link at `name` (`EEXIST`); `dirfd` may be an `O_PATH` descriptor.
//! - A hard link is the same file under another name, perhaps outside the directory: a file
//!   with more than one link is not written to.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::fs::OpenOptionsExt as _,
    },
    path::Path,
};

/// `struct open_how` of `<linux/openat2.h>` (version 0, 24 bytes).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `<linux/openat2.h>`'s resolve flags used here.
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// How many times a lookup the kernel could not vouch for (`EAGAIN`) is tried.
const ATTEMPTS: usize = 8;

/// Why a destination is refused, or could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("'{0}' is a symbolic link leading out of the account's flow-log directory")]
    LeadsOut(String),
    #[error("'{0}' is a symbolic link (flow-log files are never written through one)")]
    Symlink(String),
    #[error("'{0}' is not a directory")]
    NotDirectory(String),
    #[error("'{0}' is not a regular file")]
    NotRegular(String),
    #[error("'{0}' has other hard links")]
    HardLinked(String),
    #[error("the account's flow-log directory is not a plain directory")]
    AccountDirectory,
    #[error("'{0}': {1}")]
    Io(String, io::Error),
}

/// `openat2(dirfd, path, flags, mode, resolve)`, retried on `EAGAIN`.
fn openat2(
    dirfd: &OwnedFd,
    path: &str,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let path = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: u64::from(mode),
        resolve,
    };
    for _ in 0..ATTEMPTS {
        // SAFETY: a valid directory fd, a NUL-terminated path, and `how` of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// `mkdirat(dirfd, name, 0700)` of one component; an existing entry is left as it is.
fn mkdir_in(dirfd: &OwnedFd, name: &str) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid directory fd and a NUL-terminated single-component name.
    if unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), 0o700) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a `stat` to write.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The flow-log directory itself: the operator's choice, trusted as it is (`serve` created it).
fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)?;
    Ok(file.into())
}

/// The account's directory `<root>/<account>`, a real directory (no link), created (0700) when
/// `create`; `None` when it does not exist and not `create`.
fn account_dir(root: &Path, account: &str, create: bool) -> Result<Option<OwnedFd>, Refused> {
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::AccountDirectory);
    }
    let root = match open_root(root) {
        Ok(fd) => fd,
        // Nothing is beneath a directory that is not there yet.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) => return Err(Refused::Io(root.display().to_string(), e)),
    };
    if create {
        mkdir_in(&root, account).map_err(|e| Refused::Io(account.into(), e))?;
    }
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    match openat2(&root, account, libc::O_PATH | libc::O_DIRECTORY, 0, resolve) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !create => Ok(None),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
            Err(Refused::AccountDirectory)
        }
        Err(e) => Err(Refused::Io(account.into(), e)),
    }
}

/// What an `openat2` error beneath the account's directory means for `path`.
fn refusal(path: &str, e: io::Error) -> Refused {
    match e.raw_os_error() {
        Some(libc::EXDEV) => Refused::LeadsOut(path.into()),
        Some(libc::ELOOP) => Refused::Symlink(path.into()),
        Some(libc::ENOTDIR) => Refused::NotDirectory(path.into()),
        _ => Refused::Io(path.into(), e),
    }
}

/// The directories leading to `name` (`a/b/c.log` → `a`, `a/b`).
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

/// The file `fd` (opened without following a last link) may be written to.
fn check_file(name: &str, fd: &OwnedFd) -> Result<(), Refused> {
    let st = fstat(fd).map_err(|e| Refused::Io(name.into(), e))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG if st.st_nlink > 1 => Err(Refused::HardLinked(name.into())),
        libc::S_IFREG => Ok(()),
        libc::S_IFLNK => Err(Refused::Symlink(name.into())),
        _ => Err(Refused::NotRegular(name.into())),
    }
}

/// Whether `name` (a name the model accepted: relative, no `..`) in `account`'s directory
/// under `root` could be written: nothing on the way or at the end is a symbolic link leading
/// out, a non-directory, or a file other than a regular one with one link. Creates nothing; a
/// directory or file that does not exist yet is fine (it will be made beneath).
pub fn check(root: &Path, account: &str, name: &str) -> Result<(), Refused> {
    let Some(dir) = account_dir(root, account, false)? else {
        return Ok(());
    };
    let walk = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    for parent in parents(name) {
        match openat2(&dir, parent, libc::O_PATH | libc::O_DIRECTORY, 0, walk) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(refusal(parent, e)),
        }
    }
    let fd = match openat2(&dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0, walk) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(refusal(name, e)),
    };
    match check_file(name, &fd) {
        // Which kind of link: followed beneath the directory, does it stay there?
        Err(Refused::Symlink(_)) => match openat2(&dir, name, libc::O_PATH, 0, walk) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Err(Refused::LeadsOut(name.into())),
            _ => Err(Refused::Symlink(name.into())),
        },
        other => other,
    }
}

/// Opens `name` in `account`'s directory under `root` for appending, creating the account's
/// directory and the name's own directories (0700) and the file (0600) as needed, each beneath
/// the account's directory: a symbolic link met on the way that leads out, or at the end at
/// all, refuses the open, and nothing outside is created or written.
pub fn open_append(root: &Path, account: &str, name: &str) -> Result<File, Refused> {
    let dir = account_dir(root, account, true)?.ok_or(Refused::AccountDirectory)?;
    let walk = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    let mut parent_fd: Option<OwnedFd> = None;
    for parent in parents(name) {
        let last = parent.rsplit('/').next().unwrap_or(parent);
        // Made in the directory opened beneath just before (or the account's own).
        mkdir_in(parent_fd.as_ref().unwrap_or(&dir), last)
            .map_err(|e| Refused::Io(parent.into(), e))?;
        let fd = openat2(&dir, parent, libc::O_PATH | libc::O_DIRECTORY, 0, walk)
            .map_err(|e| refusal(parent, e))?;
        parent_fd = Some(fd);
    }
    let flags =
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let fd = openat2(&dir, name, flags, 0o600, walk).map_err(|e| refusal(name, e))?;
    check_file(name, &fd)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    //! On real files in a temporary directory (no privileges needed): what may be opened, and
    //! that nothing outside the account's directory is ever created or written.

    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
    use std::{io::Write as _, path::PathBuf};

    use super::*;

    const ACCOUNT: &str = "123456789012";

    /// A fresh flow-log directory and, beside it, a directory standing for the rest of the host.
    struct Dirs {
        base: PathBuf,
    }

    impl Dirs {
        fn new() -> Dirs {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let base = std::env::temp_dir().join(format!("fw-confined-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("root")).unwrap();
            std::fs::create_dir_all(base.join("outside")).unwrap();
            Dirs { base }
        }
        fn root(&self) -> PathBuf {
            self.base.join("root")
        }
        fn account(&self) -> PathBuf {
            self.root().join(ACCOUNT)
        }
        fn outside(&self, name: &str) -> PathBuf {
            self.base.join("outside").join(name)
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn a_file_and_its_directories_are_made_beneath_the_account_directory_0700_and_0600() {
        let dirs = Dirs::new();
        assert!(check(&dirs.root(), ACCOUNT, "vpc/all.log").is_ok());
        assert!(!dirs.account().exists(), "checking creates nothing");
        let mut file = open_append(&dirs.root(), ACCOUNT, "vpc/all.log").unwrap();
        file.write_all(b"one\n").unwrap();
        let mut again = open_append(&dirs.root(), ACCOUNT, "vpc/all.log").unwrap();
        again.write_all(b"two\n").unwrap();
        let path = dirs.account().join("vpc/all.log");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dirs.account()), 0o700);
        assert_eq!(mode(&dirs.account().join("vpc")), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert!(check(&dirs.root(), ACCOUNT, "vpc/all.log").is_ok());
    }

    #[test]
    fn a_log_file_replaced_by_a_link_to_a_file_outside_is_neither_followed_nor_written() {
        let dirs = Dirs::new();
        open_append(&dirs.root(), ACCOUNT, "web.log").unwrap();
        let target = dirs.outside("passwd");
        std::fs::write(&target, "root:x:0:0\n").unwrap();
        std::fs::remove_file(dirs.account().join("web.log")).unwrap();
        symlink(&target, dirs.account().join("web.log")).unwrap();
        let refused = open_append(&dirs.root(), ACCOUNT, "web.log").unwrap_err();
        assert!(matches!(refused, Refused::Symlink(_)), "{refused}");
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "web.log"),
            Err(Refused::LeadsOut(_))
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");
    }

    #[test]
    fn a_link_to_a_file_inside_is_not_written_through_either() {
        let dirs = Dirs::new();
        open_append(&dirs.root(), ACCOUNT, "real.log").unwrap();
        symlink("real.log", dirs.account().join("alias.log")).unwrap();
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "alias.log"),
            Err(Refused::Symlink(_))
        ));
        assert!(matches!(
            open_append(&dirs.root(), ACCOUNT, "alias.log"),
            Err(Refused::Symlink(_))
        ));
    }

    #[test]
    fn a_directory_link_leading_out_refuses_and_nothing_is_created_outside() {
        let dirs = Dirs::new();
        std::fs::create_dir_all(dirs.account()).unwrap();
        std::fs::create_dir_all(dirs.outside("etc")).unwrap();
        symlink(dirs.outside("etc"), dirs.account().join("vpc")).unwrap();
        for name in ["vpc/all.log", "vpc/deeper/all.log"] {
            assert!(
                matches!(
                    check(&dirs.root(), ACCOUNT, name),
                    Err(Refused::LeadsOut(_))
                ),
                "{name}"
            );
            assert!(
                matches!(
                    open_append(&dirs.root(), ACCOUNT, name),
                    Err(Refused::LeadsOut(_))
                ),
                "{name}"
            );
        }
        assert_eq!(std::fs::read_dir(dirs.outside("etc")).unwrap().count(), 0);
    }

    #[test]
    fn a_relative_link_up_to_another_account_leads_out() {
        let dirs = Dirs::new();
        let other = dirs.root().join("210987654321");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::create_dir_all(dirs.account()).unwrap();
        symlink("../210987654321", dirs.account().join("theirs")).unwrap();
        assert!(matches!(
            open_append(&dirs.root(), ACCOUNT, "theirs/x.log"),
            Err(Refused::LeadsOut(_))
        ));
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
    }

    #[test]
    fn a_link_within_the_account_directory_is_followed_for_directories() {
        let dirs = Dirs::new();
        std::fs::create_dir_all(dirs.account().join("real")).unwrap();
        symlink("real", dirs.account().join("alias")).unwrap();
        assert!(check(&dirs.root(), ACCOUNT, "alias/x.log").is_ok());
        open_append(&dirs.root(), ACCOUNT, "alias/x.log").unwrap();
        assert!(dirs.account().join("real/x.log").exists());
    }

    #[test]
    fn the_account_directory_itself_must_not_be_a_link() {
        let dirs = Dirs::new();
        std::fs::create_dir_all(dirs.outside("acct")).unwrap();
        symlink(dirs.outside("acct"), dirs.account()).unwrap();
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "web.log"),
            Err(Refused::AccountDirectory)
        ));
        assert!(matches!(
            open_append(&dirs.root(), ACCOUNT, "web.log"),
            Err(Refused::AccountDirectory)
        ));
        assert_eq!(std::fs::read_dir(dirs.outside("acct")).unwrap().count(), 0);
    }

    #[test]
    fn hard_links_fifos_and_directories_are_not_written_to() {
        let dirs = Dirs::new();
        std::fs::create_dir_all(dirs.account().join("a-dir")).unwrap();
        let target = dirs.outside("shadow");
        std::fs::write(&target, "secret\n").unwrap();
        std::fs::hard_link(&target, dirs.account().join("linked.log")).unwrap();
        let fifo = CString::new(dirs.account().join("fifo.log").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_append(&dirs.root(), ACCOUNT, "linked.log"),
            Err(Refused::HardLinked(_))
        ));
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "linked.log"),
            Err(Refused::HardLinked(_))
        ));
        // Nothing reads the FIFO: the open fails at once rather than blocking the flush.
        assert!(open_append(&dirs.root(), ACCOUNT, "fifo.log").is_err());
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "fifo.log"),
            Err(Refused::NotRegular(_))
        ));
        assert!(open_append(&dirs.root(), ACCOUNT, "a-dir").is_err());
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "a-dir"),
            Err(Refused::NotRegular(_))
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
        assert_eq!(std::fs::metadata(&target).unwrap().nlink(), 2);
    }

    #[test]
    fn a_file_where_a_directory_is_needed_refuses() {
        let dirs = Dirs::new();
        open_append(&dirs.root(), ACCOUNT, "web.log").unwrap();
        assert!(matches!(
            check(&dirs.root(), ACCOUNT, "web.log/x.log"),
            Err(Refused::NotDirectory(_))
        ));
        assert!(open_append(&dirs.root(), ACCOUNT, "web.log/x.log").is_err());
    }
}

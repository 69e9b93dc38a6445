//! The user data of local instances, run by an agent with `serve --run-user-data` (off by
//! default: it runs as root on the host, in the instance's network namespace only): once, when
//! the agent builds the instance's namespace, as a shell script (or, starting with `#!`, as its
//! interpreter says), detached, from an empty working directory, its output kept as the
//! instance's console output. Each instance has a directory under the agent's
//! `<state-dir>/user-data/<instance-id>/`: `user-data` (the script), `console.log`, `cwd/`.
//!
//! Terminating an instance ends every process left in its namespace, as a shutdown would.

use std::{
    fs,
    io::{Read as _, Seek as _, SeekFrom},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use base64::Engine as _;

/// How much of the console output `get-console-output` gives (AWS: the last 64 KB).
pub const CONSOLE_TAIL: u64 = 64 * 1024;

/// The directory of `instance_id`'s user data under `root`.
pub fn instance_dir(root: &Path, instance_id: &str) -> PathBuf {
    root.join(instance_id)
}

/// Starts the user data (`base64`) of `instance_id` in the namespace `netns`; returns once
/// the script runs (detached: it may run on after the agent exits).
pub fn start(root: &Path, instance_id: &str, netns: &str, base64: &str) -> Result<(), String> {
    let script = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|e| format!("user data of {instance_id}: {e}"))?;
    let dir = instance_dir(root, instance_id);
    let cwd = dir.join("cwd");
    fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("user-data");
    fs::write(&path, &script).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("console.log"))
        .map_err(|e| format!("console log of {instance_id}: {e}"))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, "setsid", "--fork"]);
    if !script.starts_with(b"#!") {
        command.arg("/bin/sh");
    }
    let status = command
        .arg(&path)
        .current_dir(&cwd)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", &cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(|e| format!("running the user data of {instance_id}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the user data of {instance_id} could not be started ({status})"
        ));
    }
    tracing::info!(instance = instance_id, "user data started");
    Ok(())
}

/// Ends every process in the namespace `netns` (SIGKILL: what is left when an instance is
/// terminated has no one to save its work for) and removes `instance_id`'s directory.
pub fn end(root: Option<&Path>, instance_id: &str, netns: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let own = std::process::id();
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        if pid as u32 != own {
            // SAFETY: kill(2) with a PID read from `ip netns pids`; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    if let Some(root) = root {
        let _ = fs::remove_dir_all(instance_dir(root, instance_id));
    }
}

/// The last [`CONSOLE_TAIL`] bytes of `instance_id`'s console output, if it has any.
pub fn console_output(root: &Path, instance_id: &str) -> Option<(Vec<u8>, std::time::SystemTime)> {
    let path = instance_dir(root, instance_id).join("console.log");
    let mut file = fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    file.seek(SeekFrom::Start(meta.len().saturating_sub(CONSOLE_TAIL)))
        .ok()?;
    let mut out = Vec::new();
    file.take(CONSOLE_TAIL).read_to_end(&mut out).ok()?;
    Some((out, meta.modified().ok()?))
}

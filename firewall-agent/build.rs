//! Builds the eBPF data plane (`firewall-ebpf`) for `bpfel-unknown-none` with the nightly
//! toolchain and leaves the object in `OUT_DIR`, from where `main.rs` embeds it.
//!
//! aya-build relays every line of the inner cargo's output as a `cargo:warning` (some forty on a
//! first build), which cargo shows to whoever builds the agent. They go to
//! `OUT_DIR/ebpf-build.log` instead: the build script's standard output is pointed at that file
//! while aya-build runs, its `cargo:` directives other than warnings are passed on to cargo, and
//! only when the eBPF build fails is the log shown (on standard error, which cargo prints for a
//! failed build script).
use std::{
    fs::File,
    io::{Read as _, Seek as _, Write as _},
    os::fd::AsRawFd as _,
    path::PathBuf,
};

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let package = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "firewall-ebpf")
        .ok_or_else(|| anyhow!("firewall-ebpf package not found"))?;
    let root = package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("firewall-ebpf manifest has no directory"))?;
    // One source of truth for the eBPF toolchain; the installed, undated nightly by default.
    println!("cargo:rerun-if-env-changed=FIREWALL_EBPF_TOOLCHAIN");
    let toolchain = std::env::var("FIREWALL_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into());
    // The agent's `previous-layout` feature builds the data plane of the previous map layout.
    let features: &[&str] = if std::env::var_os("CARGO_FEATURE_PREVIOUS_LAYOUT").is_some() {
        &["previous-layout"]
    } else {
        &[]
    };
    let ebpf = aya_build::Package {
        name: package.name.as_str(),
        root_dir: root.as_str(),
        features,
        ..Default::default()
    };
    let log = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR")?).join("ebpf-build.log");
    let (result, printed) = with_stdout_in(&log, || {
        aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(&toolchain))
    })?;
    for line in printed.lines() {
        // Directives (rerun-if-changed, …) are cargo's; warnings are the inner build's output.
        if line.starts_with("cargo:") && !line.starts_with("cargo:warning=") {
            println!("{line}");
        }
    }
    if let Err(error) = result {
        for line in printed.lines() {
            eprintln!("{}", line.strip_prefix("cargo:warning=").unwrap_or(line));
        }
        return Err(error.context(format!(
            "building the eBPF data plane (the output above is also in {})",
            log.display()
        )));
    }
    Ok(())
}

/// Runs `f` with this process's standard output (fd 1) written to `log`, and returns what it
/// returned and what it printed.
fn with_stdout_in<T>(log: &PathBuf, f: impl FnOnce() -> T) -> anyhow::Result<(T, String)> {
    let mut file = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(log)
        .with_context(|| format!("creating {}", log.display()))?;
    std::io::stdout().flush()?;
    // SAFETY: dup/dup2 on this process's own descriptors; fd 1 is restored before returning.
    let saved = unsafe { libc::dup(1) };
    if saved < 0 || unsafe { libc::dup2(file.as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error()).context("pointing stdout at the log");
    }
    let result = f();
    let _ = std::io::stdout().flush();
    // SAFETY: as above; `saved` is a descriptor this function opened.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    let mut printed = String::new();
    file.rewind()?;
    file.read_to_string(&mut printed)?;
    Ok((result, printed))
}

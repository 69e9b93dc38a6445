//! `cargo xtask setup`: everything building and testing need, installed on a machine that has
//! none of it, then checked: rust-src for the nightly, bpf-linker built against the nightly's own
//! LLVM, the Debian packages (each file the build and the tests use must exist afterwards, or
//! setup names it and its package), bpffs mounted, `target/venv` with the pinned AWS CLI and
//! boto3, and Terraform's CLI configuration for the local provider mirror. Idempotent, and about a second when there is nothing to do.

use std::{
    env,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::{cargo, output, run_cmd, step, workspace_root};

/// Debian packages the build, the tests and the benchmarks use (each file taken from them is in
/// [`crate::required::REQUIRED`], checked after installing).
pub const DEBIAN_PACKAGES: &[&str] = &[
    // The shared store of the multi-host tests (etcd, etcdctl), and `protoc`, which the etcd
    // client's build script needs.
    "etcd-server",
    "etcd-client",
    "protobuf-compiler",
    // The well-known protos (google/protobuf/*.proto) that protoc resolves imports against: only
    // a Recommends of protobuf-compiler, so --no-install-recommends leaves them out.
    "libprotobuf-dev",
    // The test CA and certificates of the etcd TLS test.
    "openssl",
    "iproute2",
    "iputils-ping",
    // sysctl, which every test topology sets forwarding and proxy ARP with.
    "procps",
    "nftables",
    "iperf3",
    "tcpdump",
    "bpftool",
    "socat",
    "conntrack",
    "netsniff-ng",
    // The iptables + ipset baseline of the hook benchmark (iptables-legacy-restore).
    "iptables",
    "ipset",
    // The benchmark plots' font.
    "fonts-dejavu-core",
    // `python3 -m venv` for the AWS CLI and boto3 (see `ensure_aws_venv`).
    "python3-venv",
    // The CNI plugin's tests: the runtime (its CNI backend), the bridge/host-local plugins it
    // chains after, and a static busybox for the local image.
    "podman",
    // podman's runtime here: crun refuses the hybrid cgroup layout of a container host.
    "runc",
    "containernetworking-plugins",
    "busybox-static",
    // The web console's browser tests: headless chromium driven over WebDriver.
    "chromium",
    "chromium-driver",
    // `systemd-analyze verify` of the service unit, and dpkg-deb, which builds the package.
    "systemd",
    "dpkg",
];

/// The real clients the EC2 endpoint's tests drive (the AWS CLI, boto3, Ansible), pinned
/// (awscli v1 is what PyPI has; it carries its own botocore, boto3 its own: pinned too, or pip
/// takes the newest its range allows and the venv drifts with PyPI).
const PIP_PINS: &[(&str, &str)] = &[
    ("awscli", "1.46.3"),
    ("boto3", "1.44.8"),
    ("botocore", "1.44.8"),
    // Ansible with the amazon.aws collection (bundled: 10.1.2), for the playbook tests. The
    // core is spelled as its dist-info directory spells it (pip takes either).
    ("ansible", "12.3.0"),
    ("ansible_core", "2.19.14"),
    // moto's EC2 security-group tests, run in its server mode against the agent
    // (`crate::moto` fetches the test sources, which the wheel does not carry).
    ("moto", crate::moto::VERSION),
    ("pytest", "9.2.0"),
];

/// Where the virtualenv with [`PIP_PINS`] lives (passed to the tests as `FIREWALL_AWS_VENV`).
pub fn aws_venv() -> PathBuf {
    workspace_root().join("target/venv")
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

pub fn setup() -> anyhow::Result<()> {
    let llvm_major = nightly_llvm_major()?;
    ensure_rust_src()?;
    ensure_bpf_linker(llvm_major)?;
    ensure_debian_packages()?;
    crate::required::check_installed()?;
    ensure_bpffs()?;
    ensure_aws_venv()?;
    crate::moto::ensure_moto_tests()?;
    crate::terraform::ensure_terraform()?;
    Ok(())
}

/// The LLVM major of the installed nightly (bpf-linker must be built for the same one).
fn nightly_llvm_major() -> anyhow::Result<u32> {
    let version = output(Command::new("rustc").args(["+nightly", "-vV"])).context(
        "the eBPF crate needs the installed `nightly` toolchain (rustup toolchain list shows it)",
    )?;
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .context("`rustc +nightly -vV` printed no LLVM version")?;
    Ok(major)
}

fn ensure_rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    step("adding rust-src to the nightly toolchain");
    run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// Which LLVM feature the installed bpf-linker was built with, from cargo's own install record.
fn installed_bpf_linker_llvm() -> Option<u32> {
    let home = cargo_home();
    if !home.join("bin/bpf-linker").exists() {
        return None;
    }
    let record = std::fs::read_to_string(home.join(".crates2.json")).ok()?;
    // The record is JSON: {"installs": {"bpf-linker 0.13.0 (...)": {"features": ["llvm-22"], ...}}}.
    let start = record.find("\"bpf-linker ")?;
    let rest = &record[start..];
    let features = &rest[rest.find("\"features\"")?..];
    let features = &features[..features.find(']')?];
    let at = features.find("llvm-")?;
    features[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

fn ensure_bpf_linker(llvm_major: u32) -> anyhow::Result<()> {
    if installed_bpf_linker_llvm() == Some(llvm_major) {
        return Ok(());
    }
    step(&format!(
        "building bpf-linker against the nightly's LLVM {llvm_major} (about a minute)"
    ));
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let lib_dir = Path::new(sysroot.trim()).join("lib");
    let libllvm = std::fs::read_dir(&lib_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with(&format!("libLLVM.so.{llvm_major}")))
        })
        .with_context(|| format!("no libLLVM.so.{llvm_major}* in {}", lib_dir.display()))?;
    let prefix = cargo_home().join(format!("firewall-llvm-{llvm_major}"));
    std::fs::create_dir_all(prefix.join("lib"))?;
    let link = prefix.join("lib/libLLVM.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&libllvm, &link)?;
    run_cmd(
        cargo()
            .args([
                "install",
                "bpf-linker",
                "--force",
                "--no-default-features",
                "--features",
            ])
            .arg(format!("llvm-{llvm_major}"))
            .env("LLVM_PREFIX", &prefix),
    )
}

fn ensure_debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn ensure_bpffs() -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    {
        return Ok(());
    }
    step("mounting bpffs at /sys/fs/bpf");
    run_cmd(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
}

/// Whether the venv's site-packages holds `package` at `version` (pip's own install record,
/// `<name>-<version>.dist-info`; no Python started).
fn venv_has(venv: &Path, package: &str, version: &str) -> bool {
    let Ok(lib) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    let record = format!("{package}-{version}.dist-info");
    lib.filter_map(|e| e.ok())
        .any(|python| python.path().join("site-packages").join(&record).is_dir())
}

/// `target/venv`: Debian's python3 with the pinned AWS CLI and boto3.
fn ensure_aws_venv() -> anyhow::Result<()> {
    let venv = aws_venv();
    if PIP_PINS
        .iter()
        .all(|(package, version)| venv_has(&venv, package, version))
        && venv.join("bin/aws").exists()
    {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        step(&format!("creating the virtualenv {}", venv.display()));
        // Debian's interpreter, not whatever a PATH shim (pyenv) puts first.
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        run_cmd(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    }
    let pins: Vec<String> = PIP_PINS
        .iter()
        .map(|(package, version)| format!("{package}=={version}"))
        .collect();
    step(&format!(
        "pip-installing {} into the virtualenv",
        pins.join(" ")
    ));
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(&pins)
            .env("PIP_NO_INPUT", "1"),
    )
}

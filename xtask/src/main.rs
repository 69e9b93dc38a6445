//! `cargo xtask`: set-up, build, run and test, each doing its own set-up first so a fresh machine
//! needs nothing but these commands.
//!
//! * `setup` — rust-src for the nightly, bpf-linker built against the nightly's own LLVM,
//!   the Debian packages the tests use, bpffs mounted, and `target/venv` with the real AWS CLI
//!   and boto3 (pinned) for the EC2 endpoint's tests. Idempotent and quick when done.
//! * `build` — one self-contained `target/release/firewall-agent` (the eBPF object embedded).
//! * `run` — build, then the agent in the foreground with a demo: two local instances behind
//!   a `web` group and the commands that show a rule change taking effect.
//! * `test` — formatting, clippy, then every test: unit, packet-level (BPF_PROG_TEST_RUN) and
//!   netns integration tests with real traffic.
//! * `fuzz` — the differential test of the data plane against the reference evaluator, with a
//!   packet budget and seed of one's choosing.
//! * `crash` — the kill -9 crash-safety test (`tests/tests/crash.rs`) with more cycles, and
//!   the conntrack flood (`firewall-agent/tests/conntrack_flood.rs`) with more flows.

use std::{
    env,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

mod demo;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need (idempotent).
    Setup,
    /// Build the release agent with the data plane embedded.
    Build,
    /// Build, then run the agent in the foreground with a demo (two local instances, a web group).
    Run {
        /// Where the desired state is kept.
        #[arg(long, default_value = "/var/lib/firewall-agent")]
        state_dir: PathBuf,
        /// The control socket.
        #[arg(long, default_value = "/run/firewall-agent.sock")]
        socket: PathBuf,
    },
    /// Run the benchmark suite (writes target/bench/report.md, results.json and plots).
    Bench {
        /// The short version (about 3 minutes).
        #[arg(long)]
        quick: bool,
        /// Only one section: program, update, hook, api, e2e, cni or throughput.
        #[arg(long)]
        only: Option<String>,
    },
    /// Run every test (formatting and lints first).
    Test {
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Passed to the test binaries (e.g. a test-name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Compare the data plane with the reference evaluator on N random packets.
    Fuzz {
        /// Packets to compare.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// The seed (default: drawn from the clock, and printed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Kill -9 the agent under concurrent writers for N cycles, then flood conntrack.
    Crash {
        /// Kill -9 cycles.
        #[arg(long, default_value_t = 1000)]
        cycles: u64,
        /// The seed (default: drawn from the clock, and printed).
        #[arg(long)]
        seed: Option<u64>,
        /// New flows in the conntrack flood.
        #[arg(long, default_value_t = 4 << 20)]
        flows: u64,
    },
}

/// Debian packages the tests and benchmarks use.
const DEBIAN_PACKAGES: &[&str] = &[
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
];

/// The real clients the EC2 endpoint's tests drive, pinned (awscli v1 is what PyPI has; it
/// carries its own botocore, boto3 its own).
const PIP_PINS: &[(&str, &str)] = &[("awscli", "1.46.3"), ("boto3", "1.44.8")];

/// Where the virtualenv with [`PIP_PINS`] lives (passed to the tests as `FIREWALL_AWS_VENV`).
fn aws_venv() -> PathBuf {
    workspace_root().join("target/venv")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup(),
        Task::Build => setup().and_then(|()| build()),
        Task::Run { state_dir, socket } => setup()
            .and_then(|()| build())
            .and_then(|()| run(&state_dir, &socket)),
        Task::Test { no_lint, args } => setup().and_then(|()| test(no_lint, &args)),
        Task::Fuzz { packets, seed } => setup().and_then(|()| fuzz(packets, seed)),
        Task::Crash {
            cycles,
            seed,
            flows,
        } => setup().and_then(|()| crash(cycles, seed, flows)),
        Task::Bench { quick, only } => setup().and_then(|()| bench(quick, only.as_deref())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn step(what: &str) {
    println!("xtask: {what}");
}

/// Runs a command, failing with its name when it does not succeed.
fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

fn setup() -> anyhow::Result<()> {
    let llvm_major = nightly_llvm_major()?;
    ensure_rust_src()?;
    ensure_bpf_linker(llvm_major)?;
    ensure_debian_packages()?;
    ensure_bpffs()?;
    ensure_aws_venv()?;
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

fn build() -> anyhow::Result<()> {
    step("building target/release/firewall-agent");
    run_cmd(cargo().current_dir(workspace_root()).args([
        "build",
        "--release",
        "--package",
        "firewall-agent",
    ]))
}

/// The release agent in the foreground, with the demo of `demo.rs`.
fn run(state_dir: &Path, socket: &Path) -> anyhow::Result<()> {
    let binary = workspace_root().join("target/release/firewall-agent");
    demo::run(&binary, state_dir, socket)
}

fn bench(quick: bool, only: Option<&str>) -> anyhow::Result<()> {
    let root = workspace_root();
    step("building the release agent and CNI plugin (the API and CNI sections run them)");
    run_cmd(cargo().current_dir(&root).args([
        "build",
        "--release",
        "--package",
        "firewall-agent",
        "--package",
        "firewall-cni",
    ]))?;
    step("running the benchmark suite (report in target/bench/)");
    let mut cmd = cargo();
    cmd.env(
        "FIREWALL_AGENT_BIN",
        root.join("target/release/firewall-agent"),
    )
    .env("FIREWALL_CNI_BIN", root.join("target/release/firewall-sg"))
    .env("FIREWALL_AWS_VENV", aws_venv());
    cmd.current_dir(&root).args([
        "bench",
        "--package",
        "firewall-agent",
        "--bench",
        "suite",
        "--",
    ]);
    if quick {
        cmd.arg("--quick");
    }
    if let Some(section) = only {
        cmd.args(["--only", section]);
    }
    run_cmd(&mut cmd)
}

fn test(no_lint: bool, args: &[String]) -> anyhow::Result<()> {
    let root = workspace_root();
    if !no_lint {
        step("cargo fmt --check");
        run_cmd(cargo().current_dir(&root).args(["fmt", "--all", "--check"]))?;
        step("cargo clippy -D warnings");
        run_cmd(cargo().current_dir(&root).args([
            "clippy",
            "--workspace",
            "--exclude",
            "firewall-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    let previous = build_previous_layout_agent(&root)?;
    step("building the agent and the CNI plugin for the integration tests");
    run_cmd(cargo().current_dir(&root).args([
        "build",
        "--package",
        "firewall-agent",
        "--package",
        "firewall-cni",
    ]))?;
    step("running every test (unit, BPF_PROG_TEST_RUN, netns traffic)");
    run_cmd(
        cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--exclude", "firewall-ebpf", "--"])
            .args(args)
            .env(
                "FIREWALL_AGENT_BIN",
                root.join("target/debug/firewall-agent"),
            )
            .env("FIREWALL_AGENT_PREVIOUS_BIN", previous)
            .env("FIREWALL_CNI_BIN", root.join("target/debug/firewall-sg"))
            .env("FIREWALL_AWS_VENV", aws_venv()),
    )?;
    step("the packet and differential tests again, what workloads send through the XDP program");
    run_cmd(
        cargo()
            .current_dir(&root)
            .args(["test", "--package", "firewall-agent"])
            .args(["--test", "packets_policy", "--test", "packets_conntrack"])
            .args(["--test", "packets_parsing", "--test", "differential", "--"])
            .args(args)
            .env("FIREWALL_OUTBOUND_HOOK", "xdp")
            .env("FIREWALL_DIFF_PACKETS", "30000"),
    )
}

/// Runs the crash-safety test with `cycles` and the conntrack flood with `flows`; both print
/// what they measured.
fn crash(cycles: u64, seed: Option<u64>, flows: u64) -> anyhow::Result<()> {
    let root = workspace_root();
    let seed = seed.unwrap_or_else(clock_seed);
    step("building the agent for the crash test");
    run_cmd(
        cargo()
            .current_dir(&root)
            .args(["build", "--package", "firewall-agent"]),
    )?;
    step(&format!(
        "crash safety: {cycles} kill -9 cycles, seed {seed}"
    ));
    run_cmd(
        cargo()
            .current_dir(&root)
            .args(["test", "--package", "tests", "--test", "crash"])
            .args(["--", "--nocapture"])
            .env(
                "FIREWALL_AGENT_BIN",
                root.join("target/debug/firewall-agent"),
            )
            .env("FIREWALL_CRASH_CYCLES", cycles.to_string())
            .env("FIREWALL_CRASH_SEED", seed.to_string()),
    )?;
    step(&format!("conntrack flood: {flows} new flows"));
    run_cmd(
        cargo()
            .current_dir(&root)
            .args([
                "test",
                "--package",
                "firewall-agent",
                "--test",
                "conntrack_flood",
            ])
            .args(["--", "--nocapture"])
            .env("FIREWALL_FLOOD_FLOWS", flows.to_string()),
    )
}

/// A seed from the clock.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// The agent of the previous map layout (`--features previous-layout`), the starting point of
/// `tests/tests/upgrade.rs`, copied to `target/previous-layout/firewall-agent`. Built in the same
/// target directory (only the workspace crates differ by feature, the dependencies are shared);
/// the current agent, built next, takes `target/debug/firewall-agent` back.
fn build_previous_layout_agent(root: &Path) -> anyhow::Result<PathBuf> {
    step("building the agent of the previous map layout for the upgrade test");
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--package",
        "firewall-agent",
        "--features",
        "previous-layout",
    ]))?;
    let dir = root.join("target/previous-layout");
    std::fs::create_dir_all(&dir)?;
    let binary = dir.join("firewall-agent");
    std::fs::copy(root.join("target/debug/firewall-agent"), &binary)
        .with_context(|| format!("copying the agent to {}", binary.display()))?;
    Ok(binary)
}

/// Runs `firewall-agent/tests/differential.rs` with the budget and seed in its environment; it
/// prints the packets compared and the mismatches (each with what reproduces it).
fn fuzz(packets: u64, seed: Option<u64>) -> anyhow::Result<()> {
    let seed = seed.unwrap_or_else(clock_seed);
    step(&format!(
        "differential test: {packets} packets, seed {seed}"
    ));
    run_cmd(
        cargo()
            .current_dir(workspace_root())
            .args([
                "test",
                "--package",
                "firewall-agent",
                "--test",
                "differential",
            ])
            .args(["--", "--nocapture"])
            .env("FIREWALL_DIFF_PACKETS", packets.to_string())
            .env("FIREWALL_DIFF_SEED", seed.to_string()),
    )
}

//! `cargo xtask`: set-up, build, run and test, each doing its own set-up first so a fresh machine
//! needs nothing but these commands.
//!
//! * `setup` — rust-src for the nightly, bpf-linker built against the nightly's own LLVM,
//!   the Debian packages the tests use, bpffs mounted, and `target/venv` with the real AWS CLI
//!   and boto3 (pinned) for the EC2 endpoint's tests. Idempotent and quick when done.
//! * `build` — the self-contained `target/release/firewall-agent` (the eBPF object embedded) and
//!   the CNI plugin `target/release/firewall-sg`.
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
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

mod demo;
mod moto;
mod package;
mod required;
mod setup;
mod terraform;

use setup::{aws_venv, setup};

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
    /// Build the release agent (the data plane embedded) and the CNI plugin.
    Build,
    /// Build, then the Debian package target/debian/firewall-agent_<version>_<arch>.deb (the
    /// agent as a systemd service, the CNI plugin, completions, man page).
    Package,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup(),
        Task::Build => setup().and_then(|()| build()),
        Task::Package => setup()
            .and_then(|()| build())
            .and_then(|()| package::release()),
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

/// Every binary the README names, release-built: the agent (`target/release/firewall-agent`, the
/// data plane embedded) and the CNI plugin (`target/release/firewall-sg`).
fn build() -> anyhow::Result<()> {
    step("building target/release/firewall-agent and target/release/firewall-sg");
    run_cmd(cargo().current_dir(workspace_root()).args([
        "build",
        "--release",
        "--package",
        "firewall-agent",
        "--package",
        "firewall-cni",
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
    let deb = package::package(
        &root.join("target/debug"),
        &root.join("target/debian/debug"),
    )?;
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
            .env("FIREWALL_AWS_VENV", aws_venv())
            .env("FIREWALL_TERRAFORM_CONFIG", terraform::cli_config())
            .env("FIREWALL_MOTO_SOURCES", moto::sources())
            .env("FIREWALL_DEB", deb),
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

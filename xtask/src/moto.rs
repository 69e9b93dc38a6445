//! moto's own EC2 security-group tests, run against the agent (moto's server mode pointed at
//! the agent's EC2 endpoint): the wheel setup installs in the venv has no tests, so setup
//! fetches moto's source distribution from PyPI (`pip download`, the same pinned version) and
//! unpacks it under `target/moto/`.

use std::{path::PathBuf, process::Command};

use anyhow::Context as _;

use crate::{run_cmd, setup::aws_venv, step, workspace_root};

/// The moto release whose tests run (and whose package the venv holds).
pub const VERSION: &str = "5.2.5";

/// The unpacked source distribution (`tests/test_ec2/test_security_groups.py` inside).
pub fn sources() -> PathBuf {
    workspace_root()
        .join("target/moto")
        .join(format!("moto-{VERSION}"))
}

/// Fetches and unpacks moto's sources unless they are there (idempotent, quick when done).
pub fn ensure_moto_tests() -> anyhow::Result<()> {
    let tests = sources().join("tests/test_ec2/test_security_groups.py");
    if tests.exists() {
        return Ok(());
    }
    let dir = workspace_root().join("target/moto");
    std::fs::create_dir_all(&dir)?;
    step(&format!(
        "fetching moto {VERSION}'s sources (its tests) into {}",
        dir.display()
    ));
    run_cmd(
        Command::new(aws_venv().join("bin/pip"))
            .args([
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
            ])
            .args(["--no-binary", ":all:", &format!("moto=={VERSION}"), "-d"])
            .arg(&dir)
            .env("PIP_NO_INPUT", "1"),
    )?;
    let archive = dir.join(format!("moto-{VERSION}.tar.gz"));
    run_cmd(
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir),
    )?;
    anyhow::ensure!(
        tests.exists(),
        "{} holds no {}",
        archive.display(),
        tests.display()
    );
    std::fs::remove_file(&archive).with_context(|| format!("removing {}", archive.display()))?;
    Ok(())
}

//! Terraform for the IaC tests: the machine image carries Terraform and HashiCorp's AWS provider
//! (the pinned version) in a local filesystem mirror, and nothing may be fetched from the
//! registry. Setup finds both and writes a CLI configuration (`target/terraform/cli.tfrc`) whose
//! `provider_installation` takes the AWS provider from that mirror only; the tests run Terraform
//! with `TF_CLI_CONFIG_FILE` pointing at it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{step, workspace_root};

/// The provider version the configurations pin (`required_providers`).
pub const AWS_PROVIDER: &str = "5.100.0";
/// Where a filesystem mirror of the image may live (searched a few levels deep).
const MIRROR_ROOTS: &[&str] = &[
    "/opt",
    "/usr/local/share",
    "/usr/share",
    "/root/.terraform.d",
    "/root/.local/share/terraform",
];

/// The CLI configuration the tests run Terraform with.
pub fn cli_config() -> PathBuf {
    workspace_root().join("target/terraform/cli.tfrc")
}

/// The mirror's provider directory under `root`, if it is a mirror: `root` is the directory above
/// `registry.terraform.io`.
fn provider_dir(root: &Path) -> PathBuf {
    root.join("registry.terraform.io/hashicorp/aws")
        .join(AWS_PROVIDER)
        .join("linux_amd64")
}

/// A directory holding `registry.terraform.io/hashicorp/aws/<AWS_PROVIDER>` at most `depth`
/// levels under `dir`.
fn find_mirror(dir: &Path, depth: u32) -> Option<PathBuf> {
    if provider_dir(dir).is_dir() {
        return Some(dir.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    children.sort();
    children.iter().find_map(|c| find_mirror(c, depth - 1))
}

/// The mirror the configuration names now, if it still holds the provider.
fn configured_mirror(config: &str) -> Option<PathBuf> {
    let line = config
        .lines()
        .find(|l| l.trim_start().starts_with("path"))?;
    let path = PathBuf::from(line.split('"').nth(1)?);
    provider_dir(&path).is_dir().then_some(path)
}

/// Checks Terraform and writes [`cli_config`] (idempotent; quick when it is already right).
pub fn ensure_terraform() -> anyhow::Result<()> {
    let version = Command::new("terraform").arg("version").output().context(
        "running `terraform version`: Terraform (1.11, the machine image's) is not on PATH",
    )?;
    if !version.status.success() {
        bail!(
            "`terraform version` failed: {}",
            String::from_utf8_lossy(&version.stderr)
        );
    }
    let config = cli_config();
    let current = std::fs::read_to_string(&config).unwrap_or_default();
    if configured_mirror(&current).is_some() {
        return Ok(());
    }
    let mirror = MIRROR_ROOTS
        .iter()
        .find_map(|root| find_mirror(Path::new(root), 3))
        .with_context(|| {
            format!(
                "no filesystem mirror of hashicorp/aws {AWS_PROVIDER} under {MIRROR_ROOTS:?} \
                 (the machine image's: a directory holding registry.terraform.io/hashicorp/aws/{AWS_PROVIDER})"
            )
        })?;
    step(&format!(
        "writing {} (hashicorp/aws {AWS_PROVIDER} from the mirror {})",
        config.display(),
        mirror.display()
    ));
    let text = format!(
        "# Written by `cargo xtask setup`: the AWS provider from the machine's mirror, nothing \
         from the registry.\nprovider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    \
         include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = \
         [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n",
        mirror.display()
    );
    std::fs::create_dir_all(config.parent().expect("a parent"))?;
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok(())
}

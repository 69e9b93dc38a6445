//! Builds the eBPF data plane (`firewall-ebpf`) for `bpfel-unknown-none` with the nightly
//! toolchain and leaves the object in `OUT_DIR`, from where `main.rs` embeds it.
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
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(&toolchain))
}

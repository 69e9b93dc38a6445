//! `cargo xtask package`: the Debian package `target/debian/firewall-agent_<version>_<arch>.deb`,
//! the agent as a system service (`apt install ./target/debian/firewall-agent_….deb`).
//!
//! Built with `dpkg-deb --build --root-owner-group` from a staging tree next to it, not with
//! cargo-deb: dpkg-deb is Debian's own packager, on every Debian machine (package `dpkg`), where
//! cargo-deb would cost a several-minute `cargo install` on each fresh CI machine. The tree holds
//! the two binaries, the systemd unit and the maintainer scripts of `firewall-agent/packaging/`,
//! the completions and the man page the agent prints (`firewall-agent completions`, `man`), the
//! copyright file and `DEBIAN/control`.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{output, run_cmd, step, workspace_root};

/// The package's name, that of its unit and of its state directory.
const PACKAGE: &str = "firewall-agent";

/// Who answers for the package (`Maintainer:`).
const MAINTAINER: &str = "firewall-agent maintainers <maintainers@firewall-agent.invalid>";

/// Programs the agent runs (`Command::new`): `ip` (iproute2), for local instances' namespaces
/// and veths; and the unit's `ExecReload=/bin/kill` (procps).
const RUNTIME_DEPENDS: &[&str] = &["iproute2", "procps"];

/// The binaries, the CNI plugin where Debian's containernetworking-plugins puts its own
/// (`/usr/lib/cni`, which podman searches).
const AGENT: &str = "usr/bin/firewall-agent";
const CNI_PLUGIN: &str = "usr/lib/cni/firewall-sg";
/// Debian 12's directory for packages' units (`pkg-config --variable=systemdsystemunitdir
/// systemd`); with merged /usr it is also /usr/lib/systemd/system, where later releases put them.
const UNIT: &str = "lib/systemd/system/firewall-agent.service";
/// The man page, section 8 (the agent's `man` writes a section 8 page).
const MAN_PAGE: &str = "usr/share/man/man8/firewall-agent.8";
/// Where each shell looks for the completions packages install, and the shell's name for
/// `firewall-agent completions`.
const COMPLETIONS: &[(&str, &str)] = &[
    (
        "bash",
        "usr/share/bash-completion/completions/firewall-agent",
    ),
    ("zsh", "usr/share/zsh/vendor-completions/_firewall-agent"),
    (
        "fish",
        "usr/share/fish/vendor_completions.d/firewall-agent.fish",
    ),
];
const COPYRIGHT: &str = "usr/share/doc/firewall-agent/copyright";
const MAINTAINER_SCRIPTS: &[&str] = &["postinst", "prerm", "postrm"];

const EXECUTABLE: u32 = 0o755;
const REGULAR: u32 = 0o644;

/// `cargo xtask package`: the package of the release build (`cargo xtask build`), in
/// `target/debian`.
pub fn release() -> anyhow::Result<()> {
    let root = workspace_root();
    let deb = package(&root.join("target/release"), &root.join("target/debian"))?;
    step(&format!("built {}", deb.display()));
    Ok(())
}

/// Packages `firewall-agent` and `firewall-sg` of `bin_dir` (`target/release`, or
/// `target/debug` for the tests) into `out/firewall-agent_<version>_<arch>.deb`, the version the
/// agent's (its Cargo.toml's), the architecture dpkg's; returns the package's path. The staging
/// tree, `out/firewall-agent_<version>_<arch>/`, is removed once the package is built.
pub fn package(bin_dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let agent = bin_dir.join("firewall-agent");
    let cni = bin_dir.join("firewall-sg");
    for binary in [&agent, &cni] {
        if !binary.is_file() {
            bail!("{} is missing: build it first", binary.display());
        }
    }
    let version = debian_version(&output(Command::new(&agent).arg("--version"))?)?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned();
    let name = format!("{PACKAGE}_{version}_{arch}");
    let deb = out.join(format!("{name}.deb"));
    step(&format!(
        "packaging {} into {}",
        bin_dir.display(),
        deb.display()
    ));

    let stage = out.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let packaging = workspace_root().join("firewall-agent/packaging");
    put(&stage, AGENT, &read(&agent)?, EXECUTABLE)?;
    put(&stage, CNI_PLUGIN, &read(&cni)?, EXECUTABLE)?;
    put(
        &stage,
        UNIT,
        &read(&packaging.join("firewall-agent.service"))?,
        REGULAR,
    )?;
    for (shell, path) in COMPLETIONS {
        let script = output(Command::new(&agent).args(["completions", shell]))?;
        put(&stage, path, script.as_bytes(), REGULAR)?;
    }
    let page = output(Command::new(&agent).arg("man"))?;
    put(&stage, MAN_PAGE, page.as_bytes(), REGULAR)?;
    // -n: no name or time stamp in the header, so the same page compresses to the same bytes.
    run_cmd(Command::new("gzip").arg("-9n").arg(stage.join(MAN_PAGE)))?;
    put(&stage, COPYRIGHT, copyright().as_bytes(), REGULAR)?;

    let control = control(&version, &arch, &stage, &[&agent, &cni])?;
    put(&stage, "DEBIAN/control", control.as_bytes(), REGULAR)?;
    for script in MAINTAINER_SCRIPTS {
        put(
            &stage,
            &format!("DEBIAN/{script}"),
            &read(&packaging.join(script))?,
            EXECUTABLE,
        )?;
    }
    directories_0755(&stage)?;

    // zstd: a second where xz takes a minute on the debug build `cargo xtask test` packages;
    // dpkg reads it since 1.21.18 (Debian 12).
    run_cmd(
        Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group", "-Zzstd"])
            .arg(&stage)
            .arg(&deb),
    )?;
    fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    Ok(deb)
}

/// The Debian version of `firewall-agent <version>` (what `--version` prints): a Cargo
/// pre-release (`1.0.0-rc.1`) sorts before its release with `~`.
fn debian_version(printed: &str) -> anyhow::Result<String> {
    let version = printed
        .trim()
        .strip_prefix("firewall-agent ")
        .with_context(|| format!("unexpected --version output {printed:?}"))?;
    Ok(version.replace('-', "~"))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes `contents` at `path` under `stage` with `mode`, creating the directories.
fn put(stage: &Path, path: &str, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let target = stage.join(path);
    let dir = target.parent().expect("a path under the stage");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(&target, contents).with_context(|| format!("writing {}", target.display()))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", target.display()))
}

/// Every directory of the tree 0755, whatever the umask.
fn directories_0755(dir: &Path) -> anyhow::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(EXECUTABLE))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            directories_0755(&entry.path())?;
        }
    }
    Ok(())
}

/// The bytes of the files under `dir`, each counted in whole KiB as dpkg counts them.
fn kib_under(dir: &Path) -> anyhow::Result<u64> {
    let mut kib = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        kib += if meta.is_dir() {
            kib_under(&entry.path())? + 1
        } else {
            meta.len().div_ceil(1024)
        };
    }
    Ok(kib)
}

/// `DEBIAN/control`: written after the files, whose size it gives (`Installed-Size`).
fn control(version: &str, arch: &str, stage: &Path, binaries: &[&Path]) -> anyhow::Result<String> {
    let mut depends = shared_library_depends(binaries)?;
    depends.extend(RUNTIME_DEPENDS.iter().map(|p| p.to_string()));
    Ok(format!(
        "Package: {PACKAGE}
Version: {version}
Architecture: {arch}
Maintainer: {MAINTAINER}
Installed-Size: {size}
Depends: {depends}
Section: net
Priority: optional
Description: AWS-style security groups enforced by eBPF on local workloads
 Security groups, rules and instances are created with the verbs, options,
 error codes and JSON of `aws ec2` (on the agent's socket, or its EC2 Query
 API for the AWS CLI and SDKs), and eBPF programs on each workload's veth
 enforce them statefully. The agent keeps the desired state in an embedded
 database (or etcd) and updates the kernel's maps live.
 .
 Also the CNI plugin firewall-sg, which puts containers behind security
 groups.
",
        size = kib_under(stage)?,
        depends = depends.join(", "),
    ))
}

/// What the binaries' shared libraries need, as dpkg-shlibdeps would say it (without requiring
/// dpkg-dev): libc6 at least at the newest `GLIBC_` version they ask for, and libgcc-s1 (the
/// unwinder) when they link it; read from `ldd -v` (libc-bin), the binaries' own entries.
fn shared_library_depends(binaries: &[&Path]) -> anyhow::Result<Vec<String>> {
    let mut glibc: Option<Vec<u32>> = None;
    let mut libgcc = false;
    for binary in binaries {
        let listing = output(Command::new("ldd").arg("-v").arg(binary))?;
        // The binary's own requirements: the indented lines after its name, up to the next
        // library's name.
        let own = listing
            .lines()
            .skip_while(|line| line.trim() != "Version information:")
            .skip(2)
            .take_while(|line| line.starts_with("\t\t"));
        for line in own {
            let line = line.trim();
            if line.starts_with("libgcc_s.so") {
                libgcc = true;
            }
            let required = line
                .split_once("(GLIBC_")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(version, _)| {
                    version
                        .split('.')
                        .map(str::parse::<u32>)
                        .collect::<Result<Vec<_>, _>>()
                });
            if let Some(Ok(version)) = required {
                glibc = glibc.max(Some(version));
            }
        }
    }
    let Some(glibc) = glibc else {
        bail!("ldd -v names no GLIBC_ version for {binaries:?}");
    };
    let glibc: Vec<String> = glibc.iter().map(u32::to_string).collect();
    let mut depends = vec![format!("libc6 (>= {})", glibc.join("."))];
    if libgcc {
        depends.push("libgcc-s1".to_owned());
    }
    Ok(depends)
}

/// `/usr/share/doc/firewall-agent/copyright` in Debian's machine-readable format: the
/// workspace's `MIT OR Apache-2.0`.
fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: {PACKAGE}

Files: *
Copyright: The firewall-agent authors
License: MIT or Apache-2.0

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the \"Software\"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the \"License\"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at https://www.apache.org/licenses/LICENSE-2.0
 .
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_version_is_the_agents_with_pre_releases_sorting_first() {
        assert_eq!(debian_version("firewall-agent 0.1.0\n").unwrap(), "0.1.0");
        assert_eq!(
            debian_version("firewall-agent 1.0.0-rc.1").unwrap(),
            "1.0.0~rc.1"
        );
        assert!(debian_version("something else").is_err());
    }
}

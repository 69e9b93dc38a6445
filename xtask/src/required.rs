//! Every file the build, the tests and the benchmarks take from a Debian package, and the
//! package setup installs for it. Setup checks them after installing ([`check_installed`]); the
//! tests below ask dpkg who owns each one and fail when that package is not in setup's list, so
//! a package installed by hand (or pulled in as a Recommends on one machine and not on another)
//! can no longer hide a missing install step.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// A file some step uses, the Debian package that provides it (the one named in
/// [`crate::setup::DEBIAN_PACKAGES`]), and who uses it.
pub struct Required {
    /// As the package lists it (`dpkg -L`): merged-/usr machines list `/bin/ip`, not
    /// `/usr/bin/ip`. One component may be `*` (the Python version of `python3-venv`).
    pub path: &'static str,
    pub package: &'static str,
    pub used_by: &'static str,
}

const fn file(path: &'static str, package: &'static str, used_by: &'static str) -> Required {
    Required {
        path,
        package,
        used_by,
    }
}

pub const REQUIRED: &[Required] = &[
    file(
        "/usr/bin/protoc",
        "protobuf-compiler",
        "etcd-client's build script",
    ),
    file(
        "/usr/include/google/protobuf/descriptor.proto",
        "libprotobuf-dev",
        "etcd-client's build script (protoc's well-known imports)",
    ),
    file("/usr/bin/etcd", "etcd-server", "the multi-host tests"),
    file("/usr/bin/etcdctl", "etcd-client", "the multi-host tests"),
    file("/usr/bin/openssl", "openssl", "the etcd TLS test's CA"),
    file("/bin/ip", "iproute2", "every netns test"),
    file("/bin/ping", "iputils-ping", "the traffic tests"),
    file("/sbin/sysctl", "procps", "the test topologies"),
    file(
        "/usr/sbin/nft",
        "nftables",
        "the nftables export test and benchmarks",
    ),
    file("/usr/bin/iperf3", "iperf3", "the throughput benchmark"),
    file(
        "/usr/bin/tcpdump",
        "tcpdump",
        "the packet captures of the tests",
    ),
    file("/usr/sbin/bpftool", "bpftool", "the observability tests"),
    file("/usr/bin/socat", "socat", "the traffic tests"),
    file(
        "/usr/sbin/conntrack",
        "conntrack",
        "the conntrack comparison",
    ),
    file("/usr/sbin/mausezahn", "netsniff-ng", "the flood benchmark"),
    file(
        "/usr/sbin/iptables-legacy-restore",
        "iptables",
        "the hook benchmark's baseline",
    ),
    file("/usr/sbin/ipset", "ipset", "the hook benchmark's baseline"),
    file(
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "fonts-dejavu-core",
        "the benchmark plots",
    ),
    file(
        "/usr/lib/*/ensurepip/__init__.py",
        "python3-venv",
        "the AWS CLI's virtualenv (python3 -m venv)",
    ),
    file("/usr/bin/podman", "podman", "the CNI and container tests"),
    file("/usr/sbin/runc", "runc", "podman's runtime in the tests"),
    file(
        "/usr/lib/cni/bridge",
        "containernetworking-plugins",
        "the CNI plugin's tests",
    ),
    file(
        "/usr/lib/cni/host-local",
        "containernetworking-plugins",
        "the CNI plugin's tests",
    ),
    file(
        "/bin/busybox",
        "busybox-static",
        "the local container image",
    ),
    file(
        "/usr/bin/chromium",
        "chromium",
        "the console's browser tests",
    ),
    file(
        "/usr/bin/chromedriver",
        "chromium-driver",
        "the console's browser tests",
    ),
    file(
        "/usr/bin/systemd-analyze",
        "systemd",
        "the service unit's test",
    ),
    file("/usr/bin/dpkg-deb", "dpkg", "cargo xtask package"),
];

/// `path` with its `*` component (if any) matched against the directory's entries: the first
/// match that exists, or the path as written.
pub fn expand(path: &str) -> PathBuf {
    let Some((dir, rest)) = path.split_once("/*/") else {
        return PathBuf::from(path);
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join(rest))
        .filter(|candidate| candidate.exists())
        .collect();
    candidates.sort();
    candidates
        .pop()
        .unwrap_or_else(|| Path::new(dir).join("*").join(rest))
}

/// Fails naming every required file that is missing and the package that provides it.
pub fn check_installed() -> anyhow::Result<()> {
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|r| !expand(r.path).exists())
        .map(|r| {
            format!(
                "{} (Debian package {}, for {})",
                r.path, r.package, r.used_by
            )
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "setup installed its packages but these are still missing:\n  {}",
            missing.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::setup::DEBIAN_PACKAGES;

    /// The package dpkg says owns `path` (`dpkg -S`), without its `:arch`. Packages list a file
    /// under `/bin` on one release and `/usr/bin` on the next (merged /usr): the other spelling
    /// is asked when the first finds nothing.
    fn owner(path: &Path) -> String {
        let dpkg_s = |path: &Path| Command::new("dpkg").arg("-S").arg(path).output();
        let mut out = dpkg_s(path).expect("dpkg -S");
        let text = path.to_string_lossy();
        let other = match text.strip_prefix("/usr") {
            Some(rest) => rest.to_string(),
            None => format!("/usr{text}"),
        };
        if !out.status.success() {
            out = dpkg_s(Path::new(&other)).expect("dpkg -S");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "dpkg -S {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let package = stdout.split(':').next().unwrap_or_default().trim();
        package.to_string()
    }

    /// The packages `package` depends on directly (`Depends`, alternatives included).
    fn depends(package: &str) -> Vec<String> {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Depends}", package])
            .output()
            .expect("dpkg-query");
        String::from_utf8_lossy(&out.stdout)
            .split([',', '|'])
            .filter_map(|dep| dep.split_whitespace().next())
            .map(|name| name.split(':').next().unwrap_or(name).to_string())
            .collect()
    }

    /// The required files whose owning package is neither in `packages` nor a direct dependency
    /// of one of them, each with its owner.
    fn not_installed_by(packages: &[&str]) -> Vec<String> {
        REQUIRED
            .iter()
            .filter_map(|r| {
                let owner = owner(&expand(r.path));
                let covered = packages.contains(&owner.as_str())
                    || packages
                        .iter()
                        .any(|listed| depends(listed).contains(&owner));
                (!covered).then(|| format!("{} is in {owner}", r.path))
            })
            .collect()
    }

    #[test]
    fn every_file_the_build_and_tests_use_comes_from_a_package_setup_installs() {
        assert_eq!(not_installed_by(DEBIAN_PACKAGES), Vec::<String>::new());
    }

    #[test]
    fn each_file_is_owned_by_the_package_the_table_names_or_one_it_depends_on() {
        for r in REQUIRED {
            let owner = owner(&expand(r.path));
            assert!(
                owner == r.package || depends(r.package).contains(&owner),
                "{} belongs to {owner}, the table says {}",
                r.path,
                r.package
            );
        }
    }

    #[test]
    fn a_package_left_out_of_setups_list_is_named_by_the_file_it_provides() {
        let without: Vec<&str> = DEBIAN_PACKAGES
            .iter()
            .copied()
            .filter(|p| *p != "libprotobuf-dev")
            .collect();
        assert_eq!(
            not_installed_by(&without),
            vec!["/usr/include/google/protobuf/descriptor.proto is in libprotobuf-dev".to_string()]
        );
    }

    #[test]
    fn setup_checks_every_file_and_they_are_all_there() {
        check_installed().expect("every required file");
    }
}

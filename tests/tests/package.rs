//! The Debian package (`cargo xtask package`; `cargo xtask test` builds it from the debug binaries
//! and passes its path as `FIREWALL_DEB`): the files it installs, its control fields and
//! maintainer scripts, binaries that run once unpacked, and a unit `systemd-analyze verify`
//! accepts. Nothing is installed on the machine: `dpkg -x` unpacks into a temporary directory.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

/// The package under test; a relative `FIREWALL_DEB` is taken from the workspace's root.
fn deb() -> PathBuf {
    let deb = std::env::var_os("FIREWALL_DEB").map(PathBuf::from).expect(
        "FIREWALL_DEB is unset: run `cargo xtask test`, which packages the debug build \
         (target/debian/debug/firewall-agent_<version>_<arch>.deb) and sets it, or set it to \
         the package of `cargo xtask package` (target/debian/…)",
    );
    let deb = workspace().join(deb);
    assert!(deb.is_file(), "FIREWALL_DEB: no file {}", deb.display());
    deb
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// The agent's version, from its Cargo.toml (the package's `Version`, a pre-release's `-` as
/// `~`).
fn agent_version() -> String {
    let manifest = std::fs::read_to_string(workspace().join("firewall-agent/Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|line| line.starts_with("version = "))
        .expect("the agent's Cargo.toml names its version");
    line.trim_start_matches("version = ")
        .trim_matches('"')
        .into()
}

/// Runs `cmd`, failing the test with its stderr unless it succeeds; returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The package's files unpacked (`dpkg -x`) into a directory removed on drop.
fn unpacked() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg").arg("-x").arg(deb()).arg(dir.path()));
    dir
}

/// What the package installs, and whether each is a program.
const FILES: &[(&str, bool)] = &[
    ("usr/bin/firewall-agent", true),
    ("usr/lib/cni/firewall-sg", true),
    ("lib/systemd/system/firewall-agent.service", false),
    (
        "usr/share/bash-completion/completions/firewall-agent",
        false,
    ),
    ("usr/share/zsh/vendor-completions/_firewall-agent", false),
    (
        "usr/share/fish/vendor_completions.d/firewall-agent.fish",
        false,
    ),
    ("usr/share/man/man8/firewall-agent.8.gz", false),
    ("usr/share/doc/firewall-agent/copyright", false),
];

#[test]
fn package_installs_the_binaries_unit_completions_man_page_and_copyright_owned_by_root() {
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb()));
    for (path, program) in FILES {
        let line = listing
            .lines()
            .find(|line| line.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        let mode = if *program { "-rwxr-xr-x" } else { "-rw-r--r--" };
        assert!(
            line.starts_with(&format!("{mode} root/root ")),
            "{path}: {line}"
        );
    }
}

#[test]
fn control_file_names_the_agents_version_dpkgs_architecture_and_what_the_agent_runs() {
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(deb()).arg(name))
            .trim()
            .to_string()
    };
    let architecture = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(field("Package"), "firewall-agent");
    assert_eq!(field("Version"), agent_version().replace('-', "~"));
    assert_eq!(field("Architecture"), architecture.trim());
    assert_eq!(field("Section"), "net");
    assert_eq!(field("Priority"), "optional");
    assert!(
        field("Maintainer").ends_with('>'),
        "{}",
        field("Maintainer")
    );
    assert!(field("Installed-Size").parse::<u64>().unwrap() > 0);
    assert!(
        field("Description").starts_with("AWS-style security groups enforced by eBPF"),
        "{}",
        field("Description")
    );
    let depends = field("Depends");
    let depends: Vec<&str> = depends.split(", ").collect();
    // `ip` (local instances) and the unit's ExecReload=/bin/kill; glibc at the version the
    // binaries were linked against.
    assert!(depends.contains(&"iproute2"), "{depends:?}");
    assert!(depends.contains(&"procps"), "{depends:?}");
    assert!(
        depends.iter().any(|d| d.starts_with("libc6 (>= 2.")),
        "{depends:?}"
    );
}

#[test]
fn maintainer_scripts_are_shell_that_leaves_systemd_alone_where_it_does_not_run() {
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(deb())
        .arg(control.path()));
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{script}");
        run(Command::new("sh").arg("-n").arg(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("systemctl ") || text.contains("deb-systemd-invoke ") {
            assert!(
                text.contains("[ -d /run/systemd/system ]"),
                "{script} calls systemd without checking that it runs:\n{text}"
            );
        }
    }
    let postinst = std::fs::read_to_string(control.path().join("postinst")).unwrap();
    assert!(postinst.contains("deb-systemd-helper enable firewall-agent.service"));
}

#[test]
fn unpacked_agent_prints_its_version_and_the_cni_plugin_answers_version() {
    let root = unpacked();
    let version = run(Command::new(root.path().join("usr/bin/firewall-agent")).arg("--version"));
    assert_eq!(version, format!("firewall-agent {}\n", agent_version()));

    let plugin = root.path().join("usr/lib/cni/firewall-sg");
    let mode = std::fs::metadata(&plugin).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{} is executable", plugin.display());
    let answer = run(Command::new(&plugin)
        .env("CNI_COMMAND", "VERSION")
        .stdin(std::process::Stdio::null()));
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["cniVersion"], "1.0.0");
}

#[test]
fn completions_and_man_page_are_the_agents_own() {
    let root = unpacked();
    let bash = std::fs::read_to_string(
        root.path()
            .join("usr/share/bash-completion/completions/firewall-agent"),
    )
    .unwrap();
    assert!(bash.contains("authorize-security-group-ingress"));
    assert!(bash.contains("complete -F _firewall__agent"));
    let zsh = std::fs::read_to_string(
        root.path()
            .join("usr/share/zsh/vendor-completions/_firewall-agent"),
    )
    .unwrap();
    assert!(zsh.starts_with("#compdef firewall-agent"));
    let fish = std::fs::read_to_string(
        root.path()
            .join("usr/share/fish/vendor_completions.d/firewall-agent.fish"),
    )
    .unwrap();
    assert!(fish.contains("complete -c firewall-agent"));

    let page = run(Command::new("gzip")
        .arg("-dc")
        .arg(root.path().join("usr/share/man/man8/firewall-agent.8.gz")));
    assert!(
        page.lines()
            .any(|line| line.starts_with(".TH firewall-agent 8 ")),
        "{page}"
    );
    assert!(page.contains(".SH FILES"));
}

#[test]
fn systemd_analyze_verify_accepts_the_packaged_unit() {
    let root = unpacked();
    let unit = root
        .path()
        .join("lib/systemd/system/firewall-agent.service");
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        std::fs::read_to_string(
            workspace().join("firewall-agent/packaging/firewall-agent.service")
        )
        .unwrap(),
        "the package's unit is firewall-agent/packaging/firewall-agent.service"
    );
    // Under --root systemd checks ExecStart= and ExecReload= there: the unpacked agent, and
    // /bin/kill, which procps (a dependency) installs.
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    std::fs::copy("/bin/kill", root.path().join("bin/kill")).unwrap();
    // --recursive-errors=no: the root holds no other unit (sysinit.target, …); --man=no: nor the
    // man page of Documentation=.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--recursive-errors=no"])
        .arg(format!("--root={}", root.path().display()))
        .arg("firewall-agent.service")
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

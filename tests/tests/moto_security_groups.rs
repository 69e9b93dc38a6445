//! moto's own EC2 security-group tests (moto 5.2.5, `tests/test_ec2/test_security_groups.py`
//! from its source distribution, which `cargo xtask setup` fetches) in moto's server mode
//! against the agent: every test moto marks as verified against AWS passes, and the tests that
//! fail are exactly those `docs/aws-differences.md` lists under "moto's security-group tests",
//! each with the side AWS takes and the evidence.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use firewall_testkit::{
    agent::agent_binary,
    aws::{Identity, venv, write_credentials},
    netns::Netns,
    shell::{sh, unique},
};

const TEST_FILE: &str = "tests/test_ec2/test_security_groups.py";

fn sources() -> PathBuf {
    std::env::var_os("FIREWALL_MOTO_SOURCES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/moto/moto-5.2.5"))
}

/// A temporary directory with a bpffs mounted in it (the agents pin there; `ip netns exec`
/// hides /sys/fs/bpf), unmounted and removed on drop.
struct Work(PathBuf);

impl Work {
    fn new() -> Work {
        let dir = std::env::temp_dir().join(unique("fw-moto-"));
        std::fs::create_dir_all(dir.join("bpffs")).expect("work dir");
        sh(&[
            "mount",
            "-t",
            "bpf",
            "bpf",
            &dir.join("bpffs").display().to_string(),
        ]);
        Work(dir)
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.join("bpffs")).status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The tests moto marks as verified against AWS (`@aws_verified`, `@ec2_aws_verified`,
/// `@pytest.mark.aws_verified` among their decorators).
fn verified(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut decorators = Vec::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if line.starts_with('@') {
            decorators.push(trimmed.to_string());
        } else if let Some(rest) = line.strip_prefix("def ") {
            let name = rest.split('(').next().unwrap_or_default().to_string();
            if decorators.iter().any(|d| d.contains("aws_verified")) {
                out.insert(name);
            }
            decorators.clear();
        } else if !line.starts_with(' ') && !line.starts_with(')') && !trimmed.is_empty() {
            decorators.clear();
        }
    }
    out
}

/// The failing tests the differences page lists (backquoted `test_…` names in its section).
fn documented() -> BTreeSet<String> {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/aws-differences.md"),
    )
    .expect("docs/aws-differences.md");
    let section = page
        .split("\n## ")
        .find(|s| s.starts_with("moto's security-group tests"))
        .expect("a section \"moto's security-group tests\"");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("test_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn motos_aws_verified_security_group_tests_pass_and_every_other_failure_is_documented() {
    let ns = Netns::new("fwmo");
    let work = Work::new();
    write_credentials(
        &work.0.join("credentials"),
        &[Identity {
            name: "default".into(),
            access_key_id: "FOOBARKEY".into(),
            secret_access_key: "FOOBARSECRET".into(),
            account_id: Some("123456789012".into()),
        }],
    );
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("moto");
    let venv = venv();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "timeout", "900"])
        .arg(venv.join("bin/python"))
        .args(["-m", "pytest", TEST_FILE, "-p", "fresh_agent", "-rA"])
        .args(["-p", "no:cacheprovider", "--color=no", "-q"])
        .current_dir(sources())
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                venv.join("bin").display()
            ),
        )
        .env("HOME", &work.0)
        .env("PYTHONPATH", &plugin)
        .env("TEST_SERVER_MODE", "true")
        .env("TEST_SERVER_MODE_ENDPOINT", "http://localhost:5000")
        .env("MOTO_CALL_RESET_API", "false")
        .env("AWS_ACCESS_KEY_ID", "FOOBARKEY")
        .env("AWS_SECRET_ACCESS_KEY", "FOOBARSECRET")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("FW_AGENT_BIN", agent_binary())
        .env("FW_WORK", work.0.join("runs"))
        .env("FW_CREDENTIALS", work.0.join("credentials"))
        .env("FW_BPFFS", work.0.join("bpffs"))
        .output()
        .expect("running pytest");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let outcome = |word: &str| -> BTreeSet<String> {
        report
            .lines()
            .filter_map(|l| l.strip_prefix(word))
            .filter_map(|l| l.split("::").nth(1))
            .map(|l| l.split(" - ").next().unwrap_or(l).trim().to_string())
            .collect()
    };
    let passed = outcome("PASSED ");
    let mut failed = outcome("FAILED ");
    failed.extend(outcome("ERROR "));
    let skipped = report.lines().filter(|l| l.starts_with("SKIPPED")).count();
    println!(
        "moto {TEST_FILE}: {} passed, {} failed, {skipped} skipped",
        passed.len(),
        failed.len()
    );
    for test in &failed {
        println!("  failed: {test}");
    }
    assert!(
        passed.len() + failed.len() > 40,
        "pytest ran the file:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let source = std::fs::read_to_string(sources().join(TEST_FILE)).expect("the test file");
    let verified = verified(&source);
    assert!(verified.len() >= 5, "verified tests found: {verified:?}");
    let base = |name: &String| name.split('[').next().unwrap_or(name).to_string();
    let verified_failing: Vec<&String> = failed
        .iter()
        .filter(|t| verified.contains(&base(t)))
        .collect();
    assert!(
        verified_failing.is_empty(),
        "tests verified against AWS fail: {verified_failing:?}\n{report}"
    );
    assert!(
        verified
            .iter()
            .all(|v| passed.iter().any(|p| base(p) == *v)),
        "every verified test ran and passed: {verified:?}"
    );
    let documented = documented();
    assert_eq!(
        failed, documented,
        "the failing tests are exactly those docs/aws-differences.md explains\n{report}"
    );
}

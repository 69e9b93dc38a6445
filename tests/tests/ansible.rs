//! Ansible's amazon.aws collection (from the `ansible` package pinned in `target/venv`) drives
//! the agent unchanged: `tests/ansible/*.yml` create, edit (`purge_rules`, tags) and delete
//! security groups, read them with the info modules, and create, change and delete a network
//! interface; each playbook runs twice, and the second run reports no change.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use firewall_testkit::{
    agent::Agent,
    aws::{self, ACCESS_KEY_ID, Aws, SECRET_ACCESS_KEY},
    netns::Netns,
    shell::unique,
};

/// The playbooks, in the order they run.
const PLAYBOOKS: &[(&str, bool)] = &[
    // (playbook, whether its first run changes something)
    ("01_groups_create.yml", true),
    ("02_groups_modify.yml", true),
    ("03_info.yml", false),
    ("04_eni_create.yml", true),
    ("05_eni_modify.yml", true),
    ("06_eni_delete.yml", true),
    ("07_groups_absent.yml", true),
];
const REGION: &str = "us-east-1";

fn playbooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible")
}

/// A directory for Ansible's home and temporary files, removed on drop.
struct Home(PathBuf);

impl Drop for Home {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `ansible-playbook PLAYBOOK` inside the namespace with the connection in `home`: its exit
/// status, the `changed=` count of its recap, and its output.
fn play(ns: &Netns, home: &Path, playbook: &str) -> (i32, Option<u32>, String) {
    let venv = aws::venv();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "timeout", "300"])
        .arg(venv.join("bin/ansible-playbook"))
        .arg("-e")
        .arg(format!("@{}", home.join("connection.json").display()))
        .arg(playbooks().join(playbook))
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                venv.join("bin").display()
            ),
        )
        .env("HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_PYTHON_INTERPRETER", venv.join("bin/python"))
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("running ansible-playbook");
    let text = format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = text
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .and_then(|l| l.split("changed=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    (out.status.code().unwrap_or(-1), changed, text)
}

#[test]
fn every_playbook_applies_and_its_second_run_changes_nothing() {
    let ns = Netns::new("fwan");
    let identity = aws::Identity {
        account_id: None,
        ..aws::Identity::test()
    };
    let aws = Aws::with_identity(&ns, aws::free_port(), identity);
    let options = aws.agent_options();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let agent = Agent::start_with(&ns, &options);
    assert!(
        aws.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    let home = Home(std::env::temp_dir().join(unique("fw-ansible-")));
    std::fs::create_dir_all(home.0.join("tmp")).expect("ansible home");
    let connection = serde_json::json!({"aws_conn": {
        "endpoint_url": aws.endpoint_url(),
        "region": REGION,
        "access_key": ACCESS_KEY_ID,
        "secret_key": SECRET_ACCESS_KEY,
    }});
    std::fs::write(home.0.join("connection.json"), connection.to_string()).expect("vars");

    for &(playbook, changes) in PLAYBOOKS {
        let (status, changed, out) = play(&ns, &home.0, playbook);
        assert_eq!(status, 0, "{playbook}, first run:\n{out}");
        let changed = changed.unwrap_or_else(|| panic!("no recap:\n{out}"));
        assert_eq!(changed > 0, changes, "{playbook}, first run:\n{out}");
        let (status, changed, out) = play(&ns, &home.0, playbook);
        assert_eq!(status, 0, "{playbook}, second run:\n{out}");
        assert_eq!(
            changed,
            Some(0),
            "{playbook}: the second run changes nothing:\n{out}"
        );
    }
    let groups: Vec<String> =
        agent.cli(&["describe-security-groups", "--region", REGION])["SecurityGroups"]
            .as_array()
            .expect("SecurityGroups")
            .iter()
            .map(|g| g["GroupName"].as_str().expect("GroupName").to_string())
            .collect();
    assert_eq!(groups, ["default"], "the playbooks' groups are gone");
    let interfaces = agent.cli(&["describe-network-interfaces", "--region", REGION]);
    assert_eq!(interfaces["NetworkInterfaces"], serde_json::json!([]));
}

//! The keys under a running agent: `console-url` needs only the socket (the agent mints the
//! link for a key of its own credentials, wherever they are), and a key rotated or removed in
//! the credentials file is refused at once — by the EC2 endpoint and by the console, whose
//! sessions of that key end — after `systemctl reload` (SIGHUP) or, without it, within the
//! agent's look at the file every 2 s. And a key's console can't do what only the root-only
//! socket may: registering an existing interface (`HostInterface`) is `UnknownParameter`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use super::{Console, KEY, SECRET};
use firewall_testkit::{
    agent::agent_binary,
    aws::{Identity, write_credentials},
    browser::HttpAnswer,
};

/// As long as [`SECRET`]: the rotated file keeps its size.
const ROTATED: &str = "fwConsoleRotate/0123456789abcdefghijKLMN";

#[test]
fn console_url_needs_only_the_agents_socket() {
    let console = Console::start("fwck");
    let out = Command::new(agent_binary())
        .arg("--socket")
        .arg(&console.agent.socket)
        .arg("console-url")
        .output()
        .expect("console-url");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        link.starts_with(&console.url("/console/sign-in/link?key=")),
        "the agent's own endpoint and key: {link}"
    );
    let path = link.trim_start_matches(&console.url(""));
    let signed = console.http("GET", path, &[], "");
    assert_eq!(signed.status, 303, "{signed:?}");
    assert!(signed.header("set-cookie").is_some(), "{signed:?}");

    let unknown = Command::new(agent_binary())
        .arg("--socket")
        .arg(&console.agent.socket)
        .args(["console-url", "--access-key-id", "AKIANOSUCHKEY0000001"])
        .output()
        .expect("console-url");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("AKIANOSUCHKEY0000001"),
        "it names the key it does not hold"
    );
}

#[test]
fn a_rotated_key_is_refused_at_once_after_a_reload_and_its_console_sessions_end() {
    let console = Console::start("fwcr");
    let session = sign_in(&console, SECRET);
    assert_eq!(session_status(&console, &session), 200);
    assert!(console.aws.cli(&["ec2", "describe-vpcs"]).success());

    rotate_keeping_the_files_stamp(&console);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        console.aws.cli(&["ec2", "describe-vpcs"]).code(),
        "",
        "without a reload the agent still takes the old secret (its look at the file sees no change)"
    );
    // SAFETY: plain kill(2) on the agent the test started.
    unsafe { libc::kill(console.agent.pid() as i32, libc::SIGHUP) };
    // A known key with a wrong secret: AWS's code for it.
    let refused =
        eventually(|| console.aws.cli(&["ec2", "describe-vpcs"]).code() == "SignatureDoesNotMatch");
    assert!(refused, "the old secret is refused after the reload");
    assert_eq!(
        session_status(&console, &session),
        401,
        "the session of the rotated key ended"
    );
    assert!(console.agent.log().contains("reloaded the API keys"));
    let again = sign_in(&console, ROTATED);
    assert_eq!(
        session_status(&console, &again),
        200,
        "the new secret works"
    );
    assert!(console.agent.log().contains("reloaded the API keys"));
    assert!(
        console.agent.pid() > 0 && console.agent.try_cli(&["describe-vpcs"]).is_ok(),
        "SIGHUP did not end the agent"
    );
}

#[test]
fn a_key_removed_from_the_file_is_refused_without_a_signal() {
    let console = Console::start("fwcm");
    let session = sign_in(&console, SECRET);
    write_agent_key(&console, "AKIAFWOTHERKEY000001", SECRET);
    let refused = eventually(|| console.aws.cli(&["ec2", "describe-vpcs"]).code() == "AuthFailure");
    assert!(refused, "{}", console.agent.log());
    assert_eq!(session_status(&console, &session), 401);

    std::fs::write(
        console.aws.agent_credentials(),
        "[broken]\naws_access_key_id = X\n",
    )
    .expect("write");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        console.agent.log().contains("does not parse"),
        "a broken file is reported and the keys in force stay: {}",
        console.agent.log()
    );
    assert_eq!(
        console.aws.cli(&["ec2", "describe-vpcs"]).code(),
        "AuthFailure"
    );
}

#[test]
fn the_console_refuses_host_interface_and_registers_nothing() {
    let console = Console::start("fwch");
    let cookie = sign_in(&console, SECRET);
    let session = console.http("GET", "/console/api/session", &[("Cookie", &cookie)], "");
    let csrf: serde_json::Value = serde_json::from_str(&session.body).expect("JSON");
    let csrf = csrf["CsrfToken"].as_str().expect("CsrfToken").to_string();
    let answer = console.http(
        "POST",
        "/console/api/call/RunInstances",
        &[
            ("Cookie", &cookie),
            ("x-csrf-token", &csrf),
            ("x-firewall-region", "local"),
            ("Content-Type", "application/json"),
        ],
        r#"{"HostInterface": "lo", "PrivateIpAddress": "172.31.0.20"}"#,
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("UnknownParameter"), "{}", answer.body);
    let described = console.cli(&["describe-instances"]);
    assert_eq!(described["Reservations"], serde_json::json!([]));
}

/// Rotates the key's secret in the agent's credentials file in place, keeping its inode, size
/// and modification time: only a SIGHUP makes the agent read it again.
fn rotate_keeping_the_files_stamp(console: &Console) {
    let path = console.aws.agent_credentials();
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let text = std::fs::read_to_string(&path).expect("credentials");
    assert_eq!(SECRET.len(), ROTATED.len());
    std::fs::write(&path, text.replace(SECRET, ROTATED)).expect("rewrite in place");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(modified))
        .expect("the old mtime");
}

/// The agent's credentials file now holds only `key` with `secret` (a new file renamed over the
/// old one, as `install` and editors write it).
fn write_agent_key(console: &Console, key: &str, secret: &str) {
    let path = console.aws.agent_credentials();
    let tmp = path.with_extension("new");
    let id = Identity {
        name: "default".into(),
        access_key_id: key.into(),
        secret_access_key: secret.into(),
        account_id: None,
    };
    write_credentials(&tmp, &[id]);
    std::fs::rename(&tmp, &path).expect("rename");
}

/// The session cookie of a sign-in with the console's key and `secret`.
fn sign_in(console: &Console, secret: &str) -> String {
    let signed: HttpAnswer = console.http(
        "POST",
        "/console/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!(
            "access_key_id={KEY}&secret_access_key={}",
            secret.replace('/', "%2F")
        ),
    );
    assert_eq!(signed.status, 303, "{signed:?}");
    let cookie = signed.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap_or_default().to_string()
}

fn session_status(console: &Console, cookie: &str) -> u16 {
    console
        .http("GET", "/console/api/session", &[("Cookie", cookie)], "")
        .status
}

/// Whether `check` holds within 6 s (the agent looks at the file every 2 s).
fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

//! The real AWS clients (the AWS CLI v1 and boto3 from `target/venv`, installed by `cargo xtask
//! setup`) driving an agent's EC2 Query endpoint from inside the agent's namespace.
//!
//! Each [`Aws`] has a temporary directory of its own (removed on drop) holding the client's
//! `config` and `credentials`, and the agent's `--credentials` file. The clients run with a
//! cleared environment: nothing from the caller's `AWS_*`, `~/.aws` or instance metadata
//! reaches them. The endpoint listens on `127.0.0.1:PORT` inside the namespace and the clients
//! run there too (`ip netns exec`), so no request leaves it.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU16, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{agent::Agent, netns::Netns, shell::unique};

/// The profile the clients use by default (in both `config` and `credentials`).
pub const PROFILE: &str = "fw";
/// The region that profile is configured for.
pub const REGION: &str = "local";
/// The key pair the agent accepts and the clients sign with.
pub const ACCESS_KEY_ID: &str = "AKIAFWTESTKEY0000001";
pub const SECRET_ACCESS_KEY: &str = "fwTestSecretKey/0123456789abcdefghijKLMN";
/// The account the agent reports for that key (STS GetCallerIdentity, `OwnerId`).
pub const ACCOUNT_ID: &str = "123456789012";
/// A profile with the right key ID and a wrong secret (SignatureDoesNotMatch).
pub const WRONG_SECRET_PROFILE: &str = "wrong-secret";
/// A profile whose key ID the agent does not know (AuthFailure).
pub const UNKNOWN_KEY_PROFILE: &str = "unknown-key";
/// How long one client run may take before it is killed (`timeout`, exit status 124).
const CLIENT_TIMEOUT_SECS: &str = "120";

/// The virtualenv with `aws` and boto3 (`FIREWALL_AWS_VENV`, set by `cargo xtask test`).
pub fn venv() -> PathBuf {
    std::env::var_os("FIREWALL_AWS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv"))
}

/// The Python programs the tests run (`tests/boto3/`).
pub fn boto3_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/boto3")
}

/// A port for an endpoint on loopback, unique to this process and call (each namespace has its
/// own loopback, so this only has to differ between the agents of one test).
pub fn free_port() -> u16 {
    static COUNTER: AtomicU16 = AtomicU16::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = (std::process::id() & 0x3ff) as u16; // 0..1024
    20_000 + (pid * 40 + n % 40) % 40_000
}

/// One `[name]` section of a shared-credentials file.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: Option<String>,
}

impl Identity {
    /// The test key pair under [`PROFILE`], with [`ACCOUNT_ID`].
    pub fn test() -> Identity {
        Identity {
            name: PROFILE.into(),
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
            account_id: Some(ACCOUNT_ID.into()),
        }
    }
}

/// Writes an AWS shared-credentials INI file (mode 0600) with these sections.
pub fn write_credentials(path: &Path, identities: &[Identity]) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut text = String::new();
    for id in identities {
        text += &format!(
            "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            id.name, id.access_key_id, id.secret_access_key
        );
        if let Some(account) = &id.account_id {
            text += &format!("aws_account_id = {account}\n");
        }
        text += "\n";
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Reads the first section of a shared-credentials file (e.g. the one the agent generates).
pub fn read_credentials(path: &Path) -> Identity {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut id = Identity {
        name: String::new(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        account_id: None,
    };
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !id.name.is_empty() {
                break;
            }
            id.name = name.trim().to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().to_string();
            match key.trim() {
                "aws_access_key_id" => id.access_key_id = value,
                "aws_secret_access_key" => id.secret_access_key = value,
                "aws_account_id" => id.account_id = Some(value),
                _ => {}
            }
        }
    }
    assert!(
        !id.access_key_id.is_empty() && !id.secret_access_key.is_empty(),
        "no key pair in {}:\n{text}",
        path.display()
    );
    id
}

/// What a client run printed, and its exit status.
#[derive(Debug)]
pub struct ClientOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ClientOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The AWS error code in `An error occurred (Code) when calling …`, or "".
    pub fn code(&self) -> &str {
        crate::agent::error_code(&self.stderr)
    }

    /// Stdout as JSON (`--output json`, the profile's default).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

impl std::fmt::Display for ClientOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The AWS CLI and boto3 configured for one agent's EC2 endpoint inside one namespace.
pub struct Aws {
    ns: String,
    pub port: u16,
    /// `config`, `credentials` (the clients'), `agent-credentials` (the agent's).
    pub dir: PathBuf,
}

impl Aws {
    /// A configuration for an endpoint on `127.0.0.1:port` inside `ns`, with the test key pair
    /// (profile [`PROFILE`], region [`REGION`], `endpoint_url`, JSON output), the profiles
    /// [`WRONG_SECRET_PROFILE`] and [`UNKNOWN_KEY_PROFILE`], and the agent's credentials file
    /// holding only the test key pair.
    pub fn new(ns: &Netns, port: u16) -> Aws {
        Self::with_identity(ns, port, Identity::test())
    }

    /// Like [`Aws::new`] with the clients signing as `id` (e.g. the pair the agent generated),
    /// and `id` in the agent's credentials file.
    pub fn with_identity(ns: &Netns, port: u16, id: Identity) -> Aws {
        let dir = std::env::temp_dir().join(unique("fw-aws-"));
        std::fs::create_dir_all(&dir).expect("aws dir");
        let aws = Aws {
            ns: ns.name.clone(),
            port,
            dir,
        };
        write_credentials(&aws.agent_credentials(), std::slice::from_ref(&id));
        aws.write_client_files(&id);
        aws
    }

    fn write_client_files(&self, id: &Identity) {
        let client = |name: &str, key: &str, secret: &str| Identity {
            name: name.into(),
            access_key_id: key.into(),
            secret_access_key: secret.into(),
            account_id: None,
        };
        write_credentials(
            &self.dir.join("credentials"),
            &[
                client(PROFILE, &id.access_key_id, &id.secret_access_key),
                client(
                    WRONG_SECRET_PROFILE,
                    &id.access_key_id,
                    "wrongSecretKey/0123456789abcdefghijKLMN",
                ),
                client(
                    UNKNOWN_KEY_PROFILE,
                    "AKIAFWUNKNOWNKEY0001",
                    &id.secret_access_key,
                ),
            ],
        );
        let mut config = String::new();
        for profile in [PROFILE, WRONG_SECRET_PROFILE, UNKNOWN_KEY_PROFILE] {
            config += &format!(
                "[profile {profile}]\nregion = {REGION}\noutput = json\nendpoint_url = {}\n\n",
                self.endpoint_url()
            );
        }
        std::fs::write(self.dir.join("config"), config).expect("aws config");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The file the agent gets with `--credentials`.
    pub fn agent_credentials(&self) -> PathBuf {
        self.dir.join("agent-credentials")
    }

    /// The agent's `serve` options for this endpoint.
    pub fn agent_options(&self) -> Vec<String> {
        vec![
            "--ec2-listen".into(),
            format!("127.0.0.1:{}", self.port),
            "--credentials".into(),
            self.agent_credentials().display().to_string(),
        ]
    }

    /// The environment every client run gets (after clearing the caller's).
    pub fn env(&self) -> Vec<(String, String)> {
        let bin = venv().join("bin");
        [
            (
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            ),
            ("HOME", self.dir.display().to_string()),
            ("LANG", "C.UTF-8".into()),
            (
                "AWS_CONFIG_FILE",
                self.dir.join("config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("credentials").display().to_string(),
            ),
            ("AWS_PROFILE", PROFILE.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("PYTHONDONTWRITEBYTECODE", "1".into()),
            ("PYTHONUNBUFFERED", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs a program from the virtualenv's `bin` (or any on PATH) inside the namespace, with
    /// [`Aws::env`] only, plus `extra_env`.
    pub fn run(&self, program: &str, args: &[&str], extra_env: &[(&str, &str)]) -> ClientOutput {
        let bin = venv().join("bin").join(program);
        let program = if bin.exists() {
            bin
        } else {
            PathBuf::from(program)
        };
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "timeout", CLIENT_TIMEOUT_SECS])
            .arg(&program)
            .args(args)
            .env_clear()
            .envs(self.env())
            .envs(extra_env.iter().copied())
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        ClientOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `aws ARGS…` with the profile [`PROFILE`] (endpoint and region from its config).
    pub fn cli(&self, args: &[&str]) -> ClientOutput {
        self.run("aws", args, &[])
    }

    /// `aws ARGS…` signing with another profile of this configuration.
    pub fn cli_as(&self, profile: &str, args: &[&str]) -> ClientOutput {
        self.run("aws", args, &[("AWS_PROFILE", profile)])
    }

    /// `aws ARGS…`, which must succeed; its JSON output.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.success(), "aws {args:?}: {out}");
        if out.stdout.trim().is_empty() {
            Value::Null
        } else {
            out.json()
        }
    }

    /// `aws ARGS…`, which must succeed; its stdout as printed (`--output text|table`).
    pub fn text(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.success(), "aws {args:?}: {out}");
        out.stdout
    }

    /// `aws ARGS…`, which must fail with this AWS error code; its output.
    pub fn fails(&self, code: &str, args: &[&str]) -> ClientOutput {
        let out = self.cli(args);
        assert!(
            !out.success() && out.code() == code,
            "aws {args:?}: expected {code}: {out}"
        );
        out
    }

    /// The virtualenv's Python running `script` with `args`.
    pub fn python(&self, script: &Path, args: &[&str]) -> ClientOutput {
        let script = script.display().to_string();
        let mut all = vec![script.as_str()];
        all.extend_from_slice(args);
        self.run("python", &all, &[])
    }

    /// Waits until something accepts TCP connections on the endpoint's port in the namespace.
    pub fn wait_listening(&self, within: Duration) -> bool {
        let path = format!("/run/netns/{}", self.ns);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            let deadline = Instant::now() + within;
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .join()
        .expect("probe thread")
    }
}

impl Drop for Aws {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("aws client files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts an agent in `ns` serving the EC2 endpoint on a fresh loopback port with the test key
/// pair, waits for the endpoint, and returns it with clients configured for it.
pub fn start_agent(ns: &Netns) -> (Agent, Aws) {
    start_agent_with(ns, &[])
}

/// [`start_agent`] with more `serve` options.
pub fn start_agent_with(ns: &Netns, options: &[&str]) -> (Agent, Aws) {
    let aws = Aws::new(ns, free_port());
    let mut all: Vec<String> = aws.agent_options();
    all.extend(options.iter().map(|o| o.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let agent = Agent::start_with(ns, &all);
    assert!(
        aws.wait_listening(Duration::from_secs(10)),
        "no EC2 endpoint on 127.0.0.1:{} in {}; agent log:\n{}",
        aws.port,
        ns.name,
        agent.log()
    );
    (agent, aws)
}

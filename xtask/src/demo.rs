//! `cargo xtask run`'s demo: the agent in the foreground with two local instances in the default
//! VPC behind a `web` group, and the commands that show a rule change taking effect. Run again,
//! it reuses the group and the instances it made (tagged `demo=firewall-agent`).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The agent binary's CLI against `socket`.
struct Cli {
    binary: PathBuf,
    socket: PathBuf,
}

impl Cli {
    fn call(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = Command::new(&self.binary)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.binary.display()))?;
        if !out.status.success() {
            bail!(
                "firewall-agent {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }
}

/// The `web` group's ID, created when missing.
fn web_group(cli: &Cli) -> anyhow::Result<String> {
    let found = cli.call(&[
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web",
    ])?;
    if let Some(id) = found["SecurityGroups"][0]["GroupId"].as_str() {
        return Ok(id.to_string());
    }
    let made = cli.call(&[
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "demo web tier",
    ])?;
    Ok(made["GroupId"].as_str().context("GroupId")?.to_string())
}

/// The demo's two running instances (launched when missing): (ID, namespace, address).
fn instances(cli: &Cli, web: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let running = |out: &Value| -> Vec<(String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        out["Reservations"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
            .map(|i| {
                (
                    text(&i["InstanceId"]),
                    text(&i["NetworkInterfaces"][0]["Namespace"]),
                    text(&i["PrivateIpAddress"]),
                )
            })
            .collect()
    };
    let found = cli.call(&[
        "describe-instances",
        "--filters",
        "Name=tag:demo,Values=firewall-agent",
        "Name=instance-state-name,Values=running",
    ])?;
    let found = running(&found);
    if found.len() == 2 {
        return Ok(found);
    }
    let ids: Vec<&str> = found.iter().map(|(id, _, _)| id.as_str()).collect();
    if !ids.is_empty() {
        let mut args = vec!["terminate-instances", "--instance-ids"];
        args.extend(ids);
        cli.call(&args)?;
    }
    let launched = cli.call(&[
        "run-instances",
        "--count",
        "2",
        "--security-group-ids",
        web,
        "--tag-specifications",
        r#"[{"ResourceType": "instance", "Tags": [{"Key": "demo", "Value": "firewall-agent"}]}]"#,
    ])?;
    Ok(running(&serde_json::json!({"Reservations": [launched]})))
}

/// A one-time console sign-in link minted by the running agent, or why there is none.
fn console_link(binary: &Path, socket: &Path) -> String {
    let out = Command::new(binary)
        .arg("--socket")
        .arg(socket)
        .arg("console-url")
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => format!("(none: {})", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("(none: {e})"),
    }
}

/// Starts the agent, sets the demo up, prints what to try, and waits for the agent to stop.
pub fn run(binary: &Path, state_dir: &Path, socket: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(socket);
    let mut agent: Child = Command::new(binary)
        .arg("--socket")
        .arg(socket)
        .arg("serve")
        .arg("--state-dir")
        .arg(state_dir)
        .spawn()
        .context("starting the agent")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if Instant::now() > deadline || agent.try_wait()?.is_some() {
            let _ = agent.kill();
            bail!("the agent did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cli = Cli {
        binary: binary.to_path_buf(),
        socket: socket.to_path_buf(),
    };
    let set_up = web_group(&cli).and_then(|web| Ok((instances(&cli, &web)?, web)));
    let (instances, web) = match set_up {
        Ok(done) => done,
        Err(e) => {
            let _ = agent.kill();
            return Err(e);
        }
    };
    let [(a, ns_a, _), (b, ns_b, ip_b)] = &instances[..] else {
        let _ = agent.kill();
        bail!("the demo needs two instances, got {}", instances.len());
    };
    let console = console_link(binary, socket);
    println!(
        "\nDemo: instances {a} and {b} in the default VPC, group web ({web}), no inbound rule yet.\n\
         In another terminal:\n\
         \x20 export FIREWALL_AGENT_SOCKET={socket}\n\
         \x20 ip netns exec {ns_b} socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hello from {b}' &\n\
         \x20 ip netns exec {ns_a} socat -T2 - TCP:{ip_b}:80,connect-timeout=2   # times out: no rule\n\
         \x20 {bin} authorize-security-group-ingress --group-id {web} --protocol tcp --port 80 --cidr 172.31.0.0/16\n\
         \x20 ip netns exec {ns_a} socat -T2 - TCP:{ip_b}:80,connect-timeout=2   # hello from {b}\n\
         \x20 {bin} revoke-security-group-ingress --group-id {web} --protocol tcp --port 80 --cidr 172.31.0.0/16\n\
         \x20 {bin} get-dataplane-statistics\n\
         \x20 {bin} terminate-instances --instance-ids {a} {b}   # removes their namespaces\n\
         The web console (a one-time sign-in link, valid 5 minutes; `{bin} console-url` prints another):\n\
         \x20 {console}\n\
         Stop the agent with Ctrl-C (the instances and their enforcement stay).\n",
        socket = socket.display(),
        bin = binary.display(),
    );
    let status = agent.wait()?;
    if !status.success() {
        bail!("the agent exited with {status}");
    }
    Ok(())
}

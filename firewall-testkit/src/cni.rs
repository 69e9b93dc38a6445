//! CNI plugins run exactly as a runtime runs them: `CNI_*` variables, the network configuration
//! on stdin, the result or error object on stdout, inside the test's host namespace (so the
//! bridge and host-side veths are made there). A [`Chain`] runs a network's plugins in order for
//! ADD (each given the previous one's result) and in reverse for DEL. Host-local IPAM keeps its
//! leases in a directory of the chain's own, removed on drop.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::{netns::Netns, shell::unique};

/// Debian's containernetworking-plugins (bridge, ptp, host-local, ...).
pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// The `firewall-sg` plugin under test (built by `cargo xtask test`).
pub fn firewall_sg_binary() -> PathBuf {
    std::env::var_os("FIREWALL_CNI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/firewall-sg")
        })
}

/// What a plugin printed and how it exited.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub stdout: Value,
}

/// Runs the plugin `binary` with `command` for `container` (its namespace) in `host`, with
/// `conf` on stdin and extra CNI_ARGS `args`.
pub fn invoke(
    host: &str,
    binary: &Path,
    command: &str,
    container_id: &str,
    container: Option<&Netns>,
    args: &str,
    conf: &Value,
) -> Outcome {
    let mut child = Command::new("ip")
        .args(["netns", "exec", host])
        .arg(binary)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env(
            "CNI_NETNS",
            container.map_or(String::new(), |ns| format!("/run/netns/{}", ns.name)),
        )
        .env("CNI_IFNAME", "eth0")
        .env("CNI_ARGS", args)
        .env("CNI_PATH", PLUGIN_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(conf.to_string().as_bytes())
        .expect("writing the configuration");
    let out = child.wait_with_output().expect("plugin output");
    let text = String::from_utf8_lossy(&out.stdout);
    let stdout = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("plugin printed non-JSON ({e}): {text}"))
    };
    Outcome {
        success: out.status.success(),
        stdout,
    }
}

/// A network: the `bridge` plugin (host-local IPAM in `subnet`) followed by `firewall-sg`
/// configured with `firewall`'s members (`securityGroupIds`, `agentSocket`, ...).
pub struct Chain {
    /// The namespace the runtime (and so every plugin) runs in.
    pub host: String,
    pub name: String,
    pub version: String,
    /// The bridge the `bridge` plugin makes in `host`.
    pub bridge: String,
    bridge_conf: Value,
    pub firewall_conf: Value,
    ipam_dir: PathBuf,
}

impl Chain {
    pub fn new(host: &Netns, version: &str, subnet: &str, firewall: Value) -> Chain {
        let name = unique("fwnet");
        let bridge = unique("fwcb");
        let ipam_dir = std::env::temp_dir().join(unique("fw-ipam-"));
        let bridge_conf = json!({
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "dataDir": ipam_dir,
            },
        });
        let mut firewall_conf = firewall;
        firewall_conf["type"] = "firewall-sg".into();
        Chain {
            host: host.name.clone(),
            name,
            version: version.into(),
            bridge,
            bridge_conf,
            firewall_conf,
            ipam_dir,
        }
    }

    /// One plugin's configuration as the runtime passes it: the list's name and version, and
    /// the previous result when there is one.
    fn conf(&self, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut conf = plugin.clone();
        conf["cniVersion"] = self.version.clone().into();
        conf["name"] = self.name.clone().into();
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        conf
    }

    fn bridge_plugin(&self) -> PathBuf {
        Path::new(PLUGIN_DIR).join("bridge")
    }

    /// ADD through the chain: the bridge plugin's result, and firewall-sg's outcome.
    pub fn add(&self, id: &str, container: &Netns, args: &str) -> (Value, Outcome) {
        let bridge = invoke(
            &self.host,
            &self.bridge_plugin(),
            "ADD",
            id,
            Some(container),
            args,
            &self.conf(&self.bridge_conf, None),
        );
        assert!(bridge.success, "bridge ADD: {}", bridge.stdout);
        let ours = self.firewall("ADD", id, Some(container), args, Some(&bridge.stdout));
        (bridge.stdout, ours)
    }

    /// firewall-sg alone with `command`, given `prev` as the previous result.
    pub fn firewall(
        &self,
        command: &str,
        id: &str,
        container: Option<&Netns>,
        args: &str,
        prev: Option<&Value>,
    ) -> Outcome {
        invoke(
            &self.host,
            &firewall_sg_binary(),
            command,
            id,
            container,
            args,
            &self.conf(&self.firewall_conf, prev),
        )
    }

    /// DEL through the chain in reverse: firewall-sg's outcome (the bridge's must succeed).
    pub fn del(&self, id: &str, container: &Netns, prev: &Value) -> Outcome {
        let ours = self.firewall("DEL", id, Some(container), "", Some(prev));
        let bridge = invoke(
            &self.host,
            &self.bridge_plugin(),
            "DEL",
            id,
            Some(container),
            "",
            &self.conf(&self.bridge_conf, Some(prev)),
        );
        assert!(bridge.success, "bridge DEL: {}", bridge.stdout);
        ours
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.ipam_dir);
    }
}

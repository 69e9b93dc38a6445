//! The parts of the CNI specification (1.0.0, and 0.4.0 which differs only in an `ips[].version`
//! member that is passed through) this plugin reads and writes: the network configuration on
//! stdin, the previous plugin's result, the runtime's variables, and error objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Versions whose configuration and result formats this plugin handles.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.4.0", "1.0.0"];

/// Well-known error codes of the specification; 100 and above are the plugin's own.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// The agent refused the call (its AWS error code is in the message).
    pub const AGENT_REFUSED: u32 = 100;
    /// CHECK found the container not enforced as configured.
    pub const NOT_ENFORCED: u32 = 101;
}

/// The network configuration a runtime passes on stdin (one plugin's entry of a list, with the
/// list's `cniVersion` and `name`). Unknown members are the runtime's and are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// The agent's control socket.
    #[serde(default = "default_socket")]
    pub agent_socket: String,
    /// The region the instances are registered in (the agent's `local` when absent).
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    /// The previous plugin's result (ADD, CHECK; DEL when the runtime has it).
    #[serde(default)]
    pub prev_result: Option<Value>,
}

fn default_socket() -> String {
    "/run/firewall-agent.sock".into()
}

/// `runtimeConfig`: what the runtime passes for the capabilities the configuration declares
/// (here `"capabilities": {"securityGroupIds": true}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

/// The members of a result this plugin reads (`interfaces`, `ips`); the whole result is passed
/// through as it came.
#[derive(Debug, Clone, Deserialize)]
pub struct PrevResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Interface {
    pub name: String,
    /// The container's network namespace path; absent for the host's interfaces.
    #[serde(default)]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IpConfig {
    /// `address/prefix`.
    pub address: String,
    /// Index into `interfaces`.
    #[serde(default)]
    pub interface: Option<usize>,
}

/// The runtime's `CNI_*` variables.
#[derive(Debug, Clone)]
pub struct Env {
    pub command: String,
    pub container_id: String,
    pub ifname: String,
    /// `CNI_ARGS`: `K=V` pairs separated by `;`.
    pub args: BTreeMap<String, String>,
}

/// An error object (printed on stdout, exit status 1).
#[derive(Debug, Clone, Serialize)]
pub struct Error {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl Error {
    pub fn new(code: u32, msg: impl Into<String>) -> Error {
        Error {
            cni_version: "1.0.0".into(),
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }
    pub fn details(mut self, details: impl Into<String>) -> Error {
        self.details = details.into();
        self
    }
}

/// `CNI_ARGS` as pairs; a malformed pair is an invalid-environment error.
pub fn parse_args(text: &str) -> Result<BTreeMap<String, String>, Error> {
    text.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Error::new(
                        code::INVALID_ENVIRONMENT,
                        format!("CNI_ARGS: '{pair}' is not KEY=VALUE"),
                    )
                })
        })
        .collect()
}

impl Env {
    /// The variables from the process environment; those `command` needs must be set.
    pub fn from_process() -> Result<Env, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let command = var("CNI_COMMAND")
            .ok_or_else(|| Error::new(code::INVALID_ENVIRONMENT, "CNI_COMMAND is not set"))?;
        let needed = |name: &str| {
            if command == "VERSION" {
                return Ok(var(name).unwrap_or_default());
            }
            var(name).ok_or_else(|| {
                Error::new(
                    code::INVALID_ENVIRONMENT,
                    format!("{name} is required for {command}"),
                )
            })
        };
        Ok(Env {
            container_id: needed("CNI_CONTAINERID")?,
            ifname: needed("CNI_IFNAME")?,
            args: parse_args(&var("CNI_ARGS").unwrap_or_default())?,
            command,
        })
    }
}

//! Local instances: launched by the agent's `run-instances` without `--interface`, each in a
//! namespace the agent built, behind its VPC's router namespace (`<vpc-id>-router`). The kit
//! adopts those namespaces as soon as the call answers, so they are deleted on drop (also when
//! a test panics) whatever the agent did.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use crate::{agent::Agent, netns::Netns};

/// One local instance as `run-instances` answered it.
pub struct LocalInstance {
    pub id: String,
    pub ip: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
    /// The host-side veth, in the agent's namespace.
    pub host_if: String,
    /// The instance's namespace (`Namespace` in the answer).
    pub ns: Netns,
    /// Its VPC's router namespace (shared with the VPC's other instances).
    pub router: Netns,
}

impl LocalInstance {
    fn from_answer(instance: &Value) -> LocalInstance {
        let interface = &instance["NetworkInterfaces"][0];
        let text = |v: &Value| -> String {
            v.as_str()
                .unwrap_or_else(|| panic!("{v} in {instance}"))
                .to_string()
        };
        LocalInstance {
            id: text(&instance["InstanceId"]),
            ip: text(&instance["PrivateIpAddress"]).parse().expect("IPv4"),
            ip6: interface["Ipv6Addresses"][0]["Ipv6Address"]
                .as_str()
                .map(|a| a.parse().expect("IPv6")),
            host_if: text(&interface["HostInterface"]),
            ns: Netns::adopt(&text(&interface["Namespace"])),
            router: Netns::adopt(&format!("{}-router", text(&instance["VpcId"]))),
        }
    }
}

/// `run-instances` with `args` (no `--interface`): the instances launched.
pub fn launch(agent: &Agent, args: &[&str]) -> Vec<LocalInstance> {
    let mut all = vec!["run-instances"];
    all.extend_from_slice(args);
    let out = agent.cli(&all);
    out["Instances"]
        .as_array()
        .expect("Instances")
        .iter()
        .map(LocalInstance::from_answer)
        .collect()
}

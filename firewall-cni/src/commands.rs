//! ADD, DEL and CHECK. ADD registers the container's host-side veth and addresses (from the
//! previous plugin's result) as an instance with its groups, tagged with the attachment; DEL
//! terminates that instance (nothing to do is success); CHECK verifies the instance is running
//! and enforced on the veth and addresses the result names.

use std::{net::IpAddr, process::Command};

use firewall_agent::api::{
    catalogue as op,
    types::instances::{InstanceIpv6Address, RunInstancesRequest},
};
use serde_json::Value;

use crate::{
    agent::{AgentClient, Attachment},
    spec::{Env, Error, NetConf, PrevResult, code},
};

/// A container's interface as the previous plugin set it up.
#[derive(Debug)]
struct Wiring {
    host_veth: String,
    ipv4: String,
    ipv6: Option<String>,
}

/// Whether `name` is a veth of the runtime's network namespace (not the bridge, which also has
/// no sandbox in a bridge plugin's result).
fn is_veth(name: &str) -> bool {
    Command::new("ip")
        .args(["-d", "-o", "link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(" veth "))
}

/// The host-side veth and the container's addresses in `prev`.
fn wiring(prev: &Value) -> Result<Wiring, Error> {
    let prev: PrevResult = serde_json::from_value(prev.clone())
        .map_err(|e| Error::new(code::DECODE_FAILURE, format!("prevResult: {e}")))?;
    let host: Vec<&str> = prev
        .interfaces
        .iter()
        .filter(|i| i.sandbox.as_deref().is_none_or(str::is_empty))
        .map(|i| i.name.as_str())
        .filter(|name| is_veth(name))
        .collect();
    let host_veth = match host.as_slice() {
        [one] => one.to_string(),
        [] => {
            return Err(Error::new(
                code::INVALID_CONFIG,
                "prevResult names no host-side veth: chain firewall-sg after bridge or ptp",
            ));
        }
        more => {
            return Err(Error::new(
                code::INVALID_CONFIG,
                format!(
                    "prevResult names several host-side veths: {}",
                    more.join(", ")
                ),
            ));
        }
    };
    let in_container = |index: Option<usize>| {
        index.is_none_or(|i| {
            prev.interfaces
                .get(i)
                .is_some_and(|i| i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        })
    };
    let mut ipv4 = None;
    let mut ipv6 = None;
    for ip in prev.ips.iter().filter(|ip| in_container(ip.interface)) {
        let address = ip.address.split('/').next().unwrap_or_default();
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if ipv4.is_none() => ipv4 = Some(a.to_string()),
            Ok(IpAddr::V6(a)) if ipv6.is_none() => ipv6 = Some(a.to_string()),
            Ok(_) => {}
            Err(_) => {
                return Err(Error::new(
                    code::DECODE_FAILURE,
                    format!("prevResult: '{}' is not an address", ip.address),
                ));
            }
        }
    }
    let ipv4 = ipv4.ok_or_else(|| {
        Error::new(
            code::INVALID_CONFIG,
            "prevResult gives the container no IPv4 address (configure IPAM on the previous plugin)",
        )
    })?;
    Ok(Wiring {
        host_veth,
        ipv4,
        ipv6,
    })
}

/// The groups: `SECURITY_GROUP_IDS` in CNI_ARGS, else `runtimeConfig.securityGroupIds`, else
/// the configuration's `securityGroupIds` (else the agent's VPC default group).
fn groups(conf: &NetConf, env: &Env) -> Vec<String> {
    if let Some(ids) = env.args.get("SECURITY_GROUP_IDS") {
        return ids
            .split(',')
            .filter(|id| !id.is_empty())
            .map(String::from)
            .collect();
    }
    if !conf.runtime_config.security_group_ids.is_empty() {
        return conf.runtime_config.security_group_ids.clone();
    }
    conf.security_group_ids.clone()
}

fn client(conf: &NetConf) -> AgentClient {
    AgentClient {
        socket: conf.agent_socket.clone().into(),
        region: conf.region.clone(),
    }
}

fn attachment<'a>(conf: &'a NetConf, env: &'a Env) -> Attachment<'a> {
    Attachment {
        container_id: &env.container_id,
        network: &conf.name,
        ifname: &env.ifname,
    }
}

fn prev_result(conf: &NetConf) -> Result<&Value, Error> {
    conf.prev_result.as_ref().ok_or_else(|| {
        Error::new(
            code::INVALID_CONFIG,
            "no prevResult: firewall-sg is a chained plugin (put it after bridge or ptp)",
        )
    })
}

/// ADD: the previous result, passed through in the configuration's version.
pub fn add(conf: &NetConf, env: &Env) -> Result<Value, Error> {
    let prev = prev_result(conf)?;
    let wiring = wiring(prev)?;
    let agent = client(conf);
    let attachment = attachment(conf, env);
    // A repeated ADD (a runtime retrying) replaces what an earlier one registered.
    let earlier = agent.instances_of(&attachment)?;
    agent.terminate(earlier.into_iter().map(|i| i.instance_id).collect())?;
    agent.call::<op::RunInstances>(&RunInstancesRequest {
        security_group_ids: groups(conf, env),
        private_ip_address: Some(wiring.ipv4),
        ipv6_addresses: wiring
            .ipv6
            .into_iter()
            .map(|ipv6_address| InstanceIpv6Address { ipv6_address })
            .collect(),
        host_interface: Some(wiring.host_veth),
        tag_specifications: vec![attachment.tag_specification()],
        ..RunInstancesRequest::default()
    })?;
    let mut result = prev.clone();
    if let Some(members) = result.as_object_mut() {
        members.insert("cniVersion".into(), conf.cni_version.clone().into());
    }
    Ok(result)
}

/// DEL: terminates the attachment's instance; none is success (DEL is idempotent).
pub fn del(conf: &NetConf, env: &Env) -> Result<(), Error> {
    let agent = client(conf);
    let instances = agent.instances_of(&attachment(conf, env))?;
    agent.terminate(instances.into_iter().map(|i| i.instance_id).collect())
}

/// CHECK: one running instance for the attachment, on the result's veth and addresses, with the
/// configured groups, and the veth present.
pub fn check(conf: &NetConf, env: &Env) -> Result<(), Error> {
    let wiring = wiring(prev_result(conf)?)?;
    let instances = client(conf).instances_of(&attachment(conf, env))?;
    let not_enforced = |why: String| Error::new(code::NOT_ENFORCED, why);
    let [instance] = instances.as_slice() else {
        return Err(not_enforced(format!(
            "{} instances stand for container {} on {} (one expected)",
            instances.len(),
            env.container_id,
            conf.name
        )));
    };
    let id = &instance.instance_id;
    if instance.state.name != "running" {
        return Err(not_enforced(format!(
            "instance {id} is {}",
            instance.state.name
        )));
    }
    let interface = instance.network_interfaces.first();
    if interface.is_none_or(|i| i.host_interface != wiring.host_veth) {
        return Err(not_enforced(format!(
            "instance {id} is not enforced on {}",
            wiring.host_veth
        )));
    }
    if instance.private_ip_address.as_deref() != Some(wiring.ipv4.as_str()) {
        return Err(not_enforced(format!(
            "instance {id} has another address than {}",
            wiring.ipv4
        )));
    }
    let expected = groups(conf, env);
    let actual: Vec<&str> = instance
        .security_groups
        .iter()
        .map(|g| g.group_id.as_str())
        .collect();
    if !expected.is_empty() && expected.iter().any(|g| !actual.contains(&g.as_str())) {
        return Err(not_enforced(format!(
            "instance {id} has groups {} rather than {}",
            actual.join(","),
            expected.join(",")
        )));
    }
    if !is_veth(&wiring.host_veth) {
        return Err(not_enforced(format!(
            "{} no longer exists",
            wiring.host_veth
        )));
    }
    Ok(())
}

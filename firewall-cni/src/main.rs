//! `firewall-sg`: a CNI plugin (spec 1.0.0 and 0.4.0) chained after `bridge` or `ptp` that puts
//! each container behind security groups by registering its host-side veth and addresses with
//! the firewall agent as an instance. The runtime runs it with `CNI_COMMAND` and the other
//! `CNI_*` variables set and the network configuration on stdin; the result (or an error
//! object) goes to stdout.

mod agent;
mod commands;
mod spec;

use std::io::Read as _;

use serde_json::{Value, json};
use spec::{Env, Error, NetConf, SUPPORTED_VERSIONS, code};

/// The command's output (none for DEL and CHECK), or its error.
fn run() -> Result<Option<Value>, Error> {
    let env = Env::from_process()?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::new(code::IO_FAILURE, format!("reading stdin: {e}")))?;
    if env.command == "VERSION" {
        return Ok(Some(json!({
            "cniVersion": "1.0.0",
            "supportedVersions": SUPPORTED_VERSIONS,
        })));
    }
    let conf: NetConf = serde_json::from_str(&input).map_err(|e| {
        Error::new(
            code::DECODE_FAILURE,
            format!("the network configuration: {e}"),
        )
    })?;
    let versioned = |e: Error| Error {
        cni_version: conf.cni_version.clone(),
        ..e
    };
    if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
        return Err(versioned(Error::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "CNI version {} is not supported (supported: {})",
                conf.cni_version,
                SUPPORTED_VERSIONS.join(", ")
            ),
        )));
    }
    match env.command.as_str() {
        "ADD" => commands::add(&conf, &env).map(Some),
        "DEL" => commands::del(&conf, &env).map(|()| None),
        "CHECK" => commands::check(&conf, &env).map(|()| None),
        other => Err(Error::new(
            code::INVALID_ENVIRONMENT,
            format!("unknown CNI_COMMAND '{other}'"),
        )),
    }
    .map_err(versioned)
}

fn main() {
    match run() {
        Ok(Some(output)) => println!("{output}"),
        Ok(None) => {}
        Err(error) => {
            println!(
                "{}",
                serde_json::to_string(&error).expect("an error object")
            );
            std::process::exit(1);
        }
    }
}

//! The agent's side of the plugin: typed calls over its JSON control socket (the agent's own
//! client and catalogue), and the instance that stands for one container attachment, found by
//! its tags.

use firewall_agent::api::{
    Call, Operation, catalogue as op,
    types::{
        common::{Filter, Tag, TagSpecification},
        instances::{DescribeInstancesRequest, Instance, InstanceIdsRequest},
    },
};

use crate::spec::{Error, code};

/// The tags that tie an instance to a container attachment.
pub const TAG_CONTAINER: &str = "cni:container-id";
pub const TAG_NETWORK: &str = "cni:network";
pub const TAG_IFNAME: &str = "cni:ifname";

/// One container attachment: (container, network, interface), as the runtime names it.
pub struct Attachment<'a> {
    pub container_id: &'a str,
    pub network: &'a str,
    pub ifname: &'a str,
}

impl Attachment<'_> {
    fn tags(&self) -> [(&'static str, &str); 3] {
        [
            (TAG_CONTAINER, self.container_id),
            (TAG_NETWORK, self.network),
            (TAG_IFNAME, self.ifname),
        ]
    }

    /// The tag specification `run-instances` gives the new instance.
    pub fn tag_specification(&self) -> TagSpecification {
        TagSpecification {
            resource_type: Some("instance".into()),
            tags: self
                .tags()
                .iter()
                .map(|(key, value)| Tag {
                    key: (*key).into(),
                    value: Some((*value).into()),
                })
                .collect(),
        }
    }
}

/// The agent at `socket`, in `region` (the agent's default when `None`).
pub struct AgentClient {
    pub socket: std::path::PathBuf,
    pub region: Option<String>,
}

impl AgentClient {
    /// Calls `O`: its typed answer, or the CNI error for a transport failure (try again later)
    /// or the agent's refusal (its AWS code and message).
    pub fn call<O: Operation>(&self, request: &O::Request) -> Result<O::Response, Error> {
        let refused = |e: firewall_agent::api::ApiError| {
            Error::new(
                code::AGENT_REFUSED,
                format!("{} refused: {}: {}", O::NAME, e.code, e.message),
            )
        };
        let call = Call::new::<O>(request)
            .and_then(|c| c.in_scope(None, self.region.as_deref()))
            .map_err(refused)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::new(code::IO_FAILURE, format!("tokio runtime: {e}")))?;
        let answer = runtime
            .block_on(firewall_agent::client::call(&self.socket, &call))
            .map_err(|e| {
                Error::new(
                    code::TRY_AGAIN_LATER,
                    format!("the firewall agent is not reachable: {e}"),
                )
                .details(format!("agentSocket {}", self.socket.display()))
            })?
            .map_err(refused)?;
        serde_json::from_value(answer).map_err(|e| {
            Error::new(
                code::DECODE_FAILURE,
                format!("the agent's answer to {}: {e}", O::NAME),
            )
        })
    }

    /// The live instances (pending, running, stopped) of `attachment`.
    pub fn instances_of(&self, attachment: &Attachment) -> Result<Vec<Instance>, Error> {
        let mut filters: Vec<Filter> = attachment
            .tags()
            .iter()
            .map(|(key, value)| Filter {
                name: format!("tag:{key}"),
                values: vec![(*value).into()],
            })
            .collect();
        filters.push(Filter {
            name: "instance-state-name".into(),
            values: vec!["pending".into(), "running".into(), "stopped".into()],
        });
        let answer = self.call::<op::DescribeInstances>(&DescribeInstancesRequest {
            filters,
            ..DescribeInstancesRequest::default()
        })?;
        Ok(answer
            .reservations
            .into_iter()
            .flat_map(|r| r.instances)
            .collect())
    }

    /// Terminates `ids` (nothing when empty).
    pub fn terminate(&self, ids: Vec<String>) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        self.call::<op::TerminateInstances>(&InstanceIdsRequest { instance_ids: ids })?;
        Ok(())
    }
}

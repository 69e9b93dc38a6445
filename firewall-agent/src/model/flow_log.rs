//! Flow logs: `create-flow-logs`, `describe-flow-logs`, `delete-flow-logs`, with AWS's checks.
//! The resource is an instance's interface (`eni-`) or a VPC; the destination, since neither
//! CloudWatch Logs nor S3 is here, a local file or standard output. The records themselves are
//! written by the agent (`crate::flowlogs`), not here.
//!
//! A file is always in its account's flow-log directory, `<serve --flow-log-dir>/<account-id>/`
//! ([`FlowLogDir`], configuration the agent sets on the state): here its name is checked as
//! text ([`file_name_in`]); what is on disk there (symbolic links leading out) is the agent's to
//! check, when the flow log is created and each time the file is opened
//! (`crate::flowlogs::confined`).

use super::{
    ids::IdSource,
    query::{invalid_filter, paginate},
    state::{FlowLog, FlowLogDir, State},
    tagging::{self, tags_for},
};
use crate::api::{
    ApiError, ApiResult,
    types::flow_logs::{
        self, CreateFlowLogsRequest, CreateFlowLogsResponse, DeleteFlowLogsRequest,
        DeleteFlowLogsResponse, DescribeFlowLogsRequest, DescribeFlowLogsResponse,
        UnsuccessfulItem, UnsuccessfulItemError,
    },
};

/// AWS's default format (version 2).
pub const DEFAULT_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} \
     ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";

/// The fields a format may use, with the flow-log version that introduced each (a record's
/// `${version}` is the highest of its format's fields). `security-group-rule-id` is ours.
pub const FIELDS: &[(&str, u8)] = &[
    ("version", 2),
    ("account-id", 2),
    ("interface-id", 2),
    ("srcaddr", 2),
    ("dstaddr", 2),
    ("srcport", 2),
    ("dstport", 2),
    ("protocol", 2),
    ("packets", 2),
    ("bytes", 2),
    ("start", 2),
    ("end", 2),
    ("action", 2),
    ("log-status", 2),
    ("vpc-id", 3),
    ("instance-id", 3),
    ("tcp-flags", 3),
    ("type", 3),
    ("pkt-srcaddr", 3),
    ("pkt-dstaddr", 3),
    ("region", 4),
    ("flow-direction", 5),
    ("reject-reason", 8),
    ("security-group-rule-id", 2),
];

/// The field names of a format, in order; an unknown field or text outside `${…}` is an error.
pub fn parse_format(format: &str) -> ApiResult<Vec<&'static str>> {
    let mut fields = Vec::new();
    for word in format.split_whitespace() {
        let name = word
            .strip_prefix("${")
            .and_then(|w| w.strip_suffix('}'))
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidParameter",
                    format!(
                        "LogFormat: '{word}' is not a field; fields are written ${{field-name}}."
                    ),
                )
            })?;
        let known = FIELDS.iter().find(|(f, _)| *f == name).ok_or_else(|| {
            ApiError::new(
                "InvalidParameter",
                format!("LogFormat: unknown field '${{{name}}}'."),
            )
        })?;
        fields.push(known.0);
    }
    if fields.is_empty() {
        return Err(ApiError::new(
            "InvalidParameter",
            "LogFormat: at least one field is required.",
        ));
    }
    Ok(fields)
}

/// The `${version}` of records in `fields`' format.
pub fn format_version(fields: &[&str]) -> u8 {
    fields
        .iter()
        .filter_map(|name| FIELDS.iter().find(|(f, _)| f == name).map(|(_, v)| *v))
        .max()
        .unwrap_or(2)
}

fn not_here(what: &str) -> ApiError {
    ApiError::invalid_value(format!(
        "{what} is not available here: flow logs go to a local file (LogDestinationType file, \
         LogDestination a file name in the account's flow-log directory) or to standard output \
         (LogDestinationType stdout)."
    ))
}

/// The name, relative to the account's flow-log directory `account_dir` (`<root>/<account-id>`,
/// see [`FlowLogDir::of_account`]), of the file a `LogDestination` names: `destination` is a
/// name relative to that directory (`web.log`, `vpc/all.log`) or an absolute path inside it.
/// Empty and `.` components are dropped. Refused (`InvalidParameterValue`, naming the
/// directory): an empty name, a NUL byte, a `..` component, an absolute path elsewhere, a name
/// ending in `/` (a directory). Text only: a symbolic link on the way is the agent's to refuse.
pub fn file_name_in(account_dir: &str, destination: &str) -> ApiResult<String> {
    let refuse = |why: &str| {
        ApiError::invalid_value(format!(
            "LogDestination '{}' {why}: a flow-log file is a name in the account's flow-log \
             directory {account_dir}/ (e.g. 'web.log', 'vpc/all.log') or an absolute path \
             inside it.",
            destination.replace('\0', "\\0")
        ))
    };
    if destination.contains('\0') {
        return Err(refuse("contains a NUL byte"));
    }
    let relative = if destination.starts_with('/') {
        destination
            .strip_prefix(account_dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| refuse("is outside the account's flow-log directory"))?
    } else {
        destination
    };
    if relative.ends_with('/') {
        return Err(refuse("names a directory"));
    }
    let mut components = Vec::new();
    for component in relative.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(refuse("has a '..' component")),
            name => components.push(name),
        }
    }
    if components.is_empty() {
        return Err(refuse("names no file"));
    }
    Ok(components.join("/"))
}

/// The name in its account's directory of the file `flow_log` writes to (`None`: standard
/// output, or a destination the directory no longer holds, e.g. after `--flow-log-dir` moved).
pub fn file_of(dir: &FlowLogDir, account_id: &str, flow_log: &FlowLog) -> Option<String> {
    let destination = flow_log.destination.as_deref()?;
    file_name_in(&dir.of_account(account_id), destination).ok()
}

fn unsuccessful(resource_id: &str, code: &str, message: String) -> UnsuccessfulItem {
    UnsuccessfulItem {
        error: UnsuccessfulItemError {
            code: code.into(),
            message,
        },
        resource_id: resource_id.into(),
    }
}

pub fn create(
    state: &mut State,
    ids: &mut dyn IdSource,
    req: CreateFlowLogsRequest,
) -> ApiResult<CreateFlowLogsResponse> {
    if req.resource_ids.is_empty() {
        return Err(ApiError::missing("ResourceIds"));
    }
    let resource_type = req
        .resource_type
        .as_deref()
        .ok_or_else(|| ApiError::missing("ResourceType"))?;
    match resource_type {
        "NetworkInterface" | "VPC" | "Subnet" => {}
        "TransitGateway" | "TransitGatewayAttachment" | "RegionalNatGateway" => {
            return Err(ApiError::invalid_value(format!(
                "ResourceType '{resource_type}' is not available here: the resource is a \
                 NetworkInterface, a Subnet or a VPC."
            )));
        }
        other => {
            return Err(ApiError::invalid_value(format!(
                "Invalid value '{other}' for ResourceType. Valid values: VPC, Subnet, \
                 NetworkInterface, TransitGateway, TransitGatewayAttachment, RegionalNatGateway"
            )));
        }
    }
    let traffic_type = req
        .traffic_type
        .as_deref()
        .ok_or_else(|| ApiError::missing("TrafficType"))?;
    if !matches!(traffic_type, "ACCEPT" | "REJECT" | "ALL") {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{traffic_type}' for TrafficType. Valid values: ACCEPT, REJECT, ALL"
        )));
    }
    if req.log_group_name.is_some() {
        return Err(not_here("LogGroupName (CloudWatch Logs)"));
    }
    if req.deliver_logs_permission_arn.is_some() || req.deliver_cross_account_role.is_some() {
        return Err(not_here("Delivering with an IAM role"));
    }
    let destination_type = req
        .log_destination_type
        .as_deref()
        .ok_or_else(|| ApiError::missing("LogDestinationType"))?;
    // The caller's text is kept (and echoed by describe-flow-logs, as AWS echoes the ARN it was
    // given); `file` is the name it resolves to, which tells two spellings of one file apart.
    let (destination, file) = match destination_type {
        "file" => {
            let path = req
                .log_destination
                .as_deref()
                .ok_or_else(|| ApiError::missing("LogDestination"))?;
            let account_dir = state.flow_log_dir.of_account(&state.account_id);
            let file = file_name_in(&account_dir, path)?;
            (Some(path.to_string()), Some(file))
        }
        "stdout" => {
            if req.log_destination.is_some() {
                return Err(ApiError::new(
                    "InvalidParameterCombination",
                    "LogDestination cannot be used with LogDestinationType stdout.",
                ));
            }
            (None, None)
        }
        "cloud-watch-logs" | "s3" | "kinesis-data-firehose" => {
            return Err(not_here(&format!(
                "LogDestinationType '{destination_type}'"
            )));
        }
        other => {
            return Err(ApiError::invalid_value(format!(
                "Invalid value '{other}' for LogDestinationType. Valid values here: file, stdout"
            )));
        }
    };
    let interval = req.max_aggregation_interval.unwrap_or(600);
    if interval != 60 && interval != 600 {
        return Err(ApiError::invalid_value(format!(
            "Invalid value '{interval}' for MaxAggregationInterval. Valid values: 60, 600"
        )));
    }
    let log_format = match req.log_format.as_deref() {
        Some(format) => {
            parse_format(format)?;
            format.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        None => DEFAULT_FORMAT.to_string(),
    };
    let tags = tags_for(&req.tag_specifications, "vpc-flow-log")?;
    let mut flow_log_ids = Vec::new();
    let mut failed = Vec::new();
    for resource_id in &req.resource_ids {
        let exists = match resource_type {
            "VPC" => state.vpcs.contains_key(resource_id),
            "Subnet" => state.subnets.contains_key(resource_id),
            _ => state.network_interfaces.contains_key(resource_id),
        };
        if !exists {
            let (code, message) = match resource_type {
                "VPC" => (
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{resource_id}' does not exist"),
                ),
                "Subnet" => (
                    "InvalidSubnetID.NotFound",
                    format!("The subnet ID '{resource_id}' does not exist"),
                ),
                _ => (
                    "InvalidNetworkInterfaceID.NotFound",
                    format!("The networkInterface ID '{resource_id}' does not exist"),
                ),
            };
            failed.push(unsuccessful(resource_id, code, message));
            continue;
        }
        let duplicate = state.flow_logs.values().any(|f| {
            &f.resource_id == resource_id
                && f.traffic_type == traffic_type
                && f.destination_type == destination_type
                && file_of(&state.flow_log_dir, &state.account_id, f) == file
        });
        if duplicate {
            failed.push(unsuccessful(
                resource_id,
                "FlowLogAlreadyExists",
                "There is an existing Flow Log with the same configuration and log destination."
                    .into(),
            ));
            continue;
        }
        let flow_log = FlowLog {
            id: ids.next_id("fl"),
            resource_id: resource_id.clone(),
            traffic_type: traffic_type.into(),
            destination_type: destination_type.into(),
            destination: destination.clone(),
            log_format: log_format.clone(),
            max_aggregation_interval: interval as u32,
            creation_time: ids.now(),
            tags: tags.clone(),
        };
        flow_log_ids.push(flow_log.id.clone());
        state.flow_logs.insert(flow_log.id.clone(), flow_log);
    }
    Ok(CreateFlowLogsResponse {
        client_token: req.client_token,
        flow_log_ids,
        unsuccessful: failed,
    })
}

/// A flow log as `describe-flow-logs` prints it. `LogDestination` is the caller's text as it
/// was given (a name in the account's flow-log directory, or an absolute path inside it): AWS
/// echoes the destination it was given too, and the text stays true should `--flow-log-dir`
/// move (a relative name then follows it); the file is `<flow-log-dir>/<account-id>/<name>`.
pub fn view(flow_log: &FlowLog) -> flow_logs::FlowLog {
    flow_logs::FlowLog {
        creation_time: flow_log.creation_time.clone(),
        deliver_logs_status: "SUCCESS".into(),
        flow_log_id: flow_log.id.clone(),
        flow_log_status: "ACTIVE".into(),
        resource_id: flow_log.resource_id.clone(),
        traffic_type: flow_log.traffic_type.clone(),
        log_destination_type: flow_log.destination_type.clone(),
        log_destination: flow_log
            .destination
            .clone()
            .unwrap_or_else(|| "stdout".into()),
        log_format: flow_log.log_format.clone(),
        tags: tagging::views(&flow_log.tags),
        max_aggregation_interval: i64::from(flow_log.max_aggregation_interval),
    }
}

pub fn describe(
    state: &State,
    req: DescribeFlowLogsRequest,
) -> ApiResult<DescribeFlowLogsResponse> {
    const NAMES: [&str; 5] = [
        "flow-log-id",
        "resource-id",
        "traffic-type",
        "log-destination-type",
        "deliver-log-status",
    ];
    if let Some(unknown) = req.filters.iter().find(|f| {
        !NAMES.contains(&f.name.as_str()) && f.name != "tag-key" && !f.name.starts_with("tag:")
    }) {
        return Err(invalid_filter(&unknown.name));
    }
    let mut out = Vec::new();
    for flow_log in state.flow_logs.values() {
        if !req.flow_log_ids.is_empty() && !req.flow_log_ids.contains(&flow_log.id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            if let Some(hit) = filter.matches_tags(&flow_log.tags) {
                keep &= hit;
                continue;
            }
            keep &= match filter.name.as_str() {
                "flow-log-id" => filter.matches(&flow_log.id),
                "resource-id" => filter.matches(&flow_log.resource_id),
                "traffic-type" => filter.matches(&flow_log.traffic_type),
                "log-destination-type" => filter.matches(&flow_log.destination_type),
                "deliver-log-status" => filter.matches("SUCCESS"),
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push((flow_log.id.clone(), view(flow_log)));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeFlowLogsResponse {
        flow_logs: page.items,
        next_token: page.next_token,
    })
}

/// Deletes the flow logs named; those that do not exist are answered as unsuccessful items.
pub fn delete(state: &mut State, req: DeleteFlowLogsRequest) -> ApiResult<DeleteFlowLogsResponse> {
    if req.flow_log_ids.is_empty() {
        return Err(ApiError::missing("FlowLogIds"));
    }
    let mut failed = Vec::new();
    for id in &req.flow_log_ids {
        if state.flow_logs.remove(id).is_none() {
            failed.push(unsuccessful(
                id,
                "InvalidFlowLogId.NotFound",
                format!("These flow log ids in the input list are not found: [TotalCount: 1] {id}"),
            ));
        }
    }
    Ok(DeleteFlowLogsResponse {
        unsuccessful: failed,
    })
}

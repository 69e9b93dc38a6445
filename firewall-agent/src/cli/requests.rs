//! Each verb's typed request: the options become the request members (no member is spelled
//! here; serde spells them from the types), and the verb names its action by its marker type.

use anyhow::anyhow;

use super::{
    args::{RuleChange, Verb},
    params::{ParamError, Params, filters, json_list, json_opt, permissions, structures},
};
use crate::api::{
    Call, Operation, catalogue as op,
    types::{
        flow_logs::*, groups::*, instances::*, launch_templates::*, ours::*, prefix_lists::*,
        rules::*, tags::*, vpcs::*,
    },
};

/// A verb's call could not be made: why, and for which action.
#[derive(Debug)]
pub struct Failure {
    pub action: &'static str,
    pub error: ParamError,
}

pub(super) fn call<O: Operation>(
    build: impl FnOnce() -> Params<O::Request>,
) -> Result<Call, Failure> {
    let fail = |error| Failure {
        action: O::NAME,
        error,
    };
    let request = build().map_err(fail)?;
    Call::new::<O>(&request).map_err(|e| fail(ParamError::Api(e)))
}

fn authorize(change: &RuleChange) -> Params<AuthorizeRequest> {
    if change.flush_flows {
        return Err(anyhow!("--flush-flows applies only to revoke").into());
    }
    if !change.security_group_rule_ids.is_empty() {
        return Err(anyhow!("--security-group-rule-ids applies only to revoke").into());
    }
    Ok(AuthorizeRequest {
        group_id: change.group_id.clone(),
        group_name: change.group_name.clone(),
        ip_permissions: permissions(change)?,
        tag_specifications: json_list("tag-specifications", &change.tag_specifications)?,
    })
}

fn revoke(change: &RuleChange) -> Params<RevokeRequest> {
    Ok(RevokeRequest {
        group_id: change.group_id.clone(),
        group_name: change.group_name.clone(),
        ip_permissions: permissions(change)?,
        security_group_rule_ids: change.security_group_rule_ids.clone(),
    })
}

fn instance_ids(ids: &[String]) -> InstanceIdsRequest {
    InstanceIdsRequest {
        instance_ids: ids.to_vec(),
    }
}

/// The call a verb makes.
pub fn request(verb: &Verb) -> Result<Call, Failure> {
    match verb {
        Verb::CreateSecurityGroup(a) => call::<op::CreateSecurityGroup>(|| {
            Ok(CreateSecurityGroupRequest {
                group_name: a.group_name.clone(),
                description: a.description.clone(),
                vpc_id: a.vpc_id.clone(),
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
            })
        }),
        Verb::DeleteSecurityGroup(a) => call::<op::DeleteSecurityGroup>(|| {
            Ok(DeleteSecurityGroupRequest {
                group_id: a.group_id.clone(),
                group_name: a.group_name.clone(),
            })
        }),
        Verb::DescribeSecurityGroups(a) => call::<op::DescribeSecurityGroups>(|| {
            Ok(DescribeSecurityGroupsRequest {
                group_ids: a.group_ids.clone(),
                group_names: a.group_names.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::DescribeSecurityGroupRules(a) => call::<op::DescribeSecurityGroupRules>(|| {
            Ok(DescribeSecurityGroupRulesRequest {
                security_group_rule_ids: a.security_group_rule_ids.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::AuthorizeSecurityGroupIngress(c) => {
            call::<op::AuthorizeSecurityGroupIngress>(|| authorize(c))
        }
        Verb::AuthorizeSecurityGroupEgress(c) => {
            call::<op::AuthorizeSecurityGroupEgress>(|| authorize(c))
        }
        Verb::RevokeSecurityGroupIngress(c) => call::<op::RevokeSecurityGroupIngress>(|| revoke(c))
            .map(|x| x.with_flush_flows(c.flush_flows)),
        Verb::RevokeSecurityGroupEgress(c) => call::<op::RevokeSecurityGroupEgress>(|| revoke(c))
            .map(|x| x.with_flush_flows(c.flush_flows)),
        Verb::RunInstances(a) => call::<op::RunInstances>(|| {
            let launch_template = match &a.launch_template {
                Some(spec) => structures("launch-template", std::slice::from_ref(spec))?
                    .into_iter()
                    .next(),
                None => None,
            };
            let count = a.count.unwrap_or(1);
            Ok(RunInstancesRequest {
                security_group_ids: a.security_group_ids.clone(),
                private_ip_address: a.private_ip_address.clone(),
                ipv6_addresses: a
                    .ipv6_address
                    .iter()
                    .map(|v6| InstanceIpv6Address {
                        ipv6_address: v6.clone(),
                    })
                    .collect(),
                subnet_id: a.subnet_id.clone(),
                host_interface: a.interface.clone(),
                launch_template,
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                min_count: Some(count),
                max_count: Some(count),
                image_id: a.image_id.clone(),
                instance_type: a.instance_type.clone(),
                user_data: a.user_data.clone(),
                disable_api_termination: a.disable_api_termination.then_some(true),
                ..RunInstancesRequest::default()
            })
        }),
        Verb::DescribeInstances(a) => call::<op::DescribeInstances>(|| {
            Ok(DescribeInstancesRequest {
                instance_ids: a.instance_ids.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::TerminateInstances(a) => {
            call::<op::TerminateInstances>(|| Ok(instance_ids(&a.instance_ids)))
        }
        Verb::StopInstances(a) => call::<op::StopInstances>(|| Ok(instance_ids(&a.instance_ids))),
        Verb::StartInstances(a) => call::<op::StartInstances>(|| Ok(instance_ids(&a.instance_ids))),
        Verb::ModifyInstanceAttribute(a) => call::<op::ModifyInstanceAttribute>(|| {
            let flag = |on: bool, off: bool| {
                (on || off).then_some(AttributeBooleanValue { value: Some(on) })
            };
            Ok(ModifyInstanceAttributeRequest {
                instance_id: a.instance_id.clone(),
                groups: a.groups.clone(),
                disable_api_termination: flag(
                    a.disable_api_termination,
                    a.no_disable_api_termination,
                ),
                disable_api_stop: flag(a.disable_api_stop, a.no_disable_api_stop),
                instance_initiated_shutdown_behavior: super::requests_network::structure(
                    "instance-initiated-shutdown-behavior",
                    &a.instance_initiated_shutdown_behavior,
                )?,
                source_dest_check: flag(a.source_dest_check, a.no_source_dest_check),
                attribute: a.attribute.clone(),
                value: a.value.clone(),
            })
        })
        .map(|x| x.with_flush_flows(a.flush_flows)),
        Verb::CreateManagedPrefixList(a) => call::<op::CreateManagedPrefixList>(|| {
            Ok(CreateManagedPrefixListRequest {
                prefix_list_name: a.prefix_list_name.clone(),
                max_entries: a.max_entries,
                address_family: a.address_family.clone(),
                entries: structures("entries", &a.entries)?,
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                client_token: None,
            })
        }),
        Verb::ModifyManagedPrefixList(a) => call::<op::ModifyManagedPrefixList>(|| {
            Ok(ModifyManagedPrefixListRequest {
                prefix_list_id: a.prefix_list_id.clone(),
                current_version: a.current_version,
                prefix_list_name: a.prefix_list_name.clone(),
                add_entries: structures("add-entries", &a.add_entries)?,
                remove_entries: structures("remove-entries", &a.remove_entries)?,
                max_entries: a.max_entries,
            })
        }),
        Verb::DescribeManagedPrefixLists(a) => call::<op::DescribeManagedPrefixLists>(|| {
            Ok(DescribeManagedPrefixListsRequest {
                prefix_list_ids: a.prefix_list_ids.clone(),
                filters: filters(&a.filters)?,
            })
        }),
        Verb::GetManagedPrefixListEntries(a) => call::<op::GetManagedPrefixListEntries>(|| {
            Ok(PrefixListIdRequest {
                prefix_list_id: a.prefix_list_id.clone(),
                target_version: a.target_version,
            })
        }),
        Verb::DeleteManagedPrefixList(a) => call::<op::DeleteManagedPrefixList>(|| {
            Ok(PrefixListIdRequest {
                prefix_list_id: a.prefix_list_id.clone(),
                target_version: None,
            })
        }),
        Verb::GetDataplaneStatistics => call::<op::GetDataplaneStatistics>(|| Ok(EmptyRequest {})),
        Verb::VerifyDataplane => call::<op::VerifyDataplane>(|| Ok(EmptyRequest {})),
        Verb::Export(a) => call::<op::ExportNftables>(|| {
            Ok(ExportNftablesRequest {
                format: Some(a.format.clone()),
                layout: Some(if a.linear { "linear" } else { "sets" }.into()),
            })
        }),
        Verb::ExplainVerdict(a) => call::<op::ExplainVerdict>(|| {
            Ok(ExplainVerdictRequest {
                instance_id: a.instance_id.clone().unwrap_or_default(),
                network_interface_id: a.network_interface_id.clone(),
                direction: a.direction.clone(),
                protocol: a.protocol.clone(),
                port: a.port,
                icmp_type: a.icmp_type,
                icmp_code: a.icmp_code,
                peer: a.peer.clone(),
                peer_port: a.peer_port,
            })
        }),
        Verb::CreateVpc(a) => call::<op::CreateVpc>(|| {
            Ok(CreateVpcRequest {
                cidr_block: a.cidr_block.clone(),
                amazon_provided_ipv6_cidr_block: a.amazon_provided_ipv6_cidr_block.then_some(true),
                instance_tenancy: a.instance_tenancy.clone(),
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
            })
        }),
        Verb::DescribeVpcs(a) => call::<op::DescribeVpcs>(|| {
            Ok(DescribeVpcsRequest {
                vpc_ids: a.vpc_ids.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::CreateFlowLogs(a) => call::<op::CreateFlowLogs>(|| {
            Ok(CreateFlowLogsRequest {
                resource_ids: a.resource_ids.clone(),
                resource_type: a.resource_type.clone(),
                traffic_type: a.traffic_type.clone(),
                log_destination_type: a.log_destination_type.clone(),
                log_destination: a.log_destination.clone(),
                log_format: a.log_format.clone(),
                max_aggregation_interval: a.max_aggregation_interval,
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                ..CreateFlowLogsRequest::default()
            })
        }),
        Verb::DescribeFlowLogs(a) => call::<op::DescribeFlowLogs>(|| {
            Ok(DescribeFlowLogsRequest {
                flow_log_ids: a.flow_log_ids.clone(),
                filters: filters(&a.filter)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::DeleteFlowLogs(a) => call::<op::DeleteFlowLogs>(|| {
            Ok(DeleteFlowLogsRequest {
                flow_log_ids: a.flow_log_ids.clone(),
            })
        }),
        Verb::DeleteVpc(a) => call::<op::DeleteVpc>(|| {
            Ok(DeleteVpcRequest {
                vpc_id: a.vpc_id.clone(),
            })
        }),
        Verb::DescribeVpcAttribute(a) => call::<op::DescribeVpcAttribute>(|| {
            Ok(DescribeVpcAttributeRequest {
                vpc_id: a.vpc_id.clone(),
                attribute: a.attribute.clone(),
            })
        }),
        Verb::ModifyVpcAttribute(a) => call::<op::ModifyVpcAttribute>(|| {
            let flag = |on: bool, off: bool| {
                (on || off).then_some(AttributeBooleanValue { value: Some(on) })
            };
            Ok(ModifyVpcAttributeRequest {
                vpc_id: a.vpc_id.clone(),
                enable_dns_support: flag(a.enable_dns_support, a.no_enable_dns_support),
                enable_dns_hostnames: flag(a.enable_dns_hostnames, a.no_enable_dns_hostnames),
                enable_network_address_usage_metrics: flag(
                    a.enable_network_address_usage_metrics,
                    a.no_enable_network_address_usage_metrics,
                ),
            })
        }),
        Verb::CreateTags(a) => call::<op::CreateTags>(|| {
            Ok(ChangeTagsRequest {
                resources: a.resources.clone(),
                tags: (!a.tags.is_empty())
                    .then(|| structures("tags", &a.tags))
                    .transpose()?,
            })
        }),
        Verb::DeleteTags(a) => call::<op::DeleteTags>(|| {
            Ok(ChangeTagsRequest {
                resources: a.resources.clone(),
                tags: (!a.tags.is_empty())
                    .then(|| structures("tags", &a.tags))
                    .transpose()?,
            })
        }),
        Verb::DescribeTags(a) => call::<op::DescribeTags>(|| {
            Ok(DescribeTagsRequest {
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        Verb::CreateLaunchTemplate(a) => call::<op::CreateLaunchTemplate>(|| {
            Ok(CreateLaunchTemplateRequest {
                launch_template_name: a.launch_template_name.clone(),
                version_description: a.version_description.clone(),
                launch_template_data: json_opt("launch-template-data", &a.launch_template_data)?,
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                client_token: None,
            })
        }),
        Verb::DescribeLaunchTemplates(a) => call::<op::DescribeLaunchTemplates>(|| {
            Ok(DescribeLaunchTemplatesRequest {
                launch_template_ids: a.launch_template_ids.clone(),
                launch_template_names: a.launch_template_names.clone(),
                filters: filters(&a.filters)?,
            })
        }),
        Verb::DeleteLaunchTemplate(a) => call::<op::DeleteLaunchTemplate>(|| {
            Ok(DeleteLaunchTemplateRequest {
                launch_template_id: a.launch_template_id.clone(),
                launch_template_name: a.launch_template_name.clone(),
            })
        }),
        Verb::CopySecurityGroup(a) => call::<op::CopySecurityGroup>(|| {
            Ok(CopySecurityGroupRequest {
                group_id: a.group_id.clone(),
                group_name: a.group_name.clone(),
                description: a.description.clone(),
                vpc_id: a.vpc_id.clone(),
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
            })
        }),
        Verb::ModifySecurityGroupRules(a) => call::<op::ModifySecurityGroupRules>(|| {
            Ok(ModifySecurityGroupRulesRequest {
                group_id: a.group_id.clone(),
                security_group_rules: structures("security-group-rules", &a.security_group_rules)?,
            })
        }),
        Verb::UpdateSecurityGroupRuleDescriptionsIngress(a) => {
            call::<op::UpdateSecurityGroupRuleDescriptionsIngress>(|| descriptions(a))
        }
        Verb::UpdateSecurityGroupRuleDescriptionsEgress(a) => {
            call::<op::UpdateSecurityGroupRuleDescriptionsEgress>(|| descriptions(a))
        }
        Verb::Network(verb) => super::requests_network::request(verb),
        Verb::Instance(verb) => super::requests_instances::request(verb),
        Verb::DescribeSecurityGroupReferences(a) => {
            call::<op::DescribeSecurityGroupReferences>(|| {
                Ok(DescribeSecurityGroupReferencesRequest {
                    group_id: a.group_id.clone(),
                })
            })
        }
    }
}

fn descriptions(a: &super::args::UpdateDescriptions) -> Params<UpdateDescriptionsRequest> {
    Ok(UpdateDescriptionsRequest {
        group_id: a.group_id.clone(),
        group_name: a.group_name.clone(),
        ip_permissions: structures("ip-permissions", &a.ip_permissions)?,
        security_group_rule_descriptions: structures(
            "security-group-rule-descriptions",
            &a.security_group_rule_descriptions,
        )?,
    })
}

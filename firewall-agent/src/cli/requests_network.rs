//! The calls of the subnet and network-interface verbs.

use super::{
    args_network::NetworkVerb,
    params::{Params, filters, json_list, structures},
    requests::{Failure, call},
};
use crate::api::{
    Call, catalogue as op,
    types::{
        network_interfaces::*,
        subnets::*,
        vpcs::{AttributeBooleanValue, DescribeRouteTablesRequest},
    },
};

/// One structure given once (`--description Value=…`, `--attachment AttachmentId=…`).
pub(super) fn structure<T: serde::de::DeserializeOwned>(
    name: &str,
    value: &Option<String>,
) -> Params<Option<T>> {
    Ok(match value {
        Some(value) => structures(name, std::slice::from_ref(value))?
            .into_iter()
            .next(),
        None => None,
    })
}

/// A pair of AWS CLI boolean flags: absent, `true` or `false`.
fn flag(on: bool, off: bool) -> Option<bool> {
    (on || off).then_some(on)
}

/// The call a subnet or network-interface verb makes.
pub fn request(verb: &NetworkVerb) -> Result<Call, Failure> {
    match verb {
        NetworkVerb::CreateSubnet(a) => call::<op::CreateSubnet>(|| {
            Ok(CreateSubnetRequest {
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                availability_zone: a.availability_zone.clone(),
                availability_zone_id: a.availability_zone_id.clone(),
                cidr_block: a.cidr_block.clone(),
                ipv6_cidr_block: a.ipv6_cidr_block.clone(),
                vpc_id: a.vpc_id.clone(),
            })
        }),
        NetworkVerb::DescribeSubnets(a) => call::<op::DescribeSubnets>(|| {
            Ok(DescribeSubnetsRequest {
                filters: filters(&a.filters)?,
                subnet_ids: a.subnet_ids.clone(),
                next_token: a.paging.next_token.clone(),
                max_results: a.paging.max_results,
            })
        }),
        NetworkVerb::DeleteSubnet(a) => call::<op::DeleteSubnet>(|| {
            Ok(DeleteSubnetRequest {
                subnet_id: a.subnet_id.clone(),
            })
        }),
        NetworkVerb::CreateNetworkInterface(a) => call::<op::CreateNetworkInterface>(|| {
            Ok(CreateNetworkInterfaceRequest {
                description: a.description.clone(),
                groups: a.groups.clone(),
                ipv6_address_count: a.ipv6_address_count,
                ipv6_addresses: structures("ipv6-addresses", &a.ipv6_addresses)?,
                private_ip_address: a.private_ip_address.clone(),
                subnet_id: a.subnet_id.clone(),
                tag_specifications: json_list("tag-specifications", &a.tag_specifications)?,
                client_token: a.client_token.clone(),
            })
        }),
        NetworkVerb::DescribeNetworkInterfaces(a) => call::<op::DescribeNetworkInterfaces>(|| {
            Ok(DescribeNetworkInterfacesRequest {
                filters: filters(&a.filters)?,
                network_interface_ids: a.network_interface_ids.clone(),
                next_token: a.paging.next_token.clone(),
                max_results: a.paging.max_results,
            })
        }),
        NetworkVerb::DeleteNetworkInterface(a) => call::<op::DeleteNetworkInterface>(|| {
            Ok(NetworkInterfaceIdRequest {
                network_interface_id: a.network_interface_id.clone(),
            })
        }),
        NetworkVerb::AttachNetworkInterface(a) => call::<op::AttachNetworkInterface>(|| {
            Ok(AttachNetworkInterfaceRequest {
                device_index: a.device_index,
                instance_id: a.instance_id.clone(),
                network_interface_id: a.network_interface_id.clone(),
                network_card_index: a.network_card_index,
            })
        }),
        NetworkVerb::DetachNetworkInterface(a) => call::<op::DetachNetworkInterface>(|| {
            Ok(DetachNetworkInterfaceRequest {
                attachment_id: a.attachment_id.clone(),
                force: flag(a.force, a.no_force),
            })
        }),
        NetworkVerb::DescribeRouteTables(a) => call::<op::DescribeRouteTables>(|| {
            Ok(DescribeRouteTablesRequest {
                route_table_ids: a.route_table_ids.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        NetworkVerb::ModifyNetworkInterfaceAttribute(a) => {
            call::<op::ModifyNetworkInterfaceAttribute>(|| {
                Ok(ModifyNetworkInterfaceAttributeRequest {
                    network_interface_id: a.network_interface_id.clone(),
                    description: structure("description", &a.description)?,
                    groups: (!a.groups.is_empty()).then(|| a.groups.clone()),
                    source_dest_check: flag(a.source_dest_check, a.no_source_dest_check)
                        .map(|value| AttributeBooleanValue { value: Some(value) }),
                    attachment: structure("attachment", &a.attachment)?,
                })
            })
            .map(|x| x.with_flush_flows(a.flush_flows))
        }
    }
}

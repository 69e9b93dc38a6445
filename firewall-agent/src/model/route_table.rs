//! `describe-route-tables`: each VPC's main route table, as AWS creates it with the VPC: the
//! local routes of its blocks, and no other (there is no internet gateway or NAT here). Its ID
//! derives from the VPC's, so it needs no storage; routes cannot be added.

use super::{
    query::{invalid_filter, paginate},
    state::{State, Vpc},
};
use crate::api::{
    ApiError, ApiResult,
    types::vpcs::{
        DescribeRouteTablesRequest, DescribeRouteTablesResponse, Route, RouteTable,
        RouteTableAssociation, RouteTableAssociationState,
    },
};

fn suffix(vpc: &Vpc) -> &str {
    vpc.id.strip_prefix("vpc-").unwrap_or(&vpc.id)
}

/// The VPC's main route table.
fn main_table(state: &State, vpc: &Vpc) -> RouteTable {
    let id = format!("rtb-{}", suffix(vpc));
    let local = |v4: Option<String>, v6: Option<String>| Route {
        destination_cidr_block: v4,
        destination_ipv6_cidr_block: v6,
        gateway_id: "local".into(),
        origin: "CreateRouteTable".into(),
        state: "active".into(),
    };
    let mut routes = vec![local(Some(vpc.cidr.to_string()), None)];
    routes.extend(vpc.ipv6_cidr.map(|b| local(None, Some(b.to_string()))));
    RouteTable {
        associations: vec![RouteTableAssociation {
            main: true,
            route_table_association_id: format!("rtbassoc-{}", suffix(vpc)),
            route_table_id: id.clone(),
            association_state: RouteTableAssociationState {
                state: "associated".into(),
            },
        }],
        propagating_vgws: Vec::new(),
        route_table_id: id,
        routes,
        tags: Vec::new(),
        vpc_id: vpc.id.clone(),
        owner_id: state.account_id.clone(),
    }
}

pub fn describe(
    state: &State,
    req: DescribeRouteTablesRequest,
) -> ApiResult<DescribeRouteTablesResponse> {
    let tables: Vec<RouteTable> = state.vpcs.values().map(|v| main_table(state, v)).collect();
    for id in &req.route_table_ids {
        if !tables.iter().any(|t| &t.route_table_id == id) {
            return Err(ApiError::new(
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{id}' does not exist"),
            ));
        }
    }
    let mut out = Vec::new();
    for table in tables {
        if !req.route_table_ids.is_empty() && !req.route_table_ids.contains(&table.route_table_id) {
            continue;
        }
        let mut keep = true;
        for filter in &req.filters {
            keep &= match filter.name.as_str() {
                "route-table-id" => filter.matches(&table.route_table_id),
                "vpc-id" => filter.matches(&table.vpc_id),
                "owner-id" => filter.matches(&table.owner_id),
                "association.main" => filter.matches("true"),
                "association.route-table-association-id" => {
                    filter.matches(&table.associations[0].route_table_association_id)
                }
                "association.route-table-id" => filter.matches(&table.route_table_id),
                // Subnets use the main table implicitly: no explicit association.
                "association.subnet-id" | "association.gateway-id" => false,
                "route.gateway-id" => filter.matches("local"),
                "route.destination-cidr-block" => table
                    .routes
                    .iter()
                    .filter_map(|r| r.destination_cidr_block.as_deref())
                    .any(|c| filter.matches(c)),
                "route.destination-ipv6-cidr-block" => table
                    .routes
                    .iter()
                    .filter_map(|r| r.destination_ipv6_cidr_block.as_deref())
                    .any(|c| filter.matches(c)),
                "route.origin" => filter.matches("CreateRouteTable"),
                "route.state" => filter.matches("active"),
                other => return Err(invalid_filter(other)),
            };
        }
        if keep {
            out.push((table.route_table_id.clone(), table));
        }
    }
    let page = paginate(out, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeRouteTablesResponse {
        route_tables: page.items,
        next_token: page.next_token,
    })
}

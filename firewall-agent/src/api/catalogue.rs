//! The table of actions. [`catalogue!`] turns each line into a marker type implementing
//! [`Operation`] (its name, request and response types) and an entry of [`ACTIONS`], so that
//! nothing outside this file matches an action by its name.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    call::Scope,
    error::{ApiError, ApiResult, decode},
    types::{
        account::*, common::*, flow_logs::*, groups::*, instance_details::*, instances::*,
        launch_templates::*, network_interfaces::*, ours::*, prefix_lists::*, rules::*, subnets::*,
        tags::*, vpcs::*,
    },
};
use crate::model::{
    IdSource, State, account, catalogue as types_and_images, flow_log, group, group_rules,
    instance, instance_attributes, launch_template, network_interface, prefix_list, route_table,
    rule_edit, subnet, tags, termination, vpc, vpc_attributes,
};
use firewall_common::Direction;

/// One API action, known at compile time by its marker type.
pub trait Operation {
    /// The action name, e.g. `AuthorizeSecurityGroupIngress`.
    const NAME: &'static str;
    /// Whether it can change the desired state (so it is persisted, compiled and applied).
    const MUTATES: bool;
    /// Whether it takes our `FlushFlows` member (cut the tracked flows the result disallows).
    const FLUSH_FLOWS: bool;
    type Request: Serialize + DeserializeOwned;
    type Response: Serialize + DeserializeOwned;
}

/// An action the model answers from the desired state.
pub trait StateOperation: Operation {
    fn handle(
        state: &mut State,
        ids: &mut dyn IdSource,
        request: Self::Request,
    ) -> ApiResult<Self::Response>;
}

/// What is left of a read once the agent's lock is released: the answer built from what was read
/// under it.
pub type Later<T> = Box<dyn FnOnce() -> T + Send>;

/// A deferred action's answer, once built.
pub type LaterAnswer = Later<ApiResult<Value>>;

/// What the agent's data-plane actions read.
pub trait DataplaneView {
    /// The counters, read at once; naming every rule's hits and counting the tracked flows
    /// (a walk of `CONNTRACK`) are left for later.
    fn statistics(&self) -> ApiResult<Later<DataplaneStatistics>>;
    fn verify(&self) -> ApiResult<DataplaneVerification>;
    fn explain(
        &self,
        scope: &Scope,
        request: ExplainVerdictRequest,
    ) -> ApiResult<ExplainVerdictResponse>;
    /// What an instance's user data printed (`serve --run-user-data`).
    fn console_output(
        &self,
        scope: &Scope,
        request: GetConsoleOutputRequest,
    ) -> ApiResult<GetConsoleOutputResponse>;
}

/// An action the data plane answers in two steps: a read under the agent's lock, then the answer
/// built from it without the lock.
pub trait DeferredOperation: Operation {
    fn handle(
        dataplane: &dyn DataplaneView,
        scope: &Scope,
        request: Self::Request,
    ) -> ApiResult<Later<Self::Response>>;
}

/// An action the data plane answers.
pub trait DataplaneOperation: Operation {
    fn handle(
        dataplane: &dyn DataplaneView,
        scope: &Scope,
        request: Self::Request,
    ) -> ApiResult<Self::Response>;
}

/// How an action is carried out, on JSON members (what the front ends decode into).
#[derive(Clone, Copy)]
pub enum Handler {
    /// On the desired state (pure).
    State(fn(&mut State, &mut dyn IdSource, Value) -> ApiResult<Value>),
    /// On the data plane (in the call's account and region).
    Dataplane(fn(&dyn DataplaneView, &Scope, Value) -> ApiResult<Value>),
    /// On the data plane, the answer built after the lock is released ([`DeferredOperation`]).
    Deferred(fn(&dyn DataplaneView, &Scope, Value) -> ApiResult<LaterAnswer>),
}

/// The AWS service an action belongs to: it decides the protocol version and the answer's
/// envelope on the Query endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Ec2,
    Sts,
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct Action {
    pub name: &'static str,
    pub service: Service,
    pub mutates: bool,
    pub flush_flows: bool,
    pub handler: Handler,
}

/// The action called `name`, or EC2's `InvalidAction`.
pub fn find(name: &str) -> ApiResult<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name).ok_or_else(|| {
        ApiError::new(
            "InvalidAction",
            format!("The action {name} is not valid for this web service."),
        )
    })
}

fn encode<T: Serialize>(response: T) -> ApiResult<Value> {
    serde_json::to_value(response)
        .map_err(|e| ApiError::internal(format!("The answer could not be encoded: {e}")))
}

fn on_state<O: StateOperation>(
    state: &mut State,
    ids: &mut dyn IdSource,
    request: Value,
) -> ApiResult<Value> {
    let response = O::handle(state, ids, decode(request)?)?;
    if O::MUTATES {
        state.settle_deletions();
        state.forget_terminated(&ids.now());
    }
    encode(response)
}

fn on_deferred<O: DeferredOperation<Response: 'static>>(
    dataplane: &dyn DataplaneView,
    scope: &Scope,
    request: Value,
) -> ApiResult<LaterAnswer> {
    let later = O::handle(dataplane, scope, decode(request)?)?;
    Ok(Box::new(move || encode(later())))
}

fn on_dataplane<O: DataplaneOperation>(
    dataplane: &dyn DataplaneView,
    scope: &Scope,
    request: Value,
) -> ApiResult<Value> {
    encode(O::handle(dataplane, scope, decode(request)?)?)
}

macro_rules! catalogue {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident($request:ty) -> $response:ty {
            $(service: $service:ident,)?
            mutates: $mutates:literal, flush_flows: $flush:literal, $kind:ident: $handler:expr
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            pub enum $name {}

            impl Operation for $name {
                const NAME: &'static str = stringify!($name);
                const MUTATES: bool = $mutates;
                const FLUSH_FLOWS: bool = $flush;
                type Request = $request;
                type Response = $response;
            }

            catalogue!(@handler $kind $name $handler);
        )*

        /// Every action.
        pub static ACTIONS: &[Action] = &[$(
            Action {
                name: stringify!($name),
                service: catalogue!(@service $($service)?),
                mutates: $mutates,
                flush_flows: $flush,
                handler: catalogue!(@entry $kind $name),
            },
        )*];
    };
    (@handler state $name:ident $handler:expr) => {
        impl StateOperation for $name {
            fn handle(
                state: &mut State,
                ids: &mut dyn IdSource,
                request: Self::Request,
            ) -> ApiResult<Self::Response> {
                let handler: fn(&mut State, &mut dyn IdSource, Self::Request)
                    -> ApiResult<Self::Response> = $handler;
                handler(state, ids, request)
            }
        }
    };
    (@handler dataplane $name:ident $handler:expr) => {
        impl DataplaneOperation for $name {
            fn handle(
                dataplane: &dyn DataplaneView,
                scope: &Scope,
                request: Self::Request,
            ) -> ApiResult<Self::Response> {
                let handler: fn(&dyn DataplaneView, &Scope, Self::Request)
                    -> ApiResult<Self::Response> = $handler;
                handler(dataplane, scope, request)
            }
        }
    };
    (@handler deferred $name:ident $handler:expr) => {
        impl DeferredOperation for $name {
            fn handle(
                dataplane: &dyn DataplaneView,
                scope: &Scope,
                request: Self::Request,
            ) -> ApiResult<Later<Self::Response>> {
                let handler: fn(&dyn DataplaneView, &Scope, Self::Request)
                    -> ApiResult<Later<Self::Response>> = $handler;
                handler(dataplane, scope, request)
            }
        }
    };
    (@service) => { Service::Ec2 };
    (@service $service:ident) => { Service::$service };
    (@entry state $name:ident) => { Handler::State(on_state::<$name>) };
    (@entry dataplane $name:ident) => { Handler::Dataplane(on_dataplane::<$name>) };
    (@entry deferred $name:ident) => { Handler::Deferred(on_deferred::<$name>) };
}

catalogue! {
    CreateSecurityGroup(CreateSecurityGroupRequest) -> CreateSecurityGroupResponse {
        mutates: true, flush_flows: false, state: group::create
    }
    /// Ours: the console's "Copy to new security group".
    CopySecurityGroup(CopySecurityGroupRequest) -> CreateSecurityGroupResponse {
        mutates: true, flush_flows: false, state: group::copy
    }
    DeleteSecurityGroup(DeleteSecurityGroupRequest) -> DeleteSecurityGroupResponse {
        mutates: true, flush_flows: false, state: |s, _, r| group::delete(s, r)
    }
    DescribeSecurityGroups(DescribeSecurityGroupsRequest) -> DescribeSecurityGroupsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| group::describe(s, r)
    }
    DescribeSecurityGroupRules(DescribeSecurityGroupRulesRequest) -> DescribeSecurityGroupRulesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| group_rules::describe(s, r)
    }
    AuthorizeSecurityGroupIngress(AuthorizeRequest) -> AuthorizeResponse {
        mutates: true, flush_flows: false,
        state: |s, ids, r| group_rules::authorize(s, ids, r, Direction::Inbound)
    }
    AuthorizeSecurityGroupEgress(AuthorizeRequest) -> AuthorizeResponse {
        mutates: true, flush_flows: false,
        state: |s, ids, r| group_rules::authorize(s, ids, r, Direction::Outbound)
    }
    RevokeSecurityGroupIngress(RevokeRequest) -> RevokeResponse {
        mutates: true, flush_flows: true,
        state: |s, _, r| group_rules::revoke(s, r, Direction::Inbound)
    }
    RevokeSecurityGroupEgress(RevokeRequest) -> RevokeResponse {
        mutates: true, flush_flows: true,
        state: |s, _, r| group_rules::revoke(s, r, Direction::Outbound)
    }
    ModifySecurityGroupRules(ModifySecurityGroupRulesRequest) -> ReturnResponse {
        mutates: true, flush_flows: false, state: |s, _, r| group_rules::modify(s, r)
    }
    UpdateSecurityGroupRuleDescriptionsIngress(UpdateDescriptionsRequest) -> ReturnResponse {
        mutates: true, flush_flows: false,
        state: |s, _, r| group_rules::update_descriptions(s, r, Direction::Inbound)
    }
    UpdateSecurityGroupRuleDescriptionsEgress(UpdateDescriptionsRequest) -> ReturnResponse {
        mutates: true, flush_flows: false,
        state: |s, _, r| group_rules::update_descriptions(s, r, Direction::Outbound)
    }
    /// Ours: the console's rule editor, saved as one change.
    EditSecurityGroupRules(EditSecurityGroupRulesRequest) -> EditSecurityGroupRulesResponse {
        mutates: true, flush_flows: true, state: rule_edit::edit
    }
    DescribeSecurityGroupReferences(DescribeSecurityGroupReferencesRequest) -> DescribeSecurityGroupReferencesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| group_rules::references(s, r)
    }
    RunInstances(RunInstancesRequest) -> Reservation {
        mutates: true, flush_flows: false, state: instance::run
    }
    DescribeInstances(DescribeInstancesRequest) -> DescribeInstancesResponse {
        mutates: false, flush_flows: false, state: |s, ids, r| instance::describe(s, &ids.now(), r)
    }
    TerminateInstances(InstanceIdsRequest) -> TerminateInstancesResponse {
        mutates: true, flush_flows: false, state: termination::terminate
    }
    StopInstances(InstanceIdsRequest) -> StopInstancesResponse {
        mutates: true, flush_flows: false, state: |s, _, r| instance::stop(s, r)
    }
    StartInstances(InstanceIdsRequest) -> StartInstancesResponse {
        mutates: true, flush_flows: false, state: |s, _, r| instance::start(s, r)
    }
    ModifyInstanceAttribute(ModifyInstanceAttributeRequest) -> EmptyResponse {
        mutates: true, flush_flows: true, state: |s, _, r| instance::modify_attribute(s, r)
    }
    DescribeInstanceAttribute(DescribeInstanceAttributeRequest) -> InstanceAttribute {
        mutates: false, flush_flows: false,
        state: |s, _, r| instance_attributes::describe_attribute(s, r)
    }
    DescribeInstanceCreditSpecifications(DescribeInstanceCreditSpecificationsRequest) -> DescribeInstanceCreditSpecificationsResponse {
        mutates: false, flush_flows: false,
        state: |s, _, r| instance_attributes::describe_credit_specifications(s, r)
    }
    DescribeVolumes(DescribeVolumesRequest) -> DescribeVolumesResponse {
        mutates: false, flush_flows: false, state: |_, _, r| instance_attributes::describe_volumes(r)
    }
    DescribeInstanceTypes(DescribeInstanceTypesRequest) -> DescribeInstanceTypesResponse {
        mutates: false, flush_flows: false,
        state: |_, _, r| types_and_images::describe_instance_types(r)
    }
    DescribeImages(DescribeImagesRequest) -> DescribeImagesResponse {
        mutates: false, flush_flows: false, state: |_, _, r| types_and_images::describe_images(r)
    }
    CreateNetworkInterface(CreateNetworkInterfaceRequest) -> CreateNetworkInterfaceResponse {
        mutates: true, flush_flows: false, state: network_interface::create
    }
    DescribeNetworkInterfaces(DescribeNetworkInterfacesRequest) -> DescribeNetworkInterfacesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| network_interface::describe(s, r)
    }
    DeleteNetworkInterface(NetworkInterfaceIdRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| network_interface::delete(s, r)
    }
    AttachNetworkInterface(AttachNetworkInterfaceRequest) -> AttachNetworkInterfaceResponse {
        mutates: true, flush_flows: false, state: network_interface::attach
    }
    DetachNetworkInterface(DetachNetworkInterfaceRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| network_interface::detach(s, r)
    }
    ModifyNetworkInterfaceAttribute(ModifyNetworkInterfaceAttributeRequest) -> EmptyResponse {
        mutates: true, flush_flows: true,
        state: |s, _, r| network_interface::modify_attribute(s, r)
    }
    CreateSubnet(CreateSubnetRequest) -> CreateSubnetResponse {
        mutates: true, flush_flows: false, state: subnet::create
    }
    DescribeSubnets(DescribeSubnetsRequest) -> DescribeSubnetsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| subnet::describe(s, r)
    }
    DeleteSubnet(DeleteSubnetRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| subnet::delete(s, r)
    }
    CreateManagedPrefixList(CreateManagedPrefixListRequest) -> PrefixListResponse {
        mutates: true, flush_flows: false, state: prefix_list::create
    }
    ModifyManagedPrefixList(ModifyManagedPrefixListRequest) -> PrefixListResponse {
        mutates: true, flush_flows: false, state: |s, _, r| prefix_list::modify(s, r)
    }
    DescribeManagedPrefixLists(DescribeManagedPrefixListsRequest) -> DescribeManagedPrefixListsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| prefix_list::describe(s, r)
    }
    GetManagedPrefixListEntries(PrefixListIdRequest) -> GetManagedPrefixListEntriesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| prefix_list::get_entries(s, r)
    }
    DeleteManagedPrefixList(PrefixListIdRequest) -> PrefixListResponse {
        mutates: true, flush_flows: false, state: |s, _, r| prefix_list::delete(s, r)
    }
    CreateVpc(CreateVpcRequest) -> CreateVpcResponse {
        mutates: true, flush_flows: false, state: vpc::create
    }
    DescribeVpcs(DescribeVpcsRequest) -> DescribeVpcsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| vpc::describe(s, r)
    }
    DeleteVpc(DeleteVpcRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| vpc::delete(s, r)
    }
    DescribeRouteTables(DescribeRouteTablesRequest) -> DescribeRouteTablesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| route_table::describe(s, r)
    }
    DescribeVpcAttribute(DescribeVpcAttributeRequest) -> DescribeVpcAttributeResponse {
        mutates: false, flush_flows: false, state: |s, _, r| vpc_attributes::describe(s, r)
    }
    ModifyVpcAttribute(ModifyVpcAttributeRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| vpc_attributes::modify(s, r)
    }
    CreateTags(ChangeTagsRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| tags::create(s, r)
    }
    DeleteTags(ChangeTagsRequest) -> EmptyResponse {
        mutates: true, flush_flows: false, state: |s, _, r| tags::delete(s, r)
    }
    DescribeTags(DescribeTagsRequest) -> DescribeTagsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| tags::describe(s, r)
    }
    CreateLaunchTemplate(CreateLaunchTemplateRequest) -> LaunchTemplateResponse {
        mutates: true, flush_flows: false, state: launch_template::create
    }
    DescribeLaunchTemplates(DescribeLaunchTemplatesRequest) -> DescribeLaunchTemplatesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| launch_template::describe(s, r)
    }
    DeleteLaunchTemplate(DeleteLaunchTemplateRequest) -> LaunchTemplateResponse {
        mutates: true, flush_flows: false, state: |s, _, r| launch_template::delete(s, r)
    }
    DescribeRegions(DescribeRegionsRequest) -> DescribeRegionsResponse {
        mutates: false, flush_flows: false, state: |_, _, r| account::describe_regions(r)
    }
    DescribeAvailabilityZones(DescribeAvailabilityZonesRequest) -> DescribeAvailabilityZonesResponse {
        mutates: false, flush_flows: false,
        state: |s, _, r| account::describe_availability_zones(s, r)
    }
    DescribeAccountAttributes(DescribeAccountAttributesRequest) -> DescribeAccountAttributesResponse {
        mutates: false, flush_flows: false,
        state: |s, _, r| account::describe_account_attributes(s, r)
    }
    /// STS: the account a request was signed for.
    GetCallerIdentity(EmptyRequest) -> GetCallerIdentityResponse {
        service: Sts,
        mutates: false, flush_flows: false, state: |s, _, _| Ok(account::caller_identity(s))
    }
    CreateFlowLogs(CreateFlowLogsRequest) -> CreateFlowLogsResponse {
        mutates: true, flush_flows: false, state: flow_log::create
    }
    DescribeFlowLogs(DescribeFlowLogsRequest) -> DescribeFlowLogsResponse {
        mutates: false, flush_flows: false, state: |s, _, r| flow_log::describe(s, r)
    }
    DeleteFlowLogs(DeleteFlowLogsRequest) -> DeleteFlowLogsResponse {
        mutates: true, flush_flows: false, state: |s, _, r| flow_log::delete(s, r)
    }
    /// Ours: drops and passes by reason, hits per rule, tracked flows.
    GetDataplaneStatistics(EmptyRequest) -> DataplaneStatistics {
        mutates: false, flush_flows: false, deferred: |d, _, _| d.statistics()
    }
    /// Ours: the kernel's policy maps read back and compared with what the state compiles to.
    VerifyDataplane(EmptyRequest) -> DataplaneVerification {
        mutates: false, flush_flows: false, dataplane: |d, _, _| d.verify()
    }
    /// Ours: allowed or denied, and the rule and group or the tracked flow that decide, as the
    /// kernel's own maps answer.
    ExplainVerdict(ExplainVerdictRequest) -> ExplainVerdictResponse {
        mutates: false, flush_flows: false, dataplane: |d, scope, r| d.explain(scope, r)
    }
    GetConsoleOutput(GetConsoleOutputRequest) -> GetConsoleOutputResponse {
        mutates: false, flush_flows: false, dataplane: |d, scope, r| d.console_output(scope, r)
    }
    /// Ours: the same policy as an nftables ruleset.
    ExportNftables(ExportNftablesRequest) -> ExportNftablesResponse {
        mutates: false, flush_flows: false, state: |s, _, r| super::ours::export_nftables(s, r)
    }
}

/// Runs one action of the state on JSON members (the JSON front end's in-process entry, used by
/// tests and tools that hold a `State`); data-plane actions are the agent's.
pub fn call_json(
    state: &mut State,
    ids: &mut dyn IdSource,
    action: &str,
    request: Value,
) -> ApiResult<Value> {
    match find(action)?.handler {
        Handler::State(run) => run(state, ids, request),
        Handler::Dataplane(_) | Handler::Deferred(_) => Err(ApiError::new(
            "InvalidAction",
            format!("The action {action} needs the agent's data plane."),
        )),
    }
}

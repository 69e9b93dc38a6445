//! EC2's wire names of members, from the service model's `locationName`s (EC2 API version
//! 2016-11-15): what the typed members (named as the model names them) are called in Query
//! requests and in XML answers. A member not listed keeps its name in requests and takes its
//! lowerCamel form in answers.
//!
//! The context of a member is the action for a request's or answer's own members, and for the
//! members of a nested structure the member that holds it (for the items of a list, the list).
//! `*` stands for every context.

/// Request members whose Query name is not the member name. A list's name is that of its
/// items: `GroupId.1`, `Filter.1.Value.2`.
const REQUEST: &[(&str, &str, &str)] = &[
    ("*", "Filters", "Filter"),
    ("Filters", "Values", "Value"),
    ("*", "TagSpecifications", "TagSpecification"),
    ("TagSpecifications", "Tags", "Tag"),
    ("CreateTags", "Tags", "Tag"),
    ("DeleteTags", "Tags", "Tag"),
    ("CreateTags", "Resources", "ResourceId"),
    ("DeleteTags", "Resources", "ResourceId"),
    ("*", "UserIdGroupPairs", "Groups"),
    (
        "DescribeSecurityGroupRules",
        "SecurityGroupRuleIds",
        "SecurityGroupRuleId",
    ),
    (
        "RevokeSecurityGroupIngress",
        "SecurityGroupRuleIds",
        "SecurityGroupRuleId",
    ),
    (
        "RevokeSecurityGroupEgress",
        "SecurityGroupRuleIds",
        "SecurityGroupRuleId",
    ),
    (
        "*",
        "SecurityGroupRuleDescriptions",
        "SecurityGroupRuleDescription",
    ),
    ("DescribeInstances", "InstanceIds", "InstanceId"),
    ("TerminateInstances", "InstanceIds", "InstanceId"),
    ("StopInstances", "InstanceIds", "InstanceId"),
    ("StartInstances", "InstanceIds", "InstanceId"),
    ("CreateSecurityGroup", "Description", "GroupDescription"),
    ("DescribeSecurityGroups", "GroupIds", "GroupId"),
    ("DescribeSecurityGroups", "GroupNames", "GroupName"),
    ("DescribeSecurityGroupReferences", "GroupId", "GroupId"),
    (
        "ModifySecurityGroupRules",
        "SecurityGroupRules",
        "SecurityGroupRule",
    ),
    ("RunInstances", "SecurityGroupIds", "SecurityGroupId"),
    ("RunInstances", "Ipv6Addresses", "Ipv6Address"),
    ("ModifyInstanceAttribute", "Groups", "GroupId"),
    (
        "DescribeNetworkInterfaces",
        "NetworkInterfaceIds",
        "NetworkInterfaceId",
    ),
    ("CreateNetworkInterface", "Groups", "SecurityGroupId"),
    (
        "ModifyNetworkInterfaceAttribute",
        "Groups",
        "SecurityGroupId",
    ),
    ("DescribeSubnets", "SubnetIds", "SubnetId"),
    ("LaunchTemplateData", "SecurityGroupIds", "SecurityGroupId"),
    (
        "DescribeLaunchTemplates",
        "LaunchTemplateIds",
        "LaunchTemplateId",
    ),
    (
        "DescribeLaunchTemplates",
        "LaunchTemplateNames",
        "LaunchTemplateName",
    ),
    (
        "DescribeManagedPrefixLists",
        "PrefixListIds",
        "PrefixListId",
    ),
    ("CreateManagedPrefixList", "Entries", "Entry"),
    ("ModifyManagedPrefixList", "AddEntries", "AddEntry"),
    ("ModifyManagedPrefixList", "RemoveEntries", "RemoveEntry"),
    ("DescribeVpcs", "VpcIds", "VpcId"),
    ("CreateFlowLogs", "ResourceIds", "ResourceId"),
    ("DescribeFlowLogs", "Filter", "Filter"),
    ("DescribeFlowLogs", "FlowLogIds", "FlowLogId"),
    ("DeleteFlowLogs", "FlowLogIds", "FlowLogId"),
    ("Filter", "Values", "Value"),
    ("DescribeRegions", "RegionNames", "RegionName"),
    ("DescribeAvailabilityZones", "ZoneNames", "ZoneName"),
    ("DescribeAvailabilityZones", "ZoneIds", "ZoneId"),
    (
        "DescribeAccountAttributes",
        "AttributeNames",
        "AttributeName",
    ),
    ("DescribeInstanceTypes", "InstanceTypes", "InstanceType"),
    ("DescribeImages", "ImageIds", "ImageId"),
    ("DescribeImages", "Owners", "Owner"),
    ("DescribeImages", "ExecutableUsers", "ExecutableBy"),
    ("DescribeVolumes", "VolumeIds", "VolumeId"),
    ("DescribeRouteTables", "RouteTableIds", "RouteTableId"),
    (
        "DescribeInstanceCreditSpecifications",
        "InstanceIds",
        "InstanceId",
    ),
];

/// Answer members whose XML name is not the lowerCamel member name.
const RESPONSE: &[(&str, &str, &str)] = &[
    ("*", "Tags", "tagSet"),
    ("*", "UserIdGroupPairs", "groups"),
    ("*", "SecurityGroupRules", "securityGroupRuleSet"),
    ("*", "UnknownIpPermissions", "unknownIpPermissionSet"),
    (
        "*",
        "RevokedSecurityGroupRules",
        "revokedSecurityGroupRuleSet",
    ),
    (
        "DescribeSecurityGroups",
        "SecurityGroups",
        "securityGroupInfo",
    ),
    ("SecurityGroups", "Description", "groupDescription"),
    ("*", "Reservations", "reservationSet"),
    ("*", "Instances", "instancesSet"),
    ("*", "TerminatingInstances", "instancesSet"),
    ("*", "StoppingInstances", "instancesSet"),
    ("*", "StartingInstances", "instancesSet"),
    ("*", "Groups", "groupSet"),
    ("Instances", "SecurityGroups", "groupSet"),
    ("Instances", "State", "instanceState"),
    ("*", "NetworkInterfaces", "networkInterfaceSet"),
    ("*", "Ipv6Addresses", "ipv6AddressesSet"),
    ("*", "PrivateIpAddresses", "privateIpAddressesSet"),
    ("*", "Vpcs", "vpcSet"),
    ("*", "Subnets", "subnetSet"),
    ("*", "FlowLogIds", "flowLogIdSet"),
    ("*", "FlowLogs", "flowLogSet"),
    ("*", "PrefixLists", "prefixListSet"),
    ("*", "Entries", "entrySet"),
    ("*", "Regions", "regionInfo"),
    ("Regions", "Endpoint", "regionEndpoint"),
    ("*", "AvailabilityZones", "availabilityZoneInfo"),
    ("AvailabilityZones", "State", "zoneState"),
    ("AvailabilityZones", "Messages", "messageSet"),
    ("*", "AccountAttributes", "accountAttributeSet"),
    ("*", "AttributeValues", "attributeValueSet"),
    ("*", "InstanceTypes", "instanceTypeSet"),
    ("*", "Images", "imagesSet"),
    ("Images", "State", "imageState"),
    ("Images", "OwnerId", "imageOwnerId"),
    ("Images", "Public", "isPublic"),
    ("*", "BlockDeviceMappings", "blockDeviceMapping"),
    ("*", "Volumes", "volumeSet"),
    ("*", "RouteTables", "routeTableSet"),
    ("RouteTables", "Associations", "associationSet"),
    ("RouteTables", "PropagatingVgws", "propagatingVgwSet"),
    ("RouteTables", "Routes", "routeSet"),
    (
        "*",
        "InstanceCreditSpecifications",
        "instanceCreditSpecificationSet",
    ),
];

fn lookup<'a>(
    table: &'a [(&str, &str, &str)],
    context: &str,
    matches: impl Fn(&(&str, &str, &str)) -> bool,
) -> Option<&'a (&'a str, &'a str, &'a str)> {
    table
        .iter()
        .find(|e| e.0 == context && matches(e))
        .or_else(|| table.iter().find(|e| e.0 == "*" && matches(e)))
}

/// The member a request's Query name stands for, in `context`.
pub fn request_member(context: &str, wire: &str) -> String {
    match lookup(REQUEST, context, |e| e.2 == wire) {
        Some(&(_, member, _)) => member.to_string(),
        None => wire.to_string(),
    }
}

/// The XML name of an answer's member, in `context`.
pub fn response_name(context: &str, member: &str) -> String {
    match lookup(RESPONSE, context, |e| e.1 == member) {
        Some(&(_, _, wire)) => wire.to_string(),
        None => lower_camel(member),
    }
}

fn lower_camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_follow_the_model_in_their_context() {
        assert_eq!(
            request_member("DescribeSecurityGroups", "GroupId"),
            "GroupIds"
        );
        assert_eq!(request_member("DeleteSecurityGroup", "GroupId"), "GroupId");
        assert_eq!(
            request_member("ModifyInstanceAttribute", "GroupId"),
            "Groups"
        );
        assert_eq!(
            request_member("IpPermissions", "Groups"),
            "UserIdGroupPairs"
        );
        assert_eq!(request_member("Filters", "Value"), "Values");
        assert_eq!(
            request_member("CreateSecurityGroup", "GroupDescription"),
            "Description"
        );
        assert_eq!(request_member("IpPermissions", "IpRanges"), "IpRanges");
        assert_eq!(
            request_member("SecurityGroupRules", "SecurityGroupRuleId"),
            "SecurityGroupRuleId"
        );
    }

    #[test]
    fn response_names_are_lower_camel_unless_the_model_says_otherwise() {
        assert_eq!(
            response_name("DescribeSecurityGroups", "SecurityGroups"),
            "securityGroupInfo"
        );
        assert_eq!(response_name("Instances", "SecurityGroups"), "groupSet");
        assert_eq!(
            response_name("SecurityGroups", "Description"),
            "groupDescription"
        );
        assert_eq!(
            response_name("SecurityGroupRules", "Description"),
            "description"
        );
        assert_eq!(
            response_name("SecurityGroups", "IpPermissionsEgress"),
            "ipPermissionsEgress"
        );
        assert_eq!(response_name("CreateSecurityGroup", "Tags"), "tagSet");
        assert_eq!(response_name("Instances", "State"), "instanceState");
        assert_eq!(response_name("Vpcs", "State"), "state");
    }
}

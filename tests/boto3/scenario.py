"""boto3 against the agent's EC2 Query endpoint (run by tests/tests/ec2_boto3.rs inside the
agent's namespace; the profile in AWS_PROFILE carries the endpoint, region and key pair).

Groups and rules, read back through paginators; error codes from botocore's ClientError; a second
region with its own default VPC; optionally (--host-interface) our HostInterface member, added to
the signed request by a before-call hook, refused (only the agent's root-only socket takes it), and
a local instance launched through its whole life.
Exits non-zero on the first failed check.
"""

import argparse
import sys

import boto3
import botocore.exceptions

OTHER_REGION = "eu-west-1"


def check(cond, what, *shown):
    if not cond:
        print("FAILED:", what, *shown, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, None


def paged(client, operation, key, **kwargs):
    items, pages = [], 0
    for page in client.get_paginator(operation).paginate(**kwargs):
        pages += 1
        items.extend(page[key])
    return items, pages


def default_vpc(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    check(len(vpcs) == 1, "one default VPC", vpcs)
    check(vpcs[0]["CidrBlock"] == "172.31.0.0/16", "default VPC is 172.31.0.0/16", vpcs[0])
    return vpcs[0]["VpcId"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--account", required=True)
    parser.add_argument("--host-interface")
    parser.add_argument("--private-ip")
    args = parser.parse_args()

    session = boto3.Session()
    region = session.region_name
    ec2 = session.client("ec2")
    sts = session.client("sts")

    me = sts.get_caller_identity()
    check(me["Account"] == args.account, "STS account", me)

    vpc = default_vpc(ec2)
    web = ec2.create_security_group(
        GroupName="web",
        Description="web tier",
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "web"}]}
        ],
    )
    check(web["GroupId"].startswith("sg-"), "CreateSecurityGroup GroupId", web)
    web = web["GroupId"]
    groups = [web]
    for i in range(6):
        groups.append(ec2.create_security_group(GroupName=f"g{i}", Description=f"g {i}")["GroupId"])

    out = ec2.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": f"10.{i}.0.0/16", "Description": f"n{i}"} for i in range(11)],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": groups[1], "Description": "from g0"}],
            },
        ],
    )
    check(out["Return"] is True, "AuthorizeSecurityGroupIngress Return", out)
    check(len(out["SecurityGroupRules"]) == 12, "12 rules created", out["SecurityGroupRules"])
    ref = [r for r in out["SecurityGroupRules"] if r.get("ReferencedGroupInfo")]
    check(
        len(ref) == 1 and ref[0]["ReferencedGroupInfo"]["GroupId"] == groups[1],
        "the referenced group rule",
        ref,
    )

    everything, pages = paged(ec2, "describe_security_groups", "SecurityGroups",
                              PaginationConfig={"PageSize": 5})
    names = sorted(g["GroupName"] for g in everything)
    check(names == sorted(["default", "web"] + [f"g{i}" for i in range(6)]),
          "every group through the paginator", names)
    check(pages == 2, "8 groups in pages of 5", pages)

    rules, pages = paged(ec2, "describe_security_group_rules", "SecurityGroupRules",
                         Filters=[{"Name": "group-id", "Values": [web]}],
                         PaginationConfig={"PageSize": 5})
    ids = [r["SecurityGroupRuleId"] for r in rules]
    # The default VPC has an IPv6 block, so a new group starts with two outbound rules.
    check(len(ids) == 14 and len(set(ids)) == 14, "12 ingress + 2 egress rules, once each", ids)
    check(pages == 3, "14 rules in pages of 5", pages)
    check(sum(r["IsEgress"] for r in rules) == 2, "two egress rules", rules)
    one = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [web]}], MaxResults=5)
    check(len(one["SecurityGroupRules"]) == 5 and "NextToken" in one, "MaxResults=5 page", one)
    whole = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])
    check(len(whole["SecurityGroupRules"]) == 14 and "NextToken" not in whole,
          "no MaxResults: all rules, no token", whole.get("NextToken"))

    described = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]
    check(described["Tags"] == [{"Key": "team", "Value": "web"}], "tags on the group", described)
    ssh = [p for p in described["IpPermissions"] if p.get("FromPort") == 22][0]
    check(sorted(r["CidrIp"] for r in ssh["IpRanges"]) == sorted(f"10.{i}.0.0/16" for i in range(11)),
          "the ssh permission's ranges", ssh)
    tagged = ec2.describe_security_groups(Filters=[{"Name": "tag:team", "Values": ["web"]}])
    check([g["GroupId"] for g in tagged["SecurityGroups"]] == [web], "tag filter", tagged)

    # Modify then revoke by rule ID.
    target = [r for r in rules if not r["IsEgress"] and r.get("CidrIpv4") == "10.0.0.0/16"][0]
    rid = target["SecurityGroupRuleId"]
    ec2.modify_security_group_rules(GroupId=web, SecurityGroupRules=[{
        "SecurityGroupRuleId": rid,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222,
                              "CidrIpv4": "10.200.0.0/16", "Description": "moved"}}])
    moved = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rid])["SecurityGroupRules"][0]
    check((moved["FromPort"], moved["CidrIpv4"], moved["Description"]) == (2222, "10.200.0.0/16", "moved"),
          "ModifySecurityGroupRules", moved)
    out = ec2.revoke_security_group_ingress(GroupId=web, SecurityGroupRuleIds=[rid])
    check(out["Return"] is True, "RevokeSecurityGroupIngress Return", out)
    left, _ = paged(ec2, "describe_security_group_rules", "SecurityGroupRules",
                    Filters=[{"Name": "group-id", "Values": [web]}])
    check(rid not in [r["SecurityGroupRuleId"] for r in left] and len(left) == 13,
          "the revoked rule is gone", left)

    # Errors through ClientError.
    code, status = error_code(ec2.create_security_group, GroupName="web", Description="again")
    check((code, status) == ("InvalidGroup.Duplicate", 400), "duplicate group", code, status)
    code, _ = error_code(ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"])
    check(code == "InvalidGroup.NotFound", "unknown group", code)
    code, _ = error_code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}])
    check(code == "InvalidPermission.Duplicate", "duplicate rule", code)
    code, status = error_code(ec2.create_security_group, GroupName="dry", Description="d", DryRun=True)
    check((code, status) == ("DryRunOperation", 412), "dry run", code, status)
    code, _ = error_code(ec2.delete_vpc, VpcId="vpc-0123456789abcdef0")
    check(code == "InvalidVpcID.NotFound", "unknown VPC", code)
    check(not ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["dry"]}])["SecurityGroups"],
        "the dry run created nothing")

    # Another region: its own default VPC and default group, none of this region's groups.
    check(OTHER_REGION != region, "two different regions", region)
    other = session.client("ec2", region_name=OTHER_REGION)
    other_vpc = default_vpc(other)
    check(other_vpc != vpc, "each region has its own default VPC", vpc, other_vpc)
    theirs, _ = paged(other, "describe_security_groups", "SecurityGroups")
    check([(g["GroupName"], g["VpcId"]) for g in theirs] == [("default", other_vpc)],
          "the other region sees only its default group", theirs)
    code, _ = error_code(other.describe_security_groups, GroupIds=[web])
    check(code == "InvalidGroup.NotFound", "this region's group is unknown there", code)
    zones = other.describe_availability_zones()["AvailabilityZones"]
    check(zones and all(z["RegionName"] == OTHER_REGION for z in zones), "the other region's zones", zones)
    there = other.create_security_group(GroupName="web", Description="same name, other region")
    check(there["GroupId"] != web, "the same name is free in the other region", there)
    mine = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    check(mine.count("web") == 1, "and does not appear here", mine)

    # A region AWS does not have.
    nowhere = session.client("ec2", region_name="mars-north-1")
    code, status = error_code(nowhere.describe_vpcs)
    check((code, status) == ("InvalidParameterValue", 400), "an unknown region", code, status)

    # Waiters, references, descriptions and launch templates.
    ec2.get_waiter("security_group_exists").wait(GroupIds=[web], WaiterConfig={"Delay": 1})
    refs = ec2.describe_security_group_references(GroupId=[web])
    check(refs["SecurityGroupReferenceSet"] == [], "no references across peerings", refs)
    first = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [web]}])["SecurityGroupRules"]
    ingress = [r for r in first if not r["IsEgress"]][0]["SecurityGroupRuleId"]
    ec2.update_security_group_rule_descriptions_ingress(
        GroupId=web, SecurityGroupRuleDescriptions=[
            {"SecurityGroupRuleId": ingress, "Description": "described by boto3"}])
    described = ec2.describe_security_group_rules(SecurityGroupRuleIds=[ingress])
    check(described["SecurityGroupRules"][0].get("Description") == "described by boto3",
          "UpdateSecurityGroupRuleDescriptionsIngress", described)
    template = ec2.create_launch_template(
        LaunchTemplateName="web-template",
        LaunchTemplateData={"SecurityGroupIds": [web]})["LaunchTemplate"]
    listed = ec2.describe_launch_templates(LaunchTemplateNames=["web-template"])["LaunchTemplates"]
    check([t["LaunchTemplateId"] for t in listed] == [template["LaunchTemplateId"]],
          "DescribeLaunchTemplates", listed)

    if args.host_interface:
        refuse_host_interface(ec2, web, args.host_interface, args.private_ip)
        run_instance(ec2, web, groups[1])
    ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
    check(not ec2.describe_launch_templates()["LaunchTemplates"], "DeleteLaunchTemplate")
    print("scenario passed")


def refuse_host_interface(ec2, group, host_interface, private_ip):
    """RunInstances with our HostInterface member (registering an existing interface of the
    agent's host, an operator's act: only the root-only socket takes it), added to the signed
    form body: refused as AWS refuses a member it does not know, and nothing is launched."""

    def add_host_interface(params, **_):
        params["body"]["HostInterface"] = host_interface

    ec2.meta.events.register("before-call.ec2.RunInstances", add_host_interface)
    before = ec2.describe_instances()["Reservations"]
    try:
        ec2.run_instances(MinCount=1, MaxCount=1, SecurityGroupIds=[group],
                          PrivateIpAddress=private_ip)
        check(False, "RunInstances with HostInterface is refused", "it was accepted")
    except botocore.exceptions.ClientError as e:
        check(e.response["Error"]["Code"] == "UnknownParameter",
              "RunInstances with HostInterface: UnknownParameter", e.response)
    finally:
        ec2.meta.events.unregister("before-call.ec2.RunInstances", add_host_interface)
    check(ec2.describe_instances()["Reservations"] == before, "nothing was launched", before)


def run_instance(ec2, group, other_group):
    """A local instance launched through the endpoint, through its whole life."""
    out = ec2.run_instances(MinCount=1, MaxCount=1, SecurityGroupIds=[group])
    instance = out["Instances"][0]
    iid = instance["InstanceId"]
    check(iid.startswith("i-"), "RunInstances InstanceId", out)
    check(instance["PrivateIpAddress"].startswith("172.31."), "its address", instance)
    check([g["GroupId"] for g in instance["SecurityGroups"]] == [group], "its group", instance)
    pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=[iid])
    found = [i for page in pages for res in page["Reservations"] for i in res["Instances"]]
    check(len(found) == 1 and found[0]["InstanceId"] == iid, "DescribeInstances", found)
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    out = ec2.stop_instances(InstanceIds=[iid])
    check(out["StoppingInstances"][0]["CurrentState"]["Name"] == "stopped", "StopInstances", out)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    out = ec2.start_instances(InstanceIds=[iid])
    check(out["StartingInstances"][0]["CurrentState"]["Name"] == "running", "StartInstances", out)
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[group, other_group])
    now = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    check(sorted(g["GroupId"] for g in now["SecurityGroups"]) == sorted([group, other_group]),
          "ModifyInstanceAttribute --groups", now)
    out = ec2.terminate_instances(InstanceIds=[iid])
    check(out["TerminatingInstances"][0]["InstanceId"] == iid, "TerminateInstances", out)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})


if __name__ == "__main__":
    main()

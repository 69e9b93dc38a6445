"""Change -> enforced through the agent's EC2 Query endpoint, as boto3 sees it (SigV4, XML).

Run by the benchmark suite inside the agent's namespace, with AWS_PROFILE pointing at the
endpoint. Arguments: calls per change, the group rules are added to, the instance that leaves
and rejoins a referenced group, every group (comma-separated), the prefix list edited and its
current version. Prints one JSON object: for each change, the per-call milliseconds (each call
answers once the change is saved and written to the kernel).
"""

import json
import sys
import time

import boto3


def timed(call, n, out):
    for i in range(n):
        start = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - start) * 1000.0)


def main():
    n = int(sys.argv[1])
    group, joiner, groups, prefix_list = sys.argv[2], sys.argv[3], sys.argv[4].split(","), sys.argv[5]
    version = int(sys.argv[6])
    ec2 = boto3.client("ec2")
    for _ in range(5):  # connection and credential set-up are not part of a call
        ec2.describe_security_groups(GroupIds=[group])
    rule = [{"IpProtocol": "tcp", "FromPort": 7778, "ToPort": 7778,
             "IpRanges": [{"CidrIp": "10.77.0.2/32"}]}]
    without = [g for g in groups if g != groups[1]]
    out = {name: [] for name in ["add rule", "remove rule", "member leaves a referenced group",
                                 "member joins a referenced group", "prefix-list entry added",
                                 "prefix-list entry removed"]}
    for i in range(n):
        timed(lambda _: ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule),
              1, out["add rule"])
        timed(lambda _: ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=rule),
              1, out["remove rule"])
        timed(lambda _: ec2.modify_instance_attribute(InstanceId=joiner, Groups=without),
              1, out["member leaves a referenced group"])
        timed(lambda _: ec2.modify_instance_attribute(InstanceId=joiner, Groups=groups),
              1, out["member joins a referenced group"])
        cidr = [{"Cidr": "198.51.100.%d/32" % (i % 200)}]
        timed(lambda _: ec2.modify_managed_prefix_list(
            PrefixListId=prefix_list, CurrentVersion=version, AddEntries=cidr),
              1, out["prefix-list entry added"])
        version += 1
        timed(lambda _: ec2.modify_managed_prefix_list(
            PrefixListId=prefix_list, CurrentVersion=version, RemoveEntries=cidr),
              1, out["prefix-list entry removed"])
        version += 1
    print(json.dumps(out))


main()

"""Latency through the agent's EC2 Query endpoint, as a user of boto3 and of the AWS CLI sees it.

Run by the benchmark suite inside the agent's namespace, with AWS_PROFILE pointing at the
endpoint. Prints one JSON object: for each (client, operation), the per-call milliseconds.
Arguments: calls per boto3 / in-process CLI measurement, calls per CLI process measurement.
"""

import contextlib
import io
import json
import subprocess
import sys
import time

import boto3
from awscli.clidriver import create_clidriver


def timed(call, n):
    samples = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def main():
    n, processes = int(sys.argv[1]), int(sys.argv[2])
    ec2 = boto3.client("ec2")
    group = ec2.create_security_group(GroupName="latency", Description="latency")["GroupId"]
    for _ in range(5):  # connection and credential set-up are not part of a call
        ec2.describe_security_groups(GroupIds=[group])

    def authorize(port):
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}

    out = {}
    out["boto3 DescribeSecurityGroups"] = timed(
        lambda i: ec2.describe_security_groups(GroupIds=[group]), n)
    out["boto3 AuthorizeSecurityGroupIngress"] = timed(
        lambda i: ec2.authorize_security_group_ingress(
            GroupId=group, IpPermissions=[authorize(1000 + i)]), n)

    driver = create_clidriver()

    def cli(args):
        with contextlib.redirect_stdout(io.StringIO()):
            status = driver.main(args)
        assert status == 0, (args, status)

    cli(["ec2", "describe-security-groups", "--group-ids", group])
    out["aws CLI in-process DescribeSecurityGroups"] = timed(
        lambda i: cli(["ec2", "describe-security-groups", "--group-ids", group]), n)
    out["aws CLI in-process AuthorizeSecurityGroupIngress"] = timed(
        lambda i: cli(["ec2", "authorize-security-group-ingress", "--group-id", group,
                       "--protocol", "tcp", "--port", str(20000 + i), "--cidr", "10.0.0.0/8"]), n)

    def process(args):
        subprocess.run(["aws"] + args, check=True, stdout=subprocess.DEVNULL)

    out["aws CLI process DescribeSecurityGroups"] = timed(
        lambda i: process(["ec2", "describe-security-groups", "--group-ids", group]), processes)
    out["aws CLI process AuthorizeSecurityGroupIngress"] = timed(
        lambda i: process(["ec2", "authorize-security-group-ingress", "--group-id", group,
                           "--protocol", "tcp", "--port", str(40000 + i),
                           "--cidr", "10.0.0.0/8"]), processes)
    print(json.dumps(out))


main()

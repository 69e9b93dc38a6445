//! The clients themselves: the harness, STS, errors and dry runs as the AWS CLI prints them,
//! authentication, regions and account attributes, generated credentials.

use super::*;

#[test]
fn harness_runs_the_pinned_clients_inside_the_namespace_with_only_its_own_env() {
    let ns = Netns::new("fwa");
    let aws = Aws::new(&ns, aws::free_port());
    let version = aws.run("aws", &["--version"], &[]);
    assert!(version.success(), "{version}");
    // awscli v1 prints its version on stdout or stderr depending on the release.
    let shown = format!("{}{}", version.stdout, version.stderr);
    assert!(shown.starts_with("aws-cli/1.46.3 "), "{shown}");
    let boto3 = aws.run(
        "python",
        &[
            "-c",
            "import boto3, botocore; print(boto3.__version__, botocore.__version__)",
        ],
        &[],
    );
    assert_eq!(boto3.stdout.trim(), "1.44.8 1.44.8", "{boto3}");
    let env = aws.run(
        "python",
        &[
            "-c",
            "import os; print(' '.join(sorted(k for k in os.environ if k.startswith('AWS_'))))",
        ],
        &[],
    );
    assert_eq!(
        env.stdout.trim(),
        "AWS_CONFIG_FILE AWS_EC2_METADATA_DISABLED AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE",
        "{env}"
    );
    // Inside the test's namespace: only its loopback.
    let links = aws.run("ip", &["-o", "link"], &[]);
    assert_eq!(links.stdout.lines().count(), 1, "{links}");
    // The profile resolves to our endpoint and region.
    let endpoint = aws.cli(&["configure", "get", "endpoint_url"]);
    assert_eq!(endpoint.stdout.trim(), aws.endpoint_url(), "{endpoint}");
    let region = aws.cli(&["configure", "get", "region"]);
    assert_eq!(region.stdout.trim(), REGION, "{region}");
    // Nothing listens yet: the CLI reports it could not connect, nothing is sent elsewhere.
    let refused = aws.cli(&[
        "--cli-connect-timeout",
        "1",
        "ec2",
        "describe-security-groups",
    ]);
    assert!(!refused.success(), "{refused}");
    assert!(
        refused
            .stderr
            .contains("Could not connect to the endpoint URL")
            && refused.stderr.contains(&aws.endpoint_url()),
        "{refused}"
    );
}

#[test]
fn sts_get_caller_identity_and_an_explicit_endpoint_url() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let me = aws.json(&["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], ACCOUNT_ID, "{me}");
    assert!(
        me["Arn"]
            .as_str()
            .is_some_and(|arn| arn.starts_with("arn:aws:") && arn.contains(ACCOUNT_ID)),
        "{me}"
    );
    assert!(me["UserId"].as_str().is_some_and(|u| !u.is_empty()), "{me}");

    // --endpoint-url on the command line, with the profile's endpoint switched off.
    let url = aws.endpoint_url();
    let out = aws.run(
        "aws",
        &[
            "--endpoint-url",
            &url,
            "--region",
            REGION,
            "--output",
            "json",
            "ec2",
            "describe-security-groups",
            "--group-names",
            "default",
        ],
        &[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")],
    );
    assert!(out.success(), "{out}");
    assert_eq!(out.json()["SecurityGroups"][0]["GroupName"], "default");
}

#[test]
fn errors_print_like_the_aws_cli_and_dry_runs_change_nothing() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let vpc = default_vpc(&aws);
    create_group(&aws, "web");
    let dup = aws.fails(
        "InvalidGroup.Duplicate",
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "again",
        ],
    );
    assert_eq!(dup.status, CLI_ERROR_STATUS, "{dup}");
    assert_eq!(
        dup.stderr.trim(),
        format!(
            "An error occurred (InvalidGroup.Duplicate) when calling the CreateSecurityGroup \
             operation: The security group 'web' already exists for VPC '{vpc}'"
        )
    );
    assert!(dup.stdout.is_empty(), "{dup}");

    let missing = aws.fails(
        "InvalidGroup.NotFound",
        &[
            "ec2",
            "describe-security-groups",
            "--group-ids",
            "sg-0123456789abcdef0",
        ],
    );
    assert_eq!(
        missing.stderr.trim(),
        "An error occurred (InvalidGroup.NotFound) when calling the DescribeSecurityGroups \
         operation: The security group 'sg-0123456789abcdef0' does not exist"
    );

    // Dry runs: the would-be success as an error, and nothing created or changed.
    let dry = aws.fails(
        "DryRunOperation",
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "dry",
            "--description",
            "dry",
            "--dry-run",
        ],
    );
    assert_eq!(dry.status, CLI_ERROR_STATUS);
    assert_eq!(
        dry.stderr.trim(),
        "An error occurred (DryRunOperation) when calling the CreateSecurityGroup operation: \
         Request would have succeeded, but DryRun flag is set."
    );
    let none = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=dry",
    ]);
    assert_eq!(none["SecurityGroups"], json!([]), "{none}");
    let web = aws.text(&[
        "ec2",
        "describe-security-groups",
        "--group-names",
        "web",
        "--query",
        "SecurityGroups[0].GroupId",
        "--output",
        "text",
    ]);
    let web = web.trim();
    aws.fails(
        "DryRunOperation",
        &[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            web,
            "--protocol",
            "tcp",
            "--port",
            "80",
            "--cidr",
            "10.0.0.0/8",
            "--dry-run",
        ],
    );
    assert!(ingress_cidrs(&aws, web).is_empty());
    // A dry run that would not succeed reports the real error.
    aws.fails(
        "InvalidGroup.NotFound",
        &[
            "ec2",
            "delete-security-group",
            "--group-id",
            "sg-0123456789abcdef0",
            "--dry-run",
        ],
    );
}

#[test]
fn unsigned_and_badly_signed_requests_are_refused() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let create = [
        "ec2",
        "create-security-group",
        "--group-name",
        "intruder",
        "--description",
        "x",
    ];

    let unsigned = aws.cli(&[&["--no-sign-request"], &create[..]].concat());
    assert_eq!(unsigned.status, CLI_ERROR_STATUS, "{unsigned}");
    assert!(
        matches!(
            unsigned.code(),
            "AuthFailure" | "MissingAuthenticationToken"
        ),
        "{unsigned}"
    );
    let wrong = aws.cli_as(WRONG_SECRET_PROFILE, &create);
    assert_eq!(wrong.status, CLI_ERROR_STATUS, "{wrong}");
    assert!(
        matches!(wrong.code(), "AuthFailure" | "SignatureDoesNotMatch"),
        "{wrong}"
    );
    let unknown = aws.cli_as(UNKNOWN_KEY_PROFILE, &create);
    assert_eq!(unknown.status, CLI_ERROR_STATUS, "{unknown}");
    assert!(
        matches!(unknown.code(), "AuthFailure" | "InvalidClientTokenId"),
        "{unknown}"
    );
    let sts = aws.cli_as(WRONG_SECRET_PROFILE, &["sts", "get-caller-identity"]);
    assert!(
        matches!(sts.code(), "SignatureDoesNotMatch" | "AuthFailure"),
        "{sts}"
    );

    let none = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=intruder",
    ]);
    assert_eq!(none["SecurityGroups"], json!([]), "nothing created: {none}");
}

#[test]
fn regions_availability_zones_and_account_attributes_answer() {
    let ns = Netns::new("fwa");
    let (_agent, aws) = start_agent(&ns);
    let regions = aws.json(&["ec2", "describe-regions"]);
    let names: Vec<&str> = regions["Regions"]
        .as_array()
        .expect("Regions")
        .iter()
        .filter_map(|r| r["RegionName"].as_str())
        .collect();
    assert!(names.contains(&REGION), "{regions}");
    let zones = aws.json(&["ec2", "describe-availability-zones"]);
    let zones = zones["AvailabilityZones"]
        .as_array()
        .expect("AvailabilityZones")
        .clone();
    assert!(!zones.is_empty());
    for zone in &zones {
        assert_eq!(zone["RegionName"], REGION, "{zone}");
        assert_eq!(zone["State"], "available", "{zone}");
        assert!(
            zone["ZoneName"]
                .as_str()
                .is_some_and(|z| z.starts_with(REGION)),
            "{zone}"
        );
    }

    let vpc = default_vpc(&aws);
    let attributes = aws.json(&["ec2", "describe-account-attributes"]);
    let value = |name: &str| -> Vec<String> {
        attributes["AccountAttributes"]
            .as_array()
            .expect("AccountAttributes")
            .iter()
            .find(|a| a["AttributeName"] == name)
            .unwrap_or_else(|| panic!("no {name} in {attributes}"))["AttributeValues"]
            .as_array()
            .expect("AttributeValues")
            .iter()
            .filter_map(|v| v["AttributeValue"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(value("supported-platforms"), ["VPC"]);
    assert_eq!(value("default-vpc"), [vpc]);
}

#[test]
fn generated_credentials_are_private_and_accepted() {
    use std::os::unix::fs::PermissionsExt as _;
    let ns = Netns::new("fwa");
    let port = aws::free_port();
    let listen = format!("127.0.0.1:{port}");
    let agent = Agent::start_with(&ns, &["--ec2-listen", &listen]);
    let file = agent.dir.join("state/credentials");
    let probe = Aws::new(&ns, port);
    assert!(
        probe.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    let mode = std::fs::metadata(&file)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), agent.log()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    let id = aws::read_credentials(&file);
    let aws = Aws::with_identity(&ns, port, id.clone());
    let me = aws.json(&["sts", "get-caller-identity"]);
    if let Some(account) = &id.account_id {
        assert_eq!(me["Account"], account.as_str(), "{me}");
    }
    // The kit's fixed test pair is not accepted by this agent.
    let other = probe.cli(&["ec2", "describe-security-groups"]);
    assert!(
        matches!(other.code(), "AuthFailure" | "InvalidClientTokenId"),
        "{other}"
    );
}

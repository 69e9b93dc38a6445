//! Terraform's AWS provider (5.100.0, from the machine's local mirror) drives the agent
//! unchanged: `tests/terraform/groups.tf` (groups with every inline rule kind, both standalone
//! rule styles, the default group, a prefix list, a subnet, a network interface attached to a
//! running instance with a second group attached on top, the data sources reading them) applies,
//! re-plans with no change, changes in place, re-plans clean again and destroys leaving nothing;
//! the interface's rules are checked with traffic at each stage.

use std::time::Duration;

use firewall_testkit::{
    agent::Agent,
    aws::{self, Aws},
    local::{self, LocalInstance},
    netns::Netns,
    terraform::Terraform,
    traffic::{EchoServer, eventually, tcp_round_trip},
};
use serde_json::Value;

const SHORT: Duration = Duration::from_millis(700);
/// A region of AWS's (the provider checks the name), whose default VPC the agent makes on first use.
const REGION: &str = "us-east-1";

/// An agent with its EC2 endpoint (and `serve` options `extra`), the key in the default account.
fn start(ns: &Netns, extra: &[&str]) -> (Agent, Aws) {
    let identity = aws::Identity {
        account_id: None,
        ..aws::Identity::test()
    };
    let aws = Aws::with_identity(ns, aws::free_port(), identity);
    let options = aws.agent_options();
    let mut options: Vec<&str> = options.iter().map(String::as_str).collect();
    options.extend_from_slice(extra);
    let agent = Agent::start_with(ns, &options);
    assert!(
        aws.wait_listening(Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    (agent, aws)
}

/// Whether `GET /` to `ip`:80 from inside `ns` answers 200.
fn http_ok(ns: &Netns, ip: std::net::IpAddr) -> bool {
    ns.run(move || {
        use std::io::{Read as _, Write as _};
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&(ip, 80).into(), SHORT) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        answer.starts_with(b"HTTP/1.0 200")
    })
}

fn in_region<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--region", REGION]);
    all
}

/// The names of the region's groups, and the counts of its subnets, interfaces and prefix lists.
fn inventory(agent: &Agent) -> (Vec<String>, usize, usize, usize) {
    let count = |args: &[&str], list: &str| {
        agent.cli(&in_region(args))[list]
            .as_array()
            .map_or(0, Vec::len)
    };
    let groups = agent.cli(&in_region(&["describe-security-groups"]))["SecurityGroups"]
        .as_array()
        .expect("SecurityGroups")
        .iter()
        .map(|g| g["GroupName"].as_str().expect("GroupName").to_string())
        .collect();
    (
        groups,
        count(&["describe-subnets"], "Subnets"),
        count(&["describe-network-interfaces"], "NetworkInterfaces"),
        count(&["describe-managed-prefix-lists"], "PrefixLists"),
    )
}

fn text(outputs: &Value, name: &str) -> String {
    outputs[name]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("output {name} in {outputs}"))
        .to_string()
}

#[test]
fn groups_rules_prefix_lists_subnets_and_interfaces_apply_replan_clean_change_and_destroy() {
    let ns = Netns::new("fwtf");
    let (agent, aws) = start(&ns, &[]);
    let before = inventory(&agent);
    let server: LocalInstance = local::launch(&agent, &in_region(&[])).remove(0);
    let probe: LocalInstance = local::launch(&agent, &in_region(&[])).remove(0);
    let tf = Terraform::new(&ns, aws.port, REGION);
    tf.configuration("groups.tf");
    tf.init();
    let probe_cidr = format!("{}/32", probe.ip);
    let stage = |n: &'static str| {
        [
            ("stage", n),
            ("server", server.id.as_str()),
            ("probe_cidr", probe_cidr.as_str()),
        ]
    };

    tf.apply(&stage("1"));
    let plan = tf.plan(&stage("1"));
    assert_eq!(
        plan.status, 0,
        "a re-plan after apply changes nothing: {plan}"
    );
    let outputs = tf.outputs();
    let eni = text(&outputs, "eni_id");
    let eni_ip = text(&outputs, "eni_ip");
    assert_eq!(text(&outputs, "subnet_cidr"), "172.31.16.0/20");
    assert_eq!(text(&outputs, "web_name"), "web");
    assert_eq!(
        outputs["eni_groups"]["value"].as_array().map(Vec::len),
        Some(2),
        "{outputs}"
    );
    assert_eq!(outputs["db_members"]["value"], serde_json::json!([eni]));
    let attached = agent.cli(&in_region(&[
        "describe-network-interfaces",
        "--network-interface-ids",
        &eni,
    ]));
    let attachment = &attached["NetworkInterfaces"][0]["Attachment"];
    assert_eq!(attachment["InstanceId"], server.id.as_str(), "{attached}");
    assert_eq!(attachment["DeviceIndex"], 1);

    let ip: std::net::IpAddr = eni_ip.parse().expect("an address");
    let _db = EchoServer::tcp(&server.ns, ip, 5432);
    let _moved = EchoServer::tcp(&server.ns, ip, 5433);
    assert!(
        tcp_round_trip(&probe.ns, ip, 5432, SHORT),
        "the interface's db group admits the probe on 5432"
    );
    assert!(!tcp_round_trip(&probe.ns, ip, 5433, SHORT), "not on 5433");

    let change = tf.plan(&stage("2"));
    assert_eq!(change.status, 2, "stage 2 changes something: {change}");
    assert!(
        change.stdout.contains("0 to add, ") && change.stdout.contains(" 0 to destroy"),
        "every change is in place: {change}"
    );
    tf.apply(&stage("2"));
    let plan = tf.plan(&stage("2"));
    assert_eq!(
        plan.status, 0,
        "a re-plan after the change is clean: {plan}"
    );
    assert_eq!(
        tf.outputs()["eni_id"]["value"],
        eni.as_str(),
        "the same interface"
    );
    assert!(
        tcp_round_trip(&probe.ns, ip, 5433, SHORT),
        "the moved rule admits 5433"
    );
    assert!(
        !tcp_round_trip(&probe.ns, ip, 5432, SHORT),
        "and no longer 5432"
    );
    let web = agent.cli(&in_region(&[
        "describe-security-groups",
        "--filters",
        "Name=group-name,Values=web",
    ]));
    let tags = &web["SecurityGroups"][0]["Tags"];
    assert!(
        tags.to_string().contains("\"tier\""),
        "tags changed in place: {web}"
    );

    tf.destroy(&stage("2"));
    assert_eq!(
        inventory(&agent),
        (before.0, before.1, before.2 + 2, before.3),
        "nothing of the configuration is left (the two instances' own interfaces remain)"
    );
    assert!(
        !tcp_round_trip(&probe.ns, ip, 5433, SHORT),
        "the interface is gone"
    );
    agent.cli(&in_region(&[
        "terminate-instances",
        "--instance-ids",
        &server.id,
        &probe.id,
    ]));
}

#[test]
fn an_instance_launches_changes_its_groups_in_place_under_traffic_and_terminates() {
    let ns = Netns::new("fwti");
    let (agent, aws) = start(&ns, &["--run-user-data"]);
    let probe: LocalInstance = local::launch(&agent, &in_region(&[])).remove(0);
    let tf = Terraform::new(&ns, aws.port, REGION);
    tf.configuration("instance.tf");
    tf.init();
    let probe_cidr = format!("{}/32", probe.ip);
    let stage = |n: &'static str| [("stage", n), ("probe_cidr", probe_cidr.as_str())];

    tf.apply(&stage("1"));
    let plan = tf.plan(&stage("1"));
    assert_eq!(
        plan.status, 0,
        "a re-plan after apply changes nothing: {plan}"
    );
    let outputs = tf.outputs();
    let id = text(&outputs, "instance_id");
    // The instance is a local one: a namespace named after it (removed with the test).
    let instance = Netns::adopt(&id);
    let ip: std::net::IpAddr = text(&outputs, "private_ip").parse().expect("an address");
    let described = agent.cli(&in_region(&["describe-instances", "--instance-ids", &id]));
    let launched = &described["Reservations"][0]["Instances"][0];
    assert_eq!(launched["InstanceType"], "t3.micro", "{described}");
    assert_eq!(launched["ImageId"], "ami-0123456789abcdef0");
    assert_eq!(
        launched["NetworkInterfaces"][0]["NetworkInterfaceId"],
        text(&outputs, "primary_eni").as_str()
    );
    let user_data = aws.json(&in_region(&[
        "ec2",
        "describe-instance-attribute",
        "--instance-id",
        &id,
        "--attribute",
        "userData",
    ]));
    assert_eq!(
        user_data["UserData"]["Value"], "cHl0aG9uMyAtbSBodHRwLnNlcnZlciA4MA==",
        "the user data, base64 as the provider sent it"
    );

    // The user data serves HTTP on 80 inside the instance; its group lets the probe in.
    assert!(
        eventually(Duration::from_secs(10), || http_ok(&probe.ns, ip)).is_some(),
        "the user data's web server answers the probe through the web group"
    );
    let console = aws.json(&in_region(&[
        "ec2",
        "get-console-output",
        "--instance-id",
        &id,
    ]));
    assert!(
        console["Output"]
            .as_str()
            .is_some_and(|o| o.contains("\"GET / HTTP/1.0\" 200")),
        "the server's log is the console output: {console}"
    );
    let _ssh = EchoServer::tcp(&instance, ip, 22);
    assert!(!tcp_round_trip(&probe.ns, ip, 22, SHORT), "not on 22");

    tf.apply(&stage("2"));
    let plan = tf.plan(&stage("2"));
    assert_eq!(
        plan.status, 0,
        "a re-plan after the change is clean: {plan}"
    );
    assert_eq!(
        tf.outputs()["instance_id"]["value"],
        id.as_str(),
        "changed in place, not replaced"
    );
    assert!(
        tcp_round_trip(&probe.ns, ip, 22, SHORT),
        "ssh admits the probe on 22"
    );
    assert!(
        !http_ok(&probe.ns, ip),
        "and the web server is out of reach"
    );

    tf.destroy(&stage("2"));
    let described = agent.cli(&in_region(&["describe-instances", "--instance-ids", &id]));
    assert_eq!(
        described["Reservations"][0]["Instances"][0]["State"]["Name"], "terminated",
        "{described}"
    );
    assert!(!instance.exists(), "the instance's namespace is gone");
    let left = std::process::Command::new("pgrep")
        .args(["-f", "python3 -m http.server 80"])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "terminating ended the user data's server: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let groups = inventory(&agent).0;
    assert_eq!(groups, ["default"], "the groups are gone");
    agent.cli(&in_region(&[
        "terminate-instances",
        "--instance-ids",
        &probe.id,
    ]));
}

//! Instances in the browser (launch with a new group, change security groups, stop, start,
//! terminate), Global View across regions, and the data plane page.

use std::time::Duration;

use serde_json::Value;

use super::{Console, group_named, open, screenshot};
use firewall_testkit::{
    local,
    netns::Netns,
    traffic::{EchoServer, tcp_round_trip},
};

fn instance(console: &Console, id: &str) -> Value {
    console.cli(&["describe-instances", "--instance-ids", id])["Reservations"][0]["Instances"][0]
        .clone()
}

fn group_ids(instance: &Value) -> Vec<String> {
    let mut ids: Vec<String> = instance["SecurityGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["GroupId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn launch_change_groups_stop_start_and_terminate_an_instance() {
    let console = Console::start("fwci");
    let browser = console.signed_in_browser();
    open(&browser, &console, "#/instances", "#launch-instance");
    browser.click("#launch-instance");
    browser.type_into("#launch-name", "from-the-console");
    browser.select("#launch-group-mode", "create");
    browser.type_into("#launch-new-group-name", "launch-wizard-1");
    browser.type_into("#launch-ssh-from", "10.1.0.0/16");
    browser.click("#launch-submit");
    let flash = browser.wait_for_text("#flash", "Successfully initiated launch");
    let id = flash.split_whitespace().last().unwrap().to_string();
    let launched = instance(&console, &id);
    // The agent built the instance's namespace: ours to delete, also on panic.
    let _ns = Netns::adopt(
        launched["NetworkInterfaces"][0]["Namespace"]
            .as_str()
            .expect("a local instance"),
    );
    assert_eq!(launched["State"]["Name"], "running");
    let wizard = group_named(&console, "launch-wizard-1").expect("the launch created its group");
    assert_eq!(
        group_ids(&launched),
        vec![wizard["GroupId"].as_str().unwrap().to_string()]
    );
    assert_eq!(wizard["IpPermissions"][0]["FromPort"], 22);
    assert_eq!(
        wizard["IpPermissions"][0]["IpRanges"][0]["CidrIp"],
        "10.1.0.0/16"
    );
    browser.wait_for_text(
        &format!("tr[data-instance-id='{id}'] .instance-state"),
        "running",
    );
    screenshot(&browser, "instances");

    let default = group_named(&console, "default").unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    browser.click(&format!("tr[data-instance-id='{id}'] .instance-select"));
    browser.click("#instance-change-groups");
    browser.select("#change-groups-pick", &default);
    browser.click("#change-groups-add");
    browser.click("#change-groups-save");
    browser.wait_for_text("#flash", "changed");
    let mut wanted = vec![
        default.clone(),
        wizard["GroupId"].as_str().unwrap().to_string(),
    ];
    wanted.sort();
    assert_eq!(group_ids(&instance(&console, &id)), wanted);

    for (button, state) in [
        ("#instance-stop", "stopped"),
        ("#instance-start", "running"),
        ("#instance-terminate", "terminated"),
    ] {
        browser.click(&format!("tr[data-instance-id='{id}'] .instance-select"));
        browser.click(button);
        browser.wait_for_text(
            &format!("tr[data-instance-id='{id}'] .instance-state"),
            state,
        );
        assert_eq!(instance(&console, &id)["State"]["Name"], state, "{button}");
    }
}

#[test]
fn global_view_counts_every_region_and_the_data_plane_page_shows_hits() {
    let console = Console::start("fwcv");
    console.cli(&[
        "--region",
        "us-west-2",
        "create-security-group",
        "--group-name",
        "west",
        "--description",
        "west",
    ]);
    let web = console.agent.create_group("web");
    console
        .agent
        .authorize_ingress(&web, "tcp", "80", "172.31.0.0/16");
    let mut launched = local::launch(
        &console.agent,
        &["--count", "2", "--security-group-ids", &web],
    );
    let b = launched.pop().expect("two");
    let a = launched.pop().expect("two");
    let _echo = EchoServer::tcp(&b.ns, b.ip, 80);
    assert!(tcp_round_trip(&a.ns, b.ip, 80, Duration::from_secs(2)));

    let browser = console.signed_in_browser();
    open(&browser, &console, "#/global", "#global-counts");
    for region in ["local", "us-west-2"] {
        let groups =
            console.cli(&["--region", region, "describe-security-groups"])["SecurityGroups"]
                .as_array()
                .unwrap()
                .len();
        let shown = browser.text(&format!(
            "#global-counts tr[data-region='{region}'] .global-group-count"
        ));
        assert_eq!(shown, groups.to_string(), "{region}");
        let instances = console.cli(&["--region", region, "describe-instances"])["Reservations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Instances"].as_array().unwrap().len())
            .sum::<usize>();
        let shown = browser.text(&format!(
            "#global-counts tr[data-region='{region}'] .global-instance-count"
        ));
        assert_eq!(shown, instances.to_string(), "{region}");
    }
    assert!(browser.text("#global-groups").contains("west"));
    screenshot(&browser, "global-view");

    open(&browser, &console, "#/dataplane", "#rule-hits");
    let stats = console.cli(&["get-dataplane-statistics"]);
    let (rule, hits) = stats["RuleHits"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .expect("a rule was hit");
    let shown: u64 = browser
        .wait_for_text(&format!("#rule-hits tr[data-key='{rule}'] .count"), "")
        .parse()
        .unwrap();
    assert!(
        shown >= hits.as_u64().unwrap(),
        "the page shows the rule's hits"
    );
    assert!(browser.text("#passes").contains("rule"), "passes by reason");
    browser.wait_until("document.querySelectorAll('#dataplane-chart polyline').length === 2");
    screenshot(&browser, "data-plane");
}

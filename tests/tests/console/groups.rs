//! The security-group procedures in the browser: list (search, VPC and tag filters,
//! pagination), create (checks as you type; only the all-outbound rule), detail tabs, edit
//! inbound and outbound rules with presets, My IP, the Anywhere warning, Preview changes and an
//! atomic save (checked with real traffic between two local instances), rule and group tags,
//! copy, delete.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Console, group_named, open, rules_of, screenshot};
use firewall_testkit::{
    browser::Browser,
    local,
    traffic::{EchoServer, echoes, eventually, tcp_connect, tcp_round_trip},
};

const SHORT: Duration = Duration::from_millis(700);

fn inbound(rules: &[Value]) -> Vec<&Value> {
    rules.iter().filter(|r| r["IsEgress"] == false).collect()
}

/// Adds a row to the open rule editor and fills it in: `preset`, `ports` (when the preset
/// leaves them open), `peer` and `description`.
fn add_rule(browser: &Browser, preset: &str, ports: Option<&str>, peer: &str, description: &str) {
    browser.click(".rule-add");
    let last = ".rule-editor tbody tr:last-child";
    browser.select(&format!("{last} .rule-type"), preset);
    if let Some(ports) = ports {
        browser.type_into(&format!("{last} .rule-ports"), ports);
    }
    browser.type_into(&format!("{last} .rule-peer"), peer);
    browser.type_into(&format!("{last} .rule-description"), description);
}

#[test]
fn create_a_group_with_checks_as_you_type_then_find_it_in_the_list() {
    let console = Console::start("fwcg");
    let taken = console.agent.create_group("taken");
    for n in 0..55 {
        console.agent.create_group(&format!("bulk-{n:02}"));
    }
    let browser = console.signed_in_browser();
    open(&browser, &console, "#/groups/create", "#group-name");
    browser.type_into("#group-name", "sg-web");
    assert!(
        browser
            .wait_for_text("#group-name-error", "cannot start with sg-")
            .contains("sg-")
    );
    browser.type_into("#group-name", "taken");
    assert!(
        browser
            .wait_for_text("#group-name-error", "already exists")
            .contains("taken")
    );
    browser.type_into("#group-name", "console-made");
    browser.type_into("#group-description", "bad~");
    assert!(
        browser
            .wait_for_text("#group-description-error", "Only")
            .contains("Only")
    );
    browser.type_into("#group-description", "Made in the console");
    browser.wait_until("document.querySelector('#group-name-error').textContent === ''");
    browser.click(".tag-add");
    browser.type_into(".tag-key", "team");
    browser.type_into(".tag-value", "blue");
    screenshot(&browser, "create-security-group");
    browser.click("#create-submit");
    browser.wait_for_text("#flash", "was created successfully");

    let group = group_named(&console, "console-made").expect("created");
    assert_eq!(group["Description"], "Made in the console");
    assert_eq!(group["Tags"], json!([{"Key": "team", "Value": "blue"}]));
    // Only the all-outbound rule, for each family of the (dual-stack) default VPC.
    let rules = rules_of(&console, group["GroupId"].as_str().unwrap());
    let mut outbound: Vec<(Value, Value, Value)> = rules
        .iter()
        .map(|r| {
            (
                r["IsEgress"].clone(),
                r["IpProtocol"].clone(),
                if r["CidrIpv4"].is_null() {
                    r["CidrIpv6"].clone()
                } else {
                    r["CidrIpv4"].clone()
                },
            )
        })
        .collect();
    outbound.sort_by_key(|r| r.2.to_string());
    assert_eq!(
        outbound,
        vec![
            (json!(true), json!("-1"), json!("0.0.0.0/0")),
            (json!(true), json!("-1"), json!("::/0"))
        ],
        "{rules:?}"
    );
    assert_ne!(group["GroupId"], taken.as_str());

    open(&browser, &console, "#/groups", "#group-rows tr");
    browser.type_into("#group-search", "console");
    browser.wait_until("document.querySelectorAll('#group-rows tr').length === 1");
    assert_eq!(browser.text("#group-rows tr .group-name"), "console-made");
    assert!(
        browser
            .text("#group-rows tr .outbound-count")
            .starts_with("2 "),
        "IPv4 and IPv6 all-outbound"
    );
    browser.type_into("#group-search", "");
    browser.type_into("#group-tag-filter", "team=blue\n");
    browser.wait_until("document.querySelectorAll('#group-rows tr').length === 1");
    browser.type_into("#group-tag-filter", "\n");
    browser.type_into("#group-search", "bulk");
    browser.wait_until("document.querySelectorAll('#group-rows tr').length === 50");
    screenshot(&browser, "security-groups");
    browser.click("#group-next");
    browser.wait_until("document.querySelectorAll('#group-rows tr').length === 5");
    assert_eq!(browser.text("#group-page"), "Page 2");
    let default_vpc = console.cli(&["describe-vpcs"])["Vpcs"][0]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    browser.select("#group-vpc-filter", &default_vpc);
    browser.wait_until("document.querySelectorAll('#group-rows tr').length === 50");
}

#[test]
fn edit_inbound_and_outbound_rules_preview_and_save_then_traffic_follows() {
    let console = Console::start("fwce");
    let web = console.agent.create_group("web");
    let mut launched = local::launch(
        &console.agent,
        &["--count", "2", "--security-group-ids", &web],
    );
    let b = launched.pop().expect("two");
    let a = launched.pop().expect("two");
    let _b80 = EchoServer::tcp(&b.ns, b.ip, 80);
    let _b81 = EchoServer::tcp(&b.ns, b.ip, 81);
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 80, SHORT),
        "no inbound rule yet"
    );

    let browser = console.signed_in_browser();
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-inbound"),
        ".rule-add",
    );
    add_rule(&browser, "SSH", None, "0.0.0.0/0", "");
    assert!(
        browser
            .wait_for_text(".anywhere-warning", "0.0.0.0/0")
            .contains("known IP addresses")
    );
    browser.select(".rule-editor tbody tr:last-child .rule-peer-kind", "my-ip");
    let mine = browser.script(
        "return document.querySelector('.rule-editor tbody tr:last-child .rule-peer').value;",
        json!([]),
    );
    assert_eq!(
        mine, "127.0.0.1/32",
        "My IP: the address the browser connects from"
    );
    browser.click(".rule-editor tbody tr:last-child .rule-delete");
    add_rule(&browser, "HTTP", None, "172.31.0.0/16", "web from the VPC");
    browser.click("#preview-changes");
    let added = browser.wait_for_text("#preview-added", "TCP 80 from 172.31.0.0/16");
    assert!(added.contains("web from the VPC"), "{added}");
    assert_eq!(browser.text("#preview-removed"), "");
    assert!(
        rules_of(&console, &web)
            .iter()
            .all(|r| r["IsEgress"] == true),
        "a preview changes nothing"
    );
    screenshot(&browser, "edit-inbound-rules");
    browser.click("#save-rules");
    browser.wait_for_text("#flash", "successfully modified");

    let rules = rules_of(&console, &web);
    let http = inbound(&rules);
    assert_eq!(http.len(), 1, "{rules:?}");
    assert_eq!(
        (http[0]["IpProtocol"].as_str(), http[0]["FromPort"].as_i64()),
        (Some("tcp"), Some(80))
    );
    assert_eq!(http[0]["Description"], "web from the VPC");
    let first_id = http[0]["SecurityGroupRuleId"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(5), || tcp_round_trip(
            &a.ns, b.ip, 80, SHORT
        ))
        .is_some(),
        "the saved rule lets 80 in"
    );
    assert!(!tcp_round_trip(&a.ns, b.ip, 81, SHORT));

    // A description edit changes the rule in place: same sgr- ID.
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-inbound"),
        ".rule-description",
    );
    browser.type_into(".rule-editor tbody tr .rule-description", "web, renamed");
    browser.click("#preview-changes");
    assert!(
        browser
            .wait_for_text("#preview-described", &first_id)
            .contains("web, renamed")
    );
    assert_eq!(browser.text("#preview-added"), "");
    browser.click("#save-rules");
    browser.wait_for_text("#flash", "successfully modified");
    let rules = rules_of(&console, &web);
    assert_eq!(inbound(&rules)[0]["SecurityGroupRuleId"], first_id.as_str());
    assert_eq!(inbound(&rules)[0]["Description"], "web, renamed");

    // A port change removes the rule and adds a new one, atomically; the preview says so, and
    // names the tracked flow the new rules would no longer allow.
    let mut held = tcp_connect(&a.ns, b.ip, 80, SHORT).expect("a flow on 80");
    assert!(echoes(&mut held, "before\n"));
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-inbound"),
        ".rule-type",
    );
    browser.select(".rule-editor tbody tr .rule-type", "Custom TCP");
    browser.type_into(".rule-editor tbody tr .rule-ports", "81");
    browser.click("#preview-changes");
    assert!(
        browser
            .wait_for_text("#preview-removed", &first_id)
            .contains("TCP 80")
    );
    assert!(
        browser
            .text("#preview-added")
            .contains("TCP 81 from 172.31.0.0/16")
    );
    assert!(
        browser
            .wait_for_text("#preview-flows", "80")
            .contains(&b.ip.to_string())
    );
    browser.click("#flush-flows");
    browser.click("#save-rules");
    browser.wait_for_text("#flash", "successfully modified");
    let rules = rules_of(&console, &web);
    let now = inbound(&rules);
    assert_eq!(now.len(), 1);
    assert_ne!(
        now[0]["SecurityGroupRuleId"],
        first_id.as_str(),
        "a new rule"
    );
    assert_eq!(now[0]["FromPort"], 81);
    assert!(
        !echoes(&mut held, "after\n"),
        "the flow on 80 was cut with FlushFlows"
    );
    assert!(tcp_round_trip(&a.ns, b.ip, 81, SHORT), "81 is let in");
    assert!(!tcp_round_trip(&a.ns, b.ip, 80, SHORT), "80 is not");

    // A refused save changes nothing: a bad CIDR among good rows.
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-inbound"),
        ".rule-add",
    );
    add_rule(&browser, "HTTPS", None, "10.0.0.0/8", "");
    add_rule(&browser, "HTTP", None, "10.0.0.300/8", "");
    browser.click("#save-rules");
    browser.wait_for_text("#flash", "InvalidParameterValue");
    assert_eq!(
        inbound(&rules_of(&console, &web)).len(),
        1,
        "all or nothing"
    );

    // Edit outbound rules: without the all-outbound rules a's new connections to 81 are
    // refused on its way out; an outbound rule for 81 lets them through again.
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-outbound"),
        ".rule-delete",
    );
    browser.wait_until("document.querySelectorAll('.rule-editor tbody tr').length === 2");
    browser.click(".rule-editor tbody tr .rule-delete");
    browser.click(".rule-editor tbody tr .rule-delete");
    add_rule(&browser, "Custom TCP", Some("82"), "172.31.0.0/16", "");
    browser.click("#save-rules");
    browser.wait_for_text(
        "#flash",
        "Outbound security group rules successfully modified",
    );
    let outbound: Vec<Value> = rules_of(&console, &web)
        .into_iter()
        .filter(|r| r["IsEgress"] == true)
        .collect();
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    assert_eq!(outbound[0]["FromPort"], 82);
    assert!(
        !tcp_round_trip(&a.ns, b.ip, 81, SHORT),
        "a may no longer send to 81"
    );
    open(
        &browser,
        &console,
        &format!("#/groups/{web}/edit-outbound"),
        ".rule-add",
    );
    add_rule(&browser, "Custom TCP", Some("81"), "172.31.0.0/16", "");
    browser.click("#save-rules");
    browser.wait_for_text(
        "#flash",
        "Outbound security group rules successfully modified",
    );
    assert!(
        tcp_round_trip(&a.ns, b.ip, 81, SHORT),
        "an outbound rule for 81 lets a send again"
    );

    // Hits per rule and the rule's tags on the detail page.
    open(
        &browser,
        &console,
        &format!("#/groups/{web}"),
        "#tab-inbound",
    );
    browser.click("#tab-inbound");
    let rule_id = now[0]["SecurityGroupRuleId"].as_str().unwrap().to_string();
    let row = format!("tr[data-rule-id='{rule_id}']");
    let hits: u64 = browser
        .wait_for_text(&format!("{row} .rule-hits"), "")
        .parse()
        .expect("a count");
    assert!(hits >= 1, "the round trip on 81 hit the rule");
    browser.click(&format!("{row} .rule-select"));
    browser.click("#rule-manage-tags");
    browser.click("#manage-tags .tag-add");
    browser.type_into("#manage-tags .tag-key", "purpose");
    browser.type_into("#manage-tags .tag-value", "web");
    browser.click("#save-tags");
    browser.wait_for_text("#flash", "saved");
    let tagged = rules_of(&console, &web);
    assert_eq!(
        inbound(&tagged)[0]["Tags"],
        json!([{"Key": "purpose", "Value": "web"}])
    );
    browser.wait_for_text(&format!("{row} .rule-tags"), "purpose=web");
    screenshot(&browser, "group-detail");
}

#[test]
fn copy_tag_and_delete_groups_with_aws_refusals_in_words() {
    let console = Console::start("fwcd");
    let web = console.agent.create_group("web");
    console
        .agent
        .authorize_ingress(&web, "tcp", "443", "10.0.0.0/8");
    let _instance = local::launch(&console.agent, &["--security-group-ids", &web]);
    let browser = console.signed_in_browser();

    open(&browser, &console, &format!("#/groups/{web}"), "#tab-tags");
    browser.click("#tab-tags");
    browser.click("#group-manage-tags");
    browser.click("#manage-tags .tag-add");
    browser.type_into("#manage-tags .tag-key", "env");
    browser.type_into("#manage-tags .tag-value", "prod");
    browser.click("#save-tags");
    browser.wait_for_text("#group-tags", "prod");
    assert_eq!(
        group_named(&console, "web").unwrap()["Tags"],
        json!([{"Key": "env", "Value": "prod"}])
    );

    browser.click("#copy-group");
    browser.wait_until("document.querySelector('#group-name') && document.querySelector('#group-name').value === 'web-copy'");
    browser.wait_until(
        "document.querySelectorAll('#create-inbound .rule-editor tbody tr').length === 1",
    );
    browser.click("#create-submit");
    browser.wait_for_text("#flash", "was created successfully");
    let copy = group_named(&console, "web-copy").expect("copied");
    let copied = rules_of(&console, copy["GroupId"].as_str().unwrap());
    let ports: Vec<_> = inbound(&copied)
        .iter()
        .map(|r| (r["FromPort"].clone(), r["CidrIpv4"].clone()))
        .collect();
    assert_eq!(ports, vec![(json!(443), json!("10.0.0.0/8"))]);

    open(
        &browser,
        &console,
        &format!("#/groups/{web}"),
        "#delete-group",
    );
    browser.click("#delete-group");
    assert!(
        browser
            .wait_for_text("#flash", "DependencyViolation")
            .contains("attached to an instance")
    );
    assert!(group_named(&console, "web").is_some(), "still there");
    let default = group_named(&console, "default").expect("the default group");
    open(
        &browser,
        &console,
        &format!("#/groups/{}", default["GroupId"].as_str().unwrap()),
        "#delete-group",
    );
    browser.click("#delete-group");
    assert!(
        browser
            .wait_for_text("#flash", "default security group")
            .contains("cannot be deleted")
    );
    open(
        &browser,
        &console,
        &format!("#/groups/{}", copy["GroupId"].as_str().unwrap()),
        "#delete-group",
    );
    browser.click("#delete-group");
    browser.wait_for_text("#flash", "deleted");
    assert!(group_named(&console, "web-copy").is_none(), "deleted");
}

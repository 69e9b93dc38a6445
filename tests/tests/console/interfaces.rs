//! Subnets and network interfaces in the browser: the network interfaces list and an
//! interface's page (its groups changed, its description, detach, delete), an instance's page
//! with its interfaces, the subnets list, and the launch form's subnet; each result checked with
//! the AWS CLI.

use serde_json::{Value, json};

use super::{Console, group_named, open, screenshot};
use firewall_testkit::{
    browser::Browser,
    local::{self, LocalInstance},
    netns::Netns,
};

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {value}"))
}

/// An interface as `aws ec2 describe-network-interfaces` answers it.
fn interface(console: &Console, id: &str) -> Value {
    console.aws.json(&[
        "ec2",
        "describe-network-interfaces",
        "--network-interface-ids",
        id,
    ])["NetworkInterfaces"][0]
        .clone()
}

/// The IDs of a `Groups` list, sorted.
fn group_ids(groups: &Value) -> Vec<String> {
    let mut ids: Vec<String> = groups
        .as_array()
        .unwrap_or_else(|| panic!("groups: {groups}"))
        .iter()
        .map(|g| g["GroupId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

/// The default VPC's default subnet (172.31.0.0/20).
fn default_subnet(console: &Console) -> Value {
    let answer = console.aws.json(&[
        "ec2",
        "describe-subnets",
        "--filters",
        "Name=default-for-az,Values=true",
    ]);
    answer["Subnets"][0].clone()
}

/// `create-subnet` in `vpc` with `cidr` and a Name tag: the subnet.
fn create_subnet(console: &Console, vpc: &str, cidr: &str, name: &str) -> Value {
    let answer = console.aws.json(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        vpc,
        "--cidr-block",
        cidr,
        "--tag-specifications",
        &format!("ResourceType=subnet,Tags=[{{Key=Name,Value={name}}}]"),
    ]);
    answer["Subnet"].clone()
}

/// Whether the checkbox `css` is checked.
fn checked(browser: &Browser, css: &str) -> bool {
    browser.wait_until(&format!("document.querySelector({css:?})"));
    browser.script(
        "return document.querySelector(arguments[0]).checked;",
        json!([css]),
    ) == json!(true)
}

/// Whether the row `css` is hidden (filtered out).
fn hidden(browser: &Browser, css: &str) -> bool {
    browser.script(
        "return document.querySelector(arguments[0]).hidden;",
        json!([css]),
    ) == json!(true)
}

/// A local instance in the default subnet with the group `web`, and a second interface (the
/// group `db`, description `second`) attached at device index 1.
struct TwoInterfaces {
    server: LocalInstance,
    primary: String,
    second: String,
    second_ip: String,
    subnet: String,
    web: String,
    db: String,
}

fn instance_with_two_interfaces(console: &Console) -> TwoInterfaces {
    let [web, db] = console.agent.create_groups(["web", "db"]);
    let server = local::launch(&console.agent, &["--security-group-ids", &web]).remove(0);
    let subnet = text(&default_subnet(console), "/SubnetId").to_string();
    let created = console.aws.json(&[
        "ec2",
        "create-network-interface",
        "--subnet-id",
        &subnet,
        "--groups",
        &db,
        "--description",
        "second",
    ]);
    let second = text(&created, "/NetworkInterface/NetworkInterfaceId").to_string();
    let second_ip = text(&created, "/NetworkInterface/PrivateIpAddress").to_string();
    console.aws.json(&[
        "ec2",
        "attach-network-interface",
        "--network-interface-id",
        &second,
        "--instance-id",
        &server.id,
        "--device-index",
        "1",
    ]);
    let described = console
        .aws
        .json(&["ec2", "describe-instances", "--instance-ids", &server.id]);
    let primary = described["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Attachment"]["DeviceIndex"] == 0)
        .map(|n| n["NetworkInterfaceId"].as_str().unwrap().to_string())
        .expect("a primary interface");
    TwoInterfaces {
        server,
        primary,
        second,
        second_ip,
        subnet,
        web,
        db,
    }
}

#[test]
fn the_interface_page_changes_an_interfaces_groups_and_description_and_the_cli_sees_it() {
    let console = Console::start("fwcn");
    let two = instance_with_two_interfaces(&console);
    let browser = console.signed_in_browser();

    // The instance's page lists both interfaces, each linked to its own page.
    open(
        &browser,
        &console,
        &format!("#/instances/{}", two.server.id),
        "#instance-interfaces",
    );
    let primary_ip = two.server.ip.to_string();
    for (eni, index, ip, group) in [
        (&two.primary, "0", &primary_ip, &two.web),
        (&two.second, "1", &two.second_ip, &two.db),
    ] {
        let row = format!("#instance-interfaces tr[data-interface-id='{eni}']");
        assert_eq!(browser.text(&format!("{row} .interface-link")), *eni);
        assert_eq!(
            browser.text(&format!("{row} .interface-device-index")),
            index
        );
        assert_eq!(browser.text(&format!("{row} .interface-ip")), *ip);
        assert_eq!(
            browser.text(&format!("{row} .interface-subnet")),
            two.subnet
        );
        assert!(
            browser
                .text(&format!("{row} .interface-groups"))
                .contains(group.as_str()),
            "{eni} shows {group}"
        );
    }
    screenshot(&browser, "instance-interfaces");

    // Its second interface's page.
    browser.click(&format!(
        "#instance-interfaces tr[data-interface-id='{}'] .interface-link",
        two.second
    ));
    browser.wait_for_text("#eni-details .eni-id", &two.second);
    assert_eq!(browser.text("#eni-details .eni-status"), "in-use");
    assert_eq!(browser.text("#eni-details .eni-instance"), two.server.id);
    assert_eq!(browser.text("#eni-details .eni-device-index"), "1");
    assert_eq!(browser.text("#eni-details .eni-ip"), two.second_ip);
    assert_eq!(browser.text("#eni-details .eni-description"), "second");
    let described = interface(&console, &two.second);
    assert_eq!(
        browser.text("#eni-details .eni-mac"),
        text(&described, "/MacAddress")
    );

    // Change security groups: the VPC's groups as checkboxes, the interface's own checked.
    browser.click("#eni-change-groups");
    let choice = |id: &str| format!("#eni-group-choices input.eni-group-choice[value='{id}']");
    assert!(checked(&browser, &choice(&two.db)));
    assert!(!checked(&browser, &choice(&two.web)));
    browser.click(&choice(&two.web));
    assert!(browser.text("#eni-groups-chosen").contains(&two.web));
    screenshot(&browser, "interface-change-groups");
    browser.click("#eni-groups-save");
    browser.wait_for_text("#flash", "changed");
    assert_eq!(
        group_ids(&interface(&console, &two.second)["Groups"]),
        sorted(&[&two.db, &two.web])
    );
    assert_eq!(
        group_ids(&interface(&console, &two.primary)["Groups"]),
        vec![two.web.clone()],
        "the primary interface keeps its groups"
    );
    browser.wait_until(&format!(
        "document.querySelector(\"#eni-groups tr[data-group-id='{}']\")",
        two.web
    ));
    assert!(browser.text("#eni-groups").contains(&two.db));

    // Change description.
    browser.click("#eni-change-description");
    browser.type_into("#eni-description-input", "replica");
    browser.click("#eni-description-save");
    browser.wait_for_text("#flash", "Description of");
    assert_eq!(
        text(&interface(&console, &two.second), "/Description"),
        "replica"
    );
    assert_eq!(browser.text("#eni-details .eni-description"), "replica");

    // The instance's own Change security groups asks which of its interfaces.
    let default = group_named(&console, "default").unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    open(
        &browser,
        &console,
        &format!("#/instances/{}", two.server.id),
        "#instance-interfaces",
    );
    browser.click("#instance-change-groups");
    browser.select("#change-groups-interface", &two.second);
    browser.wait_for_text("#change-groups-list", &two.db);
    assert!(browser.text("#change-groups-list").contains(&two.web));
    browser.select("#change-groups-pick", &default);
    browser.click("#change-groups-add");
    browser.click("#change-groups-save");
    browser.wait_for_text("#flash", &format!("({}) changed", two.second));
    assert_eq!(
        group_ids(&interface(&console, &two.second)["Groups"]),
        sorted(&[&two.db, &two.web, &default])
    );
    assert_eq!(
        group_ids(&interface(&console, &two.primary)["Groups"]),
        vec![two.web.clone()],
        "the primary interface still keeps its groups"
    );
}

#[test]
fn the_interface_list_shows_every_interface_and_one_is_detached_and_deleted_from_its_page() {
    let console = Console::start("fwcd");
    let two = instance_with_two_interfaces(&console);
    let browser = console.signed_in_browser();

    // The list: every interface, each column as the CLI describes it.
    open(&browser, &console, "#/network-interfaces", "#eni-rows tr");
    let all = console.aws.json(&["ec2", "describe-network-interfaces"]);
    let all = all["NetworkInterfaces"].as_array().unwrap();
    assert_eq!(
        browser.script(
            "return document.querySelectorAll('#eni-rows tr').length;",
            json!([])
        ),
        json!(all.len())
    );
    for n in all {
        let id = text(n, "/NetworkInterfaceId");
        let row = format!("#eni-rows tr[data-interface-id='{id}']");
        let cell = |class: &str| browser.text(&format!("{row} .{class}"));
        assert_eq!(cell("eni-subnet"), text(n, "/SubnetId"), "{id}");
        assert_eq!(cell("eni-vpc"), text(n, "/VpcId"), "{id}");
        assert_eq!(cell("eni-ip"), text(n, "/PrivateIpAddress"), "{id}");
        assert_eq!(cell("eni-status"), text(n, "/Status"), "{id}");
        assert_eq!(
            cell("eni-instance"),
            text(n, "/Attachment/InstanceId"),
            "{id}"
        );
        assert_eq!(
            cell("eni-device-index"),
            n["Attachment"]["DeviceIndex"].to_string(),
            "{id}"
        );
        for g in group_ids(&n["Groups"]) {
            assert!(cell("eni-groups").contains(&g), "{id} shows {g}");
        }
    }
    assert_eq!(
        browser.text(&format!(
            "#eni-rows tr[data-interface-id='{}'] .eni-description",
            two.second
        )),
        "second"
    );
    screenshot(&browser, "network-interfaces");

    // Filtered as you type.
    browser.type_into("#eni-search", &two.second);
    let row = |id: &str| format!("#eni-rows tr[data-interface-id='{id}']");
    browser.wait_until(&format!(
        "document.querySelector(\"{}\").hidden",
        row(&two.primary)
    ));
    assert!(!hidden(&browser, &row(&two.second)));

    // Actions → Change security groups opens the selected interface's form.
    browser.click(&format!("{} .eni-select", row(&two.second)));
    browser.click("#eni-change-groups");
    browser.wait_for_text("#eni-groups-chosen", &two.db);

    // The primary interface stays with its instance; AWS's refusal is explained.
    open(
        &browser,
        &console,
        &format!("#/network-interfaces/{}", two.primary),
        "#eni-details",
    );
    browser.click("#eni-detach");
    browser.wait_for_text("#flash", "OperationNotPermitted");
    assert!(browser.text("#flash").contains("device index 0"));
    assert_eq!(
        text(&interface(&console, &two.primary), "/Status"),
        "in-use"
    );

    // The second: deleting it while attached is refused, then detach, then delete.
    open(
        &browser,
        &console,
        &format!("#/network-interfaces/{}", two.second),
        "#eni-details",
    );
    browser.click("#eni-delete");
    browser.wait_for_text("#flash", "InvalidNetworkInterface.InUse");
    assert!(browser.text("#flash").contains("detach it first"));
    browser.click("#eni-detach");
    browser.wait_for_text("#flash", "detached");
    let detached = interface(&console, &two.second);
    assert_eq!(text(&detached, "/Status"), "available");
    assert!(detached.get("Attachment").is_none(), "{detached}");
    browser.wait_for_text("#eni-details .eni-status", "available");
    assert_eq!(browser.text("#eni-details .eni-instance"), "–");
    browser.click("#eni-delete");
    browser.wait_for_text("#flash", "deleted");
    console.aws.fails(
        "InvalidNetworkInterfaceID.NotFound",
        &[
            "ec2",
            "describe-network-interfaces",
            "--network-interface-ids",
            &two.second,
        ],
    );
    browser.wait_until("document.querySelector('#eni-rows tr')");
    assert!(
        !browser.text("#eni-rows").contains(&two.second),
        "the list no longer shows it"
    );
}

#[test]
fn the_subnets_page_lists_the_default_subnet_and_new_ones_by_vpc() {
    let console = Console::start("fwcs");
    let default = default_subnet(&console);
    let default_vpc = text(&default, "/VpcId").to_string();
    let second = create_subnet(&console, &default_vpc, "172.31.16.0/20", "second");
    let vpc = console
        .aws
        .json(&["ec2", "create-vpc", "--cidr-block", "10.8.0.0/16"]);
    let other_vpc = text(&vpc, "/Vpc/VpcId").to_string();
    let other = create_subnet(&console, &other_vpc, "10.8.1.0/24", "other");

    let browser = console.signed_in_browser();
    open(&browser, &console, "#/subnets", "#subnet-rows tr");
    let all = console.aws.json(&["ec2", "describe-subnets"]);
    let all = all["Subnets"].as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    for s in all {
        let id = text(s, "/SubnetId");
        let row = format!("#subnet-rows tr[data-subnet-id='{id}']");
        let cell = |class: &str| browser.text(&format!("{row} .{class}"));
        assert_eq!(cell("subnet-vpc"), text(s, "/VpcId"), "{id}");
        assert_eq!(cell("subnet-cidr"), text(s, "/CidrBlock"), "{id}");
        let ipv6: Vec<&str> = s["Ipv6CidrBlockAssociationSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["Ipv6CidrBlock"].as_str().unwrap())
            .collect();
        let shown_ipv6 = if ipv6.is_empty() {
            "–".to_string()
        } else {
            ipv6.join(", ")
        };
        assert_eq!(cell("subnet-ipv6"), shown_ipv6, "{id}");
        assert!(
            cell("subnet-az").contains(text(s, "/AvailabilityZone")),
            "{id}"
        );
        assert_eq!(
            cell("subnet-available"),
            s["AvailableIpAddressCount"].to_string(),
            "{id}"
        );
        let default_for_az = if s["DefaultForAz"] == true {
            "Yes"
        } else {
            "No"
        };
        assert_eq!(cell("subnet-default"), default_for_az, "{id}");
    }
    // The default subnet as AWS makes it: 172.31.0.0/20, 4,091 free addresses (5 reserved).
    let row = format!(
        "#subnet-rows tr[data-subnet-id='{}']",
        text(&default, "/SubnetId")
    );
    assert_eq!(
        browser.text(&format!("{row} .subnet-cidr")),
        "172.31.0.0/20"
    );
    assert_eq!(browser.text(&format!("{row} .subnet-available")), "4091");
    assert_eq!(browser.text(&format!("{row} .subnet-default")), "Yes");
    assert_eq!(
        browser.text(&format!(
            "#subnet-rows tr[data-subnet-id='{}'] .subnet-name",
            text(&second, "/SubnetId")
        )),
        "second"
    );
    screenshot(&browser, "subnets");

    // Narrowed to the new VPC: its one subnet.
    browser.select("#subnet-vpc-filter", &other_vpc);
    browser.wait_until("document.querySelectorAll('#subnet-rows tr').length === 1");
    assert_eq!(
        browser.text(&format!(
            "#subnet-rows tr[data-subnet-id='{}'] .subnet-name",
            text(&other, "/SubnetId")
        )),
        "other"
    );
}

#[test]
fn the_launch_form_puts_an_instance_in_the_chosen_subnet() {
    let console = Console::start("fwcu");
    let default = default_subnet(&console);
    let chosen = create_subnet(
        &console,
        text(&default, "/VpcId"),
        "172.31.16.0/20",
        "chosen",
    );
    let chosen_id = text(&chosen, "/SubnetId").to_string();

    let browser = console.signed_in_browser();
    open(&browser, &console, "#/instances", "#launch-instance");
    browser.click("#launch-instance");
    browser.wait_until(&format!(
        "document.querySelector(\"#launch-subnet option[value='{chosen_id}']\")"
    ));
    assert_eq!(
        browser.script(
            "return document.querySelector('#launch-subnet').value;",
            json!([])
        ),
        json!(text(&default, "/SubnetId")),
        "the default subnet first"
    );
    browser.type_into("#launch-name", "in-chosen");
    browser.select("#launch-subnet", &chosen_id);
    screenshot(&browser, "launch-subnet");
    browser.click("#launch-submit");
    let flash = browser.wait_for_text("#flash", "Successfully initiated launch");
    let id = flash.split_whitespace().last().unwrap().to_string();
    // The agent's own CLI: it also prints the interface's namespace (`Namespace`, ours).
    let launched =
        console.cli(&["describe-instances", "--instance-ids", &id])["Reservations"][0]["Instances"]
            [0]
        .clone();
    // The agent built the instance's namespace and its VPC's router: ours to delete.
    let _ns = Netns::adopt(text(&launched, "/NetworkInterfaces/0/Namespace"));
    let _router = Netns::adopt(&format!("{}-router", text(&launched, "/VpcId")));
    assert_eq!(text(&launched, "/SubnetId"), chosen_id);
    assert_eq!(text(&launched, "/NetworkInterfaces/0/SubnetId"), chosen_id);
    assert!(
        text(&launched, "/PrivateIpAddress").starts_with("172.31.16."),
        "an address of the chosen subnet: {launched}"
    );
    browser.wait_for_text(
        &format!("tr[data-instance-id='{id}'] .instance-subnet"),
        &chosen_id,
    );

    // Its page shows its one interface in that subnet.
    browser.click(&format!("tr[data-instance-id='{id}'] .instance-link"));
    browser.wait_for_text("#instance-details .instance-subnet", &chosen_id);
    let eni = text(&launched, "/NetworkInterfaces/0/NetworkInterfaceId");
    let row = format!("#instance-interfaces tr[data-interface-id='{eni}']");
    assert_eq!(browser.text(&format!("{row} .interface-subnet")), chosen_id);
    assert_eq!(browser.text(&format!("{row} .interface-device-index")), "0");
    assert_eq!(
        browser.text(&format!("{row} .interface-ip")),
        text(&launched, "/PrivateIpAddress")
    );
}

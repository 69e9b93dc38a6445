//! Every page draws with 1,000 groups and 10,000 rules, and its load time is measured in the
//! browser and printed (`cargo test -p tests --test console -- --nocapture page_load`), never
//! asserted.
//! Each figure is the median of 5: from the navigation (or the hash change, or the keystroke)
//! to the moment the page's script finished drawing the view.

use serde_json::{Value, json};

use super::{Console, open};
use firewall_testkit::browser::Browser;

const GROUPS: usize = 1000;
const RULES_PER_GROUP: usize = 10;
const BATCH: usize = 50;
const RUNS: usize = 5;

/// Creates `BATCH` groups with `RULES_PER_GROUP` inbound rules each through the console's API.
fn seed_batch(browser: &Browser, first: usize) {
    let answer = browser.script_async(
        "const [first, count, rules] = arguments; const done = arguments[arguments.length - 1];
         (async () => {
           for (let n = first; n < first + count; n++) {
             const g = await call('CreateSecurityGroup', {GroupName: `load-${n}`, Description: `load ${n}`,
               TagSpecifications: [{ResourceType: 'security-group', Tags: [{Key: 'tier', Value: `t${n % 10}`}]}]});
             const permissions = [];
             for (let r = 0; r < rules; r++) permissions.push({IpProtocol: 'tcp', FromPort: 1000 + r, ToPort: 1000 + r,
               IpRanges: [{CidrIp: `10.${n % 250}.${r}.0/24`}]});
             await call('AuthorizeSecurityGroupIngress', {GroupId: g.GroupId, IpPermissions: permissions});
           }
         })().then(() => done('ok'), (e) => done(String(e.code) + ': ' + e.message));",
        json!([first, BATCH, RULES_PER_GROUP]),
    );
    assert_eq!(answer, "ok", "seeding");
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    samples[samples.len() / 2]
}

fn number(value: Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .expect("a number")
}

/// A full page load of `route`: navigation start → the view drawn.
fn full_load(browser: &Browser, console: &Console, route: &str, ready: &str) -> f64 {
    browser.goto("about:blank");
    open(browser, console, route, ready);
    number(browser.script(
        "return Number(document.body.dataset.drawn) - performance.timeOrigin;",
        json!([]),
    ))
}

/// A hash change to `route` inside the loaded console: the change → the view drawn.
fn navigation(browser: &Browser, route: &str, ready: &str) -> f64 {
    let t0 = number(browser.script(
        "const t = Date.now(); if (location.hash === arguments[0]) route(); else location.hash = arguments[0]; return t;",
        json!([route]),
    ));
    browser.wait_until(&format!(
        "Number(document.body.dataset.drawn) > {t0} && document.querySelector({ready:?})"
    ));
    number(browser.script("return Number(document.body.dataset.drawn);", json!([]))) - t0
}

/// A keystroke in the list's search box: the input → the filtered page drawn.
fn search(browser: &Browser, term: &str) -> f64 {
    let t0 = number(browser.script(
        "const t = Date.now(); const s = document.querySelector('#group-search'); s.value = arguments[0];
         s.dispatchEvent(new Event('input')); return t;",
        json!([term]),
    ));
    browser.wait_until(&format!(
        "Number(document.body.dataset.groupsLoaded) > {t0}"
    ));
    number(browser.script(
        "return Number(document.body.dataset.groupsLoaded);",
        json!([]),
    )) - t0
}

#[test]
fn every_page_draws_with_1000_groups_and_10000_rules_and_prints_its_load_time() {
    let console = Console::start("fwcl");
    let browser = console.signed_in_browser();
    for first in (0..GROUPS).step_by(BATCH) {
        seed_batch(&browser, first);
    }
    let described = console.cli(&["describe-security-group-rules", "--max-results", "1000"]);
    assert!(described["NextToken"].is_string(), "more than 1000 rules");
    let group = super::group_named(&console, "load-500").expect("seeded");
    let group_id = group["GroupId"].as_str().unwrap().to_string();

    let mut rows = Vec::new();
    let mut measure = |name: &str, f: &mut dyn FnMut() -> f64| {
        let samples: Vec<f64> = (0..RUNS).map(|_| f()).collect();
        rows.push((name.to_string(), median(samples.clone()), samples));
    };
    measure(
        "Security groups list, full page load (first 50)",
        &mut || full_load(&browser, &console, "#/groups", "#group-rows tr"),
    );
    measure("Security groups list, search keystroke", &mut || {
        search(&browser, "");
        search(&browser, "load-5")
    });
    measure("Group detail (10 rules), from the list", &mut || {
        navigation(&browser, "#/groups", "#group-rows tr");
        navigation(&browser, &format!("#/groups/{group_id}"), "#tab-panel")
    });
    measure(
        "Edit inbound rules (completion over 1,000 groups)",
        &mut || {
            navigation(&browser, "#/groups", "#group-rows tr");
            navigation(
                &browser,
                &format!("#/groups/{group_id}/edit-inbound"),
                ".rule-editor tbody tr",
            )
        },
    );
    measure("Global View (every region)", &mut || {
        navigation(&browser, "#/groups", "#group-rows tr");
        navigation(&browser, "#/global", "#global-counts")
    });
    measure("Data plane", &mut || {
        navigation(&browser, "#/groups", "#group-rows tr");
        navigation(&browser, "#/dataplane", "#rule-hits")
    });
    println!(
        "\n{GROUPS} groups, {} rules (+ the default group's), median of {RUNS}:",
        GROUPS * RULES_PER_GROUP
    );
    println!("| page | median ms | samples ms |\n|---|---|---|");
    for (name, median, samples) in rows {
        let samples: Vec<String> = samples.iter().map(|s| format!("{s:.0}")).collect();
        println!("| {name} | {median:.0} | {} |", samples.join(", "));
    }
}

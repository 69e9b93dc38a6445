//! The web console in a real browser (chromium through chromedriver, inside the test's
//! namespace): sign-in and its protections, then every security-group procedure, instances,
//! network interfaces and subnets, Global View and the data plane page, each result checked
//! through the agent's API (its socket, or the AWS CLI) and rule edits also with real traffic
//! between local instances.
//!
//! With `FIREWALL_CONSOLE_SCREENSHOTS=DIR` the tests also save screenshots of the main pages
//! there (`docs/console/` holds the ones the README shows).

mod groups;
mod instances;
mod interfaces;
mod keys;
mod page_loads;
mod sign_in;

use std::{path::PathBuf, time::Duration};

use firewall_testkit::{
    agent::Agent,
    aws::{self, Aws, Identity},
    browser::{Browser, HttpAnswer, loopback_http},
    netns::Netns,
};

/// The key pair the console signs in with (the default account, so the CLI's local scope and
/// the console's `local` region see the same resources).
pub const KEY: &str = "AKIAFWCONSOLETEST001";
pub const SECRET: &str = "fwConsoleSecret/0123456789abcdefghijKLMN";

/// An agent with its EC2 listener (and so the console) on a loopback port of its namespace.
pub struct Console {
    pub agent: Agent,
    pub aws: Aws,
    pub host: Netns,
}

impl Console {
    pub fn start(prefix: &str) -> Console {
        let host = Netns::new(prefix);
        let id = Identity {
            name: "console".into(),
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            account_id: None,
        };
        let aws = Aws::with_identity(&host, aws::free_port(), id);
        let options = aws.agent_options();
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let agent = Agent::start_with(&host, &options);
        assert!(
            aws.wait_listening(Duration::from_secs(20)),
            "{}",
            agent.log()
        );
        Console { agent, aws, host }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.aws.port)
    }

    /// A request to the console from inside the namespace, without a browser.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpAnswer {
        let (port, method, path, body) = (
            self.aws.port,
            method.to_string(),
            path.to_string(),
            body.to_string(),
        );
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.host
            .run(move || {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                loopback_http(port, &method, &path, &headers, &body)
            })
            .expect("a console request")
    }

    /// A browser signed in through the sign-in form, on the console's first page.
    pub fn signed_in_browser(&self) -> Browser<'_> {
        let browser = Browser::start(&self.host);
        browser.goto(&self.url("/console/sign-in"));
        browser.type_into("#access-key-id", KEY);
        browser.type_into("#secret-access-key", SECRET);
        browser.click("#sign-in");
        browser.wait_until("document.body.dataset.ready === 'true'");
        browser
    }

    /// The agent's CLI in the console's scope (the default account, region `local`).
    pub fn cli(&self, args: &[&str]) -> serde_json::Value {
        self.agent.cli(args)
    }
}

/// Opens a console page (a hash route) and waits for it to be drawn anew (not for the view
/// that was there: a route change within the page keeps the document).
pub fn open(browser: &Browser, console: &Console, route: &str, ready: &str) {
    let before = browser.script(
        "return Number(document.body && document.body.dataset.drawn || 0);",
        serde_json::json!([]),
    );
    // Already there: navigating to the same URL would not draw it again.
    let redrawn = browser.script(
        "if (location.pathname === '/console/' && location.hash === arguments[0] \
             && typeof route === 'function') { route(); return true; } return false;",
        serde_json::json!([route]),
    );
    if redrawn != serde_json::json!(true) {
        browser.goto(&console.url(&format!("/console/{route}")));
    }
    browser.wait_until("document.body.dataset.ready === 'true'");
    browser.wait_until(&format!(
        "Number(document.body.dataset.drawn) > {before} && document.querySelector({ready:?})"
    ));
}

/// Saves a screenshot named `name` when `FIREWALL_CONSOLE_SCREENSHOTS` names a directory.
pub fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("FIREWALL_CONSOLE_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        browser.screenshot(&dir.join(format!("{name}.png")));
    }
}

/// The group called `name` in the console's scope, as `describe-security-groups` answers it.
pub fn group_named(console: &Console, name: &str) -> Option<serde_json::Value> {
    let out = console.cli(&[
        "describe-security-groups",
        "--filters",
        &format!("Name=group-name,Values={name}"),
    ]);
    out["SecurityGroups"]
        .as_array()
        .and_then(|g| g.first().cloned())
}

/// The rules of a group, as `describe-security-group-rules` answers them.
pub fn rules_of(console: &Console, group_id: &str) -> Vec<serde_json::Value> {
    let out = console.cli(&[
        "describe-security-group-rules",
        "--filters",
        &format!("Name=group-id,Values={group_id}"),
    ]);
    out["SecurityGroupRules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

//! Sign-in, sessions and CSRF: without a session the pages send you to sign in and the API
//! answers 401; a request without the session's CSRF token is refused and changes nothing; the
//! cookie is HttpOnly and SameSite=Strict; `console-url`'s link works once.

use std::process::Command;

use serde_json::json;

use super::{Console, KEY, SECRET, group_named, screenshot};
use firewall_testkit::{agent::agent_binary, browser::Browser};

#[test]
fn without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401() {
    let console = Console::start("fwcs");
    let page = console.http("GET", "/console/", &[], "");
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(page.header("location"), Some("/console/sign-in"));
    let api = console.http(
        "POST",
        "/console/api/call/CreateSecurityGroup",
        &[("Content-Type", "application/json")],
        r#"{"GroupName":"no-session","Description":"d"}"#,
    );
    assert_eq!(api.status, 401, "{api:?}");
    assert!(api.body.contains("AuthFailure"), "{}", api.body);
    let forged = console.http(
        "POST",
        "/console/api/call/CreateSecurityGroup",
        &[
            ("Cookie", "fw_console=0123456789abcdef"),
            ("x-csrf-token", "x"),
        ],
        r#"{"GroupName":"no-session","Description":"d"}"#,
    );
    assert_eq!(
        forged.status, 401,
        "an unknown session is no session: {forged:?}"
    );
    assert!(
        group_named(&console, "no-session").is_none(),
        "nothing was created"
    );

    let signed = console.http(
        "POST",
        "/console/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!(
            "access_key_id={KEY}&secret_access_key={}",
            SECRET.replace('/', "%2F")
        ),
    );
    assert_eq!(signed.status, 303, "{signed:?}");
    let cookie = signed.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/console"),
        "{cookie}"
    );
    let wrong = console.http(
        "POST",
        "/console/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("access_key_id={KEY}&secret_access_key=wrong"),
    );
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.header("set-cookie").is_none(),
        "no session for a wrong secret"
    );
}

#[test]
fn the_browser_signs_in_and_out_and_a_request_without_the_csrf_token_changes_nothing() {
    let console = Console::start("fwcb");
    let browser = Browser::start(&console.host);
    browser.goto(&console.url("/console/"));
    assert!(
        browser.url().ends_with("/console/sign-in"),
        "{}",
        browser.url()
    );
    browser.type_into("#access-key-id", KEY);
    browser.type_into("#secret-access-key", "not-the-secret");
    browser.click("#sign-in");
    assert!(
        browser
            .wait_for_text("#sign-in-error", "not valid")
            .contains("not valid")
    );
    screenshot(&browser, "sign-in");
    browser.type_into("#access-key-id", KEY);
    browser.type_into("#secret-access-key", SECRET);
    browser.click("#sign-in");
    browser.wait_until("document.body.dataset.ready === 'true'");
    assert!(browser.text("#who").contains(KEY));
    let cookies = browser.script("return document.cookie;", json!([]));
    assert_eq!(
        cookies,
        json!(""),
        "the session cookie is HttpOnly: scripts cannot read it"
    );

    let attempt = |headers: serde_json::Value| {
        browser.script_async(
            "const done = arguments[arguments.length - 1];
             fetch('/console/api/call/CreateSecurityGroup', {method: 'POST', headers: arguments[0],
               body: JSON.stringify({GroupName: 'csrf-victim', Description: 'd'})})
               .then(async r => done([r.status, await r.text()]));",
            json!([headers]),
        )
    };
    let without = attempt(json!({"x-firewall-region": "local"}));
    assert_eq!(without[0], 403, "{without}");
    assert!(
        without[1].as_str().unwrap().contains("InvalidCsrfToken"),
        "{without}"
    );
    let wrong = attempt(json!({"x-firewall-region": "local", "x-csrf-token": "0000"}));
    assert_eq!(wrong[0], 403, "{wrong}");
    assert!(
        group_named(&console, "csrf-victim").is_none(),
        "a refused request changed nothing"
    );
    let token = browser.script("return Console.session.CsrfToken;", json!([]));
    let right = attempt(json!({"x-firewall-region": "local", "x-csrf-token": token}));
    assert_eq!(right[0], 200, "{right}");
    assert!(
        group_named(&console, "csrf-victim").is_some(),
        "with the token the same call runs"
    );

    browser.click("#sign-out");
    browser.wait_until("location.pathname === '/console/sign-in'");
    browser.goto(&console.url("/console/"));
    assert!(
        browser.url().ends_with("/console/sign-in"),
        "signed out: {}",
        browser.url()
    );
}

#[test]
fn console_url_prints_a_link_that_signs_in_once() {
    let console = Console::start("fwcu");
    let out = Command::new(agent_binary())
        .args(["console-url", "--credentials"])
        .arg(console.aws.agent_credentials())
        .args(["--endpoint", &format!("127.0.0.1:{}", console.aws.port)])
        .output()
        .expect("console-url");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string();
    assert!(
        link.starts_with(&console.url("/console/sign-in/link?")),
        "{link}"
    );

    let browser = Browser::start(&console.host);
    browser.goto(&link);
    browser.wait_until("document.body.dataset.ready === 'true'");
    assert!(browser.text("#who").contains(KEY));
    browser.delete_cookies();
    browser.goto(&link);
    assert!(
        browser
            .wait_for_text("#sign-in-error", "already used")
            .contains("already used")
    );
    let tampered = link.replace("expires=", "expires=1");
    browser.goto(&tampered);
    assert!(
        browser
            .wait_for_text("#sign-in-error", "link")
            .contains("link")
    );
}

//! A real browser for the console's tests: Debian's `chromium`, driven through `chromedriver`
//! (both installed by `cargo xtask setup`) over the W3C WebDriver protocol, a few JSON-over-HTTP
//! commands spoken here with a plain blocking client. The driver runs inside the test's
//! namespace (`ip netns exec`), so the browser reaches only that namespace's loopback, and the
//! kit's requests to the driver are made from a thread inside it too.
//!
//! Chromium runs headless, as root without its sandbox, with a fresh profile directory (removed
//! on drop, with the session and the driver, also on panic) and with every background service
//! that would try the network switched off.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{netns::Netns, shell::unique};

/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a find waits for its element to appear.
const IMPLICIT_WAIT_MS: u64 = 5000;
/// How long a script may run (an async one until it calls back).
const SCRIPT_TIMEOUT_MS: u64 = 120_000;
/// How long [`Browser::wait_until`] waits.
pub const WAIT: Duration = Duration::from_secs(10);

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// One browser session, in `ns`.
pub struct Browser<'a> {
    ns: &'a Netns,
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

/// An HTTP answer: status, head (status line and headers) and body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl HttpAnswer {
    /// The value of the header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A blocking HTTP/1.1 request to `127.0.0.1:port` from the calling thread's namespace.
pub fn loopback_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<HttpAnswer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    // Read the head, then the body by its length (a server may keep the connection open).
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break answer.len();
        }
        answer.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end])
        .trim_end()
        .to_string();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let body = &answer[head_end..];
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&answer[head_end..]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(HttpAnswer {
        status,
        head,
        body: if chunked { dechunk(&rest) } else { rest },
    })
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        text = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Decodes standard base64 (the screenshots).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut bits, mut acc) = (Vec::new(), 0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl<'a> Browser<'a> {
    /// Starts chromedriver in `ns` and opens a session.
    pub fn start(ns: &'a Netns) -> Browser<'a> {
        let port = crate::aws::free_port();
        let profile = std::env::temp_dir().join(unique("fw-chromium-"));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let driver = Command::new("ip")
            .args(["netns", "exec", &ns.name, "chromedriver"])
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (cargo xtask setup installs chromium-driver)");
        let mut browser = Browser {
            ns,
            driver,
            port,
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser.request("GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let answer = browser.command("POST", "/session", Some(capabilities));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        browser.session_command(
            "POST",
            "/timeouts",
            json!({"implicit": IMPLICIT_WAIT_MS, "script": SCRIPT_TIMEOUT_MS}),
        );
        browser
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> std::io::Result<(u16, String)> {
        let (port, method, path) = (self.port, method.to_string(), path.to_string());
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let json = [("Content-Type", "application/json")];
        self.ns
            .run(move || loopback_http(port, &method, &path, &json, &body))
            .map(|a| (a.status, a.body))
    }

    /// A WebDriver command: its `value` (panics on an error answer).
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self
            .request(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(status == 200, "{method} {path}: {status} {text}");
        answer["value"].clone()
    }

    fn session_command(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.command(method, &path, Some(body))
    }

    fn session_get(&self, path: &str) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.command("GET", &path, None)
    }

    pub fn goto(&self, url: &str) {
        self.session_command("POST", "/url", json!({"url": url}));
    }

    pub fn url(&self) -> String {
        self.session_get("/url")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The element `css` selects (waiting for it up to the implicit wait).
    fn find(&self, css: &str) -> String {
        let found = self.session_command(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.session_command("POST", &format!("/element/{id}/click"), json!({}));
    }

    /// Replaces the text of the input `css` with `text` as typed keys.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.session_command("POST", &format!("/element/{id}/clear"), json!({}));
        self.session_command(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": text}),
        );
    }

    /// Chooses `value` in the select `css` (as a user would: a `change` event follows), once
    /// the select holds that option.
    pub fn select(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        self.wait_until(&format!("document.querySelector({option:?})"));
        self.script(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([css, value]),
        );
    }

    /// The visible text of `css` (waiting for the element to exist).
    pub fn text(&self, css: &str) -> String {
        self.wait_until(&format!("document.querySelector({css:?})"));
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Runs `script` (a function body, `arguments` = `args`) and returns what it returns.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs an async `script` whose last argument is the callback to call with its result.
    pub fn script_async(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Waits up to [`WAIT`] for the script `condition` (an expression) to be true.
    pub fn wait_until(&self, condition: &str) {
        let deadline = Instant::now() + WAIT;
        let script = format!("return !!({condition});");
        while self.script(&script, json!([])) != Value::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {condition}; the page shows: {}",
                self.script("return document.body.innerText.slice(0, 800);", json!([]))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the text of `css` to contain `wanted`, and returns it.
    pub fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let condition =
            format!("(document.querySelector({css:?}) || {{}}).textContent?.includes({wanted:?})");
        let deadline = Instant::now() + WAIT;
        let script = format!("return !!({condition});");
        while self.script(&script, json!([])) != Value::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "{css} never contained {wanted:?}; it holds {:?}",
                self.script(
                    &format!(
                        "return (document.querySelector({css:?}) || {{}}).textContent || null;"
                    ),
                    json!([])
                )
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.text(css)
    }

    pub fn delete_cookies(&self) {
        let path = format!("/session/{}/cookie", self.session);
        self.command("DELETE", &path, None);
    }

    /// Saves a PNG of the window at `path`.
    pub fn screenshot(&self, path: &Path) {
        let shot = self.session_get("/screenshot");
        std::fs::write(path, base64(shot.as_str().expect("base64 PNG")))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = self.request("DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

//! A real browser for the console's tests: Debian's `chromium`, driven through `chromedriver`
//! (both installed by `cargo xtask setup`) over the W3C WebDriver protocol with the `fantoccini`
//! client. The driver runs inside the test's namespace (`ip netns exec`), so the browser reaches
//! only that namespace's loopback; the client runs on a thread that entered the namespace too
//! (a current-thread tokio runtime there, to which [`Browser`]'s blocking methods send their
//! commands), so its connections to the driver are made inside it.
//!
//! Chromium runs headless, as root without its sandbox, with a fresh profile directory (removed
//! on drop, with the session and the driver, also on panic) and with every background service
//! that would try the network switched off.
//!
//! [`loopback_http`] is a plain blocking HTTP/1.1 request the tests use to talk to the console
//! directly, not through the browser.

use std::{
    future::Future,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::mpsc as std_mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, error::CmdError, wd::TimeoutConfiguration};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{netns::Netns, shell::unique};

/// How long a find waits for its element to appear.
const IMPLICIT_WAIT: Duration = Duration::from_secs(5);
/// How long a script may run (an async one until it calls back).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
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

/// A command for the client thread: given the session's client, a future it runs to the end.
type Job = Box<dyn FnOnce(Client) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One browser session, in `ns`.
pub struct Browser<'a> {
    /// The client thread is in it: the browser must not outlive it.
    _ns: &'a Netns,
    driver: Child,
    /// To the client thread; dropping it ends the session and the thread.
    jobs: Option<mpsc::UnboundedSender<Job>>,
    client: Option<JoinHandle<()>>,
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
            _ns: ns,
            driver,
            jobs: None,
            client: None,
            profile,
        };
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let (ready, started) = std_mpsc::channel::<Result<(), String>>();
        // From here on a panic drops `browser`, which stops the driver and removes the profile.
        browser.client = Some(ns.spawn(move || {
            // chromedriver answers once it listens on its port.
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    let _ = ready.send(Err("chromedriver did not start".into()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let client = ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}"))
                    .await;
                let client = match client {
                    Ok(client) => client,
                    Err(e) => {
                        let _ = ready.send(Err(format!("no session: {e}")));
                        return;
                    }
                };
                let timeouts =
                    TimeoutConfiguration::new(Some(SCRIPT_TIMEOUT), None, Some(IMPLICIT_WAIT));
                if let Err(e) = client.update_timeouts(timeouts).await {
                    let _ = ready.send(Err(format!("timeouts: {e}")));
                    let _ = client.close().await;
                    return;
                }
                let _ = ready.send(Ok(()));
                while let Some(job) = queue.recv().await {
                    job(client.clone()).await;
                }
                // The browser was dropped: end the session (chromium quits with it).
                let _ = client.close().await;
            });
        }));
        match started.recv() {
            Ok(Ok(())) => browser.jobs = Some(jobs),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the WebDriver client thread died"),
        }
        browser
    }

    /// Runs `command` with the session's client on the client thread and returns its answer
    /// (panics, naming `what`, on an error).
    fn run<T, F>(&self, what: &str, command: impl FnOnce(Client) -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: Future<Output = Result<T, CmdError>> + 'static,
    {
        let (answer, answered) = std_mpsc::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let _ = answer.send(command(client).await);
            })
        });
        let jobs = self.jobs.as_ref().expect("a started browser");
        assert!(jobs.send(job).is_ok(), "the WebDriver client thread died");
        match answered.recv() {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: the WebDriver client thread died"),
        }
    }

    pub fn goto(&self, url: &str) {
        let url = url.to_string();
        self.run(&format!("goto {url}"), move |c| async move {
            c.goto(&url).await
        });
    }

    pub fn url(&self) -> String {
        self.run("url", |c| async move { c.current_url().await })
            .to_string()
    }

    /// Clicks the element `css` selects (waiting for it up to the implicit wait).
    pub fn click(&self, css: &str) {
        let selector = css.to_string();
        self.run(&format!("click {css}"), move |c| async move {
            c.find(Locator::Css(&selector)).await?.click().await
        });
    }

    /// Replaces the text of the input `css` with `text` as typed keys.
    pub fn type_into(&self, css: &str, text: &str) {
        let (selector, text) = (css.to_string(), text.to_string());
        self.run(&format!("type into {css}"), move |c| async move {
            let input = c.find(Locator::Css(&selector)).await?;
            input.clear().await?;
            input.send_keys(&text).await
        });
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

    /// Runs `script` (a function body, `arguments` = `args`, an array) and returns what it
    /// returns.
    pub fn script(&self, script: &str, args: Value) -> Value {
        let (script, args) = (script.to_string(), arguments(args));
        self.run(
            "script",
            move |c| async move { c.execute(&script, args).await },
        )
    }

    /// Runs an async `script` whose last argument is the callback to call with its result.
    pub fn script_async(&self, script: &str, args: Value) -> Value {
        let (script, args) = (script.to_string(), arguments(args));
        self.run("async script", move |c| async move {
            c.execute_async(&script, args).await
        })
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
        self.run(
            "delete cookies",
            |c| async move { c.delete_all_cookies().await },
        );
    }

    /// Saves a PNG of the window at `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.run("screenshot", |c| async move { c.screenshot().await });
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A script's arguments: the elements of the array `args` (or `args` alone).
fn arguments(args: Value) -> Vec<Value> {
    match args {
        Value::Array(args) => args,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        // Closing the queue ends the session; then the client thread returns.
        drop(self.jobs.take());
        if let Some(client) = self.client.take() {
            let _ = client.join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

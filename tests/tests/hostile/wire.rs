//! Raw HTTP/1.1 requests to the agent's two front ends (one connection each, `Connection:
//! close`), SigV4 signing with the test key pair, and the checks that an answer is an AWS error.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use firewall_testkit::aws::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// One request as sent: `truncate` sends only part of the body and then closes the write side.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub truncate: bool,
}

impl Request {
    pub fn post(path: &str, body: Vec<u8>) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: Vec::new(),
            body,
            truncate: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn bytes(&self, host: &str) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        let sent = if self.truncate {
            self.body.len() / 2
        } else {
            self.body.len()
        };
        bytes.extend_from_slice(&self.body[..sent]);
        bytes
    }
}

/// An answer: the status (0 when the connection closed without one) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// A stream whose write side can be closed.
trait Stream: Read + Write {
    fn close_write(&self);
}

impl Stream for UnixStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Stream for TcpStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

fn exchange(mut stream: impl Stream, request: &Request, host: &str) -> Answer {
    let _ = stream.write_all(&request.bytes(host));
    if request.truncate {
        stream.close_write();
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Answer { status, body }
}

const TIMEOUT: Duration = Duration::from_secs(20);

/// Sends a request to the JSON front end's socket.
pub fn unix(socket: &Path, request: &Request) -> Answer {
    let stream = UnixStream::connect(socket).expect("connecting to the socket");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    exchange(stream, request, "localhost")
}

/// Sends a request to the EC2 endpoint on 127.0.0.1 (from a thread in the agent's namespace).
pub fn tcp(port: u16, request: &Request) -> Answer {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect(addr).expect("connecting to the EC2 endpoint");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    exchange(stream, request, &host(port))
}

pub fn host(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Adds `x-amz-date` and a SigV4 `authorization` signed with the test key pair for `service`,
/// over `content-type`, `host` and `x-amz-date` (the request must have a `content-type`).
pub fn sign(request: &mut Request, port: u16, service: &str) {
    let (date, time) = amz_date(SystemTime::now());
    let amz_date = format!("{date}T{time}Z");
    request
        .headers
        .push(("x-amz-date".into(), amz_date.clone()));
    let header = |name: &str| {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        values.join(",")
    };
    let canonical = format!(
        "{}\n{}\n\ncontent-type:{}\nhost:{}\nx-amz-date:{amz_date}\n\ncontent-type;host;x-amz-date\n{}",
        request.method,
        canonical_path(&request.path),
        header("content-type"),
        host(port),
        hex::encode(Sha256::digest(&request.body)),
    );
    let scope = format!("{date}/{REGION}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{SECRET_ACCESS_KEY}").into_bytes();
    for part in [date.as_str(), REGION, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    request.headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        ),
    ));
}

/// The path as botocore encodes it for the canonical request: each byte but unreserved ones
/// and `/` as `%XX` (so a `%` already there becomes `%25`).
fn canonical_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDD` and `HHMMSS` in UTC (from the agent's own RFC 3339 formatting).
fn amz_date(now: SystemTime) -> (String, String) {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    // `YYYY-MM-DDTHH:MM:SS+00:00`
    let text = firewall_agent::model::rfc3339(secs);
    (text[..10].replace('-', ""), text[11..19].replace(':', ""))
}

/// The JSON front end's error shape: `{"Error": {"Code": "…", "Message": "…"}}`.
pub fn json_error_code(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("Error")?.as_object()?;
    error.get("Message")?.as_str()?;
    error.get("Code")?.as_str().map(str::to_string)
}

/// The EC2 error document: `<Response><Errors><Error><Code>…</Code><Message>…</Message>
/// </Error></Errors><RequestID>…</RequestID></Response>` (or STS's `ErrorResponse`).
pub fn xml_error_code(body: &str) -> Option<String> {
    let body = body.strip_prefix("<?xml")?.split_once("?>")?.1.trim_start();
    let inner = body.strip_prefix("<Response><Errors><Error>").or_else(|| {
        body.strip_prefix("<ErrorResponse")
            .and_then(|b| b.split_once("<Error>").map(|(_, b)| b))
    })?;
    let (code, rest) = inner
        .strip_prefix("<Type>Sender</Type>")
        .unwrap_or(inner)
        .strip_prefix("<Code>")?
        .split_once("</Code><Message>")?;
    let (_, rest) = rest.split_once("</Message></Error>")?;
    (rest.contains("<RequestID>") || rest.contains("<RequestId>")).then(|| code.to_string())
}

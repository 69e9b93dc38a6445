//! Seeded generators of hostile requests for both front ends. Each request carries at least one
//! fault that makes the agent refuse it (an unknown member, a wrong type, an invalid CIDR or
//! port, `DryRun`, an unknown action or path, a malformed body or encoding, a limit), with noise
//! around it (odd Unicode, duplicates, overlong strings), so none may change the state.

use crate::wire::{Request, sign};

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

const ACTIONS: [&str; 8] = [
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "DeleteSecurityGroup",
    "CreateManagedPrefixList",
    "CreateTags",
    "DescribeSecurityGroups",
];

/// Strings as JSON text (escapes included): NUL, RTL marks, lone and swapped surrogates, BOM,
/// noncharacters, emoji, quotes.
const ODD_JSON: [&str; 12] = [
    r#""\u0000""#,
    r#""a\u202eb""#,
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\ud83d\ude00""#,
    r#""\ufeff""#,
    r#""\uffff""#,
    r#""é\u0301""#,
    r#""\\\"""#,
    r#""""#,
    r#""sg-""#,
    r#""0.0.0.0/0\u0000""#,
];

/// The same, percent-encoded for a form (overlong NUL, an encoded surrogate, a bare 0xFF).
const ODD_FORM: [&str; 10] = [
    "%00",
    "a%E2%80%AEb",
    "%ED%A0%80",
    "%C0%80",
    "%FF%FE",
    "%EF%BB%BF",
    "%F0%9F%98%80",
    "+",
    "",
    "sg-",
];

const BAD_CIDRS: [&str; 8] = [
    "10.0.0.0/33",
    "300.1.1.1/8",
    "10.0.0/8",
    "::/129",
    "10.0.0.0/-1",
    "abc",
    "10.0.0.0/8/8",
    "1.2.3.4 /32",
];

const BAD_PORTS: [&str; 6] = ["65536", "99999999999", "-2", "1e3", "0x50", "80.5"];

const CONTENT_TYPES: [&str; 6] = [
    "text/plain",
    "application/x-www-form-urlencoded; charset=ebcdic",
    "multipart/form-data; boundary=",
    "application/json",
    ";;;",
    "application/json; x=\"unterminated",
];

fn overlong(rng: &mut Rng) -> String {
    "x".repeat(256 + rng.below(20_000))
}

fn nested(rng: &mut Rng, open: &str, close: &str) -> String {
    let depth = 100 + rng.below(50_000);
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// A JSON string value: plain, odd or overlong.
fn json_text(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("\"{}\"", overlong(rng)),
        1 | 2 => rng.pick(&ODD_JSON).to_string(),
        _ => "\"fuzz\"".into(),
    }
}

/// A value of the wrong type for a string member.
fn wrong_type(rng: &mut Rng) -> String {
    rng.pick(&[
        "5",
        "[]",
        "{}",
        "true",
        "-0.0",
        "[\"a\"]",
        "{\"a\":1}",
        "1e999",
    ])
    .to_string()
}

/// The members of one JSON request, each with at least one fault.
fn json_members(rng: &mut Rng, action: &str, group: &str) -> String {
    let mut members: Vec<String> = Vec::new();
    let group_id = format!("\"GroupId\":\"{group}\"");
    let permission = |rng: &mut Rng| {
        let (from, to) = if rng.below(2) == 0 {
            (rng.pick(&BAD_PORTS).to_string(), "22".to_string())
        } else {
            ("22".into(), "22".into())
        };
        let cidr = if rng.below(2) == 0 {
            format!("\"{}\"", rng.pick(&BAD_CIDRS))
        } else {
            json_text(rng)
        };
        format!(
            "{{\"IpProtocol\":\"tcp\",\"FromPort\":{from},\"ToPort\":{to},\"IpRanges\":[{{\"CidrIp\":{cidr}}}]}}"
        )
    };
    match action {
        "CreateSecurityGroup" => {
            members.push(format!("\"GroupName\":{}", json_text(rng)));
            members.push(format!("\"Description\":{}", json_text(rng)));
        }
        "CreateManagedPrefixList" => {
            members.push(format!(
                "\"PrefixListName\":{},\"MaxEntries\":{},\"AddressFamily\":\"IPv4\",\"Entries\":[{{\"Cidr\":\"{}\"}}]",
                json_text(rng),
                rng.pick(&BAD_PORTS),
                rng.pick(&BAD_CIDRS)
            ));
        }
        "CreateTags" => members.push(format!(
            "\"Resources\":[\"{group}\"],\"Tags\":[{{\"Key\":{},\"Value\":{}}}]",
            json_text(rng),
            json_text(rng)
        )),
        "DescribeSecurityGroups" => members.push(format!("\"GroupIds\":[{}]", json_text(rng))),
        _ => {
            members.push(group_id.clone());
            members.push(format!("\"IpPermissions\":[{}]", permission(rng)));
        }
    }
    // The fault that makes sure (the others above may or may not be).
    match rng.below(5) {
        0 => members.push(format!("\"Bogus{}\":1", rng.below(100))),
        1 => members.push("\"DryRun\":true".into()),
        2 => members.push(format!("\"GroupId\":{}", wrong_type(rng))),
        3 => members.push(format!("\"DryRun\":{}", wrong_type(rng))),
        _ => members.push(format!("\"{}\":{}", "Tags", nested(rng, "[", "]"))),
    }
    if rng.below(3) == 0 {
        // A duplicate member: the fault above stays last.
        let first = members[0].clone();
        members.insert(1, first);
    }
    format!("{{{}}}", members.join(","))
}

/// One hostile request for the JSON socket (`POST /{Action}`).
pub fn json(rng: &mut Rng, group: &str) -> Request {
    let action = rng.pick(&ACTIONS);
    let request = match rng.below(12) {
        0 => Request::post(
            rng.pick(&[
                "/Bogus",
                "/describeSecurityGroups",
                "/DescribeSecurityGroups/x",
                "/",
                "/%zz",
                "/%FF%FE",
                "/Describe%00Groups",
                "/..%2F..",
                "//",
            ]),
            b"{}".to_vec(),
        ),
        1 => Request {
            method: rng
                .pick(&["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
                .into(),
            ..Request::post("/DescribeSecurityGroups", Vec::new())
        },
        2 => {
            let valid = json_members(rng, action, group);
            let body = match rng.below(4) {
                0 => valid[..valid.len() / 2].to_string(),
                1 => rng
                    .pick(&["{", "[]", "\"s\"", "null", "123", "{\"a\"}", "\u{0}"])
                    .into(),
                2 => format!("{valid}{valid}"),
                _ => format!("\u{feff}{valid}"),
            };
            Request::post(&format!("/{action}"), body.into_bytes())
        }
        3 => Request::post(
            &format!("/{action}"),
            format!("{{\"GroupIds\":{}}}", nested(rng, "[", "]")).into_bytes(),
        ),
        4 if rng.below(10) == 0 => Request::post(
            &format!("/{action}"),
            format!(
                "{{\"Description\":\"{}\"}}",
                "y".repeat((1 << 20) + rng.below(1000))
            )
            .into_bytes(),
        ),
        5 => Request {
            truncate: true,
            ..Request::post(
                &format!("/{action}"),
                json_members(rng, action, group).into_bytes(),
            )
        },
        6 => Request::post(
            &format!("/{action}"),
            json_members(rng, action, group).into_bytes(),
        )
        .header("x-big", &"h".repeat((16 << 10) + rng.below(30_000))),
        7 => Request::post(
            &format!("/{action}"),
            json_members(rng, action, group).into_bytes(),
        )
        .header(
            "x-firewall-account",
            rng.pick(&[
                "abc",
                "1234",
                "1234567890123",
                "-12345678901",
                "１２３４５６７８９０１２",
            ]),
        ),
        8 => Request::post(
            &format!("/{action}"),
            json_members(rng, action, group).into_bytes(),
        )
        .header(
            "x-firewall-region",
            rng.pick(&["", "nowhere-1", "US-EAST-1", "../x"]),
        ),
        _ => Request::post(
            &format!("/{action}"),
            json_members(rng, action, group).into_bytes(),
        ),
    };
    request.header("content-type", rng.pick(&CONTENT_TYPES))
}

/// A form value: plain, odd (percent-encoded) or overlong.
fn form_text(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => overlong(rng),
        1 | 2 => rng.pick(&ODD_FORM).into(),
        _ => "fuzz".into(),
    }
}

/// The form of one Query request, with at least one fault.
fn form_body(rng: &mut Rng, group: &str) -> String {
    let action = rng.pick(&ACTIONS);
    let mut pairs = vec![format!("Action={action}"), "Version=2016-11-15".to_string()];
    match action {
        "CreateSecurityGroup" => pairs.push(format!(
            "GroupName={}&GroupDescription={}",
            form_text(rng),
            form_text(rng)
        )),
        "DescribeSecurityGroups" => pairs.push(format!("GroupId.1={}", form_text(rng))),
        _ => pairs.push(format!(
            "GroupId={group}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort={}\
             &IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp={}",
            rng.pick(&BAD_PORTS),
            rng.pick(&BAD_CIDRS)
        )),
    }
    match rng.below(9) {
        0 => pairs.push(format!("Bogus{}=1", rng.below(100))),
        1 => pairs.push("DryRun=true".into()),
        2 => pairs.push(
            rng.pick(&[
                "%zz=1",
                "A..B=",
                "GroupId.1=x&GroupId=y",
                "=x",
                "GroupId.1.=x",
            ])
            .into(),
        ),
        3 => pairs.push(format!("{}=x", vec!["A"; 2 + rng.below(100_000)].join("."))),
        4 => pairs.push(
            rng.pick(&[
                "Action=Bogus",
                "Action=",
                "Action=describeSecurityGroups",
                "Action=%00",
            ])
            .into(),
        ),
        5 => pairs.push(
            rng.pick(&["Version=2012-01-01", "Version=", "Version=%FF"])
                .into(),
        ),
        6 => pairs.push(format!(
            "DryRun={}",
            rng.pick(&["yes", "1", "", "%00", "true&DryRun.1=x"])
        )),
        7 => pairs.push(format!(
            "GroupId.{}=x&GroupId=y",
            rng.pick(&["0", "-1", "99999999999", "1e3"])
        )),
        _ => pairs.retain(|p| !p.starts_with("Version")),
    }
    if rng.below(3) == 0 {
        let last = pairs[pairs.len() - 1].clone();
        pairs.push(last);
    }
    if rng.below(4) == 0 {
        pairs.push("&&&".into());
    }
    pairs.join("&")
}

/// One hostile request for the EC2 endpoint; most are signed (so they reach the decoder), some
/// are not or carry a broken signature.
pub fn ec2(rng: &mut Rng, group: &str, port: u16) -> Request {
    let mut request = Request::post("/", form_body(rng, group).into_bytes());
    let mut content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let mut service = "ec2";
    match rng.below(12) {
        0 => {
            request.path = rng
                .pick(&["/x", "/%zz", "//", "/?Action=DescribeRegions", "/%00"])
                .into()
        }
        1 => request.method = rng.pick(&["GET", "PUT", "DELETE", "OPTIONS"]).into(),
        2 => content_type = rng.pick(&CONTENT_TYPES),
        3 => request.truncate = true,
        4 if rng.below(10) == 0 => {
            request.body = format!("Action=DescribeRegions&X={}", "z".repeat(1 << 20)).into_bytes()
        }
        5 => request = request.header("x-big", &"h".repeat((16 << 10) + rng.below(30_000))),
        6 => service = "sts",
        _ => {}
    }
    request = request.header("content-type", content_type);
    match rng.below(10) {
        0 => {}
        1 => {
            sign(&mut request, port, service);
            let last = request.headers.last_mut().expect("authorization");
            last.1 = last.1.replace("Signature=", "Signature=0");
        }
        _ => sign(&mut request, port, service),
    }
    request
}

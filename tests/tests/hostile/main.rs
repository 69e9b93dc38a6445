//! Hostile requests to both front ends of a running agent: 10k+ seeded ones each (see
//! `generate`), each answered with an AWS-shaped 4xx error; the state (a fixed set of
//! describes in both accounts) byte-identical after; the limits on slow bodies and open
//! connections; the agent still alive and answering.

mod generate;
mod host;
mod wire;

use std::{
    os::unix::net::UnixStream,
    time::{Duration, Instant},
};

use firewall_testkit::{
    aws::{ACCOUNT_ID, start_agent},
    netns::Netns,
};
use generate::Rng;
use wire::{Answer, Request, json_error_code, xml_error_code};

const REQUESTS: usize = 10_000;
const SEED: u64 = 0x5eed_f00d;

/// The describes whose answers are the state, in the default account and the EC2 key's.
fn state(socket: &std::path::Path) -> Vec<String> {
    let mut answers = Vec::new();
    for account in [None, Some(ACCOUNT_ID)] {
        for action in [
            "DescribeSecurityGroups",
            "DescribeSecurityGroupRules",
            "DescribeInstances",
            "DescribeVpcs",
            "DescribeTags",
            "DescribeManagedPrefixLists",
            "DescribeLaunchTemplates",
        ] {
            let mut request = Request::post(&format!("/{action}"), b"{}".to_vec());
            if let Some(account) = account {
                request = request.header("x-firewall-account", account);
            }
            let answer = wire::unix(socket, &request);
            assert_eq!(answer.status, 200, "{action}: {}", answer.body);
            answers.push(answer.body);
        }
    }
    answers
}

/// Sends `count` requests, returns the ones not answered with an AWS-shaped 4xx error.
fn hammer(
    count: usize,
    mut next: impl FnMut() -> Request,
    send: impl Fn(&Request) -> Answer,
    shaped: fn(&str) -> Option<String>,
) -> Vec<(Request, Answer)> {
    let mut bad = Vec::new();
    for _ in 0..count {
        let request = next();
        let answer = send(&request);
        if !(400..500).contains(&answer.status) || shaped(&answer.body).is_none() {
            bad.push((request, answer));
        }
    }
    bad
}

fn report(front: &str, bad: &[(Request, Answer)]) {
    for (request, answer) in bad.iter().take(10) {
        let mut shown = request.clone();
        shown.body.truncate(300);
        for header in &mut shown.headers {
            header.1.truncate(100);
        }
        eprintln!(
            "{front}: {} {:?} for {shown:?} ({})",
            answer.status,
            answer.body.chars().take(300).collect::<String>(),
            String::from_utf8_lossy(&shown.body)
        );
    }
}

#[test]
fn hostile_requests_get_aws_errors_and_change_nothing() {
    let ns = Netns::new("fw-hostile");
    let (agent, aws) = start_agent(&ns);
    let socket = agent.socket.clone();
    let created = wire::unix(
        &socket,
        &Request::post(
            "/CreateSecurityGroup",
            br#"{"GroupName":"hostile-base","Description":"d"}"#.to_vec(),
        ),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let group: serde_json::Value = serde_json::from_str(&created.body).expect("JSON");
    let group = group["GroupId"].as_str().expect("GroupId").to_string();
    let before = state(&socket);
    let started = Instant::now();

    // A body that never completes is cut with RequestTimeout meanwhile.
    let slow_socket = socket.clone();
    let slow = std::thread::spawn(move || {
        let request = Request::post("/DescribeVpcs", b"{}".to_vec());
        let mut stream = UnixStream::connect(&slow_socket).expect("socket");
        use std::io::{Read as _, Write as _};
        let head = format!(
            "POST /DescribeVpcs HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{{",
            request.body.len() + 10
        );
        stream.write_all(head.as_bytes()).expect("head");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });

    let mut rng = Rng::new(SEED);
    let bad_json = hammer(
        REQUESTS,
        || generate::json(&mut rng, &group),
        |r| wire::unix(&socket, r),
        json_error_code,
    );
    report("json", &bad_json);
    let json_time = started.elapsed();

    let port = aws.port;
    let ec2_group = group.clone();
    let (bad_ec2, ec2_final) = ns.run(move || {
        let mut rng = Rng::new(SEED + 1);
        let bad = hammer(
            REQUESTS,
            || generate::ec2(&mut rng, &ec2_group, port),
            |r| wire::tcp(port, r),
            xml_error_code,
        );
        let mut valid = Request::post(
            "/",
            b"Action=DescribeSecurityGroups&Version=2016-11-15".to_vec(),
        )
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        );
        wire::sign(&mut valid, port, "ec2");
        (bad, wire::tcp(port, &valid))
    });
    report("ec2", &bad_ec2);
    let slow = slow.join().expect("slow client");
    assert!(
        slow.starts_with("HTTP/1.1 408") && slow.contains("\"RequestTimeout\""),
        "a stalled body: {slow}"
    );

    let after = state(&socket);
    let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    eprintln!(
        "hostile: {REQUESTS} JSON requests in {json_time:?}, {REQUESTS} EC2 requests, {} + {} \
         not AWS-shaped 4xx, {changed} describes changed, {:?} in all",
        bad_json.len(),
        bad_ec2.len(),
        started.elapsed()
    );
    assert_eq!(
        ec2_final.status, 200,
        "a valid EC2 call after: {}",
        ec2_final.body
    );
    assert!(
        bad_json.is_empty() && bad_ec2.is_empty(),
        "answers that are not AWS errors"
    );
    assert_eq!(before, after, "the state changed");

    // Connections over the cap are answered RequestLimitExceeded; closing them frees the slots.
    let idle: Vec<UnixStream> = (0..128)
        .map(|_| UnixStream::connect(&socket).expect("socket"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let over = wire::unix(&socket, &Request::post("/DescribeVpcs", Vec::new()));
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(
        json_error_code(&over.body).as_deref(),
        Some("RequestLimitExceeded")
    );
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = wire::unix(&socket, &Request::post("/DescribeVpcs", Vec::new()));
        if answer.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent does not answer: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent.log().contains("listening"), "{}", agent.log());
}

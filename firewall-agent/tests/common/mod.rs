//! Shared by the packet-level tests: a frame builder, and a harness that loads the data plane
//! with one workload on `lo` inside a private network namespace.
#![allow(dead_code, reason = "each test binary uses a different part")]

use aya::programs::{TestRun as _, TestRunOptions};
use firewall_agent::{
    compiler::{self, Ids},
    dataplane::{Dataplane as _, KernelDataplane as Dataplane, LoadOptions, programs},
    model::{RandomIds, State, ops::dispatch},
};
use serde_json::{Value, json};

pub const PASS: u32 = u32::MAX; // TCX_NEXT (-1): no objection
pub const DROP: u32 = 2; // TC_ACT_SHOT

pub const WORKLOAD: &str = "172.31.0.5";
pub const WORKLOAD6: &str = "fd00:ec2::5";

/// Frame builder: Ethernet + IPv4/IPv6 (+ extension headers) + L4.
#[derive(Clone)]
pub struct Frame {
    pub src: std::net::IpAddr,
    pub dst: std::net::IpAddr,
    pub proto: u8,
    pub l4: Vec<u8>,
    pub ipv6_ext: Vec<u8>,
    pub fragment_offset: u16,
    pub more_fragments: bool,
}

pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Frame {
    let mut l4 = vec![0u8; 20];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 5 << 4;
    l4[13] = flags;
    frame(src, dst, 6, l4)
}

pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Frame {
    let mut l4 = vec![0u8; 8];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&8u16.to_be_bytes());
    frame(src, dst, 17, l4)
}

pub fn icmp(src: &str, dst: &str, proto: u8, icmp_type: u8, code: u8, id: u16) -> Frame {
    let mut l4 = vec![icmp_type, code, 0, 0, 0, 0, 0, 1];
    l4[4..6].copy_from_slice(&id.to_be_bytes());
    frame(src, dst, proto, l4)
}

pub fn frame(src: &str, dst: &str, proto: u8, l4: Vec<u8>) -> Frame {
    Frame {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto,
        l4,
        ipv6_ext: Vec::new(),
        fragment_offset: 0,
        more_fragments: false,
    }
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;

impl Frame {
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        match (self.src, self.dst) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                out.extend_from_slice(&[0x08, 0x00]);
                let total = (20 + self.l4.len()) as u16;
                let frag =
                    (self.fragment_offset / 8) | if self.more_fragments { 0x2000 } else { 0 };
                out.extend_from_slice(&[0x45, 0]);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&[0, 1]);
                out.extend_from_slice(&frag.to_be_bytes());
                out.extend_from_slice(&[64, self.proto, 0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                out.extend_from_slice(&[0x86, 0xdd]);
                let payload = (self.ipv6_ext.len() + self.l4.len()) as u16;
                let next = if self.ipv6_ext.is_empty() {
                    self.proto
                } else {
                    0
                };
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&payload.to_be_bytes());
                out.extend_from_slice(&[next, 64]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
                out.extend_from_slice(&self.ipv6_ext);
            }
            _ => panic!("mixed families"),
        }
        out.extend_from_slice(&self.l4);
        out
    }

    /// Puts a hop-by-hop options header (8 bytes, PadN) in front of the L4 header.
    pub fn with_hop_by_hop(mut self) -> Frame {
        self.ipv6_ext = vec![self.proto, 0, 1, 4, 0, 0, 0, 0];
        self
    }
}

/// The data plane loaded, with one workload on `lo` whose groups `setup` configures.
pub struct Harness {
    pub dataplane: Dataplane,
    pub state: State,
    pub ids: Ids,
    /// What the last sync applied.
    pub last: compiler::Desired,
}

impl Harness {
    pub fn new(setup: impl FnOnce(&mut State) -> Vec<String>) -> Harness {
        Self::with_options(&LoadOptions::default(), setup)
    }

    pub fn with_options(
        options: &LoadOptions,
        setup: impl FnOnce(&mut State) -> Vec<String>,
    ) -> Harness {
        let mut state = State::initial(&mut RandomIds);
        let groups = setup(&mut state);
        call(
            &mut state,
            "RunInstances",
            json!({
                "SecurityGroupIds": groups, "PrivateIpAddress": WORKLOAD,
                "Ipv6Addresses": [{"Ipv6Address": WORKLOAD6}], "HostInterface": "lo",
            }),
        );
        let mut harness = Harness {
            dataplane: Dataplane::load(options).expect("load"),
            state,
            ids: Ids::default(),
            last: compiler::Desired::default(),
        };
        harness.sync();
        harness
    }

    pub fn sync(&mut self) {
        let desired = compiler::compile(&self.state, &mut self.ids);
        self.dataplane.apply(&desired).expect("apply");
        self.last = desired;
    }

    pub fn change(&mut self, action: &str, request: Value) {
        call(&mut self.state, action, request);
        self.sync();
    }

    pub fn run(&mut self, program: &'static str, frame: &Frame) -> u32 {
        let data = frame.bytes();
        self.run_raw(program, &data)
    }

    pub fn run_raw(&mut self, program: &'static str, data: &[u8]) -> u32 {
        let mut out = vec![0u8; data.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(data),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        };
        self.dataplane
            .program(program)
            .test_run(opts)
            .expect("BPF_PROG_TEST_RUN")
            .return_value
    }

    /// A packet delivered to the workload (inbound rules).
    pub fn inbound(&mut self, frame: &Frame) -> u32 {
        self.run(programs::TO_WORKLOAD, frame)
    }

    /// A packet sent by the workload (outbound rules).
    pub fn outbound(&mut self, frame: &Frame) -> u32 {
        self.run(programs::FROM_WORKLOAD, frame)
    }
}

pub fn call(state: &mut State, action: &str, request: Value) -> Value {
    dispatch(state, &mut RandomIds, action, request).unwrap_or_else(|e| panic!("{action}: {e}"))
}

pub fn create_group(state: &mut State, name: &str, ingress: Value) -> String {
    let id = call(
        state,
        "CreateSecurityGroup",
        json!({"GroupName": name, "Description": name}),
    )["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    if ingress.as_array().is_some_and(|a| !a.is_empty()) {
        call(
            state,
            "AuthorizeSecurityGroupIngress",
            json!({"GroupId": id, "IpPermissions": ingress}),
        );
    }
    id
}

/// Runs `test` on a thread inside a fresh network namespace.
pub fn in_private_netns(test: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: affects only this thread, which never returns to the caller's namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        test();
    })
    .join()
    .expect("test thread");
}

/// An ICMP error from `router` to `to` quoting the first bytes of `quoted` (its IP header and
/// 8 bytes of L4), as routers send them.
pub fn icmp_error(
    router: &str,
    to: &str,
    proto: u8,
    icmp_type: u8,
    code: u8,
    quoted: &Frame,
) -> Frame {
    let bytes = quoted.bytes();
    let ip_len = if quoted.src.is_ipv4() { 20 } else { 40 };
    let mut l4 = vec![icmp_type, code, 0, 0, 0, 0, 0x05, 0xdc];
    l4.extend_from_slice(&bytes[14..14 + ip_len + 8]);
    frame(router, to, proto, l4)
}

/// Runs `ip` in the calling thread's (private) network namespace.
pub fn ip_here(args: &[&str]) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let netns = format!("--net=/proc/{}/task/{tid}/ns/net", std::process::id());
    let status = std::process::Command::new("nsenter")
        .arg(&netns)
        .arg("ip")
        .args(args)
        .status()
        .expect("nsenter");
    assert!(status.success(), "ip {args:?}");
}

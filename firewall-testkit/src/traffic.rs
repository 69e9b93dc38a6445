//! Real traffic between namespaces: TCP and UDP echo servers (stopped on drop), connections and
//! round trips from inside a namespace, one ping, and `eventually` to wait for a change to take
//! effect.

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::Netns;

/// A TCP echo server inside a namespace, stopped on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    pub fn tcp(ns: &Netns, ip: impl Into<IpAddr>, port: u16) -> EchoServer {
        let ip = ip.into();
        let listener = ns.run(move || TcpListener::bind((ip, port)).expect("bind"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = stream.read(&mut buf) {
                                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }

    pub fn udp(ns: &Netns, ip: impl Into<IpAddr>, port: u16) -> EchoServer {
        let ip = ip.into();
        let socket = ns.run(move || UdpSocket::bind((ip, port)).expect("bind"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Opens a TCP connection from inside `ns`; `None` when it does not connect within `timeout`.
pub fn tcp_connect(
    ns: &Netns,
    to: impl Into<IpAddr>,
    port: u16,
    timeout: Duration,
) -> Option<TcpStream> {
    let to = to.into();
    ns.run(move || TcpStream::connect_timeout(&SocketAddr::from((to, port)), timeout).ok())
}

/// Sends a line over an established connection and checks it is echoed back.
pub fn echoes(stream: &mut TcpStream, message: &str) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(message.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; message.len()];
    stream.read_exact(&mut buf).is_ok() && buf == message.as_bytes()
}

/// Connects and exchanges one message; true when the whole round trip works.
pub fn tcp_round_trip(ns: &Netns, to: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    match tcp_connect(ns, to, port, timeout) {
        Some(mut stream) => {
            let ok = echoes(&mut stream, "ping\n");
            let _ = stream.shutdown(Shutdown::Both);
            ok
        }
        None => false,
    }
}

/// Sends one datagram from inside `ns` and waits for the echo.
pub fn udp_round_trip(ns: &Netns, to: impl Into<IpAddr>, port: u16, timeout: Duration) -> bool {
    let to = to.into();
    ns.run(move || {
        let socket =
            UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).expect("bind");
        socket.set_read_timeout(Some(timeout)).expect("timeout");
        socket.send_to(b"ping", (to, port)).expect("send");
        let mut buf = [0u8; 16];
        matches!(socket.recv_from(&mut buf), Ok((4, _)))
    })
}

/// Retries `probe` until it succeeds or `within` passes; returns how long it took.
pub fn eventually(within: Duration, mut probe: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if probe() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One ICMP echo (ping) from inside `ns`; true when the reply comes back within `timeout`.
pub fn ping(ns: &Netns, to: impl Into<IpAddr>, timeout: Duration) -> bool {
    let to = to.into().to_string();
    let wait = format!("{}", timeout.as_secs_f64().max(0.2));
    Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "ping", "-c", "1", "-n", "-q", "-W", &wait, &to,
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

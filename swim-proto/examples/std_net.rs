//! A blocking `std::net` driver for the swim-proto core: no async runtime, just threads.
//!
//! Proves the crate's promise that the core embeds in any runtime: the driver only moves bytes
//! and time. Datagrams go over UDP; stream messages (push-pull, join) over TCP on the same port,
//! one message per connection framed as `[len: u32 big-endian][len bytes]`, as swim-tokio does
//! (`docs/driver.md`, "Wire format"). Each node runs one thread for the core and one for
//! accepting TCP connections. Outbound stream messages are written from the core's thread with
//! short timeouts: simple, and fine on loopback; a production driver would hand them to a
//! bounded pool so a slow peer cannot stall probing.
//!
//! `cargo run -p swim-proto --example std_net -- --nodes 3 --seconds 5` starts that many nodes
//! on 127.0.0.1, all joining the first, and exits 0 once every node sees every other alive
//! (1 if the time runs out first). `cargo test -p swim-proto --example std_net` runs it too.

// A driver reads the clock and opens sockets and threads: exactly what the crate's clippy.toml
// forbids to the core. This file is a driver, so the ban does not apply.
#![allow(clippy::disallowed_methods)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant as WallClock};

use swim_proto::{Command, Config, Identity, Input, Instant, MemberState, Node, NodeName, Output};

/// Longest a node sleeps in `recv_from` before ticking anyway (so it notices `stop` and
/// stream messages that arrived meanwhile).
const MAX_WAIT: Duration = Duration::from_millis(20);
/// Connect, write and read timeout of one stream message.
const STREAM_TIMEOUT: Duration = Duration::from_millis(500);

/// A UDP socket and a TCP listener bound to the same free port on 127.0.0.1.
fn bind_pair() -> std::io::Result<(UdpSocket, TcpListener)> {
    for _ in 0..16 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        if let Ok(tcp) = TcpListener::bind(udp.local_addr()?) {
            return Ok((udp, tcp));
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AddrInUse,
        "no port free for both UDP and TCP",
    ))
}

/// Reads one framed stream message, refusing one longer than `max` bytes.
fn read_message(mut conn: TcpStream, max: usize) -> std::io::Result<Vec<u8>> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(STREAM_TIMEOUT))?;
    let mut len = [0u8; 4];
    conn.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "stream message too large",
        ));
    }
    let mut bytes = vec![0; len];
    conn.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Accepts connections until `stop`, passing each whole message to the core's thread.
fn accept_loop(
    tcp: TcpListener,
    max: usize,
    to_node: mpsc::Sender<Input<SocketAddr>>,
    stop: &AtomicBool,
) {
    tcp.set_nonblocking(true)
        .expect("listener can be made non-blocking");
    while !stop.load(Ordering::Relaxed) {
        match tcp.accept() {
            Ok((conn, from)) => {
                if let Ok(bytes) = read_message(conn, max) {
                    let _ = to_node.send(Input::Stream { from, bytes });
                } // A garbled or stalled connection is dropped: the core retries on its timers.
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Writes one framed stream message on a new connection.
fn send_stream(to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
    let mut conn = TcpStream::connect_timeout(&to, STREAM_TIMEOUT)?;
    conn.set_write_timeout(Some(STREAM_TIMEOUT))?;
    conn.write_all(&(bytes.len() as u32).to_be_bytes())?;
    conn.write_all(bytes)
}

/// The core's thread: feeds inputs, carries out outputs, publishes how many other members it
/// sees alive.
fn run_node(
    mut node: Node<SocketAddr>,
    udp: UdpSocket,
    streams: Receiver<Input<SocketAddr>>,
    first: Option<Input<SocketAddr>>,
    alive: &AtomicUsize,
    stop: &AtomicBool,
) {
    let epoch = WallClock::now();
    let now = || Instant::from_nanos(epoch.elapsed().as_nanos() as u64);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut pending: Vec<Input<SocketAddr>> = first.into_iter().collect();
    while !stop.load(Ordering::Relaxed) {
        pending.extend(streams.try_iter());
        if pending.is_empty() {
            // Sleep in the socket until a datagram comes or the earliest timer is due.
            let due = node.next_deadline().saturating_duration_since(now());
            udp.set_read_timeout(Some(due.clamp(Duration::from_millis(1), MAX_WAIT)))
                .expect("a non-zero read timeout is accepted");
            pending.push(match udp.recv_from(&mut buf) {
                Ok((len, from)) => Input::Datagram {
                    from,
                    bytes: buf[..len].to_vec(),
                },
                Err(_) => Input::Tick, // timed out: let due timers fire
            });
        }
        for input in pending.drain(..) {
            out.clear();
            node.handle_into(input, now(), &mut out);
            for output in out.drain(..) {
                match output {
                    Output::SendDatagram { to, bytes } => {
                        let _ = udp.send_to(&bytes, to); // UDP loss is the protocol's business
                    }
                    Output::SendStream { to, bytes } => {
                        let _ = send_stream(to, &bytes); // so is a failed push-pull
                    }
                    // TickAt is also `node.next_deadline()`; events would go to the application.
                    _ => {}
                }
            }
        }
        alive.store(node.count(MemberState::Alive), Ordering::Relaxed);
    }
}

/// Runs `n` nodes on 127.0.0.1, all joining the first; true once every node sees the `n - 1`
/// others alive within `limit`.
fn run_cluster(n: usize, limit: Duration) -> std::io::Result<bool> {
    let stop = Arc::new(AtomicBool::new(false));
    let alive: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let mut threads = Vec::new();
    let mut seed = None;
    for i in 0..n {
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr()?;
        let name = NodeName::new(&format!("node-{i}")).expect("short ASCII names are valid");
        let config = Config::local();
        let max = config.max_stream_message_size;
        let node = Node::new(config, Identity::new(name, addr), i as u64).expect("preset is valid");
        let join = seed.map(|s| Input::Command(Command::Join { seeds: vec![s] }));
        seed.get_or_insert(addr);
        let (tx, rx) = mpsc::channel();
        let (stop_a, stop_n, alive) = (stop.clone(), stop.clone(), alive.clone());
        threads.push(thread::spawn(move || accept_loop(tcp, max, tx, &stop_a)));
        threads.push(thread::spawn(move || {
            run_node(node, udp, rx, join, &alive[i], &stop_n)
        }));
    }
    let started = WallClock::now();
    let converged = loop {
        if alive.iter().all(|a| a.load(Ordering::Relaxed) == n - 1) {
            break true;
        }
        if started.elapsed() >= limit {
            break false;
        }
        thread::sleep(Duration::from_millis(10));
    };
    println!(
        "{n} nodes: {} after {:?}",
        if converged {
            "all see all alive"
        } else {
            "not converged"
        },
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("driver threads do not panic");
    }
    Ok(converged)
}

fn main() -> std::process::ExitCode {
    let (mut nodes, mut seconds) = (3usize, 5u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--nodes", Some(v)) if v >= 1 => nodes = v as usize,
            ("--seconds", Some(v)) => seconds = v,
            _ => {
                eprintln!("usage: std_net [--nodes N] [--seconds S]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    match run_cluster(nodes, Duration::from_secs(seconds)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("std_net: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[test]
fn three_nodes_on_loopback_all_see_all() {
    // Converges in well under a second on an idle machine; the margin is for a loaded CI host.
    assert!(run_cluster(3, Duration::from_secs(30)).expect("loopback sockets bind"));
}

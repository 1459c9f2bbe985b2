//! A minimal HTTP/1.1 control server on tokio TCP (no framework): `GET /members`, `/alive`,
//! `/local`, `/stats`, `/metrics`, `/health`; and the matching client used by
//! `swim-agent members`.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] requests served at once (more are closed), a request
//! head of at most [`MAX_HEAD`] bytes read within [`IO_TIMEOUT`], one request per connection
//! (`Connection: close`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::events::member_json;
use crate::handle::Cluster;

/// Requests served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head accepted, in bytes.
pub const MAX_HEAD: usize = 8 << 10;
/// Longest time to read a request or write a response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the control endpoints for `cluster` until the listener fails or the task is dropped.
pub async fn serve(listener: TcpListener, cluster: Cluster) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(IO_TIMEOUT, serve_one(conn, &cluster)).await;
        });
    }
}

async fn serve_one(mut conn: TcpStream, cluster: &Cluster) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
        if head.len() > MAX_HEAD {
            return respond(&mut conn, 431, "text/plain", "request head too large\n").await;
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return respond(&mut conn, 405, "text/plain", "only GET is served\n").await;
    }
    let path = target.split('?').next().unwrap_or("");
    let json_of = |v: Value| format!("{v}\n");
    let body = match path {
        "/health" => Ok(("text/plain", "ok\n".to_string())),
        "/members" => cluster.members().await.map(|ms| {
            (
                "application/json",
                json_of(ms.iter().map(member_json).collect()),
            )
        }),
        "/alive" => cluster.alive().await.map(|ms| {
            (
                "application/json",
                json_of(ms.iter().map(member_json).collect()),
            )
        }),
        "/local" => cluster
            .local()
            .await
            .map(|m| ("application/json", json_of(member_json(&m)))),
        "/stats" => cluster
            .stats()
            .await
            .map(|s| ("application/json", json_of(stats_json(&s)))),
        "/metrics" => cluster
            .stats()
            .await
            .map(|s| ("text/plain; version=0.0.4", crate::metrics::render(&s))),
        _ => return respond(&mut conn, 404, "text/plain", "not found\n").await,
    };
    match body {
        Ok((ctype, body)) => respond(&mut conn, 200, ctype, &body).await,
        Err(e) => respond(&mut conn, 503, "text/plain", &format!("{e}\n")).await,
    }
}

/// `ClusterStats` as JSON: members, health, and the core's and driver's main counters.
pub fn stats_json(s: &crate::ClusterStats) -> Value {
    let (c, d) = (&s.core, &s.driver);
    json!({
        "members": {
            "alive": s.members.alive, "suspect": s.members.suspect,
            "dead": s.members.dead, "left": s.members.left,
        },
        "health_score": s.health_score,
        "pending_broadcasts": s.pending_broadcasts,
        "uptime_s": s.uptime_s,
        "core": {
            "datagrams_sent": c.datagrams_sent, "datagrams_received": c.datagrams_received,
            "datagram_bytes_sent": c.datagram_bytes_sent,
            "datagram_bytes_received": c.datagram_bytes_received,
            "streams_sent": c.streams_sent, "streams_received": c.streams_received,
            "probes": c.probes, "probes_failed": c.probes_failed,
            "indirect_probes": c.indirect_probes, "suspicions_raised": c.suspicions_raised,
            "suspicions_refuted": c.suspicions_refuted,
            "local_refutations": c.local_refutations, "deaths_declared": c.deaths_declared,
            "join_attempts": c.join_attempts, "dropped": c.dropped.total(),
        },
        "driver": {
            "datagrams_oversized": d.datagrams_oversized,
            "udp_send_errors": d.udp_send_errors, "udp_recv_errors": d.udp_recv_errors,
            "connections_accepted": d.connections_accepted,
            "connections_refused": d.connections_refused,
            "stream_messages_received": d.stream_messages_received,
            "stream_messages_oversized": d.stream_messages_oversized,
            "stream_messages_truncated": d.stream_messages_truncated,
            "stream_read_timeouts": d.stream_read_timeouts,
            "stream_messages_sent": d.stream_messages_sent,
            "stream_sends_dropped": d.stream_sends_dropped,
            "stream_send_failures": d.stream_send_failures,
            "seed_resolutions": d.seed_resolutions,
            "trace_write_errors": d.trace_write_errors,
        },
    })
}

async fn respond(conn: &mut TcpStream, code: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

/// `GET path` from a control server: the status code and the body. Bounded by [`IO_TIMEOUT`]
/// and 16 MiB of response.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let timeout =
        |e: tokio::time::error::Elapsed| std::io::Error::new(std::io::ErrorKind::TimedOut, e);
    tokio::time::timeout(IO_TIMEOUT, async {
        let mut conn = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        conn.write_all(req.as_bytes()).await?;
        let mut resp = Vec::new();
        (&mut conn).take(16 << 20).read_to_end(&mut resp).await?;
        let text = String::from_utf8_lossy(&resp);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed HTTP status line"))?;
        Ok((code, body.to_string()))
    })
    .await
    .map_err(timeout)?
}

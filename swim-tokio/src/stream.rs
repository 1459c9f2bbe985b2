//! Stream messages over TCP: framing, the accept loop and outbound sends.
//!
//! Framing: each connection carries exactly one message, `[len: u32 big-endian][len bytes]`,
//! the bytes being the core's stream message (push-pull, join). The sender closes the
//! connection after writing; replies travel on a new connection to the address inside the
//! message. A peer that lies about the length, sends garbage or stalls costs at most
//! `stream_timeout` and the bytes it actually sent (never more than
//! `core.max_stream_message_size`), and holds one of `max_connections` slots meanwhile; one
//! source IP holds at most `max_connections_per_source` of them, so a source that keeps
//! connections open cannot keep joiners out (issue 13).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use crate::stats::{Counters, bump};

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// A whole message received from `from` (the peer's address as TCP sees it).
pub(crate) type Received = (SocketAddr, Vec<u8>);

/// What the accept loop needs.
pub(crate) struct Inbound {
    pub listener: TcpListener,
    /// One permit per connection served (`max_connections`).
    pub slots: Arc<Semaphore>,
    pub to_node: mpsc::Sender<Received>,
    pub max_message: usize,
    pub timeout: Duration,
    pub counters: Arc<Counters>,
    /// Most connections served at once per source IP (`max_connections_per_source`).
    pub per_source: usize,
    /// Networks allowed to connect (`allowed_cidrs`; empty: all).
    pub allowed: Vec<crate::cidr::Cidr>,
}

/// Connections being served, by source IP.
type Sources = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One source's claim on a connection, given back when the connection task ends.
struct SourceSlot {
    sources: Sources,
    ip: IpAddr,
}

impl SourceSlot {
    /// Takes one of `ip`'s `max` slots, if it has one left.
    fn take(sources: &Sources, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut m = sources
            .lock()
            .expect("the source table lock is never poisoned");
        let n = m.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: sources.clone(),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut m = self
            .sources
            .lock()
            .expect("the source table lock is never poisoned");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections until the node task drops its receiver, each served by its own task.
pub(crate) async fn accept_loop(inb: Inbound) {
    let sources: Sources = Arc::default();
    loop {
        let (conn, from) = match inb.listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if inb.to_node.is_closed() {
            return;
        }
        if !crate::cidr::allowed(&inb.allowed, from.ip()) {
            bump(&inb.counters.connections_refused_source);
            tracing::debug!(%from, "source outside allowed_cidrs; closing");
            continue;
        }
        let Some(source_slot) = SourceSlot::take(&sources, from.ip(), inb.per_source) else {
            bump(&inb.counters.connections_refused_per_source);
            tracing::debug!(%from, "per-source connection limit reached; closing");
            continue;
        };
        let Ok(permit) = inb.slots.clone().try_acquire_owned() else {
            bump(&inb.counters.connections_refused);
            tracing::debug!(%from, "connection limit reached; closing");
            continue;
        };
        bump(&inb.counters.connections_accepted);
        let (tx, counters, max, timeout) = (
            inb.to_node.clone(),
            inb.counters.clone(),
            inb.max_message,
            inb.timeout,
        );
        tokio::spawn(
            async move {
                let _permit = (permit, source_slot);
                match tokio::time::timeout(timeout, read_message(conn, max)).await {
                    Err(_) => bump(&counters.stream_read_timeouts),
                    Ok(Err(ReadError::Oversized(len))) => {
                        bump(&counters.stream_messages_oversized);
                        tracing::debug!(%from, len, "stream message over the size limit; dropped");
                    }
                    Ok(Err(ReadError::Truncated)) => bump(&counters.stream_messages_truncated),
                    Ok(Ok(bytes)) => {
                        bump(&counters.stream_messages_received);
                        // Waits while the node is busy: the connection slot is the backpressure.
                        let _ = tx.send((from, bytes)).await;
                    }
                }
            }
            .in_current_span(),
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    Oversized(usize),
    Truncated,
}

/// Reads one framed message. The buffer grows as bytes arrive, so a length prefix alone
/// reserves nothing.
async fn read_message<R: AsyncReadExt + Unpin>(mut r: R, max: usize) -> Result<Vec<u8>, ReadError> {
    let mut len = [0u8; LEN_PREFIX];
    r.read_exact(&mut len)
        .await
        .map_err(|_| ReadError::Truncated)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(ReadError::Oversized(len));
    }
    let mut bytes = Vec::with_capacity(len.min(64 << 10));
    let got = (&mut r)
        .take(len as u64)
        .read_to_end(&mut bytes)
        .await
        .map_err(|_| ReadError::Truncated)?;
    if got != len {
        return Err(ReadError::Truncated);
    }
    Ok(bytes)
}

/// Frames `bytes` for the wire.
pub fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN_PREFIX + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// What outbound sends need.
#[derive(Clone)]
pub(crate) struct Outbound {
    /// One permit per message in flight (`max_outbound_streams`).
    pub slots: Arc<Semaphore>,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub counters: Arc<Counters>,
    /// Seed addresses of a join in progress: a failure to reach one is logged at `warn` (the
    /// operator's "why is my node alone"); cleared once the join completes.
    pub join_seeds: Arc<std::sync::Mutex<Vec<SocketAddr>>>,
}

impl Outbound {
    /// Replaces the seeds of the join in progress (empty: no join in progress).
    pub(crate) fn set_join_seeds(&self, seeds: Vec<SocketAddr>) {
        *self.join_seeds.lock().expect("join seeds lock poisoned") = seeds;
    }

    /// Sends one message on a new connection, in the background. Never waits: with every slot
    /// taken, or on any failure, the message is dropped and counted (the core retries joins
    /// and push-pulls on its own timers).
    pub(crate) fn send(&self, to: SocketAddr, bytes: Vec<u8>) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            bump(&self.counters.stream_sends_dropped);
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let result = async {
                let mut conn = tokio::time::timeout(this.connect_timeout, TcpStream::connect(to))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| format!("connect: {e}"))?;
                let _ = conn.set_nodelay(true);
                let framed = frame(&bytes);
                tokio::time::timeout(this.write_timeout, async {
                    conn.write_all(&framed).await?;
                    conn.shutdown().await
                })
                .await
                .map_err(|_| "write timed out".to_string())?
                .map_err(|e| format!("write: {e}"))
            }
            .await;
            match result {
                Ok(()) => bump(&this.counters.stream_messages_sent),
                Err(why) => {
                    bump(&this.counters.stream_send_failures);
                    let joining = this
                        .join_seeds
                        .lock()
                        .expect("join seeds lock poisoned")
                        .contains(&to);
                    if joining {
                        tracing::warn!(seed = %to, reason = %why, "join through seed failed; the core retries with backoff");
                    } else {
                        tracing::debug!(%to, %why, "stream message not delivered");
                    }
                }
            }
        }.in_current_span());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn framing_round_trips_and_limits_hold() {
        let msg = frame(b"hello");
        assert_eq!(&msg[..4], &[0, 0, 0, 5]);
        assert_eq!(read_message(&msg[..], 16).await.unwrap(), b"hello");
        assert_eq!(
            read_message(&msg[..], 4).await,
            Err(ReadError::Oversized(5))
        );
        assert_eq!(read_message(&msg[..7], 16).await, Err(ReadError::Truncated));
        assert_eq!(read_message(&msg[..2], 16).await, Err(ReadError::Truncated));
        // A huge claimed length with no body costs nothing up front.
        let lie = [0x7f, 0xff, 0xff, 0xff];
        assert_eq!(
            read_message(&lie[..], usize::MAX).await,
            Err(ReadError::Truncated)
        );
    }
}

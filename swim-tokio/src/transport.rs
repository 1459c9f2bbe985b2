//! Binding the UDP socket (probes and gossip) and the TCP listener (stream messages) on one
//! port, and sending datagrams without ever making the node task wait.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::config::DriverConfig;
use crate::error::Error;

/// Attempts at finding a port free for both UDP and TCP when the config asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 32;

/// Both sockets, bound to the same address.
pub(crate) struct Bound {
    /// For receiving (the node task awaits it).
    pub udp: UdpSocket,
    /// The same socket, for non-blocking sends straight from the node task.
    pub udp_send: StdUdpSocket,
    pub tcp: TcpListener,
    /// The address actually bound (the real port when the config said 0).
    pub local: SocketAddr,
}

/// Binds UDP then TCP on `config.bind:config.port`. With port 0, UDP picks a free port and TCP
/// takes the same one, retrying with a new port if TCP finds it taken. Needs a tokio runtime.
pub(crate) fn bind(config: &DriverConfig) -> Result<Bound, Error> {
    let want = SocketAddr::new(config.bind, config.port);
    let attempts = if config.port == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut last = None;
    for _ in 0..attempts {
        let udp = bind_udp(want, config.udp_recv_buffer)?;
        let local = udp
            .local_addr()
            .map_err(|e| Error::io(format!("reading the UDP address bound at {want}"), e))?;
        match bind_tcp(local) {
            Ok(tcp) => {
                let udp_send = udp
                    .try_clone()
                    .map_err(|e| Error::io("cloning the UDP socket", e))?;
                let udp = UdpSocket::from_std(udp)
                    .map_err(|e| Error::io("registering the UDP socket", e))?;
                return Ok(Bound {
                    udp,
                    udp_send,
                    tcp,
                    local,
                });
            }
            Err(e) if config.port == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::config("port", "no free port found")))
}

fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> Result<StdUdpSocket, Error> {
    let what = || format!("binding UDP {addr}");
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io(what(), e))?;
    if recv_buffer > 0
        && let Err(e) = s.set_recv_buffer_size(recv_buffer)
    {
        tracing::warn!(recv_buffer, error = %e, "could not set the UDP receive buffer");
    }
    s.set_nonblocking(true).map_err(|e| Error::io(what(), e))?;
    s.bind(&addr.into()).map_err(|e| Error::io(what(), e))?;
    Ok(s.into())
}

fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, Error> {
    let what = || format!("binding TCP {addr}");
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| Error::io(what(), e))?;
    // A restarted node must get its port back while old connections sit in TIME_WAIT.
    s.set_reuse_address(true)
        .map_err(|e| Error::io(what(), e))?;
    s.set_nonblocking(true).map_err(|e| Error::io(what(), e))?;
    s.bind(&addr.into()).map_err(|e| Error::io(what(), e))?;
    s.listen(1024).map_err(|e| Error::io(what(), e))?;
    TcpListener::from_std(s.into()).map_err(|e| Error::io(what(), e))
}

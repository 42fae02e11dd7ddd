//! An RTP/RTCP socket pair on an even port and the port after it (RFC 3550 §11: RTP on an even
//! port, RTCP on the next odd one), the way the relay's shards, its UDP pulls and the load
//! generator's clients and source all bind theirs.
//!
//! The sockets are bound without `SO_REUSEPORT` (glommio's own `bind` always sets it): another
//! socket, of this process or another, must not be able to share a port, or datagrams meant
//! for one session would reach another.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// How many ephemeral ports [`bind_pair`] tries before it gives up. Each try yields a pair
/// unless the port's neighbour is taken, which on a busy host happens now and then, not 64
/// times in a row.
pub const PAIR_TRIES: usize = 64;

/// Two bound UDP sockets: RTP on an even port, RTCP on the next one.
#[derive(Debug)]
pub struct PortPair {
    /// The RTP socket, on [`port`](Self::port).
    pub rtp: Socket,
    /// The RTCP socket, on `port + 1`.
    pub rtcp: Socket,
    /// The RTP port (even).
    pub port: u16,
}

/// Binds an RTP socket on an even port of `ip` and an RTCP socket on the next port.
///
/// The kernel picks an ephemeral port; when it is odd, its even neighbour below becomes the
/// RTP port (so every pick is a candidate). Both sockets are blocking, as socket2 creates
/// them; a runtime that wants them otherwise sets that when it takes them over. Fails with
/// [`io::ErrorKind::AddrInUse`] after [`PAIR_TRIES`] picks whose neighbour was taken, or at
/// once with the error of a socket that cannot be created or bound at all.
pub fn bind_pair(ip: IpAddr) -> io::Result<PortPair> {
    let mut last = None;
    for _ in 0..PAIR_TRIES {
        let first = bind(SocketAddr::new(ip, 0))?;
        let port = local_port(&first)?;
        let pair = if port % 2 == 0 {
            // u16::MAX is odd, so port + 1 does not overflow.
            bind(SocketAddr::new(ip, port + 1)).map(|rtcp| PortPair { rtp: first, rtcp, port })
        } else if port > 1 {
            bind(SocketAddr::new(ip, port - 1)).map(|rtp| PortPair {
                rtp,
                rtcp: first,
                port: port - 1,
            })
        } else {
            continue;
        };
        match pair {
            Ok(pair) => return Ok(pair),
            Err(e) => last = Some(e),
        }
    }
    let last = last.map_or_else(String::new, |e| format!(" (last: {e})"));
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free even/odd RTP/RTCP port pair on {ip} in {PAIR_TRIES} tries{last}"),
    ))
}

fn bind(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.bind(&addr.into())?;
    Ok(s)
}

fn local_port(s: &Socket) -> io::Result<u16> {
    s.local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_and_adjacent() {
        for _ in 0..20 {
            let pair = bind_pair("127.0.0.1".parse().unwrap()).unwrap();
            assert_eq!(pair.port % 2, 0);
            assert_eq!(local_port(&pair.rtp).unwrap(), pair.port);
            assert_eq!(local_port(&pair.rtcp).unwrap(), pair.port + 1);
        }
    }

    #[test]
    fn ipv6_loopback() {
        // Hosts without IPv6 cannot bind ::1; that is not this function's failure.
        let Ok(pair) = bind_pair("::1".parse().unwrap()) else { return };
        assert_eq!(pair.port % 2, 0);
        assert_eq!(local_port(&pair.rtcp).unwrap(), pair.port + 1);
    }

    #[test]
    fn no_port_is_shared() {
        // A second bind of a pair's port fails: no SO_REUSEPORT.
        let pair = bind_pair("127.0.0.1".parse().unwrap()).unwrap();
        let taken = SocketAddr::new("127.0.0.1".parse().unwrap(), pair.port);
        assert!(bind(taken).is_err());
        let taken = SocketAddr::new("127.0.0.1".parse().unwrap(), pair.port + 1);
        assert!(bind(taken).is_err());
    }

    #[test]
    fn an_address_not_ours_fails_at_once() {
        // TEST-NET-1 is never a local address.
        let e = bind_pair("192.0.2.1".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
    }
}

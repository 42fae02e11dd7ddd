//! Which TCP sockets of this network namespace listen on a port, read from /proc/net/tcp and
//! /proc/net/tcp6: how the relay tells, before it binds its shards' listeners with
//! `SO_REUSEPORT`, that another process holds its port already. (A bind without
//! `SO_REUSEPORT` cannot tell: the connections of a relay just stopped, in TIME_WAIT, hold
//! the port against it.) The parser is a plain function of the file's text.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The kernel's state number of a listening socket (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// The listening TCP sockets whose address would take connections meant for `addr`: on its
/// port, at its address or a wildcard one (or any address, when `addr` is a wildcard).
pub fn tcp_listeners_for(addr: SocketAddr) -> io::Result<Vec<SocketAddr>> {
    let mut found = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(file) {
            Ok(text) => found.extend(listening(&text).filter(|l| overlaps(*l, addr))),
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // One entry for the sockets of one address (a relay's shards each listen on it).
    found.sort();
    found.dedup();
    Ok(found)
}

/// Whether a listener on `listener` takes connections to `addr` (same port, and the same
/// address or a wildcard on either side; a v6 wildcard takes IPv4 too).
fn overlaps(listener: SocketAddr, addr: SocketAddr) -> bool {
    listener.port() == addr.port()
        && (listener.ip().is_unspecified()
            || addr.ip().is_unspecified()
            || same(listener.ip(), addr.ip()))
}

/// Address equality that sees an IPv4-mapped IPv6 address as its IPv4 one.
fn same(a: IpAddr, b: IpAddr) -> bool {
    let plain = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    plain(a) == plain(b)
}

/// The local addresses of the listening sockets in the text of /proc/net/tcp or tcp6. Lines
/// it cannot read are skipped.
pub fn listening(text: &str) -> impl Iterator<Item = SocketAddr> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        (state == LISTEN).then(|| parse_address(local)).flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word as the kernel
/// prints it, the raw network-order bytes read as a native integer.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(u32::from_str_radix(ip.get(8 * i..8 * i + 8)?, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[4 * i..4 * i + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    /// Lines of /proc/net/tcp and tcp6 of this machine (Linux 6.18, x86-64): a listener on
    /// 127.0.0.1:8554 and one on 0.0.0.0:22, a connection, a TIME_WAIT; a v6 wildcard
    /// listener on 9000 and a v4-mapped one.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:216A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 124 1 0000000000000000 100 0 0 10 0
   2: 0100007F:216A 0100007F:A0F2 01 00000000:00000000 00:00000000 00000000     0        0 125 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:216A 0100007F:887E 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 200 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2329 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 201 1 0000000000000000 100 0 0 10 0
   2: 00000000000000000000000001000000:232A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 202 1 0000000000000000 100 0 0 10 0
";

    #[allow(clippy::unwrap_used)] // a test's own constants
    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_listening_sockets_are_read_with_their_addresses() {
        let v4: Vec<_> = listening(TCP).collect();
        assert_eq!(v4, [addr("127.0.0.1:8554"), addr("0.0.0.0:22")]);
        let v6: Vec<_> = listening(TCP6).collect();
        assert_eq!(v6, [addr("[::]:9000"), addr("[::ffff:127.0.0.1]:9001"), addr("[::1]:9002")]);
        assert_eq!(listening("header\n   0: garbage\n   1: 01:ZZ 0:0 0A\n").count(), 0);
    }

    #[test]
    fn a_listener_overlaps_on_its_port_at_its_address_or_a_wildcard() {
        let on = |listener: &str, want: &str| overlaps(addr(listener), addr(want));
        assert!(on("127.0.0.1:8554", "127.0.0.1:8554"));
        assert!(on("127.0.0.1:8554", "0.0.0.0:8554"), "a wildcard bind takes loopback too");
        assert!(on("0.0.0.0:8554", "10.0.0.1:8554"));
        assert!(on("[::]:8554", "127.0.0.1:8554"), "a v6 wildcard takes IPv4");
        assert!(on("[::ffff:127.0.0.1]:8554", "127.0.0.1:8554"));
        assert!(!on("127.0.0.1:8554", "127.0.0.2:8554"));
        assert!(!on("127.0.0.1:8554", "127.0.0.1:8555"));
        assert!(!on("[::1]:8554", "127.0.0.1:8554"));
    }
}

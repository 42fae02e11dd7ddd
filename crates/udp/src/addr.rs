//! Socket addresses encoded once for the kernel.

use std::fmt;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A destination encoded as a kernel `sockaddr`, ready to point `msg_name` at.
///
/// Encode a reader's address once when it subscribes, not once per packet: the batched paths
/// point each message header straight at these bytes.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawAddr {
    storage: Storage,
    len: libc::socklen_t,
}

/// Both families in one place; `len` says which part the kernel reads.
#[derive(Clone, Copy)]
#[repr(C)]
union Storage {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    /// The `sockaddr` pointer for `msg_name` / `sendto`.
    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    /// The length the kernel should read from [`as_ptr`](Self::as_ptr).
    pub(crate) fn socklen(&self) -> libc::socklen_t {
        self.len
    }

    /// Whether this is an IPv6 address (the GSO size limit differs).
    pub fn is_ipv6(&self) -> bool {
        self.len as usize == mem::size_of::<libc::sockaddr_in6>()
    }

    /// The address as a std `SocketAddr`.
    pub fn socket_addr(&self) -> SocketAddr {
        if self.is_ipv6() {
            // SAFETY: `len` says the v6 variant was written, in full, by `From<SocketAddr>`.
            let v6 = unsafe { self.storage.v6 };
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            ))
        } else {
            // SAFETY: `len` says the v4 variant was written, in full, by `From<SocketAddr>`.
            let v4 = unsafe { self.storage.v4 };
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(v4.sin_port),
            ))
        }
    }
}

impl From<SocketAddr> for RawAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => RawAddr {
                storage: Storage {
                    v4: libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: a.port().to_be(),
                        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                        sin_zero: [0; 8],
                    },
                },
                len: mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            },
            SocketAddr::V6(a) => RawAddr {
                storage: Storage {
                    v6: libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: a.port().to_be(),
                        // std and socket2 pass flowinfo through unconverted too.
                        sin6_flowinfo: a.flowinfo(),
                        sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                        sin6_scope_id: a.scope_id(),
                    },
                },
                len: mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            },
        }
    }
}

impl From<&RawAddr> for SocketAddr {
    fn from(addr: &RawAddr) -> Self {
        addr.socket_addr()
    }
}

impl PartialEq for RawAddr {
    fn eq(&self, other: &Self) -> bool {
        self.socket_addr() == other.socket_addr()
    }
}

impl Eq for RawAddr {}

impl fmt::Debug for RawAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawAddr({})", self.socket_addr())
    }
}

impl fmt::Display for RawAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}

/// Decodes a source address the kernel wrote into `storage` (`len` bytes of it).
pub(crate) fn decode_storage(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is at least as large and as aligned as sockaddr_in, and
            // the kernel initialised `len` bytes of it for this family.
            let a: libc::sockaddr_in =
                unsafe { *(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a: libc::sockaddr_in6 =
                unsafe { *(storage as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        for s in ["127.0.0.1:5004", "[::1]:6000", "10.1.2.3:0"] {
            let a: SocketAddr = s.parse().unwrap();
            let raw = RawAddr::from(a);
            assert_eq!(raw.socket_addr(), a);
            assert_eq!(raw.is_ipv6(), a.is_ipv6());
        }
    }

    #[test]
    fn encodes_port_in_network_order() {
        let raw = RawAddr::from("127.0.0.1:258".parse::<SocketAddr>().unwrap());
        // SAFETY: v4 was written.
        let v4 = unsafe { raw.storage.v4 };
        assert_eq!(v4.sin_port.to_ne_bytes(), [1, 2]);
        assert_eq!(v4.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 1]);
    }
}

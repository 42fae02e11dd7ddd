//! Descriptors borrowed from their owner, and sockets handed to glommio.

use std::os::fd::{AsRawFd, BorrowedFd};

/// The descriptor of `owner`, borrowed for as long as `owner` is: the way to make a syscall on
/// a socket whose type gives only `AsRawFd` (glommio's). A bare number kept past its owner's
/// drop names whatever the kernel opens next (a connection accepted a moment later, on any
/// shard), and a call on it would hit that one instead; the borrow makes keeping it a compile
/// error.
///
/// `owner`'s `as_raw_fd` must return a descriptor it owns (as glommio's, std's and socket2's
/// sockets do).
pub fn fd_of<S: AsRawFd>(owner: &S) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `owner`, which the returned borrow keeps borrowed, so
    // it stays open for the borrow's whole lifetime.
    unsafe { BorrowedFd::borrow_raw(owner.as_raw_fd()) }
}

/// Hands a bound UDP socket (std's, or a socket2 `Socket`) to glommio, which then owns and
/// closes it. glommio's own `bind` always sets `SO_REUSEPORT`, which a server port or a
/// client's port pair must not have, and glommio builds on socket2 0.4, so socket2 0.5's
/// `From` conversions do not apply. Must run on a glommio executor thread.
#[cfg(feature = "glommio")]
pub fn glommio_udp(socket: impl Into<std::net::UdpSocket>) -> glommio::net::UdpSocket {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = socket.into().into_raw_fd();
    // SAFETY: `fd` is an open UDP socket whose ownership `into_raw_fd` just released; glommio
    // takes it over and is its only owner from here on.
    unsafe { glommio::net::UdpSocket::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_the_owners_descriptor() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(fd_of(&socket).as_raw_fd(), socket.as_raw_fd());
    }

    #[cfg(feature = "glommio")]
    #[test]
    fn glommio_takes_the_socket_over() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        glommio::LocalExecutor::default().run(async move {
            let g = glommio_udp(socket);
            assert_eq!(g.local_addr().unwrap(), addr);
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.send_to(b"x", addr).unwrap();
            let mut buf = [0u8; 4];
            let (n, from) = g.recv_from(&mut buf).await.unwrap();
            assert_eq!((n, from), (1, peer.local_addr().unwrap()));
        });
    }
}

//! Name resolution off the shard thread: `getaddrinfo` blocks (a slow DNS server would stall
//! every stream on the shard), so it runs on glommio's blocking-thread pool.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// The first address `host` and `port` resolve to, `None` when they resolve to nothing.
pub(crate) async fn resolve(host: &str, port: u16) -> io::Result<Option<SocketAddr>> {
    let host = host.to_owned();
    glommio::executor()
        .spawn_blocking(move || (host.as_str(), port).to_socket_addrs().map(|mut a| a.next()))
        .await
}

/// Every address `host` and `port` resolve to (at most `max`, in the resolver's order).
pub(crate) async fn resolve_all(host: &str, port: u16, max: usize) -> io::Result<Vec<SocketAddr>> {
    let host = host.to_owned();
    glommio::executor()
        .spawn_blocking(move || {
            (host.as_str(), port).to_socket_addrs().map(|a| a.take(max).collect())
        })
        .await
}

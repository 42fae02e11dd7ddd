//! Batched UDP send and receive paths on raw sockets, and RTP/RTCP port pairs.
//!
//! The relay's egress and the send-path benchmark both use these; the load generator uses the
//! receive side. Every function works on a borrowed fd ([`AsFd`](std::os::fd::AsFd)), so it
//! serves std, socket2 and glommio sockets alike (glommio: wrap `as_raw_fd()` in a
//! `BorrowedFd` for the duration of the call).
//!
//! Send paths, from the most syscalls per datagram to the fewest:
//!
//! - [`send_to`]: one `sendto` per datagram;
//! - [`MmsgSender`]: one `sendmmsg` for many datagrams: one packet to many readers
//!   ([`MmsgSender::send_to_many`]), arbitrary datagrams ([`MmsgSender::send`]), one GSO frame to
//!   many readers ([`MmsgSender::send_gso_to_many`]), or one reader's frame split into GSO runs
//!   with a `sendmmsg` fallback for odd sizes ([`MmsgSender::send_frame`]);
//! - [`send_gso`]: one `sendmsg` with a `UDP_SEGMENT` control message for several equal-sized
//!   packets (the last may be shorter) to one destination; the iovec points at the caller's
//!   packet buffers, nothing is copied;
//! - [`UringSender`]: one `io_uring_enter` submitting a GSO `sendmsg` for each of many readers.
//!
//! Receive side: [`set_gro`] (coalesced receive), [`set_rxq_ovfl`] (drop counter),
//! [`RecvBatch`] (`recvmmsg`, with each coalesced message split back into datagrams by
//! [`Message::datagrams`]) and [`RecvRing`] (multishot receives on many sockets at once, read
//! by one `io_uring_enter`).
//!
//! Which to use: `perf/RESULTS.md`, "Send paths (issue 3)". In short, a frame's packets go to
//! each reader as one GSO message, and those messages are batched across readers
//! ([`MmsgSender::send_gso_to_many`] or [`UringSender::send_gso_to_many`]).
//!
//! Binding: [`bind_pair`] binds the RTP/RTCP socket pair (even port, next port) that the
//! relay's shards and UDP pulls and the generator's clients and source all need.
//!
//! Errors are `io::Error` straight from the kernel: the caller knows which peer it was sending
//! to, this crate does not.

// This crate is the runtimes' syscall module: every unsafe block wraps one syscall or one read
// of kernel-written memory, and carries a `// SAFETY:` line.
#![allow(unsafe_code, reason = "syscall wrappers")]
#![warn(clippy::undocumented_unsafe_blocks)]

mod addr;
mod buffer;
mod gso;
mod pair;
mod recv;
mod recv_ring;
mod send;
mod uring;

pub use addr::RawAddr;
pub use buffer::{queued_charge, set_recv_buffer, set_send_buffer, BufferSize};
pub use gso::{
    gso_runs, gso_segment_size, gso_supported, GsoRun, GsoRuns, GSO_MAX_BYTES_V4, GSO_MAX_BYTES_V6,
    GSO_MAX_SEGMENTS,
};
pub use pair::{bind_pair, PortPair, PAIR_TRIES};
pub use recv::{set_gro, set_rxq_ovfl, set_timestamps, Datagrams, Message, RecvBatch};
pub use recv_ring::{RecvRing, RingEvent, MAX_KEY};
pub use send::{send_gso, send_to, BatchSent, Datagram, MmsgSender};
pub use uring::{SendOutcome, UringSender};

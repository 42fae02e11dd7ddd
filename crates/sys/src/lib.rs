//! The syscalls the relay, the load generator, the `manifold` binary and the perf tools share,
//! each wrapped once: shutdown signals taken with `sigwait` ([`signal`]), kernel randomness
//! ([`fill_random`]), the open-file limit and CPU time ([`limits`]), CPU pinning
//! ([`pin_to_cpu`]), another process's CPU time and memory ([`procstat`]), the TCP sockets
//! listening on a port ([`listeners`]), descriptors
//! borrowed from their owner ([`fd_of`]), the perf tools' epoll set ([`epoll`]), and, with the
//! `glommio` feature, handing a socket we bound ourselves to glommio ([`glommio_udp`]).
//!
//! Syscalls only one binary makes stay in that binary (the relay's gathering `sendmsg`, the
//! blaster's `poll`); UDP send and receive paths are `manifold-udp`'s.
//!
//! # Descriptors
//!
//! No descriptor number outlives its owner: a closed fd's number is reused by the next socket
//! opened, on any thread, so a call on a kept number hits a stranger's connection. Everything
//! here that touches a socket takes it by value (ownership moves) or borrows it for the length
//! of the call ([`fd_of`]).

// The crate's whole purpose is wrapping libc calls; every unsafe block wraps one call (or one
// ownership transfer) and carries a `// SAFETY:` line.
#![allow(unsafe_code, reason = "syscall wrappers")]
#![warn(clippy::undocumented_unsafe_blocks)]

mod cpu;
pub mod epoll;
mod fd;
pub mod limits;
pub mod listeners;
pub mod process;
pub mod procstat;
mod random;
pub mod signal;

pub use cpu::pin_to_cpu;
pub use fd::fd_of;
#[cfg(feature = "glommio")]
pub use fd::glommio_udp;
pub use random::fill_random;

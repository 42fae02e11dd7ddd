//! A small io_uring of our own: many GSO `sendmsg`s in one `io_uring_enter`.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};

use io_uring::{opcode, types, IoUring};

use crate::addr::RawAddr;
use crate::send::send_msghdr;

/// Largest ring we create. Ring memory is small (64 B per SQE, 16 B per CQE) but counts against
/// the 8 MiB locked-memory cap on older kernels, which glommio's own rings also need.
const MAX_ENTRIES: u32 = 1024;

/// Enter calls without progress before we call the ring broken (EAGAIN/EBUSY storms).
const MAX_STALLS: u32 = 1000;

/// How one message of a [`UringSender`] batch ended.
#[derive(Debug)]
pub enum SendOutcome {
    /// The kernel took it; bytes sent.
    Sent(usize),
    /// The socket buffer was full (`EAGAIN`/`ENOBUFS`): not sent, try later or skip.
    WouldBlock,
    /// The kernel refused this message.
    Failed(io::Error),
}

/// Submits one `IORING_OP_SENDMSG` (with a `UDP_SEGMENT` control message) per reader and
/// reaps them all in the same call: a frame × many readers costs one `io_uring_enter` per
/// ring-full of readers, instead of one `sendmsg` each.
///
/// The ring is ours alone, separate from any runtime's ring (glommio's), and small. Every
/// message carries `MSG_DONTWAIT`, so the kernel completes each one inline (a full socket
/// buffer comes back as [`SendOutcome::WouldBlock`] rather than parking the request), and
/// every call returns only after all its requests have completed: no request outlives the
/// borrowed buffers.
pub struct UringSender {
    ring: IoUring,
    hdrs: Vec<libc::msghdr>,
    outcomes: Vec<SendOutcome>,
    entries: usize,
    /// Set when the ring failed with requests left in its submission queue; we never enter it
    /// again, so they are never submitted (closing the ring discards them).
    broken: bool,
}

// SAFETY: the raw pointers in `hdrs` are written and used only within one `&mut self` call and
// are dead afterwards; the ring itself is an fd plus mappings, usable from any thread.
unsafe impl Send for UringSender {}

impl std::fmt::Debug for UringSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringSender")
            .field("entries", &self.entries)
            .field("broken", &self.broken)
            .finish()
    }
}

impl UringSender {
    /// A ring with room for `entries` messages per `io_uring_enter` (rounded up to a power of
    /// two by the kernel, clamped to 1..=1024). Fails where io_uring is unavailable (old
    /// kernel, `kernel.io_uring_disabled`, seccomp).
    pub fn new(entries: u32) -> io::Result<Self> {
        let entries = entries.clamp(1, MAX_ENTRIES);
        // SUBMIT_ALL: a bad entry fails alone instead of stopping the batch (5.18+);
        // COOP_TASKRUN: no IPIs for task work we reap ourselves anyway (5.19+).
        let ring = IoUring::builder()
            .setup_submit_all()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?;
        let entries = ring.params().sq_entries() as usize;
        Ok(UringSender {
            ring,
            hdrs: Vec::with_capacity(entries),
            outcomes: Vec::new(),
            entries,
            broken: false,
        })
    }

    /// Messages per `io_uring_enter`.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Sends `segments` as one GSO message (see [`send_gso`](crate::send_gso)) to each of
    /// `dests`, one `io_uring_enter` per [`entries`](Self::entries) destinations. Returns one
    /// outcome per destination, in order.
    ///
    /// Every destination must be of one address family. Errors are for the ring or the
    /// segments as a whole; per-reader failures are in the outcomes.
    pub fn send_gso_to_many(
        &mut self,
        fd: impl AsFd,
        segments: &[IoSlice<'_>],
        dests: &[RawAddr],
    ) -> io::Result<&[SendOutcome]> {
        if self.broken {
            return Err(io::Error::other("io_uring sender failed earlier"));
        }
        self.outcomes.clear();
        let Some(first) = dests.first() else {
            return Ok(&self.outcomes);
        };
        let control = crate::gso::gso_control(segments, first.is_ipv6())?;
        let fd = types::Fd(fd.as_fd().as_raw_fd());
        for chunk in dests.chunks(self.entries) {
            // Capacity is `entries` and chunks are no longer: no reallocation, so the header
            // addresses handed to the kernel stay put.
            self.hdrs.clear();
            self.hdrs.extend(chunk.iter().map(|d| send_msghdr(d, segments, control.as_ref())));
            let base = self.outcomes.len();
            self.outcomes.extend(chunk.iter().map(|_| SendOutcome::WouldBlock));
            {
                let mut sq = self.ring.submission();
                for (i, hdr) in self.hdrs.iter().enumerate() {
                    let sqe = opcode::SendMsg::new(fd, hdr)
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                        .user_data(i as u64);
                    // SAFETY: the header and everything it points at (dest, segments, control,
                    // payload) stay alive and unmoved until `reap_all` below has seen this
                    // entry's completion, or, if the ring breaks first, the entry is never
                    // submitted. The queue has room: it is empty and chunk <= entries.
                    if unsafe { sq.push(&sqe) }.is_err() {
                        // Cannot happen (empty queue, chunk <= entries); if it does, the entries
                        // already pushed must never be submitted once this call returns.
                        self.broken = true;
                        return Err(io::Error::other("io_uring submission queue full"));
                    }
                }
            }
            self.reap_all(chunk.len(), base)?;
        }
        Ok(&self.outcomes)
    }

    /// Submits what is queued and waits for `n` completions, recording them from `base` on.
    fn reap_all(&mut self, n: usize, base: usize) -> io::Result<()> {
        let mut reaped = 0;
        let mut stalls = 0;
        while reaped < n {
            // Waits for all remaining completions when everything got submitted; returns early
            // (the kernel skips the wait) when a submission was short.
            let entered = self.ring.submit_and_wait(n - reaped);
            let before = reaped;
            for cqe in self.ring.completion() {
                let i = cqe.user_data() as usize;
                let r = cqe.result();
                if let Some(slot) = self.outcomes.get_mut(base + i) {
                    *slot = if r >= 0 {
                        SendOutcome::Sent(r as usize)
                    } else if r == -libc::EAGAIN || r == -libc::ENOBUFS {
                        SendOutcome::WouldBlock
                    } else {
                        SendOutcome::Failed(io::Error::from_raw_os_error(-r))
                    };
                }
                reaped += 1;
            }
            match entered {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) => {}
                Err(e) => return Err(self.fail(e, n - reaped)),
            }
            if reaped == before {
                stalls += 1;
                if stalls > MAX_STALLS {
                    return Err(
                        self.fail(io::Error::other("io_uring made no progress"), n - reaped)
                    );
                }
            } else {
                stalls = 0;
            }
        }
        Ok(())
    }

    /// Marks the ring unusable. If requests are in flight (submitted, not completed) they may
    /// still read the caller's buffers after we return, which would be unsound: abort instead.
    fn fail(&mut self, e: io::Error, outstanding: usize) -> io::Error {
        self.broken = true;
        let unsubmitted = self.ring.submission().len();
        if outstanding > unsubmitted {
            eprintln!(
                "manifold-udp: io_uring failed with {} requests in flight: {e}",
                outstanding - unsubmitted
            );
            std::process::abort();
        }
        e
    }
}

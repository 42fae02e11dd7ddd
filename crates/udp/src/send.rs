//! `sendto`, `sendmsg` with `UDP_SEGMENT`, and `sendmmsg` batches.

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use crate::addr::RawAddr;
use crate::gso::{gso_control, gso_runs, GsoCmsg, GSO_MAX_BYTES_V4, GSO_MAX_BYTES_V6};

/// Largest `vlen` the kernel accepts for one `sendmmsg` (`UIO_MAXIOV`).
const MMSG_MAX: usize = 1024;

/// One datagram for [`MmsgSender::send`]: a destination and the payload as gathered slices.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// Where it goes.
    pub dest: RawAddr,
    /// The payload, gathered in order (e.g. an RTP header and a shared packet body).
    pub bufs: &'a [IoSlice<'a>],
}

/// What one batched send did.
///
/// Items (datagrams, or GSO messages for [`MmsgSender::send_gso_to_many`], or packets for
/// [`MmsgSender::send_frame`]) are handed to the kernel in order. The first
/// [`consumed`](Self::consumed) items are done, successfully or not; when that is fewer than the
/// batch, the socket would block ([`would_block`](Self::would_block)) and the caller resumes from
/// there when it is writable again (or skips those readers: a UDP reader that cannot keep up
/// loses packets, it never stalls the others).
#[derive(Debug, Default)]
pub struct BatchSent {
    /// Items the kernel accepted.
    pub sent: usize,
    /// Items the kernel refused one by one (e.g. `EMSGSIZE`, unreachable); skipped, not retried.
    pub failed: usize,
    /// The first of those refusals.
    pub first_error: Option<io::Error>,
    /// The socket ran out of buffer space (`EAGAIN`/`ENOBUFS`) before the end of the batch.
    pub would_block: bool,
}

impl BatchSent {
    /// Items done, from the front of the batch: `sent + failed`.
    pub fn consumed(&self) -> usize {
        self.sent + self.failed
    }

    fn add(&mut self, other: BatchSent) {
        self.sent += other.sent;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.would_block |= other.would_block;
    }
}

/// An empty message header.
pub(crate) fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is pointers and integers; all-zero (null, 0) is a valid value.
    unsafe { mem::zeroed() }
}

/// A header sending `iov` to `dest` with an optional control message. The kernel only reads
/// through these pointers on the send paths, so casting away const is sound.
pub(crate) fn send_msghdr(
    dest: &RawAddr,
    iov: &[IoSlice<'_>],
    control: Option<&GsoCmsg>,
) -> libc::msghdr {
    let mut h = empty_msghdr();
    h.msg_name = dest.as_ptr().cast_mut().cast();
    h.msg_namelen = dest.socklen();
    // IoSlice is guaranteed ABI-compatible with iovec on Unix: the caller's slice array is
    // used as is, one iovec array shared by every reader of a frame.
    h.msg_iov = iov.as_ptr().cast_mut().cast();
    h.msg_iovlen = iov.len() as _;
    if let Some(c) = control {
        h.msg_control = c.as_ptr();
        h.msg_controllen = GsoCmsg::SPACE as _;
    }
    h
}

fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// Errors that say the socket itself is unusable, as opposed to one message being refused.
fn is_socket_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::EDESTADDRREQ | libc::ENOTCONN)
    )
}

fn retry_eintr(mut f: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends one datagram with `sendto`.
pub fn send_to(fd: impl AsFd, buf: &[u8], dest: &RawAddr) -> io::Result<usize> {
    let fd = raw(&fd);
    retry_eintr(|| {
        // SAFETY: buf is valid for buf.len() bytes, dest for socklen() bytes; both outlive the call.
        unsafe {
            libc::sendto(fd, buf.as_ptr().cast(), buf.len(), 0, dest.as_ptr(), dest.socklen())
        }
    })
}

/// Sends `segments` to `dest` as one `sendmsg` with a `UDP_SEGMENT` control message: the
/// kernel (or the NIC) cuts them into one datagram per segment.
///
/// The segments must be GSO-able ([`gso_segment_size`](crate::gso_segment_size)), else
/// `InvalidInput`; use [`MmsgSender::send_frame`] for frames of any shape. The iovec points at
/// the caller's buffers: nothing is copied in user space. Returns the bytes sent (all of them:
/// UDP sends are all-or-nothing).
pub fn send_gso(fd: impl AsFd, dest: &RawAddr, segments: &[IoSlice<'_>]) -> io::Result<usize> {
    sendmsg_gso(raw(&fd), dest, segments)
}

fn sendmsg_gso(fd: RawFd, dest: &RawAddr, segments: &[IoSlice<'_>]) -> io::Result<usize> {
    let control = gso_control(segments, dest.is_ipv6())?;
    let hdr = send_msghdr(dest, segments, control.as_ref());
    retry_eintr(|| {
        // SAFETY: hdr points at dest, segments and control, all alive for the call; the kernel
        // only reads them.
        unsafe { libc::sendmsg(fd, &hdr, 0) }
    })
}

/// Drives a batch through repeated `sendmmsg` calls: `call(start)` sends some items from `start`
/// on and returns how many the kernel took. Handles partial sends, `EINTR`, `EAGAIN`, and
/// per-message refusals (which `sendmmsg` reports as a short count, then as the error of the
/// next call).
fn drive(total: usize, mut call: impl FnMut(usize) -> io::Result<usize>) -> io::Result<BatchSent> {
    let mut out = BatchSent::default();
    let mut pos = 0;
    while pos < total {
        match call(pos) {
            // vlen > 0 never returns 0; treat it as "try later" rather than spin.
            Ok(0) => {
                out.would_block = true;
                break;
            }
            Ok(n) => {
                out.sent += n;
                pos += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_would_block(&e) => {
                out.would_block = true;
                break;
            }
            Err(e) if is_socket_error(&e) => return Err(e),
            Err(e) => {
                out.failed += 1;
                out.first_error.get_or_insert(e);
                pos += 1;
            }
        }
    }
    Ok(out)
}

/// Reusable scratch for `sendmmsg` batches; one per shard.
///
/// Sends at most `batch` messages per syscall. The scratch headers only point at caller memory
/// during a call.
pub struct MmsgSender {
    hdrs: Vec<libc::mmsghdr>,
    batch: usize,
}

// SAFETY: the raw pointers inside `hdrs` are written and used only within one `&mut self` call
// and are dead (never read again) afterwards, so moving the scratch to another thread is sound.
unsafe impl Send for MmsgSender {}

impl std::fmt::Debug for MmsgSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgSender").field("batch", &self.batch).finish()
    }
}

impl MmsgSender {
    /// Scratch for up to `batch` messages per `sendmmsg` (clamped to 1..=1024).
    pub fn new(batch: usize) -> Self {
        let batch = batch.clamp(1, MMSG_MAX);
        MmsgSender { hdrs: Vec::with_capacity(batch), batch }
    }

    /// Messages per `sendmmsg` call.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One `sendmmsg` per `batch` items; `fill(i)` builds item `i`'s header.
    fn send_with(
        &mut self,
        fd: RawFd,
        total: usize,
        mut fill: impl FnMut(usize) -> libc::msghdr,
    ) -> io::Result<BatchSent> {
        let batch = self.batch;
        let hdrs = &mut self.hdrs;
        drive(total, |start| {
            let n = (total - start).min(batch);
            hdrs.clear();
            hdrs.extend((start..start + n).map(|i| libc::mmsghdr { msg_hdr: fill(i), msg_len: 0 }));
            // SAFETY: hdrs holds n initialised headers; each points at caller memory (addresses,
            // iovecs, buffers, control messages) borrowed for this whole call.
            let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as usize)
            }
        })
    }

    /// Sends each datagram (any destinations, any payloads).
    pub fn send(&mut self, fd: impl AsFd, datagrams: &[Datagram<'_>]) -> io::Result<BatchSent> {
        self.send_with(raw(&fd), datagrams.len(), |i| {
            send_msghdr(&datagrams[i].dest, datagrams[i].bufs, None)
        })
    }

    /// Sends the same payload to every destination: one packet to many readers.
    pub fn send_to_many(
        &mut self,
        fd: impl AsFd,
        payload: &[IoSlice<'_>],
        dests: &[RawAddr],
    ) -> io::Result<BatchSent> {
        self.send_with(raw(&fd), dests.len(), |i| send_msghdr(&dests[i], payload, None))
    }

    /// Sends the same GSO message (`segments`, see [`send_gso`]) to every destination: a whole
    /// frame to many readers in one syscall per `batch` readers. Counts are in messages
    /// (readers), each worth `segments.len()` datagrams.
    ///
    /// Every destination must be of one address family (the size limit differs).
    pub fn send_gso_to_many(
        &mut self,
        fd: impl AsFd,
        segments: &[IoSlice<'_>],
        dests: &[RawAddr],
    ) -> io::Result<BatchSent> {
        let Some(first) = dests.first() else {
            return Ok(BatchSent::default());
        };
        let control = gso_control(segments, first.is_ipv6())?;
        let control = control.as_ref();
        self.send_with(raw(&fd), dests.len(), |i| send_msghdr(&dests[i], segments, control))
    }

    /// Sends one frame's packets to one reader with the fewest syscalls: each GSO-able run (see
    /// [`gso_runs`](crate::gso_runs)) as one `sendmsg` with `UDP_SEGMENT`, the odd-sized rest
    /// batched with `sendmmsg`. Counts are in packets.
    pub fn send_frame(
        &mut self,
        fd: impl AsFd,
        dest: &RawAddr,
        packets: &[IoSlice<'_>],
    ) -> io::Result<BatchSent> {
        let fd = raw(&fd);
        let max = if dest.is_ipv6() { GSO_MAX_BYTES_V6 } else { GSO_MAX_BYTES_V4 };
        let mut out = BatchSent::default();
        for run in gso_runs(packets, max) {
            let part = &packets[run.range.clone()];
            let done = match run.segment_size {
                None => self.send_with(fd, part.len(), |i| {
                    send_msghdr(dest, std::slice::from_ref(&part[i]), None)
                })?,
                Some(_) => match sendmsg_gso(fd, dest, part) {
                    Ok(_) => BatchSent { sent: part.len(), ..BatchSent::default() },
                    Err(e) if is_would_block(&e) => {
                        BatchSent { would_block: true, ..BatchSent::default() }
                    }
                    Err(e) if is_socket_error(&e) => return Err(e),
                    Err(e) => BatchSent {
                        failed: part.len(),
                        first_error: Some(e),
                        ..BatchSent::default()
                    },
                },
            };
            let stop = done.would_block;
            out.add(done);
            if stop {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    /// Replays scripted `sendmmsg` results and records the start of each call.
    fn replay(total: usize, script: Vec<io::Result<usize>>) -> (io::Result<BatchSent>, Vec<usize>) {
        let mut script = script.into_iter();
        let mut starts = Vec::new();
        let r = drive(total, |start| {
            starts.push(start);
            script.next().unwrap_or(Ok(total - start))
        });
        (r, starts)
    }

    #[test]
    fn partial_sends_resume_where_they_stopped() {
        let (r, starts) = replay(100, vec![Ok(64), Ok(10), Ok(26)]);
        let r = r.unwrap();
        assert_eq!((r.sent, r.failed, r.would_block), (100, 0, false));
        assert_eq!(starts, vec![0, 64, 74]);
    }

    #[test]
    fn eagain_stops_and_reports_position() {
        let (r, starts) = replay(100, vec![Ok(30), Err(err(libc::EAGAIN))]);
        let r = r.unwrap();
        assert_eq!((r.sent, r.consumed(), r.would_block), (30, 30, true));
        assert_eq!(starts, vec![0, 30]);
        let (r, _) = replay(10, vec![Err(err(libc::ENOBUFS))]);
        assert!(r.unwrap().would_block);
    }

    #[test]
    fn refused_message_is_skipped_not_fatal() {
        // sendmmsg: 5 sent, then the 6th refused, then the rest.
        let (r, starts) = replay(10, vec![Ok(5), Err(err(libc::EMSGSIZE)), Ok(4)]);
        let r = r.unwrap();
        assert_eq!((r.sent, r.failed, r.consumed()), (9, 1, 10));
        assert_eq!(r.first_error.unwrap().raw_os_error(), Some(libc::EMSGSIZE));
        assert_eq!(starts, vec![0, 5, 6]);
    }

    #[test]
    fn eintr_retries_and_bad_socket_fails() {
        let (r, starts) = replay(4, vec![Err(err(libc::EINTR)), Ok(4)]);
        assert_eq!(r.unwrap().sent, 4);
        assert_eq!(starts, vec![0, 0]);
        let (r, _) = replay(4, vec![Err(err(libc::EBADF))]);
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}

//! What the writer of one RTSP connection has to send ([`ConnOut`]): responses first, then
//! the media of its live TCP readers, drained from their queues. Shared by the connection's
//! reader task (responses), its writer task, and the shard (closing, BYEs).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use crate::notify::Notify;

/// One connection's outgoing side.
#[derive(Debug)]
pub(crate) struct ConnOut {
    /// The connection's id on its shard.
    pub(crate) id: u64,
    /// The peer, for logs.
    pub(crate) peer: SocketAddr,
    /// Encoded responses not yet written.
    pub(crate) control: RefCell<Vec<u8>>,
    /// Readers whose media goes out on this connection (TCP readers): (stream, reader), to
    /// drain through the shard.
    pub(crate) readers: RefCell<Vec<(u64, u64)>>,
    /// Wakes the writer; its readers hold it too.
    pub(crate) wake: Rc<Notify>,
    /// Set by the writer each time it took the queued responses: a reader task holding back
    /// (too many responses unread) waits on it.
    pub(crate) drained: Notify,
    /// Set when the connection is closing; the writer stops.
    pub(crate) closed: Cell<bool>,
}

impl ConnOut {
    /// An idle connection output `id` for `peer`.
    pub(crate) fn new(id: u64, peer: SocketAddr) -> ConnOut {
        ConnOut {
            id,
            peer,
            control: RefCell::new(Vec::new()),
            readers: RefCell::new(Vec::new()),
            wake: Rc::default(),
            drained: Notify::default(),
            closed: Cell::new(false),
        }
    }

    /// Queues encoded bytes (a response, an interleaved RTCP BYE) and wakes the writer.
    pub(crate) fn send_control(&self, bytes: &[u8]) {
        self.control.borrow_mut().extend_from_slice(bytes);
        self.wake.notify();
    }

    /// Bytes of responses waiting for the writer.
    pub(crate) fn queued_control(&self) -> usize {
        self.control.borrow().len()
    }

    /// Marks the connection closing and wakes the writer so it stops.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.wake.notify();
    }
}

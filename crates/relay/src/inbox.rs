//! What the POST halves of an HTTP tunnel decoded, waiting for its GET half's connection to
//! read it as RTSP ([`Inbox`]): a bounded byte queue with one waiting reader, filled on the
//! GET's shard (directly, or from the channel mesh when the POST landed on another shard).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::Waker;

/// Decoded RTSP bytes for one tunnel's GET connection.
#[derive(Debug)]
pub(crate) struct Inbox {
    bytes: RefCell<VecDeque<u8>>,
    max: usize,
    waker: RefCell<Option<Waker>>,
    /// The POSTs sent more than `max` bytes the GET side had not read: the tunnel is closed.
    overflowed: Cell<bool>,
}

impl Inbox {
    /// An empty inbox holding at most `max` bytes.
    pub(crate) fn new(max: usize) -> Inbox {
        Inbox {
            bytes: RefCell::default(),
            max,
            waker: RefCell::default(),
            overflowed: Cell::new(false),
        }
    }

    /// Adds decoded bytes and wakes the reader; false (and the tunnel breaks) when they do not
    /// fit.
    pub(crate) fn push(&self, data: &[u8]) -> bool {
        let mut bytes = self.bytes.borrow_mut();
        if bytes.len() + data.len() > self.max {
            self.overflowed.set(true);
        } else {
            bytes.extend(data);
        }
        drop(bytes);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
        !self.overflowed.get()
    }

    /// Moves up to `buf.len()` bytes into `buf`: `Some(n)` (0 when empty), `None` when the
    /// inbox overflowed.
    pub(crate) fn take(&self, buf: &mut [u8]) -> Option<usize> {
        if self.overflowed.get() {
            return None;
        }
        let mut bytes = self.bytes.borrow_mut();
        let n = buf.len().min(bytes.len());
        for (slot, b) in buf.iter_mut().zip(bytes.drain(..n)) {
            *slot = b;
        }
        Some(n)
    }

    /// Registers the task to wake when bytes arrive.
    pub(crate) fn wait(&self, waker: &Waker) {
        *self.waker.borrow_mut() = Some(waker.clone());
    }
}

//! A single-waiter wake-up flag for tasks on one shard: `notify` from anywhere on the shard,
//! `wait` in the one task that owns the work (a connection's writer, a pending PLAY).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A level-triggered flag with one waiter: `notify` sets it and wakes the waiter; `wait`
/// returns once it is set, clearing it.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Sets the flag and wakes the waiter, if any.
    pub(crate) fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits for the flag, then clears it.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait { notify: self }
    }
}

/// The future of [`Notify::wait`].
#[derive(Debug)]
pub(crate) struct Wait<'a> {
    notify: &'a Notify,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.set.replace(false) {
            return Poll::Ready(());
        }
        *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

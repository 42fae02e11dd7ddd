//! Sessions' deadlines, fired by one tick of the shard's grid instead of a glommio timer each.
//!
//! A session waits for its next bytes and for its next deadline (keep-alive, report, media
//! check, end of the hold) at once, and over TCP the bytes come at every frame. With a glommio
//! timer per wait, every frame armed a timer and removed it again: two B-tree and two hash-map
//! operations on the shard's timer table, about a tenth of the generator's CPU at 1,000 TCP
//! readers (perf/RESULTS.md, "One alarm per session"). The deadline itself moves only a few
//! times a minute, so an [`Alarm`] stays registered from one wait to the next, and a wait whose
//! deadline has not moved costs a comparison. [`Alarms::run`], one task per shard, wakes the
//! sessions whose deadline has come at each tick of the grid the deadlines are rounded to.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::grid;

/// One shard's registered deadlines, on the grid of `step`s from `anchor`.
#[derive(Debug)]
pub(crate) struct Alarms {
    anchor: Instant,
    step: Duration,
    /// By deadline (a point of the grid), then alarm: whom to wake.
    due: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_id: Cell<u64>,
}

impl Alarms {
    /// Alarms fired at the points of the grid of `step`s from `anchor`.
    pub(crate) fn new(anchor: Instant, step: Duration) -> Alarms {
        Alarms { anchor, step, due: RefCell::default(), next_id: Cell::new(0) }
    }

    /// A new alarm, registered with nothing yet.
    pub(crate) fn alarm(self: &Rc<Self>) -> Alarm {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Alarm { alarms: self.clone(), id, registered: None }
    }

    /// Wakes every alarm due at or before `now`, and forgets them; returns how many.
    pub(crate) fn fire(&self, now: Instant) -> usize {
        let woken = {
            let mut due = self.due.borrow_mut();
            // Everything after `now` stays (ids are below u64::MAX).
            let later = due.split_off(&(now, u64::MAX));
            std::mem::replace(&mut *due, later)
        };
        let n = woken.len();
        // Woken outside the borrow: a waker may run code that registers again.
        for waker in woken.into_values() {
            waker.wake();
        }
        n
    }

    /// Alarms registered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.due.borrow().len()
    }

    /// Fires due alarms at every point of the grid until `stop`.
    pub(crate) async fn run(self: Rc<Self>, stop: Rc<Cell<bool>>) {
        while !stop.get() {
            grid::sleep_until(grid::next_tick(self.anchor, self.step, Instant::now())).await;
            self.fire(Instant::now());
        }
    }

    fn insert(&self, at: Instant, id: u64, waker: Waker) {
        self.due.borrow_mut().insert((at, id), waker);
    }

    fn remove(&self, at: Instant, id: u64) {
        self.due.borrow_mut().remove(&(at, id));
    }
}

/// One session's deadline: at most one registration, kept from one wait to the next.
#[derive(Debug)]
pub(crate) struct Alarm {
    alarms: Rc<Alarms>,
    id: u64,
    /// The deadline and the waker registered for it, if any.
    registered: Option<(Instant, Waker)>,
}

impl Alarm {
    /// Completes at the first point of the grid at or after `at`, when a tick fires it (at
    /// once if that has passed).
    pub(crate) fn wait(&mut self, at: Instant) -> AlarmWait<'_> {
        let at = grid::round_up(self.alarms.anchor, self.alarms.step, at);
        AlarmWait { alarm: self, at }
    }

    fn unregister(&mut self) {
        if let Some((at, _)) = self.registered.take() {
            self.alarms.remove(at, self.id);
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The future of [`Alarm::wait`].
#[derive(Debug)]
pub(crate) struct AlarmWait<'a> {
    alarm: &'a mut Alarm,
    at: Instant,
}

impl Future for AlarmWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let alarm = &mut *this.alarm;
        if Instant::now() >= this.at {
            // Fired (and forgotten) by a tick, or passed before any: nothing of it may stay.
            alarm.unregister();
            return Poll::Ready(());
        }
        let current = alarm
            .registered
            .as_ref()
            .is_some_and(|(at, waker)| *at == this.at && waker.will_wake(cx.waker()));
        if !current {
            alarm.unregister();
            alarm.alarms.insert(this.at, alarm.id, cx.waker().clone());
            alarm.registered = Some((this.at, cx.waker().clone()));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// A deadline no test reaches, and near enough the anchor for a grid of nanoseconds to
    /// count its steps (`grid` counts at most `u32::MAX` of them).
    const LATER: Duration = Duration::from_secs(2);

    /// Alarms on a grid of nanoseconds: every deadline is a point of it.
    fn exact() -> Rc<Alarms> {
        Rc::new(Alarms::new(Instant::now(), Duration::from_nanos(1)))
    }

    fn poll(wait: &mut AlarmWait<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(wait).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_wait_registers_once_while_its_deadline_stays_and_moves_with_it() {
        let alarms = exact();
        let mut alarm = alarms.alarm();
        let (count, waker) = counter();
        let at = Instant::now() + LATER;
        for _ in 0..3 {
            assert_eq!(poll(&mut alarm.wait(at), &waker), Poll::Pending);
        }
        assert_eq!(alarms.len(), 1);
        let later = at + Duration::from_secs(1);
        assert_eq!(poll(&mut alarm.wait(later), &waker), Poll::Pending);
        assert_eq!(alarms.len(), 1, "the old deadline is forgotten");
        assert_eq!(alarms.fire(at), 0, "nothing is due at the old deadline any more");
        assert_eq!(alarms.fire(later), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(alarms.len(), 0);
    }

    #[test]
    fn fire_wakes_exactly_the_alarms_due() {
        let alarms = exact();
        let t0 = Instant::now() + LATER;
        let mut early = alarms.alarm();
        let mut same = alarms.alarm();
        let mut late = alarms.alarm();
        let (c_early, w_early) = counter();
        let (c_same, w_same) = counter();
        let (c_late, w_late) = counter();
        let _ = poll(&mut early.wait(t0), &w_early);
        let _ = poll(&mut same.wait(t0), &w_same);
        let _ = poll(&mut late.wait(t0 + Duration::from_millis(10)), &w_late);
        assert_eq!(alarms.fire(t0 - Duration::from_nanos(1)), 0);
        assert_eq!(alarms.fire(t0), 2);
        assert_eq!(
            (
                c_early.0.load(Ordering::SeqCst),
                c_same.0.load(Ordering::SeqCst),
                c_late.0.load(Ordering::SeqCst)
            ),
            (1, 1, 0)
        );
        assert_eq!(alarms.fire(t0 + Duration::from_millis(10)), 1);
        assert_eq!(c_late.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_past_deadline_is_ready_at_once_and_a_dropped_alarm_leaves_nothing() {
        let alarms = exact();
        let (_, waker) = counter();
        let mut alarm = alarms.alarm();
        assert_eq!(poll(&mut alarm.wait(Instant::now()), &waker), Poll::Ready(()));
        assert_eq!(alarms.len(), 0);
        let _ = poll(&mut alarm.wait(Instant::now() + LATER), &waker);
        assert_eq!(alarms.len(), 1);
        drop(alarm);
        assert_eq!(alarms.len(), 0);
    }

    #[test]
    fn another_waker_registers_again() {
        let alarms = exact();
        let mut alarm = alarms.alarm();
        let (first, w1) = counter();
        let (second, w2) = counter();
        let at = Instant::now() + LATER;
        let _ = poll(&mut alarm.wait(at), &w1);
        let _ = poll(&mut alarm.wait(at), &w2);
        assert_eq!(alarms.len(), 1);
        alarms.fire(at);
        assert_eq!((first.0.load(Ordering::SeqCst), second.0.load(Ordering::SeqCst)), (0, 1));
    }

    #[test]
    fn the_shard_tick_completes_a_wait_not_before_its_deadline() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let stop = Rc::new(Cell::new(false));
                let anchor = Instant::now();
                let step = Duration::from_millis(10);
                let alarms = Rc::new(Alarms::new(anchor, step));
                let ticker = glommio::spawn_local(alarms.clone().run(stop.clone()));
                let mut alarm = alarms.alarm();
                let at = grid::round_up(anchor, step, anchor + Duration::from_millis(35));
                alarm.wait(anchor + Duration::from_millis(35)).await;
                assert!(Instant::now() >= at);
                assert_eq!(alarms.len(), 0);
                stop.set(true);
                ticker.await;
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

//! One generator shard: a pinned glommio executor that starts its share of the schedule's
//! sessions (arrival `i` goes to shard `i % shards`) at their intended times, runs them, and
//! hands back its [`Metrics`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manifold_rtsp::session::client::ClientConfig;

use crate::alarm::Alarms;
use crate::args::{CpuList, UdpReadInterval};
use crate::client::{run_session, SessionEnv};
use crate::grid;
use crate::hlog::{IntervalBlob, IntervalRecorder, INTERVAL};
use crate::metrics::{Metric, Metrics};
use crate::progress::Live;
use crate::schedule::{Pacer, Schedule};
use crate::segment::Segment;
use crate::target::{Target, TrackInfo};
use crate::udp_media::{read_grid, UdpReading};
use manifold_dial::Dialer;

/// How often the health timer fires.
const HEALTH_TICK: Duration = grid::TIMER_STEP;

/// Everything a shard needs; cloned to every shard thread.
#[derive(Debug, Clone)]
pub(crate) struct ShardPlan {
    pub(crate) shards: usize,
    /// This process's part of the schedule: arrivals with `index % parts == part`.
    pub(crate) part: (u64, u64),
    pub(crate) schedule: Schedule,
    pub(crate) target: Target,
    pub(crate) dialer: Dialer,
    pub(crate) config: ClientConfig,
    pub(crate) tracks: Vec<TrackInfo>,
    pub(crate) connect_timeout: Duration,
    pub(crate) behind_tolerance: Duration,
    pub(crate) udp_rcvbuf: usize,
    pub(crate) udp_read_interval: UdpReadInterval,
    /// `--udp-receive ring`.
    pub(crate) udp_ring: bool,
    pub(crate) seed: u64,
    pub(crate) run_start: Instant,
    pub(crate) run_end: Instant,
    /// Past this no session is waited for: it is reported as stuck.
    pub(crate) run_deadline: Instant,
    /// `--media-timeout`.
    pub(crate) media_timeout: Duration,
    /// Most sessions this shard may have open at once (the open-file budget's share).
    pub(crate) cap: u64,
    pub(crate) live: Arc<Live>,
    /// Whether to keep per-interval histograms (`--hlog`).
    pub(crate) hlog: bool,
    /// `--no-play`: sessions set up and hold without PLAY.
    pub(crate) no_play: bool,
    /// `--no-rtcp`: sessions send no receiver reports.
    pub(crate) no_rtcp: bool,
}

/// What a shard hands back.
#[derive(Debug)]
pub(crate) struct ShardOutput {
    pub(crate) metrics: Metrics,
    pub(crate) intervals: Vec<IntervalBlob>,
    /// The CPUs the kernel lets this shard's thread run on (empty if it cannot be read).
    pub(crate) cpus: Vec<usize>,
}

/// Runs shard `shard` of the plan to the end and returns its measurements.
pub(crate) async fn run_shard(plan: ShardPlan, shard: usize) -> ShardOutput {
    let cpus = thread_cpus();
    let metrics = Rc::new(RefCell::new(Metrics::new()));
    let udp = Rc::new(UdpReading::new(
        plan.udp_read_interval,
        plan.udp_ring,
        plan.run_start,
        metrics.clone(),
        plan.live.clone(),
    ));
    let alarms = Rc::new(Alarms::new(plan.run_start, grid::TIMER_STEP));
    let env = Rc::new(SessionEnv {
        target: plan.target.clone(),
        dialer: Rc::new(plan.dialer.clone()),
        config: plan.config.clone(),
        tracks: plan.tracks.clone(),
        connect_timeout: plan.connect_timeout,
        udp_rcvbuf: plan.udp_rcvbuf,
        udp: udp.clone(),
        seed: plan.seed,
        run_start: plan.run_start,
        alarms: alarms.clone(),
        run_end: plan.run_end,
        run_deadline: plan.run_deadline,
        media_timeout: plan.media_timeout,
        no_play: plan.no_play,
        no_rtcp: plan.no_rtcp,
        metrics,
        live: plan.live.clone(),
        active: Cell::new(0),
    });
    let stop = Rc::new(Cell::new(false));
    let recorder = Rc::new(RefCell::new(IntervalRecorder::new()));
    let rotate = plan.hlog.then(|| (recorder.clone(), plan.run_start));
    let ticker = glommio::spawn_local(health_timer(env.clone(), stop.clone(), rotate));
    let udp_reader = glommio::spawn_local(read_grid(udp, stop.clone()));
    let alarm_ticker = glommio::spawn_local(alarms.run(stop.clone()));

    let mut pacer = Pacer::new(plan.behind_tolerance);
    let mut sessions = Vec::new();
    let shards = plan.shards.max(1) as u64;
    let (part, parts) = (plan.part.0, plan.part.1.max(1));
    let slice = Segment { index: part, parts };
    let mine = |index: u64| slice.owns(index) && (index / parts) % shards == shard as u64;
    for arrival in plan.schedule.arrivals().filter(|a| mine(a.index)) {
        env.metrics.borrow_mut().counts.scheduled += 1;
        let intended = plan.run_start + arrival.at;
        let now = Instant::now();
        if intended > now {
            glommio::timer::sleep(intended - now).await;
        }
        let now = Instant::now();
        let lag = pacer.start(arrival.at, now.saturating_duration_since(plan.run_start));
        let mut m = env.metrics.borrow_mut();
        m.record(Metric::StartLag, lag);
        if env.active.get() >= plan.cap {
            m.counts.clipped += 1;
            continue;
        }
        m.counts.started += 1;
        drop(m);
        plan.live.started.fetch_add(1, Ordering::Relaxed);
        sessions.push(glommio::spawn_local(run_session(env.clone(), arrival, intended)));
    }
    for s in sessions {
        s.await;
    }
    stop.set(true);
    ticker.await;
    udp_reader.await;
    alarm_ticker.await;
    let mut last = env.metrics.replace(Metrics::new());
    last.counts.behind_schedule += pacer.behind();
    let mut recorder = recorder.take();
    if plan.hlog {
        recorder.close(interval_of(plan.run_start), &last);
    } else {
        recorder.total.merge(&last);
    }
    ShardOutput { metrics: recorder.total, intervals: recorder.blobs, cpus }
}

/// The CPUs the calling thread may run on, as the kernel says (`Cpus_allowed_list` in
/// `/proc/thread-self/status`): what the shard was pinned to, read back.
fn thread_cpus() -> Vec<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/thread-self/status") else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|list| list.trim().parse::<CpuList>().ok())
        .map(|list| list.cpus().to_vec())
        .unwrap_or_default()
}

/// The interval `now` falls in (interval 0 until the run starts).
fn interval_of(run_start: Instant) -> u64 {
    Instant::now().saturating_duration_since(run_start).as_secs() / INTERVAL.as_secs().max(1)
}

/// Measures how late a 10 ms timer fires, until `stop`; with `rotate`, closes an interval
/// for the hlog each time one ends.
async fn health_timer(
    env: Rc<SessionEnv>,
    stop: Rc<Cell<bool>>,
    rotate: Option<(Rc<RefCell<IntervalRecorder>>, Instant)>,
) {
    let mut current = 0;
    while !stop.get() {
        // On the grid the sessions' deadlines fall on, so that it wakes the shard no more.
        let due = grid::next_tick(env.run_start, HEALTH_TICK, Instant::now());
        grid::sleep_until(due).await;
        let lag = Instant::now().saturating_duration_since(due);
        env.metrics.borrow_mut().record(Metric::TimerLag, lag);
        if let Some((recorder, run_start)) = &rotate {
            let now = interval_of(*run_start);
            if now > current {
                let closed = env.metrics.replace(Metrics::new());
                recorder.borrow_mut().close(current, &closed);
                current = now;
            }
        }
    }
}

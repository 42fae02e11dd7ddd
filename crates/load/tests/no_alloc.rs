//! The generator's per-packet path allocates nothing: once a track's receiver has seen its
//! first packets (its statistics and duplicate window set up), decoding interleaved frames
//! and accounting every packet (loss, jitter, gaps, end-to-end latency into the shard's
//! histograms) runs without one allocation. Counted with a counting global allocator, so the
//! test file is a crate of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// tests
// A global allocator is an unsafe trait; this one only counts and forwards to the system's.
#![allow(unsafe_code, reason = "the counting allocator")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use manifold_load::metrics::{Metric, Metrics};
use manifold_load::receiver::TrackReceiver;
use manifold_rtp::codec::Codec;
use manifold_rtsp::codec::{write_interleaved, Decoder, Item};
use manifold_rtsp::ChannelId;
use manifold_synth::{ExtensionIds, NtpTime, StreamConfig, SyntheticStream};

/// The system allocator, counting allocations (and reallocations) made on any thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes straight to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_and_accounting_a_packet_allocates_nothing() {
    // 2,000 packets of the synthetic stream (capture-time and counter stamps), as one
    // interleaved byte stream on channel 0, built before counting.
    let mut s = SyntheticStream::new(StreamConfig {
        target_bitrate: Some(2_000_000),
        ..StreamConfig::default()
    })
    .unwrap();
    let ntp0 = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut wire = Vec::new();
    let mut packet = Vec::new();
    let mut sent = 0;
    while sent < 2_000 {
        let due = s.next_frame_due();
        let at = NtpTime(ntp0.0 + ((due.as_nanos() << 32) / 1_000_000_000) as u64);
        while let Some(info) = s.poll_packet(due, at, &mut packet) {
            write_interleaved(ChannelId(0), &packet[..info.len], &mut wire).unwrap();
            sent += 1;
        }
    }
    let mut rx = TrackReceiver::new(90_000, Some(Codec::H264), ExtensionIds::default());
    let mut metrics = Metrics::new();
    let mut decoder = Decoder::default();
    let t0 = Instant::now();
    let arrival_ntp = NtpTime(ntp0.0 + (1 << 30));
    let mut handled = 0u64;
    let mut counted_from = None;
    let mut at = 0;
    while let Some((item, used)) = decoder.feed(&wire[at..]).unwrap() {
        let Item::Interleaved { payload, .. } = item else { panic!("only frames were written") };
        let arrival = t0 + Duration::from_micros(handled * 500);
        assert!(rx.handle_packet(arrival, arrival_ntp, payload, &mut metrics));
        handled += 1;
        at += used;
        // The first packets set the track up (statistics, duplicate window); count after.
        if handled == 100 {
            counted_from = Some(ALLOCATIONS.load(Ordering::Relaxed));
        }
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - counted_from.unwrap();
    assert_eq!(handled, 2_000);
    assert_eq!(metrics.counts.packets, 2_000);
    assert_eq!(metrics.counts.counted_by_counter, 2_000, "stamps parsed");
    assert!(metrics.histogram(Metric::E2e).len() > 1_000, "latencies recorded");
    assert_eq!(allocated, 0, "allocations in 1,900 packets' decode and accounting");
}

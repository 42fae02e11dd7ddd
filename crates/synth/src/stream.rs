//! The looping, paced, stamped RTP source.

use std::ops::Range;
use std::time::Duration;

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::{RtpTime, SeqNo, Ssrc};

use crate::clip::{nal_type, Clip};
use crate::sdp::MediaSdp;
use crate::stamps::ExtensionIds;
use crate::wire::{write_packet, Header, HEADER_LEN};
use crate::{SynthError, MAX_FPS};
use manifold_rtp::packetize::h264::Packetizer;

/// RTP clock rate of H.264 (RFC 6184).
pub const CLOCK_RATE: u32 = 90_000;
/// Default largest RTP packet (header, extensions and payload), in bytes.
pub const DEFAULT_MTU: usize = 1200;
/// Smallest accepted `mtu`: the 36-byte header with extensions plus 64 bytes of payload.
pub const MIN_MTU: usize = HEADER_LEN + 64;
/// Largest accepted `mtu`: the largest UDP payload over IPv4.
pub const MAX_MTU: usize = 65_507;
/// Highest accepted `target_bitrate`: 10 Gbit/s.
pub const MAX_BITRATE: u64 = 10_000_000_000;
/// Smallest filler packet: header, the filler NAL header byte and its trailing-bits byte.
const MIN_FILLER_PACKET: usize = HEADER_LEN + 2;
/// Filler NAL unit header: forbidden_zero_bit 0, nal_ref_idc 0, type 12.
const FILLER_HEADER: u8 = nal_type::FILLER;

/// How a [`SyntheticStream`] packetizes, paces and stamps the clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Frames per second (1..=1000), 25 by default, the clip's own rate. Other rates replay
    /// the same pictures faster or slower; the GOP stays in frames (see `gop`).
    pub fps: u32,
    /// Target bitrate in bits per second, counting whole RTP packets (header, extensions,
    /// payload; not UDP/IP). `None` sends the clip as is. Reached by appending filler-data
    /// NAL units to frames; must not be below [`SyntheticStream::natural_bitrate`].
    pub target_bitrate: Option<u64>,
    /// Largest RTP packet in bytes, header and extensions included; 1200 by default.
    pub mtu: usize,
    /// The SSRC of every packet. The default is a fixed value (`0x4D414E49`, "MANI"); a
    /// caller serving several synthetic streams should give each its own.
    pub ssrc: Ssrc,
    /// RTP payload type, 96 by default.
    pub payload_type: u8,
    /// Sequence number of the first packet (0 by default; RFC 3550 suggests a random one,
    /// which the caller, owning the randomness, may pick).
    pub initial_seq: u16,
    /// RTP timestamp of the first frame.
    pub initial_rtp_time: RtpTime,
    /// The packet counter of the first packet (0 by default). A source that may be restarted
    /// within one stream (a republish into a relay that keeps its readers' stream going)
    /// should pick a random one far from any other's, so that a receiver can tell the two
    /// sources' counters apart instead of taking the second's for duplicates.
    pub initial_counter: u64,
    /// extmap ids of abs-capture-time and the packet counter (1 and 2 by default).
    pub extension_ids: ExtensionIds,
    /// Send SPS and PPS together in one STAP-A rather than one packet each.
    pub aggregate_parameter_sets: bool,
    /// Frames per GOP: each of the clip's GOPs is cut after this many frames and the stream
    /// goes on at the next IDR (still decodable: a P-frame only refers to earlier frames of
    /// its own GOP). At most the clip's shortest GOP (25 for the embedded clip); `None` plays
    /// the clip as encoded.
    pub gop: Option<u32>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            fps: 25,
            target_bitrate: None,
            mtu: DEFAULT_MTU,
            ssrc: Ssrc(0x4d41_4e49),
            payload_type: 96,
            initial_seq: 0,
            initial_rtp_time: RtpTime(0),
            initial_counter: 0,
            extension_ids: ExtensionIds::default(),
            aggregate_parameter_sets: false,
            gop: None,
        }
    }
}

/// What [`SyntheticStream::poll_packet`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Length of the packet in the buffer. (0 only if `manifold-rtp` refused to write it,
    /// which the constructor rules out by writing the largest packet once.)
    pub len: usize,
    /// Sequence number, extended to 64 bits from `initial_seq`; the wire carries the low 16.
    pub seq: SeqNo,
    /// RTP timestamp of the packet's frame.
    pub rtp_time: RtpTime,
    /// Last packet of its frame (the RTP marker bit).
    pub marker: bool,
    /// The frame is an IDR (with SPS/PPS in front).
    pub keyframe: bool,
    /// Index of the frame since the stream started, across loops.
    pub frame: u64,
    /// The packet counter carried in the extension (`initial_counter` for the first packet).
    pub counter: u64,
    /// The packet carries filler data, not picture data.
    pub filler: bool,
}

/// Where the stream is within the frame it is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameCursor {
    /// Next index into `packets` among the frame's clip packets.
    next: usize,
    /// End of the frame's clip packets in `packets`.
    end: usize,
    /// Filler bytes (whole packets) still to send after the clip packets.
    filler_left: usize,
}

/// The synthetic H.264 source: the clip packetized once (RFC 6184 mode 1), then looped
/// forever with continuous sequence numbers, RTP timestamps advancing by `90000 / fps` per
/// frame (never jumping back at the loop), and every packet stamped with abs-capture-time and
/// the packet counter (see [`crate::stamps`]).
///
/// Sans-IO; time is the caller's: `now` is any monotonic `Duration` (e.g. since the runtime
/// started), and the capture time is the caller's NTP wall clock.
///
/// **Drain contract.** Wait until [`next_frame_due`](Self::next_frame_due), then call
/// [`poll_packet`](Self::poll_packet) until it returns `None`, sending each packet as it is
/// written. The first call starts the schedule: frame `n` is due at `start + n / fps`. All
/// packets of a due frame are returned back to back (the last has the marker set); if the
/// caller is late, every overdue frame follows at once, each with its own nominal RTP
/// timestamp, so the stream never drifts from real time (a caller suspended for minutes gets
/// the whole backlog at once).
#[derive(Debug, Clone)]
pub struct SyntheticStream {
    /// The configuration, validated.
    config: StreamConfig,
    /// The clip (kept for SDP and inspection).
    clip: Clip,
    /// All RTP payloads of one pass of the clip, concatenated.
    payloads: Vec<u8>,
    /// Byte range of each payload in `payloads`.
    packets: Vec<Range<usize>>,
    /// For each clip frame, its range in `packets`.
    frame_packets: Vec<Range<usize>>,
    /// The clip frames to play, in order, one loop's worth (the clip cut to `gop`).
    schedule: Vec<usize>,
    /// For each clip frame, its RTP packet bytes without filler.
    frame_bytes: Vec<u64>,
    /// The clip's bitrate with RTP overhead at `config.fps`, bits per second (rounded up).
    natural_bitrate: u64,
    /// `now` at the first poll.
    start: Option<Duration>,
    /// Frame being sent, or next to send, counted from the start across loops.
    frame: u64,
    /// Set while a frame's packets are being returned.
    cursor: Option<FrameCursor>,
    /// Sequence number of the next packet.
    seq: SeqNo,
    /// Packets sent so far (the next packet's counter).
    counter: u64,
    /// A filler NAL unit of the largest size but its last byte: header, then `0xFF`s.
    filler: Vec<u8>,
    /// Bitrate budget not yet spent, in bits times `fps` (so one frame adds exactly
    /// `target_bitrate` and a byte costs `8 * fps`).
    credit: i128,
}

impl SyntheticStream {
    /// A stream of the embedded clip.
    pub fn new(config: StreamConfig) -> Result<SyntheticStream, SynthError> {
        SyntheticStream::with_clip(config, Clip::embedded()?)
    }

    /// A stream of any clip (e.g. one with a different GOP, parsed with [`Clip::parse`]).
    pub fn with_clip(config: StreamConfig, clip: Clip) -> Result<SyntheticStream, SynthError> {
        if config.fps == 0 || config.fps > MAX_FPS {
            return Err(SynthError::InvalidFrameRate(config.fps));
        }
        if config.mtu < MIN_MTU {
            return Err(SynthError::MtuTooSmall { mtu: config.mtu, min: MIN_MTU });
        }
        if config.mtu > MAX_MTU {
            return Err(SynthError::MtuTooLarge(config.mtu));
        }
        if !config.extension_ids.is_valid() {
            return Err(SynthError::InvalidExtensionIds {
                capture_time: config.extension_ids.capture_time,
                counter: config.extension_ids.counter,
            });
        }
        if config.payload_type > 127 {
            return Err(SynthError::InvalidPayloadType(config.payload_type));
        }
        let packetizer = Packetizer::new(config.mtu - HEADER_LEN, config.aggregate_parameter_sets);
        let mut payloads = Vec::new();
        let mut packets = Vec::new();
        let mut frame_packets = Vec::with_capacity(clip.frame_count());
        let mut frame_bytes = Vec::with_capacity(clip.frame_count());
        let mut scratch = Vec::new();
        for index in 0..clip.frame_count() {
            scratch.clear();
            packetizer.packetize(clip.frame_nals(index), &mut scratch);
            let first = packets.len();
            let mut bytes = 0u64;
            for payload in &scratch {
                let at = payloads.len();
                payloads.extend_from_slice(payload);
                packets.push(at..payloads.len());
                bytes += (HEADER_LEN + payload.len()) as u64;
            }
            frame_packets.push(first..packets.len());
            frame_bytes.push(bytes);
        }
        let schedule = gop_schedule(&clip, config.gop)?;
        let loop_bits = u128::from(schedule.iter().map(|&i| frame_bytes[i]).sum::<u64>()) * 8;
        let frames = schedule.len() as u128;
        let natural_bitrate = u64::try_from((loop_bits * u128::from(config.fps)).div_ceil(frames))
            .unwrap_or(u64::MAX);
        if let Some(requested) = config.target_bitrate {
            if requested > MAX_BITRATE {
                return Err(SynthError::BitrateTooHigh(requested));
            }
            if requested < natural_bitrate {
                return Err(SynthError::BitrateBelowClip { requested, minimum: natural_bitrate });
            }
        }
        // The one packet write that could fail would fail on the largest packet: try it now.
        let max_payload = config.mtu - HEADER_LEN;
        let probe = Header {
            payload_type: config.payload_type,
            marker: true,
            seq: config.initial_seq,
            timestamp: config.initial_rtp_time,
            ssrc: config.ssrc,
            ids: config.extension_ids,
            capture_time: NtpTime(0),
            counter: 0,
        };
        write_packet(&mut Vec::new(), &probe, &vec![0; max_payload])?;
        let mut filler = vec![0xff; max_payload - 1];
        filler[0] = FILLER_HEADER;
        Ok(SyntheticStream {
            filler,
            seq: SeqNo(u64::from(config.initial_seq)),
            config,
            clip,
            payloads,
            packets,
            frame_packets,
            schedule,
            frame_bytes,
            natural_bitrate,
            start: None,
            frame: 0,
            cursor: None,
            counter: 0,
            credit: 0,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// The clip being looped.
    pub fn clip(&self) -> &Clip {
        &self.clip
    }

    /// The clip's own bitrate at this frame rate and packet size, RTP headers and
    /// extensions included: the lowest `target_bitrate` accepted.
    pub fn natural_bitrate(&self) -> u64 {
        self.natural_bitrate
    }

    /// The SDP media description of this stream.
    pub fn sdp(&self) -> MediaSdp {
        MediaSdp::new(
            self.config.payload_type,
            &self.clip.profile_level_id(),
            &self.clip.sprop_parameter_sets(),
            self.config.fps,
            self.config.extension_ids,
        )
    }

    /// When the next frame is due, on the caller's `now` timeline: `Duration::ZERO` before
    /// the first poll (due at once), the current frame's time while its packets are still
    /// being returned (already due), else the next frame's.
    pub fn next_frame_due(&self) -> Duration {
        match self.start {
            None => Duration::ZERO,
            Some(start) => start.saturating_add(self.frame_offset(self.frame)),
        }
    }

    /// The RTP timestamp of frame `frame` (counted from the start, across loops).
    pub fn rtp_time_of(&self, frame: u64) -> RtpTime {
        let ticks = u128::from(frame) * u128::from(CLOCK_RATE) / u128::from(self.config.fps);
        // Truncating to 32 bits is the RTP timestamp's own wraparound.
        RtpTime(self.config.initial_rtp_time.0.wrapping_add(ticks as u32))
    }

    /// The clip's NAL units (without start codes, SPS and PPS in front of an IDR) of frame
    /// `frame`, counted from the start across loops as [`PacketInfo::frame`] is: for a
    /// sender that frames access units itself (RTMP's FLV tags) rather than sending the RTP
    /// packets. Filler is not included: it comes as its own packets (`PacketInfo::filler`).
    pub fn frame_nals(&self, frame: u64) -> impl Iterator<Item = &[u8]> + '_ {
        // The remainder is below the schedule's length, a usize.
        let index = self.schedule[(frame % self.schedule.len() as u64) as usize];
        self.clip.frame_nals(index)
    }

    /// Packets written so far.
    pub fn packets_sent(&self) -> u64 {
        self.counter
    }

    /// Writes the next due packet into `buf` (cleared first; it grows to at most `mtu`
    /// bytes, so a reused buffer stops allocating), stamped with `capture_time`. Returns
    /// `None` when no packet is due at `now`; see the drain contract on the type.
    pub fn poll_packet(
        &mut self,
        now: Duration,
        capture_time: NtpTime,
        buf: &mut Vec<u8>,
    ) -> Option<PacketInfo> {
        let start = *self.start.get_or_insert(now);
        let mut cursor = match self.cursor {
            Some(cursor) => cursor,
            None => {
                if now < start.saturating_add(self.frame_offset(self.frame)) {
                    return None;
                }
                self.begin_frame()
            }
        };
        let clip_frame = self.clip_frame();
        buf.clear();
        let mut header = Header {
            payload_type: self.config.payload_type,
            marker: false,
            seq: self.seq.wire(),
            timestamp: self.rtp_time_of(self.frame),
            ssrc: self.config.ssrc,
            ids: self.config.extension_ids,
            capture_time,
            counter: self.config.initial_counter.wrapping_add(self.counter),
        };
        let filler = cursor.next == cursor.end;
        if filler {
            let size = next_filler_packet(cursor.filler_left, self.config.mtu);
            cursor.filler_left -= size;
            header.marker = cursor.filler_left == 0;
            // A filler NAL unit of `size - HEADER_LEN` bytes: header, 0xFF…, trailing bits.
            let nal_len = size - HEADER_LEN;
            if write_packet(buf, &header, &self.filler[..nal_len - 1]).is_ok() {
                buf.push(0x80);
            }
        } else {
            let range = self.packets[cursor.next].clone();
            cursor.next += 1;
            header.marker = cursor.next == cursor.end && cursor.filler_left == 0;
            // Cannot fail: checked with the largest packet at construction. If it did, the
            // packet would be reported with `len` 0 and the stream would go on.
            let _ = write_packet(buf, &header, &self.payloads[range]);
        }
        let info = PacketInfo {
            len: buf.len(),
            seq: self.seq,
            rtp_time: header.timestamp,
            marker: header.marker,
            keyframe: self.clip.is_keyframe(clip_frame),
            frame: self.frame,
            counter: header.counter,
            filler,
        };
        self.seq = SeqNo(self.seq.0.wrapping_add(1));
        self.counter += 1;
        if header.marker {
            self.cursor = None;
            self.frame += 1;
        } else {
            self.cursor = Some(cursor);
        }
        Some(info)
    }

    /// Index within the clip of the current frame.
    fn clip_frame(&self) -> usize {
        // The remainder is below the schedule's length, a usize.
        self.schedule[(self.frame % self.schedule.len() as u64) as usize]
    }

    /// Time from the start to frame `frame`.
    fn frame_offset(&self, frame: u64) -> Duration {
        let nanos = u128::from(frame) * 1_000_000_000 / u128::from(self.config.fps);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Starts the current frame: settles the bitrate budget and decides its filler.
    fn begin_frame(&mut self) -> FrameCursor {
        let index = self.clip_frame();
        let packets = self.frame_packets[index].clone();
        let mut filler_left = 0;
        if let Some(target) = self.config.target_bitrate {
            let byte_cost = 8 * i128::from(self.config.fps);
            self.credit += i128::from(target);
            self.credit -= byte_cost * i128::from(self.frame_bytes[index]);
            let available = usize::try_from(self.credit / byte_cost).unwrap_or(0);
            if available >= MIN_FILLER_PACKET {
                filler_left = available;
                self.credit -= byte_cost * available as i128;
            }
        }
        FrameCursor { next: packets.start, end: packets.end, filler_left }
    }
}

/// The clip frames one loop plays: every frame, or each GOP cut after `gop` frames.
fn gop_schedule(clip: &Clip, gop: Option<u32>) -> Result<Vec<usize>, SynthError> {
    let starts: Vec<usize> = clip.keyframes().collect();
    let lengths = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| starts.get(i + 1).copied().unwrap_or(clip.frame_count()) - start);
    let shortest = lengths.clone().min().unwrap_or(0);
    let Some(gop) = gop else { return Ok((0..clip.frame_count()).collect()) };
    let wanted = usize::try_from(gop).unwrap_or(usize::MAX);
    if wanted == 0 || wanted > shortest {
        return Err(SynthError::InvalidGop { requested: gop, max: shortest });
    }
    Ok(starts.iter().flat_map(|&start| start..start + wanted).collect())
}

/// Size of the next filler packet when `left` bytes of filler packets remain (`left` is at
/// least `MIN_FILLER_PACKET`): full packets, never leaving a remainder too small for one.
fn next_filler_packet(left: usize, mtu: usize) -> usize {
    if left <= mtu {
        left
    } else if left - mtu >= MIN_FILLER_PACKET {
        mtu
    } else {
        left - MIN_FILLER_PACKET
    }
}

//! What a session accepts from the server and when it gives up on it, sans-IO: the media
//! deadline ([`MediaWatch`]), the matching of answers to requests by CSeq ([`RequestLedger`])
//! and which UDP sources count as the server's ([`SourceFilter`]). Time comes in as `now`, so
//! each is tested with virtual time; `client.rs` only feeds them and acts on what they say.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use manifold_rtsp::header::PortRange;
use manifold_rtsp::Method;

/// Why a playing session's media is not good enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFault {
    /// Nothing arrived on `track` within the deadline after PLAY was answered.
    NoMedia {
        /// The silent track (its index in the SDP).
        track: usize,
    },
    /// Media arrived on `track`, then none for longer than the deadline.
    Stalled {
        /// The track (its index in the SDP).
        track: usize,
        /// How long it had been silent when the deadline passed.
        silent_for: Duration,
    },
}

/// Whether an SDP media kind is audio or video: what a viewer sees and hears, and what the
/// media deadline and the sender report count hold a server to.
pub fn is_audio_or_video(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("video") || kind.eq_ignore_ascii_case("audio")
}

/// The media deadline of one session, per track: a server that sends a presentation's audio
/// but not its video is as broken as one that sends nothing.
///
/// Only audio and video tracks are held to the deadline when there are any: other tracks
/// (ONVIF metadata, text) may send only on events. A presentation of none of those kinds has
/// every track held to it.
///
/// # Drain contract
///
/// * Call [`play_answered`](Self::play_answered) once PLAY is answered, and
///   [`media`](Self::media) with a track's latest arrival whenever it is known (it need not
///   be told of every packet: the latest arrival is enough).
/// * Wake at [`poll_timeout`](Self::poll_timeout); first tell it the latest arrivals, then
///   call [`handle_timeout`](Self::handle_timeout): a fault ends the session.
/// * [`stop`](Self::stop) when the session starts closing: no deadline applies after it.
#[derive(Debug, Clone)]
pub struct MediaWatch {
    timeout: Duration,
    play_answered: Option<Instant>,
    /// Per track, in SDP order: whether the deadline applies to it, and its latest arrival.
    tracks: Vec<(bool, Option<Instant>)>,
    stopped: bool,
}

impl MediaWatch {
    /// A watch whose deadline is `timeout` without media, for tracks of these SDP media
    /// kinds (`video`, `audio`, `application`, ...), in SDP order.
    pub fn new<'a>(timeout: Duration, kinds: impl IntoIterator<Item = &'a str>) -> MediaWatch {
        let kinds: Vec<&str> = kinds.into_iter().collect();
        let any_av = kinds.iter().any(|k| is_audio_or_video(k));
        let tracks = kinds.iter().map(|k| (!any_av || is_audio_or_video(k), None)).collect();
        MediaWatch { timeout, play_answered: None, tracks, stopped: false }
    }

    /// PLAY was answered at `now` (later calls keep the first).
    pub fn play_answered(&mut self, now: Instant) {
        self.play_answered.get_or_insert(now);
    }

    /// Media arrived on `track` at `at` (earlier times than one already known, and tracks
    /// the SDP did not have, are ignored).
    pub fn media(&mut self, track: usize, at: Instant) {
        if let Some((_, last)) = self.tracks.get_mut(track) {
            *last = Some(last.map_or(at, |l| l.max(at)));
        }
    }

    /// No deadline from now on (the session is closing).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// When the first deadline passes if no more media arrives; `None` before PLAY is
    /// answered, once stopped, or with no track held to it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due().map(|(_, due, _)| due)
    }

    /// The fault, if a track's deadline has passed at `now` (the first track's that did).
    pub fn handle_timeout(&self, now: Instant) -> Option<MediaFault> {
        let (track, due, last) = self.due()?;
        if now < due {
            return None;
        }
        Some(match last {
            None => MediaFault::NoMedia { track },
            Some(last) => {
                MediaFault::Stalled { track, silent_for: now.saturating_duration_since(last) }
            }
        })
    }

    /// The held track whose deadline comes first: its index, the deadline and its latest
    /// arrival.
    fn due(&self) -> Option<(usize, Instant, Option<Instant>)> {
        if self.stopped {
            return None;
        }
        let play = self.play_answered?;
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, (held, _))| *held)
            // Media that came before PLAY's answer (allowed by RFC 2326) does not move the
            // deadline earlier than PLAY plus the timeout.
            .map(|(i, &(_, last))| (i, last.map_or(play, |m| m.max(play)) + self.timeout, last))
            .min_by_key(|&(i, due, _)| (due, i))
    }
}

/// An answer whose CSeq is not the one of the request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CseqMismatch {
    /// The answer names another request.
    #[error("answer with CSeq {got:?} while {method} (CSeq {expected}) was in flight")]
    Other {
        /// The answer's CSeq (`None`: it had none).
        got: Option<u32>,
        /// The in-flight request's.
        expected: u32,
        /// The in-flight request's method.
        method: Method,
    },
    /// An answer with no request in flight.
    #[error("answer with CSeq {got:?} while no request was in flight")]
    Unsolicited {
        /// The answer's CSeq.
        got: Option<u32>,
    },
}

/// The requests in flight on a connection, by CSeq: round-trip times belong to the request
/// the answer names, and an answer naming no request in flight is the server's error.
#[derive(Debug, Clone, Default)]
pub struct RequestLedger {
    in_flight: Vec<(u32, Method, Instant)>,
}

impl RequestLedger {
    /// An empty ledger.
    pub fn new() -> RequestLedger {
        RequestLedger::default()
    }

    /// Request `cseq` (`method`) was sent at `now`.
    pub fn sent(&mut self, cseq: u32, method: Method, now: Instant) {
        self.in_flight.push((cseq, method, now));
    }

    /// An answer with `cseq` arrived at `now`: the request it answers and its round trip.
    pub fn answered(
        &mut self,
        cseq: Option<u32>,
        now: Instant,
    ) -> Result<(Method, Duration), CseqMismatch> {
        let found = cseq.and_then(|c| self.in_flight.iter().position(|(s, _, _)| *s == c));
        match found {
            Some(i) => {
                let (_, method, sent) = self.in_flight.remove(i);
                Ok((method, now.saturating_duration_since(sent)))
            }
            None => Err(match self.in_flight.first() {
                Some(&(expected, method, _)) => CseqMismatch::Other { got: cseq, expected, method },
                None => CseqMismatch::Unsolicited { got: cseq },
            }),
        }
    }

    /// Whether a request is waiting for its answer.
    pub fn is_waiting(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The method of the oldest request waiting for its answer.
    pub fn waiting_for(&self) -> Option<Method> {
        self.in_flight.first().map(|r| r.1)
    }
}

/// Which datagrams on a UDP RTP socket are the server's: from its address and, when its SETUP
/// answer named them, its `server_port`s. Others are foreign and kept out of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFilter {
    ip: IpAddr,
    ports: Option<PortRange>,
}

impl SourceFilter {
    /// Datagrams from `ip`, and from `ports` when given.
    pub fn new(ip: IpAddr, ports: Option<PortRange>) -> SourceFilter {
        SourceFilter { ip, ports }
    }

    /// Whether a datagram from `source` is the server's (`None`: the kernel did not say; such
    /// datagrams cannot be judged and are not).
    pub fn accepts(&self, source: Option<SocketAddr>) -> bool {
        let Some(from) = source else { return false };
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        ip == self.ip
            && self.ports.is_none_or(|p| (p.first..=p.last.max(p.first)).contains(&from.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn silence_after_play_is_no_media_at_the_deadline() {
        let t0 = Instant::now();
        let mut w = MediaWatch::new(5 * S, ["video"]);
        assert_eq!(w.poll_timeout(), None, "no deadline before PLAY");
        w.play_answered(t0);
        assert_eq!(w.poll_timeout(), Some(t0 + 5 * S));
        assert_eq!(w.handle_timeout(t0 + 4 * S), None);
        assert_eq!(w.handle_timeout(t0 + 5 * S), Some(MediaFault::NoMedia { track: 0 }));
    }

    #[test]
    fn media_that_stops_is_stalled_and_steady_media_never_is() {
        let t0 = Instant::now();
        let mut w = MediaWatch::new(2 * S, ["video"]);
        w.play_answered(t0);
        for ms in (10..10_000).step_by(40) {
            let at = t0 + Duration::from_millis(ms);
            w.media(0, at);
            assert_eq!(w.handle_timeout(at), None);
        }
        let last = t0 + Duration::from_millis(9_970);
        assert_eq!(w.poll_timeout(), Some(last + 2 * S));
        assert_eq!(w.handle_timeout(last + S), None);
        let stalled = MediaFault::Stalled { track: 0, silent_for: 2 * S };
        assert_eq!(w.handle_timeout(last + 2 * S), Some(stalled));
    }

    #[test]
    fn media_before_the_play_answer_counts_and_closing_stops_the_watch() {
        let t0 = Instant::now();
        let mut w = MediaWatch::new(S, ["video"]);
        w.media(0, t0);
        w.play_answered(t0 + S / 2);
        assert_eq!(w.poll_timeout(), Some(t0 + S / 2 + S));
        assert!(matches!(w.handle_timeout(t0 + 2 * S), Some(MediaFault::Stalled { .. })));
        w.stop();
        assert_eq!(w.poll_timeout(), None);
        assert_eq!(w.handle_timeout(t0 + 10 * S), None);
    }

    #[test]
    fn every_audio_and_video_track_is_held_to_the_deadline_on_its_own() {
        let t0 = Instant::now();
        // Audio keeps coming, video never does: the session is no better than a silent one.
        let mut w = MediaWatch::new(5 * S, ["video", "audio"]);
        w.play_answered(t0);
        for ms in (20..6_000).step_by(20) {
            w.media(1, t0 + Duration::from_millis(ms));
        }
        assert_eq!(w.poll_timeout(), Some(t0 + 5 * S));
        assert_eq!(w.handle_timeout(t0 + 5 * S), Some(MediaFault::NoMedia { track: 0 }));
        // Both came, then the audio stopped while the video went on.
        let mut w = MediaWatch::new(2 * S, ["video", "audio"]);
        w.play_answered(t0);
        w.media(1, t0 + S);
        for ms in (40..8_000).step_by(40) {
            w.media(0, t0 + Duration::from_millis(ms));
        }
        assert_eq!(w.poll_timeout(), Some(t0 + 3 * S), "the audio's deadline comes first");
        let stalled = MediaFault::Stalled { track: 1, silent_for: 2 * S };
        assert_eq!(w.handle_timeout(t0 + 3 * S), Some(stalled));
        // A track the SDP did not have changes nothing.
        w.media(7, t0 + 10 * S);
        assert_eq!(w.poll_timeout(), Some(t0 + 3 * S));
    }

    #[test]
    fn event_tracks_beside_audio_or_video_are_not_held_and_alone_they_are() {
        let t0 = Instant::now();
        // ONVIF metadata beside video sends only on events.
        let mut w = MediaWatch::new(S, ["video", "application"]);
        w.play_answered(t0);
        for ms in (40..5_000).step_by(40) {
            w.media(0, t0 + Duration::from_millis(ms));
            assert_eq!(w.handle_timeout(t0 + Duration::from_millis(ms)), None);
        }
        // A presentation with no audio or video: its tracks are what there is to wait for.
        let mut w = MediaWatch::new(S, ["application"]);
        w.play_answered(t0);
        assert_eq!(w.handle_timeout(t0 + S), Some(MediaFault::NoMedia { track: 0 }));
        let mut w = MediaWatch::new(S, []);
        w.play_answered(t0);
        assert_eq!(w.poll_timeout(), None, "no track, no deadline");
    }

    #[test]
    fn round_trips_go_to_the_request_the_answer_names() {
        let t0 = Instant::now();
        let mut l = RequestLedger::new();
        l.sent(1, Method::Describe, t0);
        assert_eq!(l.answered(Some(1), t0 + S), Ok((Method::Describe, S)));
        assert!(!l.is_waiting());
        l.sent(2, Method::Setup, t0 + S);
        assert_eq!(
            l.answered(Some(7), t0 + 2 * S),
            Err(CseqMismatch::Other { got: Some(7), expected: 2, method: Method::Setup })
        );
        assert_eq!(
            l.answered(None, t0 + 2 * S),
            Err(CseqMismatch::Other { got: None, expected: 2, method: Method::Setup })
        );
        assert_eq!(l.answered(Some(2), t0 + 3 * S), Ok((Method::Setup, 2 * S)));
        assert_eq!(
            l.answered(Some(2), t0 + 3 * S),
            Err(CseqMismatch::Unsolicited { got: Some(2) }),
            "a second answer to one request"
        );
    }

    #[test]
    fn only_the_servers_address_and_ports_are_accepted() {
        let server: IpAddr = "127.0.0.1".parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let f = SourceFilter::new(server, Some(PortRange { first: 40000, last: 40001 }));
        let from = |ip: [u8; 4], port| Some(SocketAddr::from((ip, port)));
        assert!(f.accepts(from([127, 0, 0, 1], 40000)));
        assert!(!f.accepts(from([127, 0, 0, 1], 40002)), "another port");
        assert!(!f.accepts(from([127, 0, 0, 2], 40000)), "another address");
        assert!(!f.accepts(None));
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:40001"
            .parse()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1], 40001)));
        assert!(f.accepts(Some(mapped)), "an IPv4-mapped address is the same server");
        let any_port = SourceFilter::new(server, None);
        assert!(any_port.accepts(from([127, 0, 0, 1], 5)), "no server_port announced");
    }
}

//! UDP GSO: which packets can go out in one segmented send, and the `UDP_SEGMENT` cmsg.

use std::io::{self, IoSlice};
use std::mem;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};

/// Most segments the kernel takes in one GSO send (`UDP_MAX_SEGMENTS`; newer kernels allow
/// more, 64 works everywhere GSO does).
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Most payload bytes in one GSO send over IPv4: the whole super-datagram must still fit an
/// IPv4 length field (65535 - 20 IP - 8 UDP).
pub const GSO_MAX_BYTES_V4: usize = 65_507;

/// Most payload bytes in one GSO send over IPv6 (conservatively 65535 - 40 IP - 8 UDP).
pub const GSO_MAX_BYTES_V6: usize = 65_487;

/// The segment size if `segments` can go out as one GSO send, `None` otherwise.
///
/// GSO-able means: at least one segment, at most [`GSO_MAX_SEGMENTS`], all the same non-zero
/// size except the last, which may be shorter (but not empty: an empty last segment would
/// vanish), and at most `max_bytes` in total. A single segment is trivially GSO-able.
pub fn gso_segment_size(segments: &[IoSlice<'_>], max_bytes: usize) -> Option<usize> {
    let (last, init) = segments.split_last()?;
    let size = init.first().map_or(last.len(), |first| first.len());
    if size == 0 || size > usize::from(u16::MAX) || segments.len() > GSO_MAX_SEGMENTS {
        return None;
    }
    let equal = init.iter().all(|s| s.len() == size);
    let last_ok = !last.is_empty() && last.len() <= size;
    let total = size * init.len() + last.len();
    (equal && last_ok && total <= max_bytes).then_some(size)
}

/// Whether the kernel supports UDP GSO on this socket (Linux 4.18+).
pub fn gso_supported(fd: impl AsFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    rc == 0
}

/// A `UDP_SEGMENT` control message, laid out exactly as `CMSG_SPACE(sizeof(u16))` bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct GsoCmsg {
    hdr: libc::cmsghdr,
    segment_size: u16,
    // CMSG_SPACE rounds the payload up to the header's alignment.
    _pad: [u8; 6],
}

impl GsoCmsg {
    /// Bytes the kernel reads: `CMSG_SPACE(2)`.
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    pub(crate) const SPACE: usize = unsafe { libc::CMSG_SPACE(2) } as usize;

    pub(crate) fn new(segment_size: u16) -> Self {
        // SAFETY: cmsghdr is plain integers; all-zero is a valid value.
        let mut hdr: libc::cmsghdr = unsafe { mem::zeroed() };
        // SAFETY: CMSG_LEN is pure arithmetic on its argument.
        hdr.cmsg_len = unsafe { libc::CMSG_LEN(2) } as _;
        hdr.cmsg_level = libc::SOL_UDP;
        hdr.cmsg_type = libc::UDP_SEGMENT;
        GsoCmsg { hdr, segment_size, _pad: [0; 6] }
    }

    /// The pointer for `msg_control`; the kernel only reads through it.
    pub(crate) fn as_ptr(&self) -> *mut libc::c_void {
        (self as *const Self).cast_mut().cast()
    }
}

/// Checks `segments` for one GSO send to a destination of the given family and builds the
/// control message; `None` when a single segment needs no cmsg at all.
pub(crate) fn gso_control(segments: &[IoSlice<'_>], ipv6: bool) -> io::Result<Option<GsoCmsg>> {
    let max = if ipv6 { GSO_MAX_BYTES_V6 } else { GSO_MAX_BYTES_V4 };
    let size = gso_segment_size(segments, max).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "segments not GSO-able: need 1..=64 equal sizes (last may be shorter), <= 64 KiB",
        )
    })?;
    if segments.len() == 1 {
        return Ok(None);
    }
    // gso_segment_size bounds size to u16.
    Ok(Some(GsoCmsg::new(size as u16)))
}

/// One stretch of a frame: either one GSO send, or datagrams sent one message each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GsoRun {
    /// Which packets of the frame.
    pub range: Range<usize>,
    /// `Some(size)`: send the range as one GSO message with this segment size (two or more
    /// packets). `None`: send each packet as its own datagram (batch them with `sendmmsg`).
    pub segment_size: Option<usize>,
}

/// Splits a frame's packets into GSO runs and leftovers; see [`gso_runs`].
#[derive(Clone, Debug)]
pub struct GsoRuns<'s, 'a> {
    packets: &'s [IoSlice<'a>],
    max_bytes: usize,
    pos: usize,
}

/// Plans how to send a frame's packets to one destination with the fewest messages.
///
/// Greedy from the front: a run is a stretch of equal-sized packets, optionally ended by one
/// shorter packet, capped at [`GSO_MAX_SEGMENTS`] and `max_bytes`
/// ([`GSO_MAX_BYTES_V4`]/[`GSO_MAX_BYTES_V6`]). Packets that start no run of two or more are
/// grouped into `segment_size: None` runs. Runs come out in packet order and cover every packet.
pub fn gso_runs<'s, 'a>(packets: &'s [IoSlice<'a>], max_bytes: usize) -> GsoRuns<'s, 'a> {
    GsoRuns { packets, max_bytes, pos: 0 }
}

impl GsoRuns<'_, '_> {
    /// Length of the GSO run starting at `start`, if it has two or more packets.
    fn run_at(&self, start: usize) -> Option<(usize, usize)> {
        let p = &self.packets[start..];
        let size = p.first()?.len();
        if size == 0 || size > usize::from(u16::MAX) {
            return None;
        }
        let limit = p.len().min(GSO_MAX_SEGMENTS);
        let mut n = 1;
        let mut total = size;
        while n < limit && p[n].len() == size && total + size <= self.max_bytes {
            total += size;
            n += 1;
        }
        if n < limit
            && !p[n].is_empty()
            && p[n].len() < size
            && total + p[n].len() <= self.max_bytes
        {
            n += 1;
        }
        (n >= 2).then_some((n, size))
    }
}

impl Iterator for GsoRuns<'_, '_> {
    type Item = GsoRun;

    fn next(&mut self) -> Option<GsoRun> {
        let start = self.pos;
        if start >= self.packets.len() {
            return None;
        }
        if let Some((n, size)) = self.run_at(start) {
            self.pos = start + n;
            return Some(GsoRun { range: start..self.pos, segment_size: Some(size) });
        }
        let mut end = start + 1;
        while end < self.packets.len() && self.run_at(end).is_none() {
            end += 1;
        }
        self.pos = end;
        Some(GsoRun { range: start..end, segment_size: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(bufs: &[Vec<u8>]) -> Vec<IoSlice<'_>> {
        bufs.iter().map(|b| IoSlice::new(b)).collect()
    }

    fn sized(lens: &[usize]) -> Vec<Vec<u8>> {
        lens.iter().map(|&n| vec![0u8; n]).collect()
    }

    #[test]
    fn cmsg_layout_matches_libc() {
        assert_eq!(mem::size_of::<GsoCmsg>(), GsoCmsg::SPACE);
        let c = GsoCmsg::new(1200);
        let base = (&raw const c).cast::<u8>();
        // SAFETY: CMSG_DATA only does pointer arithmetic on a header we own.
        let data = unsafe { libc::CMSG_DATA((&raw const c.hdr).cast()) };
        assert_eq!(data as usize - base as usize, mem::offset_of!(GsoCmsg, segment_size));
    }

    #[test]
    fn segment_size_rules() {
        let max = GSO_MAX_BYTES_V4;
        assert_eq!(gso_segment_size(&slices(&sized(&[1200; 8])), max), Some(1200));
        assert_eq!(gso_segment_size(&slices(&sized(&[1200, 1200, 300])), max), Some(1200));
        assert_eq!(gso_segment_size(&slices(&sized(&[700])), max), Some(700));
        assert_eq!(gso_segment_size(&slices(&sized(&[1200, 300, 1200])), max), None);
        assert_eq!(gso_segment_size(&slices(&sized(&[1200, 1300])), max), None);
        assert_eq!(gso_segment_size(&slices(&sized(&[1200, 0])), max), None);
        assert_eq!(gso_segment_size(&slices(&sized(&[0, 0])), max), None);
        assert_eq!(gso_segment_size(&[], max), None);
        assert_eq!(gso_segment_size(&slices(&sized(&[100; 64])), max), Some(100));
        assert_eq!(gso_segment_size(&slices(&sized(&[100; 65])), max), None);
        // 55 x 1200 = 66000 > 65507
        assert_eq!(gso_segment_size(&slices(&sized(&[1200; 55])), max), None);
        assert_eq!(gso_segment_size(&slices(&sized(&[1200; 54])), max), Some(1200));
    }

    fn plan(lens: &[usize]) -> Vec<(Range<usize>, Option<usize>)> {
        let bufs = sized(lens);
        let s = slices(&bufs);
        gso_runs(&s, GSO_MAX_BYTES_V4).map(|r| (r.range, r.segment_size)).collect()
    }

    #[test]
    fn plans_whole_frame_as_one_run() {
        assert_eq!(plan(&[1200; 8]), vec![(0..8, Some(1200))]);
        assert_eq!(plan(&[1200, 1200, 1200, 400]), vec![(0..4, Some(1200))]);
    }

    #[test]
    fn plans_odd_sizes_as_singles() {
        assert_eq!(plan(&[100, 200, 300]), vec![(0..3, None)]);
        assert_eq!(plan(&[900]), vec![(0..1, None)]);
        assert_eq!(
            plan(&[100, 200, 1200, 1200, 500, 500]),
            vec![(0..2, None), (2..5, Some(1200)), (5..6, None)]
        );
        assert_eq!(plan(&[1200, 0, 1200, 1200]), vec![(0..2, None), (2..4, Some(1200))]);
        // Neither starts a run of two: both go out as single datagrams.
        assert_eq!(plan(&[300, 1200]), vec![(0..2, None)]);
    }

    #[test]
    fn plans_respect_segment_and_byte_caps() {
        let runs = plan(&[100; 130]);
        assert_eq!(runs, vec![(0..64, Some(100)), (64..128, Some(100)), (128..130, Some(100))]);
        let runs = plan(&[1200; 60]);
        assert_eq!(runs, vec![(0..54, Some(1200)), (54..60, Some(1200))]);
    }

    #[test]
    fn plans_cover_every_packet_in_order() {
        // Exhaustive over small frames of three sizes.
        let sizes = [0usize, 300, 1200];
        for n in 1..=6usize {
            for code in 0..3usize.pow(n as u32) {
                let lens: Vec<usize> =
                    (0..n).map(|i| sizes[code / 3usize.pow(i as u32) % 3]).collect();
                let bufs = sized(&lens);
                let s = slices(&bufs);
                let mut next = 0;
                for run in gso_runs(&s, GSO_MAX_BYTES_V4) {
                    assert_eq!(run.range.start, next, "{lens:?}");
                    assert!(run.range.end > run.range.start);
                    if let Some(size) = run.segment_size {
                        assert!(run.range.len() >= 2);
                        assert_eq!(
                            gso_segment_size(&s[run.range.clone()], GSO_MAX_BYTES_V4),
                            Some(size)
                        );
                    }
                    next = run.range.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}

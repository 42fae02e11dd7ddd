use super::*;
use crate::ntp::{CompactNtp, NtpTime};
use crate::{RtpTime, SeqNo, Ssrc};
use proptest::prelude::*;

/// ffmpeg's first receiver report in testdata/rtsp/ffmpeg-play-udp-media.pcap: RR, no blocks.
const CAPTURED_RR: &str = "80c9000100000000";
/// GStreamer's SR + SDES (CNAME, TOOL) from the same capture.
const CAPTURED_SR_SDES: &str = "80c80006ec3ec35deeacd15a06ea85441c7d5022000000d100006e71\
    81ca000cec3ec35d011b7573657239343831373831373540686f73742d3138323661653837\
    06094753747265616d657200000000";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn all(buf: &[u8]) -> Result<Vec<Packet<'_>>, ParseError> {
    packets(buf).collect()
}

/// An owned description of a packet, to build from and compare with what parsing gives back.
/// SDES chunks as owned `(source, [(item type, value)])`.
type Chunks = Vec<(Ssrc, Vec<(u8, Vec<u8>)>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Sr { ssrc: Ssrc, info: SenderInfo, blocks: Vec<ReportBlock> },
    Rr { ssrc: Ssrc, blocks: Vec<ReportBlock> },
    Sdes(Chunks),
    Bye { sources: Vec<Ssrc>, reason: Option<Vec<u8>> },
    App { subtype: u8, ssrc: Ssrc, name: [u8; 4], data: Vec<u8> },
    Raw { packet_type: u8, count: u8, body: Vec<u8> },
}

impl Model {
    fn write(&self, w: &mut Writer<'_>) -> Result<(), BuildError> {
        match self {
            Model::Sr { ssrc, info, blocks } => w.sender_report(*ssrc, info, blocks),
            Model::Rr { ssrc, blocks } => w.receiver_report(*ssrc, blocks),
            Model::Sdes(chunks) => {
                let items: Vec<Vec<SdesItem<'_>>> = chunks
                    .iter()
                    .map(|(_, items)| {
                        items
                            .iter()
                            .map(|(k, v)| SdesItem { kind: SdesKind(*k), value: v })
                            .collect()
                    })
                    .collect();
                let chunks: Vec<(Ssrc, &[SdesItem<'_>])> =
                    chunks.iter().zip(&items).map(|((s, _), i)| (*s, i.as_slice())).collect();
                w.sdes(&chunks)
            }
            Model::Bye { sources, reason } => w.bye(sources, reason.as_deref()),
            Model::App { subtype, ssrc, name, data } => w.app(*subtype, *ssrc, *name, data),
            Model::Raw { packet_type, count, body } => {
                w.raw(PacketType(*packet_type), *count, body)
            }
        }
    }

    fn of(p: &Packet<'_>) -> Model {
        match p {
            Packet::SenderReport(sr) => {
                assert!(sr.extension().is_empty());
                Model::Sr {
                    ssrc: sr.ssrc(),
                    info: sr.sender_info(),
                    blocks: sr.report_blocks().collect(),
                }
            }
            Packet::ReceiverReport(rr) => {
                assert!(rr.extension().is_empty());
                Model::Rr { ssrc: rr.ssrc(), blocks: rr.report_blocks().collect() }
            }
            Packet::Sdes(sdes) => Model::Sdes(
                sdes.chunks()
                    .map(|c| (c.ssrc(), c.items().map(|i| (i.kind.0, i.value.to_vec())).collect()))
                    .collect(),
            ),
            Packet::Bye(bye) => Model::Bye {
                sources: bye.sources().collect(),
                reason: bye.reason().map(<[u8]>::to_vec),
            },
            Packet::App(app) => Model::App {
                subtype: app.subtype(),
                ssrc: app.ssrc(),
                name: app.name(),
                data: app.data().to_vec(),
            },
            Packet::Unknown(u) => Model::Raw {
                packet_type: u.packet_type().0,
                count: u.count(),
                body: u.body().to_vec(),
            },
        }
    }
}

fn build(models: &[Model]) -> Vec<u8> {
    let mut buf = vec![0; 1 << 20];
    let mut w = Writer::new(&mut buf);
    for m in models {
        m.write(&mut w).unwrap();
    }
    let len = w.len();
    buf.truncate(len);
    buf
}

fn block() -> ReportBlock {
    ReportBlock {
        ssrc: Ssrc(0x0102_0304),
        fraction_lost: 3,
        cumulative_lost: -2,
        highest_seq: SeqNo(0x0001_0005),
        jitter: 77,
        last_sr: CompactNtp(0xb705_2000),
        delay_since_last_sr: CompactNtp(0x0005_4000),
    }
}

fn info() -> SenderInfo {
    SenderInfo {
        ntp: NtpTime(0x0102_0304_0506_0708),
        rtp: RtpTime(9),
        packet_count: 10,
        octet_count: 11,
    }
}

/// SR + SDES CNAME, the minimal regular compound.
fn regular() -> Vec<u8> {
    build(&[
        Model::Sr { ssrc: Ssrc(1), info: info(), blocks: vec![block(), block()] },
        Model::Sdes(vec![(Ssrc(1), vec![(1, b"user@host".to_vec())])]),
        Model::Bye { sources: vec![Ssrc(1)], reason: Some(b"done".to_vec()) },
    ])
}

#[test]
fn captured_receiver_report() {
    let buf = hex(CAPTURED_RR);
    let [Packet::ReceiverReport(rr)] = all(&buf).unwrap()[..] else { panic!() };
    assert_eq!(rr.ssrc(), Ssrc(0));
    assert_eq!(rr.report_blocks().len(), 0);
    assert_eq!(validate_compound(&buf), Ok(1));
}

#[test]
fn captured_sender_report_and_sdes() {
    let buf = hex(CAPTURED_SR_SDES);
    assert_eq!(validate_compound(&buf), Ok(2));
    let [Packet::SenderReport(sr), Packet::Sdes(sdes)] = all(&buf).unwrap()[..] else { panic!() };
    assert_eq!(sr.ssrc(), Ssrc(0xec3e_c35d));
    let info = sr.sender_info();
    assert_eq!(info.ntp, NtpTime::new(4_004_303_194, 116_032_836));
    assert_eq!(info.rtp, RtpTime(477_974_562));
    assert_eq!((info.packet_count, info.octet_count), (209, 28_273));
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].ssrc(), Ssrc(0xec3e_c35d));
    assert_eq!(chunks[0].cname(), Some(&b"user948178175@host-1826ae87"[..]));
    let items: Vec<_> = chunks[0].items().collect();
    assert_eq!(items[1], SdesItem { kind: SdesKind::TOOL, value: b"GStreamer" });
    // Rebuilding it gives the same bytes.
    assert_eq!(build(&all(&buf).unwrap().iter().map(Model::of).collect::<Vec<_>>()), buf);
}

#[test]
fn report_block_fields_survive_the_wire() {
    let buf = build(&[Model::Rr { ssrc: Ssrc(5), blocks: vec![block()] }]);
    assert_eq!(buf.len(), 8 + 24);
    // Fraction 3, cumulative -2 as 24-bit two's complement.
    assert_eq!(&buf[12..16], &[3, 0xff, 0xff, 0xfe]);
    let [Packet::ReceiverReport(rr)] = all(&buf).unwrap()[..] else { panic!() };
    assert_eq!(rr.report_blocks().next(), Some(block()));
}

#[test]
fn writer_clamps_cumulative_lost_and_truncates_highest_seq() {
    let big =
        ReportBlock { cumulative_lost: i32::MAX, highest_seq: SeqNo(0x7_0000_0001), ..block() };
    let small = ReportBlock { cumulative_lost: i32::MIN, ..block() };
    let buf = build(&[Model::Rr { ssrc: Ssrc(5), blocks: vec![big, small] }]);
    let [Packet::ReceiverReport(rr)] = all(&buf).unwrap()[..] else { panic!() };
    let got: Vec<_> = rr.report_blocks().collect();
    assert_eq!(got[0].cumulative_lost, 0x7f_ffff);
    assert_eq!(got[0].highest_seq, SeqNo(1));
    assert_eq!(got[1].cumulative_lost, -0x80_0000);
}

#[test]
fn extension_after_report_blocks_is_kept() {
    let mut buf = build(&[Model::Rr { ssrc: Ssrc(5), blocks: vec![block()] }]);
    buf.extend_from_slice(&[9, 9, 9, 9]);
    buf[3] += 1;
    let [Packet::ReceiverReport(rr)] = all(&buf).unwrap()[..] else { panic!() };
    assert_eq!(rr.extension(), &[9, 9, 9, 9]);
    assert_eq!(rr.report_blocks().len(), 1);
}

#[test]
fn sdes_items_of_every_type_and_empty_chunks() {
    let items: Vec<(u8, Vec<u8>)> = (1..=8).map(|k| (k, vec![b'a' + k; usize::from(k)])).collect();
    let models = [Model::Sdes(vec![
        (Ssrc(1), items.clone()),
        (Ssrc(2), vec![]),
        (Ssrc(3), vec![(1, vec![])]),
    ])];
    let buf = build(&models);
    assert_eq!(buf.len() % 4, 0);
    let parsed = all(&buf).unwrap();
    assert_eq!(parsed.iter().map(Model::of).collect::<Vec<_>>(), models);
    let Packet::Sdes(sdes) = parsed[0] else { panic!() };
    assert_eq!(sdes.chunks().nth(1).unwrap().cname(), None);
}

#[test]
fn sdes_private_item_splits_prefix() {
    let item = SdesItem { kind: SdesKind::PRIV, value: b"\x03abcvalue" };
    assert_eq!(item.private_parts(), Some((&b"abc"[..], &b"value"[..])));
    assert_eq!(SdesItem { kind: SdesKind::PRIV, value: b"\x09abc" }.private_parts(), None);
    assert_eq!(SdesItem { kind: SdesKind::PRIV, value: b"" }.private_parts(), None);
    assert_eq!(SdesItem { kind: SdesKind::NOTE, value: b"\x00" }.private_parts(), None);
}

#[test]
fn bye_with_and_without_reason() {
    for reason in [None, Some(b"".to_vec()), Some(b"bye".to_vec()), Some(vec![b'x'; 255])] {
        let m = [Model::Bye { sources: vec![Ssrc(1), Ssrc(2)], reason: reason.clone() }];
        let buf = build(&m);
        assert_eq!(all(&buf).unwrap().iter().map(Model::of).collect::<Vec<_>>(), m);
    }
    let empty = build(&[Model::Bye { sources: vec![], reason: None }]);
    assert_eq!(empty, [0x80, 203, 0, 0]);
}

#[test]
fn app_and_unknown_packets() {
    let m = [
        Model::App { subtype: 31, ssrc: Ssrc(4), name: *b"MFLD", data: vec![1, 2, 3, 4] },
        Model::Raw { packet_type: 205, count: 1, body: vec![0; 12] },
    ];
    let buf = build(&m);
    let parsed = all(&buf).unwrap();
    assert_eq!(parsed.iter().map(Model::of).collect::<Vec<_>>(), m);
    assert_eq!(parsed[0].packet_type(), PacketType::APP);
    assert_eq!(parsed[1].packet_type(), PacketType(205));
}

#[test]
fn reduced_size_packet_parses_but_is_not_a_regular_compound() {
    // RFC 5506: a lone feedback message (PT 206, FMT 1 = PLI).
    let buf =
        build(&[Model::Raw { packet_type: 206, count: 1, body: vec![0, 0, 0, 1, 0, 0, 0, 2] }]);
    assert_eq!(all(&buf).unwrap().len(), 1);
    assert_eq!(validate_compound(&buf), Err(ParseError::FirstNotReport(PacketType(206))));
    // A lone SDES too.
    let buf = build(&[Model::Sdes(vec![(Ssrc(1), vec![(1, b"c".to_vec())])])]);
    assert!(all(&buf).is_ok());
    assert_eq!(
        validate_compound(&buf),
        Err(ParseError::FirstNotReport(PacketType::SOURCE_DESCRIPTION))
    );
}

#[test]
fn padding_on_the_last_packet() {
    let plain = regular();
    let mut buf = vec![0; plain.len() + 8];
    let mut w = Writer::new(&mut buf);
    Model::Sr { ssrc: Ssrc(1), info: info(), blocks: vec![block(), block()] }
        .write(&mut w)
        .unwrap();
    Model::Sdes(vec![(Ssrc(1), vec![(1, b"user@host".to_vec())])]).write(&mut w).unwrap();
    Model::Bye { sources: vec![Ssrc(1)], reason: Some(b"done".to_vec()) }.write(&mut w).unwrap();
    w.pad_last(8).unwrap();
    let padded = w.finish();
    assert_eq!(padded.len(), plain.len() + 8);
    assert_eq!(padded.last(), Some(&8));
    assert_eq!(validate_compound(padded), Ok(3));
    assert_eq!(all(padded), all(&plain));
}

#[test]
fn padded_single_report_is_valid() {
    let mut buf = [0u8; 12];
    let mut w = Writer::new(&mut buf);
    w.receiver_report(Ssrc(1), &[]).unwrap();
    w.pad_last(4).unwrap();
    assert_eq!(w.finish(), &[0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4]);
    assert_eq!(validate_compound(&buf), Ok(1));
}

// Parse error paths.

#[test]
fn too_short_for_a_header() {
    assert_eq!(all(&[0x80, 200, 0]), Err(ParseError::TooShort { available: 3 }));
    assert_eq!(all(&[]), Ok(vec![]));
}

#[test]
fn bad_version() {
    let mut buf = regular();
    buf[0] = 0x40 | (buf[0] & 0x3f);
    assert_eq!(all(&buf), Err(ParseError::BadVersion(1)));
    assert_eq!(validate_compound(&buf), Err(ParseError::BadVersion(1)));
    // On a later packet too (A.2 checks every packet's version).
    let mut buf = regular();
    let second = (usize::from(buf[3]) + 1) * 4;
    buf[second] &= 0x3f;
    assert_eq!(validate_compound(&buf), Err(ParseError::BadVersion(0)));
}

#[test]
fn length_overrun() {
    let buf = hex(CAPTURED_RR);
    assert_eq!(all(&buf[..7]), Err(ParseError::LengthOverrun { declared: 8, available: 7 }));
}

#[test]
fn bad_padding_counts() {
    // P set, padding count 0.
    let buf = [0xa0, 201, 0, 1, 0, 0, 0, 0];
    assert_eq!(all(&buf), Err(ParseError::BadPadding { count: 0, len: 8 }));
    // Padding count larger than the body.
    let buf = [0xa0, 201, 0, 1, 0, 0, 0, 5];
    assert_eq!(all(&buf), Err(ParseError::BadPadding { count: 5, len: 8 }));
    // Padding that eats the RR's SSRC.
    let buf = [0xa0, 201, 0, 1, 0, 0, 0, 4];
    assert_eq!(
        all(&buf),
        Err(ParseError::BodyTooShort {
            packet_type: PacketType::RECEIVER_REPORT,
            needed: 4,
            available: 0
        })
    );
}

#[test]
fn bodies_too_short_for_their_counts() {
    // SR with no sender info.
    let sr = [0x80, 200, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        all(&sr),
        Err(ParseError::BodyTooShort {
            packet_type: PacketType::SENDER_REPORT,
            needed: 24,
            available: 4
        })
    );
    // RR claiming one block, holding none.
    let rr = [0x81, 201, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        all(&rr),
        Err(ParseError::BodyTooShort {
            packet_type: PacketType::RECEIVER_REPORT,
            needed: 28,
            available: 4
        })
    );
    // BYE claiming two sources, holding one.
    let bye = [0x82, 203, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        all(&bye),
        Err(ParseError::BodyTooShort { packet_type: PacketType::BYE, needed: 8, available: 4 })
    );
    // APP without its name.
    let app = [0x80, 204, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        all(&app),
        Err(ParseError::BodyTooShort { packet_type: PacketType::APP, needed: 8, available: 4 })
    );
}

#[test]
fn sdes_overruns() {
    // Count 2, one chunk present.
    let buf = [0x82, 202, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(all(&buf), Err(ParseError::SdesOverrun { chunk: 1 }));
    // Item length runs past the end.
    let buf = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', 0];
    assert_eq!(all(&buf), Err(ParseError::SdesOverrun { chunk: 0 }));
    // Items fill the chunk exactly, leaving no room for END.
    let buf = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
    assert_eq!(all(&buf), Err(ParseError::SdesOverrun { chunk: 0 }));
    // SSRC cut short.
    let buf = [0x81, 202, 0, 0];
    assert_eq!(all(&buf), Err(ParseError::SdesOverrun { chunk: 0 }));
}

#[test]
fn bye_reason_overrun() {
    let buf = [0x81, 203, 0, 2, 0, 0, 0, 1, 9, b'a', b'b', b'c'];
    assert_eq!(all(&buf), Err(ParseError::ByeReasonOverrun { len: 9, available: 3 }));
}

#[test]
fn errors_stop_the_iteration() {
    let mut buf = regular();
    buf.extend_from_slice(&[0x80, 201, 0, 9]);
    buf.extend_from_slice(&hex(CAPTURED_RR));
    let results: Vec<_> = packets(&buf).collect();
    assert_eq!(results.len(), 4);
    assert!(results[..3].iter().all(Result::is_ok));
    assert!(matches!(results[3], Err(ParseError::LengthOverrun { .. })));
}

// The A.2 checks.

#[test]
fn a2_accepts_a_regular_compound() {
    assert_eq!(validate_compound(&regular()), Ok(3));
}

#[test]
fn a2_rejects_empty() {
    assert_eq!(validate_compound(&[]), Err(ParseError::Empty));
}

#[test]
fn a2_first_must_be_a_report() {
    let buf = build(&[
        Model::Sdes(vec![(Ssrc(1), vec![(1, b"c".to_vec())])]),
        Model::Rr { ssrc: Ssrc(1), blocks: vec![] },
    ]);
    assert_eq!(
        validate_compound(&buf),
        Err(ParseError::FirstNotReport(PacketType::SOURCE_DESCRIPTION))
    );
}

#[test]
fn a2_padding_only_on_the_last_packet() {
    let mut buf = vec![0; 64];
    let mut w = Writer::new(&mut buf);
    w.receiver_report(Ssrc(1), &[]).unwrap();
    w.pad_last(4).unwrap();
    w.sdes(&[(Ssrc(1), &[SdesItem { kind: SdesKind::CNAME, value: b"c" }])]).unwrap();
    let buf = w.finish();
    assert_eq!(validate_compound(buf), Err(ParseError::PaddingNotLast { index: 0 }));
    // The lenient parser still reads it.
    assert_eq!(all(buf).unwrap().len(), 2);
}

#[test]
fn a2_lengths_must_add_up() {
    let mut buf = regular();
    buf.extend_from_slice(&[0x80, 201]);
    assert_eq!(validate_compound(&buf), Err(ParseError::TooShort { available: 2 }));
    let mut buf = regular();
    buf.pop();
    assert!(matches!(validate_compound(&buf), Err(ParseError::LengthOverrun { .. })));
}

// Build error paths.

#[test]
fn writer_buffer_too_small_leaves_the_buffer_alone() {
    let mut buf = [0u8; 40];
    let mut w = Writer::new(&mut buf);
    w.receiver_report(Ssrc(1), &[]).unwrap();
    assert_eq!(
        w.receiver_report(Ssrc(1), &[block(), block()]),
        Err(BuildError::BufferTooSmall { needed: 56, available: 32 })
    );
    assert_eq!(w.len(), 8);
    assert_eq!(w.pad_last(36), Err(BuildError::BufferTooSmall { needed: 36, available: 32 }));
    assert_eq!(w.written(), &[0x80, 201, 0, 1, 0, 0, 0, 1]);
}

#[test]
fn writer_rejects_counts_over_31() {
    let mut buf = vec![0; 4096];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        w.receiver_report(Ssrc(1), &[block(); 32]),
        Err(BuildError::CountTooLarge { count: 32 })
    );
    assert_eq!(w.bye(&[Ssrc(1); 32], None), Err(BuildError::CountTooLarge { count: 32 }));
    assert_eq!(w.app(32, Ssrc(1), *b"name", &[]), Err(BuildError::CountTooLarge { count: 32 }));
    assert_eq!(w.raw(PacketType(210), 40, &[]), Err(BuildError::CountTooLarge { count: 40 }));
    let chunks = vec![(Ssrc(1), &[][..]); 32];
    assert_eq!(w.sdes(&chunks), Err(BuildError::CountTooLarge { count: 32 }));
    assert!(w.is_empty());
}

#[test]
fn writer_rejects_bad_texts_and_bodies() {
    let mut buf = vec![0; 4096];
    let mut w = Writer::new(&mut buf);
    let long = [b'x'; 256];
    assert_eq!(w.bye(&[], Some(&long)), Err(BuildError::TextTooLong { len: 256 }));
    let item = [SdesItem { kind: SdesKind::CNAME, value: &long }];
    assert_eq!(w.sdes(&[(Ssrc(1), &item)]), Err(BuildError::TextTooLong { len: 256 }));
    let end = [SdesItem { kind: SdesKind::END, value: b"" }];
    assert_eq!(w.sdes(&[(Ssrc(1), &end)]), Err(BuildError::EndItem));
    assert_eq!(w.app(0, Ssrc(1), *b"name", &[1, 2]), Err(BuildError::Unaligned { len: 2 }));
    assert_eq!(w.raw(PacketType(210), 0, &[1]), Err(BuildError::Unaligned { len: 1 }));
    assert_eq!(
        w.raw(PacketType(210), 0, &vec![0; 1 << 18]),
        Err(BuildError::TooLong { len: (1 << 18) + 4 })
    );
    assert_eq!(w.pad_last(4), Err(BuildError::BadPadding(4)), "nothing to pad yet");
    w.receiver_report(Ssrc(1), &[]).unwrap();
    assert_eq!(w.pad_last(0), Err(BuildError::BadPadding(0)));
    assert_eq!(w.pad_last(3), Err(BuildError::BadPadding(3)));
    assert_eq!(w.len(), 8);
}

#[test]
fn errors_display() {
    assert_eq!(
        ParseError::FirstNotReport(PacketType(202)).to_string(),
        "RTCP compound starts with packet type 202, not SR or RR"
    );
    assert_eq!(
        BuildError::CountTooLarge { count: 32 }.to_string(),
        "count 32 does not fit the 5-bit count field"
    );
}

// Property tests.

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(ssrc, fraction_lost, cumulative_lost, seq, jitter, lsr, dlsr)| {
            ReportBlock {
                ssrc: Ssrc(ssrc),
                fraction_lost,
                cumulative_lost,
                highest_seq: SeqNo(u64::from(seq)),
                jitter,
                last_sr: CompactNtp(lsr),
                delay_since_last_sr: CompactNtp(dlsr),
            }
        })
}

fn model() -> impl Strategy<Value = Model> {
    use proptest::collection::vec;
    let blocks = || vec(report_block(), 0..=31);
    let info = (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(n, r, p, o)| {
        SenderInfo { ntp: NtpTime(n), rtp: RtpTime(r), packet_count: p, octet_count: o }
    });
    let item = (1u8..=255, vec(any::<u8>(), 0..=255));
    let words = || vec(any::<[u8; 4]>(), 0..20).prop_map(|w| w.concat());
    prop_oneof![
        (any::<u32>(), info, blocks()).prop_map(|(s, info, blocks)| Model::Sr {
            ssrc: Ssrc(s),
            info,
            blocks
        }),
        (any::<u32>(), blocks()).prop_map(|(s, blocks)| Model::Rr { ssrc: Ssrc(s), blocks }),
        vec((any::<u32>().prop_map(Ssrc), vec(item, 0..6)), 0..=31).prop_map(Model::Sdes),
        (vec(any::<u32>().prop_map(Ssrc), 0..=31), proptest::option::of(vec(any::<u8>(), 0..=255)))
            .prop_map(|(sources, reason)| Model::Bye { sources, reason }),
        (0u8..=31, any::<u32>(), any::<[u8; 4]>(), words())
            .prop_map(|(subtype, s, name, data)| Model::App { subtype, ssrc: Ssrc(s), name, data }),
        (prop_oneof![0u8..200, 205u8..=255], 0u8..=31, words())
            .prop_map(|(packet_type, count, body)| Model::Raw { packet_type, count, body }),
    ]
}

proptest! {
    #[test]
    fn round_trip_every_packet_type(models in proptest::collection::vec(model(), 1..6)) {
        let buf = build(&models);
        let parsed: Vec<Model> = all(&buf).unwrap().iter().map(Model::of).collect();
        prop_assert_eq!(&parsed, &models);
        // And the bytes are canonical: rebuilding gives the same datagram.
        prop_assert_eq!(build(&parsed), buf);
    }

    #[test]
    fn round_trip_regular_compounds(first in prop_oneof![
        (any::<u32>(), proptest::collection::vec(report_block(), 0..=31)).prop_map(|(s, blocks)| Model::Rr { ssrc: Ssrc(s), blocks }),
        (any::<u32>(), proptest::collection::vec(report_block(), 0..=31)).prop_map(|(s, blocks)| Model::Sr { ssrc: Ssrc(s), info: info(), blocks }),
    ], rest in proptest::collection::vec(model(), 0..4), pad in 1u8..=63) {
        let mut models = vec![first];
        models.extend(rest);
        let buf = build(&models);
        prop_assert_eq!(validate_compound(&buf), Ok(models.len()));
        let mut padded = vec![0; buf.len() + 256];
        let mut w = Writer::new(&mut padded);
        for m in &models {
            m.write(&mut w).unwrap();
        }
        w.pad_last(pad * 4).unwrap();
        let padded = w.finish();
        prop_assert_eq!(validate_compound(padded), Ok(models.len()));
        prop_assert_eq!(all(padded).unwrap().iter().map(Model::of).collect::<Vec<_>>(), models);
    }

    #[test]
    fn every_strict_prefix_errors_or_parses_fewer(models in proptest::collection::vec(model(), 1..5)) {
        let buf = build(&models);
        check_prefixes(&buf);
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        for p in packets(&buf).flatten() {
            let _ = Model::of_lenient(&p);
        }
        let _ = validate_compound(&buf);
    }

    #[test]
    fn plausible_headers_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 4..300), pt in 200u8..=204, p: bool, count in 0u8..32) {
        // Steer random bytes into each typed parser with a consistent length field.
        let words = (buf.len() / 4) as u16;
        buf.truncate(usize::from(words) * 4);
        buf[0] = 0x80 | if p { 0x20 } else { 0 } | count;
        buf[1] = pt;
        buf[2..4].copy_from_slice(&(words - 1).to_be_bytes());
        for p in packets(&buf).flatten() {
            let _ = Model::of_lenient(&p);
        }
    }
}

impl Model {
    /// Like [`Model::of`] without the assertions, to walk every accessor of any packet.
    fn of_lenient(p: &Packet<'_>) -> usize {
        match p {
            Packet::SenderReport(sr) => sr.report_blocks().count() + sr.extension().len(),
            Packet::ReceiverReport(rr) => rr.report_blocks().count() + rr.extension().len(),
            Packet::Sdes(s) => {
                s.chunks().map(|c| c.items().count() + c.cname().map_or(0, <[u8]>::len)).sum()
            }
            Packet::Bye(b) => b.sources().count() + b.reason().map_or(0, <[u8]>::len),
            Packet::App(a) => a.data().len(),
            Packet::Unknown(u) => u.body().len(),
        }
    }
}

fn check_prefixes(buf: &[u8]) {
    let whole = all(buf).unwrap().len();
    for cut in 0..buf.len() {
        let prefix = &buf[..cut];
        let results: Vec<_> = packets(prefix).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert!(ok < whole, "prefix {cut} parsed all {whole} packets");
        // At most one error, and only at the end.
        assert!(results.iter().rev().skip(1).all(Result::is_ok));
        let _ = validate_compound(prefix);
    }
}

#[test]
fn every_strict_prefix_of_the_captured_compound() {
    check_prefixes(&hex(CAPTURED_SR_SDES));
    check_prefixes(&regular());
}

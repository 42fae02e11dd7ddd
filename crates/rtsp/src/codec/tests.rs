//! Decoder and writer tests. Every decoding test goes through [`decode_everywhere`], which
//! checks that the input split at every byte, and fed byte by byte, decodes the same.

use super::*;
use crate::error::Rejected;
use crate::{Headers, Method, StatusCode};

/// An item with its payload owned, or an error the decoder reported.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Request(Request),
    Response(Response),
    Frame(u8, Vec<u8>),
    Error(ParseError),
    Warning(ParseError),
}

/// Feeds `chunks` one after another into a growing buffer, draining every complete item;
/// skips recoverable errors and stops at the first unrecoverable one. Returns the events and
/// the bytes left undecoded (0 after an unrecoverable error, where the rest is abandoned).
fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, limits: Limits) -> (Vec<Event>, usize) {
    let mut decoder = Decoder::new(limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.feed(&buf) {
                Ok(None) => break,
                Ok(Some((item, consumed))) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    events.push(match item {
                        Item::Request(r) => Event::Request(r),
                        Item::Response(r) => Event::Response(r),
                        Item::Interleaved { channel, payload } => {
                            Event::Frame(channel.0, payload.to_vec())
                        }
                    });
                    if let Some(w) = decoder.warning() {
                        events.push(Event::Warning(w.clone()));
                    }
                    buf.drain(..consumed);
                }
                Err(e) => {
                    events.push(Event::Error(e.clone()));
                    match e.resume_at() {
                        Some(skip) => {
                            assert!(skip > 0 && skip <= buf.len());
                            buf.drain(..skip);
                        }
                        None => return (events, 0),
                    }
                }
            }
        }
    }
    (events, buf.len())
}

/// Decodes `input` whole, then split in two at every byte, then byte by byte, asserting the
/// same events each time; returns them and the undecoded byte count.
fn decode_everywhere_with(input: &[u8], limits: Limits) -> (Vec<Event>, usize) {
    let whole = run([input], limits);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(run([a, b], limits), whole, "split at byte {at}");
    }
    assert_eq!(run(input.chunks(1), limits), whole, "byte by byte");
    whole
}

fn decode_everywhere(input: &[u8]) -> (Vec<Event>, usize) {
    decode_everywhere_with(input, Limits::default())
}

/// The single error `input` decodes to (after any items).
fn error_of(input: &[u8]) -> ParseError {
    error_with(input, Limits::default())
}

fn error_with(input: &[u8], limits: Limits) -> ParseError {
    let (events, _) = decode_everywhere_with(input, limits);
    let errors: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(!errors[0].to_string().is_empty());
    errors[0].clone()
}

fn request(input: &[u8]) -> Request {
    match decode_everywhere(input) {
        (events, 0) => match events.as_slice() {
            [Event::Request(r)] => r.clone(),
            other => panic!("expected one request, got {other:?}"),
        },
        (events, left) => panic!("{left} bytes left after {events:?}"),
    }
}

fn response(input: &[u8]) -> Response {
    match decode_everywhere(input) {
        (events, 0) => match events.as_slice() {
            [Event::Response(r)] => r.clone(),
            other => panic!("expected one response, got {other:?}"),
        },
        (events, left) => panic!("{left} bytes left after {events:?}"),
    }
}

// ---- what is accepted ----

#[test]
fn request_with_crlf() {
    let r = request(b"OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: x\r\n\r\n");
    assert_eq!(r.method, Method::Options);
    assert_eq!(r.uri, "rtsp://h/a");
    assert_eq!(r.cseq(), Some(1));
    assert_eq!(r.headers.get("user-agent"), Some("x"));
    assert!(r.body.is_empty());
}

#[test]
fn lf_only_line_ends_and_mixed() {
    let r = request(b"PLAY * RTSP/1.0\nCSeq: 2\r\nSession: s\n\n");
    assert_eq!((r.method, r.cseq(), r.headers.get("session")), (Method::Play, Some(2), Some("s")));
    let r = request(b"PLAY * RTSP/1.0\nCSeq: 2\n\r\n");
    assert_eq!(r.cseq(), Some(2));
}

#[test]
fn header_names_any_case_repeats_kept_values_trimmed() {
    let r = request(
        b"OPTIONS * RTSP/1.0\r\ncseq:3\r\nUSER-AGENT: \t a b \t\r\nuser-agent :c\r\nX-Empty:\r\n\r\n",
    );
    assert_eq!(r.cseq(), Some(3));
    assert_eq!(r.headers.get_all("User-Agent").collect::<Vec<_>>(), ["a b", "c"]);
    assert_eq!(r.headers.get("x-empty"), Some(""));
    let names: Vec<_> = r.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cseq", "USER-AGENT", "user-agent", "X-Empty"]);
}

#[test]
fn obs_fold_continuation_joins_with_a_space() {
    let r = request(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Long: a\r\n  b\r\n\tc\r\n\r\n");
    assert_eq!(r.headers.get("x-long"), Some("a b c"));
    assert_eq!(r.headers.len(), 2);
}

#[test]
fn leading_blank_lines_are_skipped_and_consumed() {
    let input = b"\r\n\r\n\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n\r\n$\x01\x00\x01z";
    let (events, left) = decode_everywhere(input);
    assert_eq!(left, 0);
    assert!(matches!(&events[0], Event::Request(r) if r.cseq() == Some(1)));
    assert_eq!(events[1], Event::Frame(1, b"z".to_vec()));
    // Blank lines alone wait for what follows.
    assert_eq!(decode_everywhere(b"\r\n\r\n"), (vec![], 4));
}

#[test]
fn body_by_content_length_only() {
    let r =
        request(b"ANNOUNCE rtsp://h/p RTSP/1.0\r\nCSeq: 2\r\nContent-Length:  5 \r\n\r\nv=0\r\n");
    assert_eq!(r.body, b"v=0\r\n");
    let r = request(b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 0\r\n\r\n");
    assert!(r.body.is_empty());
    // Without Content-Length the following bytes are the next message, for requests...
    let (events, left) = decode_everywhere(
        b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Type: text/parameters\r\n\r\n$\x00\x00\x00",
    );
    assert_eq!(left, 0);
    assert_eq!(events[1], Event::Frame(0, vec![]));
    // ...and for responses.
    let (events, left) =
        decode_everywhere(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n");
    assert_eq!((events.len(), left), (2, 0));
}

#[test]
fn equal_repeated_content_lengths_are_accepted() {
    let r = request(
        b"ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab",
    );
    assert_eq!(r.body, b"ab");
}

#[test]
fn responses_with_and_without_reason() {
    let r = response(b"RTSP/1.0 454 Session Not Found\r\nCSeq: 9\r\n\r\n");
    assert_eq!(
        (r.status, r.reason.as_str(), r.cseq()),
        (StatusCode(454), "Session Not Found", Some(9))
    );
    let r = response(b"RTSP/1.0 200\r\nCSeq: 1\r\n\r\n");
    assert_eq!((r.status, r.reason.as_str()), (StatusCode::OK, ""));
    let r = response(b"rtsp/1.0  200   OK  \r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(
        (r.status, r.reason.as_str(), r.body.as_slice()),
        (StatusCode::OK, "OK", &b"abc"[..])
    );
}

#[test]
fn response_without_cseq_is_decoded_with_a_warning() {
    let input = b"RTSP/1.0 200 OK\r\nServer: x\r\n\r\n";
    let (events, left) = decode_everywhere(input);
    assert_eq!(left, 0);
    assert!(matches!(&events[0], Event::Response(r) if r.cseq().is_none()));
    let Event::Warning(w) = &events[1] else { panic!("{events:?}") };
    assert_eq!(*w, ParseError::MissingCSeq { rejected: Rejected { len: input.len(), cseq: None } });
    let (events, _) = decode_everywhere(b"RTSP/1.0 200 OK\r\nCSeq: x\r\n\r\n");
    assert!(matches!(&events[1], Event::Warning(ParseError::InvalidCSeq { .. })));
    // The warning lasts until the next feed.
    let mut d = Decoder::default();
    assert!(d.feed(input).unwrap().is_some());
    assert!(d.warning().is_some());
    assert!(d.feed(b"").unwrap().is_none());
    assert!(d.warning().is_none());
}

#[test]
fn interleaved_frames_borrow_their_payload() {
    let input = b"$\x00\x00\x03abc$\x05\x00\x00";
    let (item, consumed) = decode(input, &Limits::default()).unwrap().unwrap();
    assert_eq!(item, Item::Interleaved { channel: ChannelId(0), payload: &input[4..7] });
    assert_eq!(consumed, 7);
    let (events, left) = decode_everywhere(input);
    assert_eq!(events, [Event::Frame(0, b"abc".to_vec()), Event::Frame(5, vec![])]);
    assert_eq!(left, 0);
    // A full-length frame.
    let mut big = interleaved_header(ChannelId(1), u16::MAX).to_vec();
    big.resize(4 + 65535, 7);
    let (item, consumed) = decode(&big, &Limits::default()).unwrap().unwrap();
    assert!(matches!(item, Item::Interleaved { payload, .. } if payload.len() == 65535));
    assert_eq!(consumed, big.len());
}

#[test]
fn empty_input_needs_more() {
    assert_eq!(decode(b"", &Limits::default()), Ok(None));
    assert_eq!(decode(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n", &Limits::default()), Ok(None));
}

#[test]
fn a_restarted_shorter_buffer_resets_the_scan() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: y\r\n"), Ok(None));
    let fresh = b"PLAY * RTSP/1.0\r\nCSeq: 2\r\n\r\n";
    let Some((Item::Request(r), n)) = d.feed(fresh).unwrap() else { panic!() };
    assert_eq!((r.method, n), (Method::Play, fresh.len()));
    d.reset();
    assert!(d.warning().is_none());
}

#[test]
fn heads_at_exactly_the_limit_are_accepted() {
    let head = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    let limits = Limits { max_head: head.len(), ..Limits::default() };
    let (events, _) = decode_everywhere_with(head, limits);
    assert!(matches!(events.as_slice(), [Event::Request(_)]));
    let limits = Limits { max_head: head.len() - 1, ..Limits::default() };
    assert_eq!(error_with(head, limits), ParseError::HeadersTooLarge { limit: head.len() - 1 });
    let limits = Limits { max_headers: 1, ..Limits::default() };
    let (events, _) = decode_everywhere_with(head, limits);
    assert!(matches!(events.as_slice(), [Event::Request(_)]));
    let body = b"ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\nabcd";
    let limits = Limits { max_body: 4, ..Limits::default() };
    assert!(matches!(decode_everywhere_with(body, limits).0.as_slice(), [Event::Request(_)]));
}

// ---- every error, its status, and whether the stream goes on ----

/// Asserts a recoverable error: the status, the skip length and CSeq, and that a message
/// after the bad one is still decoded.
fn assert_recoverable(bad: &[u8], status: StatusCode, cseq: Option<u32>) -> ParseError {
    let next = b"OPTIONS * RTSP/1.0\r\nCSeq: 99\r\n\r\n";
    let input = [bad, next].concat();
    let (events, left) = decode_everywhere(&input);
    assert_eq!(left, 0);
    let [Event::Error(e), Event::Request(r)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(r.cseq(), Some(99));
    assert_eq!(e.status(), status, "{e}");
    assert!(e.recoverable());
    assert_eq!(e.resume_at(), Some(bad.len()));
    assert_eq!(e.cseq(), cseq);
    assert!(!e.to_string().is_empty());
    e.clone()
}

fn assert_fatal(e: &ParseError, status: StatusCode) {
    assert_eq!(e.status(), status, "{e}");
    assert!(!e.recoverable());
    assert_eq!(e.resume_at(), None);
    assert_eq!(e.cseq(), None);
}

#[test]
fn garbage() {
    let e = error_of(b"\x00\x01\x02\x03");
    assert_eq!(e, ParseError::Garbage { offset: 0, byte: 0 });
    assert_fatal(&e, StatusCode::BAD_REQUEST);
    let e = error_of(b"\r\nOPT\xffIONS * RTSP/1.0\r\n");
    assert_eq!(e, ParseError::Garbage { offset: 5, byte: 0xff });
    // After a frame, in the same buffer.
    let e = error_of(b"$\x00\x00\x01x{junk");
    assert_eq!(e, ParseError::Garbage { offset: 0, byte: b'{' });
}

#[test]
fn start_line_too_long() {
    let input = [&b"DESCRIBE rtsp://h/"[..], &[b'a'; 9000]].concat();
    let e = error_of(&input);
    assert_eq!(e, ParseError::StartLineTooLong { limit: 8192 });
    assert_fatal(&e, StatusCode::REQUEST_URI_TOO_LARGE);
}

#[test]
fn headers_too_large() {
    let mut input = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
    input.extend_from_slice(format!("X-Big: {}\r\n\r\n", "v".repeat(8200)).as_bytes());
    let e = error_of(&input);
    assert_eq!(e, ParseError::HeadersTooLarge { limit: 8192 });
    assert_fatal(&e, StatusCode::BAD_REQUEST);
    // Blank lines count too: a peer cannot grow the buffer with keep-alives alone.
    assert_eq!(error_of(&b"\r\n".repeat(4097)), ParseError::HeadersTooLarge { limit: 8192 });
}

#[test]
fn too_many_headers() {
    let mut bad = b"OPTIONS * RTSP/1.0\r\nCSeq: 4\r\n".to_vec();
    for i in 0..64 {
        bad.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    bad.extend_from_slice(b"\r\n");
    let e = assert_recoverable(&bad, StatusCode::BAD_REQUEST, Some(4));
    assert!(matches!(e, ParseError::TooManyHeaders { count: 65, limit: 64, .. }));
}

#[test]
fn malformed_request_line() {
    for bad in [
        &b"OPTIONS\r\nCSeq: 5\r\n\r\n"[..],
        b"OPTIONS * RTSP/1.0 extra\r\nCSeq: 5\r\n\r\n",
        b"OPTIONS * RTSP1.0\r\nCSeq: 5\r\n\r\n",
    ] {
        let e = assert_recoverable(bad, StatusCode::BAD_REQUEST, Some(5));
        assert!(matches!(e, ParseError::MalformedRequestLine { .. }), "{e:?}");
    }
}

#[test]
fn malformed_status_line() {
    for bad in [
        &b"RTSP/1.0 2x0 OK\r\nCSeq: 6\r\n\r\n"[..],
        b"RTSP/1.0\r\nCSeq: 6\r\n\r\n",
        b"RTSP/1.0 20 OK\r\nCSeq: 6\r\n\r\n",
        b"RTSP/1.0 200OK\r\nCSeq: 6\r\n\r\n",
        b"RTSP/1.0 099 x\r\nCSeq: 6\r\n\r\n",
    ] {
        let e = assert_recoverable(bad, StatusCode::BAD_REQUEST, Some(6));
        assert!(matches!(e, ParseError::MalformedStatusLine { .. }), "{e:?}");
    }
}

#[test]
fn malformed_header() {
    for bad in [
        &b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nno colon here\r\n\r\n"[..],
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nBad Name: x\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n: empty name\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nX: a\rb\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\n continued: nothing\r\nCSeq: 7\r\n\r\n",
        // Control characters in a value (NUL, ESC, DEL); a tab is fine.
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nUser-Agent: a\x00b\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nUser-Agent: \x1b[31m\r\n\r\n",
        b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\nX: \x7f\r\n\r\n",
    ] {
        let e = assert_recoverable(bad, StatusCode::BAD_REQUEST, Some(7));
        assert!(matches!(e, ParseError::MalformedHeader { .. }), "{e:?}");
    }
}

#[test]
fn unknown_method() {
    let e = assert_recoverable(
        b"GET_STUFF rtsp://h/ RTSP/1.0\r\nCSeq: 8\r\nContent-Length: 2\r\n\r\nhi",
        StatusCode::NOT_IMPLEMENTED,
        Some(8),
    );
    assert!(matches!(&e, ParseError::UnknownMethod { method, .. } if method == "GET_STUFF"));
    // Methods are case-sensitive.
    let e = assert_recoverable(b"options * RTSP/1.0\r\nCSeq: 8\r\n\r\n", StatusCode(501), Some(8));
    assert!(matches!(e, ParseError::UnknownMethod { .. }));
}

#[test]
fn bad_version() {
    for bad in [
        &b"OPTIONS * RTSP/2.0\r\nCSeq: 9\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nCSeq: 9\r\n\r\n",
        b"RTSP/2.0 200 OK\r\nCSeq: 9\r\n\r\n",
    ] {
        let e = assert_recoverable(bad, StatusCode::VERSION_NOT_SUPPORTED, Some(9));
        assert!(matches!(e, ParseError::BadVersion { .. }), "{e:?}");
    }
}

#[test]
fn missing_cseq() {
    let e =
        assert_recoverable(b"OPTIONS * RTSP/1.0\r\nUser-Agent: x\r\n\r\n", StatusCode(400), None);
    assert!(matches!(e, ParseError::MissingCSeq { .. }));
}

#[test]
fn invalid_cseq() {
    for (bad, cseq) in [
        (&b"OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n"[..], None),
        (b"OPTIONS * RTSP/1.0\r\nCSeq: -1\r\n\r\n", None),
        (b"OPTIONS * RTSP/1.0\r\nCSeq: 4294967296\r\n\r\n", None),
        (b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n\r\n", Some(1)),
    ] {
        let e = assert_recoverable(bad, StatusCode::BAD_REQUEST, cseq);
        assert!(matches!(e, ParseError::InvalidCSeq { .. }), "{e:?}");
    }
}

#[test]
fn invalid_content_length() {
    for value in ["-5", "abc", "", "+5", "5 5", "0x10"] {
        let input = format!("ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: {value}\r\n\r\n");
        let e = error_of(input.as_bytes());
        assert_eq!(e, ParseError::InvalidContentLength { value: value.to_owned() });
        assert_fatal(&e, StatusCode::BAD_REQUEST);
    }
    let e = error_of(b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
    assert_eq!(e, ParseError::InvalidContentLength { value: "2".into() });
}

#[test]
fn body_too_large() {
    let e = error_of(b"ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 65537\r\n\r\n");
    assert_eq!(e, ParseError::BodyTooLarge { length: 65537, limit: 65536 });
    assert_fatal(&e, StatusCode::REQUEST_ENTITY_TOO_LARGE);
    let e = error_of(b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert_eq!(e, ParseError::BodyTooLarge { length: u64::MAX, limit: 65536 });
}

#[test]
fn non_utf8() {
    for (bad, field) in [
        (&b"DESCRIBE rtsp://h/\xff RTSP/1.0\r\nCSeq: 3\r\n\r\n"[..], "request line"),
        (b"RTSP/1.0 200 \xc3\x28\r\nCSeq: 3\r\n\r\n", "status line"),
        (b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nX: \xfe\r\n\r\n", "header line"),
    ] {
        let e = assert_recoverable(bad, StatusCode::BAD_REQUEST, Some(3));
        assert!(matches!(e, ParseError::NonUtf8 { field: f, .. } if f == field), "{e:?}");
    }
}

// ---- writers ----

#[test]
fn writes_requests_with_content_length_in_place() {
    let mut r = Request::new(Method::Announce, "rtsp://h/p");
    r.headers.append("CSeq", "2");
    r.headers.append("Content-Length", "999");
    r.headers.append("Content-Type", "application/sdp");
    r.body = b"v=0\r\n".to_vec();
    let mut out = Vec::new();
    write_request(&r, &mut out);
    assert_eq!(
        out,
        b"ANNOUNCE rtsp://h/p RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\
          Content-Type: application/sdp\r\n\r\nv=0\r\n"
    );
    r.headers.set("Content-Length", "5");
    assert_eq!(request(&out), r);
}

#[test]
fn writes_responses_appending_content_length() {
    let mut r = Response::new(StatusCode::OK);
    r.headers.append("CSeq", "1");
    let mut out = Vec::new();
    write_response(&r, &mut out);
    assert_eq!(out, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n");
    r.body = b"x".to_vec();
    out.clear();
    write_response(&r, &mut out);
    assert_eq!(out, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 1\r\n\r\nx");
}

#[test]
fn writers_neutralise_line_breaks() {
    let mut r = Request::new(Method::Options, "*");
    r.headers.append("CSeq", "1");
    r.headers.append("X", "a\r\nInjected: yes");
    let mut out = Vec::new();
    write_request(&r, &mut out);
    let back = request(&out);
    assert_eq!(back.headers.get("x"), Some("a  Injected: yes"));
    assert!(!back.headers.contains("Injected"));
}

#[test]
fn writes_interleaved_frames() {
    assert_eq!(interleaved_header(ChannelId(3), 0x0102), [b'$', 3, 1, 2]);
    let mut out = Vec::new();
    write_interleaved(ChannelId(1), b"rtcp", &mut out).unwrap();
    assert_eq!(out, b"$\x01\x00\x04rtcp");
    let big = vec![0; 65536];
    assert_eq!(
        write_interleaved(ChannelId(1), &big, &mut out),
        Err(crate::error::FrameTooLarge { len: 65536 })
    );
    assert_eq!(out.len(), 8);
}

#[test]
fn headers_type_is_reexported_for_writers() {
    // Keeps `Headers` in scope for readers of these tests; a trivial check.
    assert!(Headers::new().is_empty());
}

/// Found by the `rtsp_codec` fuzz target: a bare CR inside the Request-URI was taken in, and
/// the writer (which never emits a CR inside a line) produced a different message.
#[test]
fn control_characters_in_start_lines_are_rejected() {
    let e = error_of(b"PLAY rtsp://1\r\r27.0.0.1/live RTSP/1.0\r\nCSeq: 4\r\n\r\n");
    assert!(matches!(e, ParseError::MalformedRequestLine { .. }), "{e:?}");
    assert!(e.recoverable());
    let e = error_of(b"RTSP/1.0 200 O\x01K\r\nCSeq: 4\r\n\r\n");
    assert!(matches!(e, ParseError::MalformedStatusLine { .. }), "{e:?}");
    // Tabs stay accepted as separators.
    assert_eq!(request(b"PLAY\trtsp://h/x\tRTSP/1.0\r\nCSeq: 1\r\n\r\n").uri, "rtsp://h/x");
}

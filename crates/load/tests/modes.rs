//! The run modes end to end, against a tiny in-test RTSP server on 127.0.0.1 that logs every
//! request it gets (and sends no media): `--ramp-down` ends sessions one by one with a
//! TEARDOWN, `--no-play` never sends PLAY, `--cpus` pins the shards where asked, and the
//! run's `--hlog` carries the counts its JSON report has.
// Tests may unwrap: a panic here is a failed test, not a crashed generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use manifold_load::{CpuList, LoadArgs, LoadError, TransportChoice};
use manifold_rtsp::codec::write_response;
use manifold_rtsp::header::{PortRange, Transport, TypedHeader};
use manifold_rtsp::{Method, Response, StatusCode};
use manifold_synth::{StreamConfig, SyntheticStream};

/// One glommio pool at a time in this process (locked memory is capped at 8 MiB).
static ONE_RUN: Mutex<()> = Mutex::new(());

/// Every request the server got: when, on which connection, what.
type Log = Arc<Mutex<Vec<(Instant, usize, Method)>>>;

/// How the server misbehaves, if at all.
#[derive(Debug, Clone, Copy, Default)]
struct Quirks {
    /// Answer DESCRIBE only after this long.
    describe_delay: Duration,
    /// Never answer PLAY.
    silent_play: bool,
}

/// Answers one connection: OPTIONS, DESCRIBE, SETUP (UDP or interleaved, echoing the offer),
/// PLAY, TEARDOWN; logs each request.
fn serve_connection(mut conn: TcpStream, id: usize, sdp: String, log: Log, quirks: Quirks) {
    let mut requests = common::Requests::default();
    while let Some(req) = requests.next(&mut conn) {
        log.lock().unwrap().push((Instant::now(), id, req.method));
        let mut resp = Response::new(StatusCode::OK);
        match req.method {
            Method::Options => resp.headers.append("Public", common::PUBLIC),
            Method::Describe => {
                std::thread::sleep(quirks.describe_delay);
                common::describe(&mut resp, &req, &sdp);
            }
            Method::Setup => {
                let offer = Transport::from_headers(&req.headers).ok().flatten();
                match offer.and_then(|t| t.specs.into_iter().next()) {
                    Some(mut spec) => {
                        if spec.client_port.is_some() {
                            spec.server_port = Some(PortRange { first: 40000, last: 40001 });
                        }
                        Transport::single(spec).set_in(&mut resp.headers);
                        resp.headers.append("Session", format!("{id};timeout=60"));
                    }
                    None => resp = Response::new(StatusCode::UNSUPPORTED_TRANSPORT),
                }
            }
            Method::Play if quirks.silent_play => continue,
            Method::Play | Method::Teardown => resp.headers.append("Session", id.to_string()),
            _ => resp = Response::new(StatusCode::NOT_IMPLEMENTED),
        }
        resp.headers.set("CSeq", req.cseq().unwrap_or(0).to_string());
        let mut out = Vec::new();
        write_response(&resp, &mut out);
        if conn.write_all(&out).is_err() {
            break;
        }
    }
}

/// Starts the server; returns its port and its request log.
fn start_server() -> (u16, Log) {
    start_server_with(Quirks::default())
}

/// Starts a server with `quirks`; returns its port and its request log.
fn start_server_with(quirks: Quirks) -> (u16, Log) {
    let s = SyntheticStream::new(StreamConfig::default()).unwrap();
    let media = s.sdp().media_section(0, Some("stream=0"));
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=modes\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let server_log = log.clone();
    std::thread::spawn(move || {
        for (id, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { break };
            let (sdp, log) = (sdp.clone(), server_log.clone());
            std::thread::spawn(move || serve_connection(conn, id, sdp, log, quirks));
        }
    });
    (port, log)
}

/// Connections that sent `method`, and when.
fn requests(log: &Log, method: Method) -> Vec<(Instant, usize)> {
    log.lock().unwrap().iter().filter(|e| e.2 == method).map(|e| (e.0, e.1)).collect()
}

fn online_cpus() -> Vec<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    text.trim().parse::<CpuList>().unwrap().cpus().to_vec()
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn ramp_down_tears_sessions_down_one_by_one_and_the_hlog_keeps_the_counts() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let (port, log) = start_server();
    let dir = Dir(std::env::temp_dir().join(format!("manifold-modes-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cpu = *online_cpus().last().unwrap();
    let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/modes"));
    args.clients = 4;
    args.transport = TransportChoice::Tcp;
    args.duration = Duration::from_secs(3);
    args.ramp = Duration::from_millis(200);
    // Sessions end at 1.5, 2, 2.5 and 3 s.
    args.ramp_down = Duration::from_secs(2);
    args.cpus = Some(cpu.to_string().parse().unwrap());
    args.quiet = true;
    args.json = Some(dir.0.join("run.json"));
    args.hlog = Some(dir.0.join("run.hlog"));
    args.thresholds = vec!["errors<1".into(), "sessions.ok>=4".into()];
    let outcome = manifold_load::run(args.clone()).expect("the run completes");
    let r = &outcome.report;

    assert_eq!(r.sessions.ok, 4, "{:?}", r.errors.samples);
    assert_eq!(r.errors.total, 0, "ramp-down ends are normal completions");
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(r.config.ramp_down_s, 2.0);
    assert_eq!(r.config.cpus, [cpu], "the one shard ran where --cpus said");
    assert_eq!(r.health.shards, 1, "--shards defaults to the length of --cpus");

    let plays = requests(&log, Method::Play);
    let teardowns = requests(&log, Method::Teardown);
    assert_eq!(plays.len(), 4);
    assert_eq!(teardowns.len(), 4, "every session sent TEARDOWN");
    let first = teardowns.iter().map(|t| t.0).min().unwrap();
    let last = teardowns.iter().map(|t| t.0).max().unwrap();
    // 1.5 s apart as scheduled; without the ramp-down all four would come at once.
    assert!(last - first >= Duration::from_secs(1), "teardowns within {:?}", last - first);

    // The hlog merged alone gives the JSON report's counts, and judges the same thresholds.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("run.json")).unwrap()).unwrap();
    let merged = manifold_load::merge::merge(&[dir.0.join("run.hlog")], &args.thresholds)
        .expect("the hlog carries counts");
    let merged_json: serde_json::Value = serde_json::from_str(&merged.to_json()).unwrap();
    for key in ["sessions", "errors"] {
        assert_eq!(merged_json[key], json[key], "{key}");
    }
    assert_eq!(merged_json["media"]["packets"], json["media"]["packets"]);
    assert_eq!(merged_json["thresholds"], json["thresholds"]);
    assert_eq!(merged.exit_code(), 0);
}

#[test]
fn no_play_sets_up_holds_and_tears_down_without_play() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let (port, log) = start_server();
    let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/modes"));
    args.clients = 4;
    args.transport = TransportChoice::Mix(50.0);
    args.seed = 2;
    args.duration = Duration::from_secs(2);
    args.ramp = Duration::from_millis(100);
    args.shards = Some(1);
    args.no_play = true;
    args.quiet = true;
    args.thresholds = vec!["errors<1".into(), "loss.ratio<0.001".into(), "setup.p99<1s".into()];
    let outcome = manifold_load::execute(&args).expect("the run completes");
    let r = &outcome.report;
    println!("{}", r.table());

    assert!(requests(&log, Method::Play).is_empty(), "no PLAY is ever sent");
    let setups = requests(&log, Method::Setup);
    let teardowns = requests(&log, Method::Teardown);
    assert_eq!(setups.len(), 4);
    assert_eq!(teardowns.len(), 4);
    for (_, conn) in &setups {
        assert!(teardowns.iter().any(|t| t.1 == *conn), "connection {conn} tore down");
    }
    // Each session held about its hold (the whole run) between its SETUP and TEARDOWN.
    let held = |conn: usize| {
        let s = setups.iter().find(|x| x.1 == conn).unwrap().0;
        teardowns.iter().find(|x| x.1 == conn).unwrap().0 - s
    };
    assert!(setups.iter().all(|s| held(s.1) >= Duration::from_secs(1)));

    assert_eq!(r.sessions.ok, 4, "{:?}", r.errors.samples);
    assert_eq!(r.sessions.played, 0);
    assert_eq!(r.errors.total, 0);
    assert_eq!(r.media.packets, 0);
    assert_eq!(r.media.lost, 0);
    assert_eq!(r.metrics["setup"].count, 4, "setup is timed to the last SETUP");
    assert!(!r.metrics.contains_key("first_rtp"));
    assert!(r.config.no_play);
    assert!(r.table().contains("SETUP-ONLY RUN"));
    assert!(r.thresholds.iter().all(|v| v.passed), "{:?}", r.thresholds);
    assert_eq!(outcome.exit_code(), 0);
}

/// A session whose own hold ends before PLAY is the generator's doing when the server is
/// answering in time (counted as cut by its hold, no error); when the server does not answer
/// within the response timeout, it is the server's failure all the same.
#[test]
fn a_hold_that_ends_before_play_blames_the_server_only_when_it_is_late() {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let run = |quirks: Quirks| {
        let (port, _log) = start_server_with(quirks);
        let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/modes"));
        args.clients = 4;
        args.transport = TransportChoice::Tcp;
        args.duration = Duration::from_secs(3);
        args.ramp = Duration::from_millis(100);
        args.hold = Some("100ms".parse().unwrap());
        args.response_timeout = Duration::from_secs(1);
        args.shards = Some(1);
        args.quiet = true;
        args.thresholds = vec!["errors<1".into()];
        manifold_load::execute(&args).expect("the run completes")
    };

    // DESCRIBE answered after 400 ms, within the 1 s response timeout: a slow answer, but
    // the session's 100 ms hold was over before it came.
    let slow = run(Quirks { describe_delay: Duration::from_millis(400), silent_play: false });
    let r = &slow.report;
    // Sessions keep arriving at 40/s with 100 ms holds: every one is cut, none fails.
    let started = r.sessions.started;
    assert!(started >= 4);
    assert_eq!(r.sessions.cut_by_hold, started, "{:?}", r.errors.samples);
    assert_eq!((r.errors.total, r.sessions.failed, r.sessions.ok), (0, 0, 0));
    let line = format!("{started} cut by their hold before PLAY");
    assert!(r.table().contains(&line), "{}", r.table());
    assert_eq!(slow.exit_code(), 0);

    // PLAY never answered: the in-flight request times out, and that is the server's.
    let silent = run(Quirks { describe_delay: Duration::ZERO, silent_play: true });
    let r = &silent.report;
    let started = r.sessions.started;
    assert!(started >= 4);
    assert_eq!(r.sessions.cut_by_hold, 0);
    assert_eq!(r.errors.total, started, "{:?}", r.errors.samples);
    assert_eq!(r.errors.by_kind.get("timeout"), Some(&started), "{:?}", r.errors.by_kind);
    assert_ne!(silent.exit_code(), 0);
}

#[test]
fn flags_that_cannot_work_fail_before_the_run() {
    // Nothing listens on port 9: these must fail on the flags, before the probe.
    let mut args = LoadArgs::new("rtsp://127.0.0.1:9/none");
    args.cpus = Some("4095".parse().unwrap());
    let err = manifold_load::execute(&args).expect_err("no CPU 4095 here");
    assert!(matches!(err, LoadError::Flags(_)), "{err}");
    assert!(err.to_string().contains("CPU 4095 is not online"), "{err}");
    assert_eq!(err.exit_code(), 1);

    let cpu = online_cpus()[0];
    args.cpus = Some(cpu.to_string().parse().unwrap());
    args.shards = Some(2);
    let err = manifold_load::execute(&args).expect_err("two shards on one CPU");
    assert!(err.to_string().contains("one shard per CPU, so --shards 1 or fewer"), "{err}");

    let mut args = LoadArgs::new("rtsp://127.0.0.1:9/none");
    args.duration = Duration::from_secs(5);
    args.ramp = Duration::from_secs(2);
    args.ramp_down = Duration::from_secs(4);
    let err = manifold_load::execute(&args).expect_err("6 s of ramps in a 5 s run");
    assert!(err.to_string().contains("do not fit in --duration"), "{err}");
}

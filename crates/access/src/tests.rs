//! The rules of [`Access`] on virtual time, each with a client from the protocol crate.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manifold_rtsp::auth::{Challenge, ClientAuth, Credentials};
use manifold_rtsp::Method;

use crate::*;

const URI: &str = "rtsp://relay/cam/1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(toml_text: &str) -> Arc<Policy> {
    let config: AccessConfig = toml::from_str(toml_text).unwrap();
    Arc::new(config.compile().unwrap())
}

fn access(toml_text: &str, t0: Instant) -> Access {
    let limits = Limits {
        failures: RateLimit { burst: 3, refill_every: Duration::from_secs(10), table: 64 },
        ..Limits::default()
    };
    Access::new(policy(toml_text), NonceKey::new([42; 32], t0), limits)
}

fn req<'a>(peer: &str, path: &'a str, action: Action, credentials: Presented<'a>) -> Request<'a> {
    Request { peer: ip(peer), path, action, protocol: Protocol::Rtsp, over_tls: false, credentials }
}

fn challenges(d: &Decision) -> Vec<Challenge> {
    match d {
        Decision::Challenge(u) => {
            // Through the wire form, as a client sees it.
            Challenge::from_response(&u.response())
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

/// A client's `Authorization` value answering `d`'s 401 with the strongest scheme it may use.
fn answer(d: &Decision, user: &str, pass: &str, method: Method, allow_basic: bool) -> String {
    let list = challenges(d);
    let mut client = ClientAuth::new(&list, Credentials::new(user, pass), allow_basic).unwrap();
    client.authorize(method, URI, "client-nonce").unwrap()
}

fn allowed_as(d: &Decision) -> Option<&str> {
    match d {
        Decision::Allowed { user } => user.as_deref(),
        other => panic!("expected allowed, got {other:?}"),
    }
}

fn forbidden_reason(d: &Decision) -> &Reason {
    match d {
        Decision::Forbidden(r) => &r.attempt.reason,
        other => panic!("expected 403, got {other:?}"),
    }
}

fn failure_reason(d: &Decision) -> Option<&Reason> {
    match d {
        Decision::Challenge(u) => u.failure.as_ref().map(|f| &f.reason),
        other => panic!("expected a 401, got {other:?}"),
    }
}

const USERS: &str = r#"
[[user]]
name = "alice"
password = "wonder land"
actions = ["read", "publish"]
paths = ["cam/*"]

[[user]]
name = "viewer"
password = "v"
actions = ["read"]

[[user]]
name = "hashed"
password = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
actions = ["publish"]
paths = ["hashed/**"]

[[user]]
name = "lan"
password = "l"
actions = ["publish"]
paths = ["lan"]
ips = ["10.0.0.0/8", "192.168.1.7"]
"#;

#[test]
fn digest_round_trip_sha256_and_md5() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let first = a.check(t0, &req("192.0.2.1", "/cam/1", Action::Publish, Presented::Nothing));
    let list = challenges(&first);
    assert_eq!(list.len(), 2, "Digest SHA-256 and MD5, no Basic without TLS: {list:?}");
    assert!(failure_reason(&first).is_none(), "a first request is not a failure");
    // The protocol crate's client picks SHA-256.
    let value = answer(&first, "alice", "wonder land", Method::Announce, false);
    assert!(value.contains("algorithm=SHA-256"), "{value}");
    let header = Presented::Header { value: &value, method: Method::Announce, uri: URI };
    let d = a.check(t0, &req("192.0.2.1", "/cam/1", Action::Publish, header));
    assert_eq!(allowed_as(&d), Some("alice"));
    // An MD5 answer to the same 401 (what ffmpeg and GStreamer send).
    let md5_only: Vec<Challenge> = list
        .into_iter()
        .filter(|c| matches!(c, Challenge::Digest(d) if d.algorithm == Some(manifold_rtsp::auth::Algorithm::Md5)))
        .collect();
    let mut client =
        ClientAuth::new(&md5_only, Credentials::new("alice", "wonder land"), false).unwrap();
    let value = client.authorize(Method::Describe, URI, "cn").unwrap();
    let header = Presented::Header { value: &value, method: Method::Describe, uri: URI };
    assert_eq!(
        allowed_as(&a.check(t0, &req("192.0.2.1", "cam/1", Action::Read, header))),
        Some("alice")
    );
    // Signed for DESCRIBE, sent with PLAY: refused.
    let header = Presented::Header { value: &value, method: Method::Play, uri: URI };
    let d = a.check(t0, &req("192.0.2.1", "cam/1", Action::Read, header));
    assert_eq!(failure_reason(&d), Some(&Reason::WrongPassword));
}

#[test]
fn wrong_password_unknown_user_and_malformed_are_failures() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let r = |c| req("192.0.2.1", "cam/1", Action::Read, c);
    let first = a.check(t0, &r(Presented::Nothing));
    let bad = answer(&first, "alice", "wonderland", Method::Describe, false);
    let d = a.check(t0, &r(Presented::Header { value: &bad, method: Method::Describe, uri: URI }));
    assert_eq!(failure_reason(&d), Some(&Reason::WrongPassword));
    let Decision::Challenge(u) = &d else { panic!() };
    let log = u.failure.as_ref().unwrap().to_string();
    assert!(log.contains("192.0.2.1") && log.contains("cam/1") && log.contains("alice"), "{log}");
    let nobody = answer(&first, "mallory", "x", Method::Describe, false);
    let d =
        a.check(t0, &r(Presented::Header { value: &nobody, method: Method::Describe, uri: URI }));
    assert_eq!(failure_reason(&d), Some(&Reason::UnknownUser));
    let d = a.check(
        t0,
        &r(Presented::Header { value: "Digest nonsense", method: Method::Describe, uri: URI }),
    );
    assert!(matches!(failure_reason(&d), Some(Reason::Malformed(_))));
}

#[test]
fn nonce_expiry_gives_stale_and_no_failure() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let r = |c| req("192.0.2.1", "cam/1", Action::Read, c);
    let first = a.check(t0, &r(Presented::Nothing));
    let value = answer(&first, "viewer", "v", Method::Play, false);
    let h = Presented::Header { value: &value, method: Method::Play, uri: URI };
    assert_eq!(allowed_as(&a.check(t0 + Duration::from_secs(299), &r(h))), Some("viewer"));
    let late = t0 + Duration::from_secs(301);
    let d = a.check(late, &r(h));
    assert!(failure_reason(&d).is_none(), "stale is not a failure");
    let list = challenges(&d);
    assert!(list.iter().all(|c| matches!(c, Challenge::Digest(d) if d.stale)), "{list:?}");
    // The client retries on the new nonce and gets in.
    let value = answer(&d, "viewer", "v", Method::Play, false);
    let h = Presented::Header { value: &value, method: Method::Play, uri: URI };
    assert_eq!(allowed_as(&a.check(late, &r(h))), Some("viewer"));
    // A wrong password on an expired nonce is a failure, not stale.
    let bad = answer(&first, "viewer", "w", Method::Play, false);
    let h = Presented::Header { value: &bad, method: Method::Play, uri: URI };
    assert_eq!(failure_reason(&a.check(late, &r(h))), Some(&Reason::WrongPassword));
}

#[test]
fn nonces_verify_across_shards_not_across_servers_or_peers() {
    let t0 = Instant::now();
    let mut shard0 = access(USERS, t0);
    let mut shard1 = access(USERS, t0);
    let mut other_server =
        Access::new(policy(USERS), NonceKey::new([43; 32], t0), Limits::default());
    let r = |peer, c| req(peer, "cam/1", Action::Read, c);
    let first = shard0.check(t0, &r("192.0.2.1", Presented::Nothing));
    let value = answer(&first, "viewer", "v", Method::Describe, false);
    let h = Presented::Header { value: &value, method: Method::Describe, uri: URI };
    assert_eq!(allowed_as(&shard1.check(t0, &r("192.0.2.1", h))), Some("viewer"));
    let d = other_server.check(t0, &r("192.0.2.1", h));
    assert_eq!(failure_reason(&d), Some(&Reason::ForeignNonce));
    let d = shard1.check(t0, &r("192.0.2.99", h));
    assert_eq!(failure_reason(&d), Some(&Reason::ForeignNonce), "a replay from another address");
}

#[test]
fn basic_only_over_tls_unless_allowed() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let basic = "Basic dmlld2VyOnY="; // viewer:v
    let mut r = req(
        "192.0.2.1",
        "cam/1",
        Action::Read,
        Presented::Header { value: basic, method: Method::Describe, uri: URI },
    );
    let d = a.check(t0, &r);
    assert_eq!(failure_reason(&d), Some(&Reason::BasicWithoutTls));
    assert!(challenges(&d).iter().all(|c| matches!(c, Challenge::Digest(_))), "no Basic offered");
    r.over_tls = true;
    r.protocol = Protocol::Rtsps;
    assert_eq!(allowed_as(&a.check(t0, &r)), Some("viewer"));
    let tls_first = a.check(t0, &Request { credentials: Presented::Nothing, ..r });
    let list = challenges(&tls_first);
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(matches!(list[2], Challenge::Basic { .. }));
    let mut plain = access(&format!("allow_basic = true\n{USERS}"), t0);
    r.over_tls = false;
    assert_eq!(allowed_as(&plain.check(t0, &r)), Some("viewer"));
    // A password in clear by other means (an RTMP URL) follows the same rule.
    let p = Presented::Password { user: "viewer", password: "v" };
    let rtmp = Request { credentials: p, protocol: Protocol::Rtmp, ..r };
    assert_eq!(allowed_as(&plain.check(t0, &rtmp)), Some("viewer"));
    assert_eq!(failure_reason(&a.check(t0, &rtmp)), Some(&Reason::BasicWithoutTls));
}

#[test]
fn sha256_password_users_get_basic_only_and_only_where_allowed() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    // Only "hashed" may publish hashed/x: without TLS nothing can check it, so 403, not a 401
    // that no answer could pass.
    let r = req("192.0.2.1", "/hashed/x", Action::Publish, Presented::Nothing);
    assert_eq!(forbidden_reason(&a.check(t0, &r)), &Reason::OnlyBasicCould);
    // Over TLS: a 401 offering Basic alone, and Basic with the password passes.
    let tls = Request { over_tls: true, ..r };
    let first = a.check(t0, &tls);
    assert_eq!(challenges(&first), vec![Challenge::basic("manifold")]);
    let value = answer(&first, "hashed", "test", Method::Announce, true);
    assert!(value.starts_with("Basic "));
    let h = Presented::Header { value: &value, method: Method::Announce, uri: URI };
    assert_eq!(allowed_as(&a.check(t0, &Request { credentials: h, ..tls })), Some("hashed"));
    let wrong = "Basic aGFzaGVkOnRlc3U="; // hashed:tesu
    let d = a.check(
        t0,
        &Request {
            credentials: Presented::Header { value: wrong, method: Method::Announce, uri: URI },
            ..tls
        },
    );
    assert_eq!(failure_reason(&d), Some(&Reason::WrongPassword));
    // A Digest answer for the hashed user (to a challenge another path offered) cannot pass.
    let cam = a.check(t0, &req("192.0.2.1", "cam/1", Action::Publish, Presented::Nothing));
    let value = answer(&cam, "hashed", "test", Method::Announce, false);
    let h = Presented::Header { value: &value, method: Method::Announce, uri: URI };
    let d = a.check(t0, &Request { credentials: h, ..tls });
    assert_eq!(failure_reason(&d), Some(&Reason::DigestForHashedPassword));
}

#[test]
fn globs_cidrs_and_permissions() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let with = |a: &mut Access, peer: &str, path: &str, action, user: &str, pass: &str| {
        let first = a.check(t0, &req(peer, path, action, Presented::Nothing));
        if !matches!(first, Decision::Challenge(_)) {
            return first;
        }
        let value = answer(&first, user, pass, Method::Setup, false);
        let h = Presented::Header { value: &value, method: Method::Setup, uri: URI };
        a.check(t0, &req(peer, path, action, h))
    };
    // cam/* is one segment deep.
    assert!(matches!(
        with(&mut a, "192.0.2.1", "/cam/a", Action::Publish, "alice", "wonder land"),
        Decision::Allowed { .. }
    ));
    // "alice" authenticates fine but cam/a/b is not hers; "viewer" fits the read.
    let d = with(&mut a, "192.0.2.1", "/cam/a/b", Action::Read, "alice", "wonder land");
    assert_eq!(forbidden_reason(&d), &Reason::NotPermitted { action: Action::Read });
    // Nobody may publish elsewhere: 403, credentials cannot help.
    let d = a.check(t0, &req("192.0.2.1", "/other", Action::Publish, Presented::Nothing));
    assert_eq!(forbidden_reason(&d), &Reason::NoUserFits { action: Action::Publish });
    assert!(d_log(&d).contains("publish"));
    // ips: a CIDR and a single address, IPv4-mapped included.
    for peer in ["10.1.2.3", "192.168.1.7", "::ffff:10.9.9.9"] {
        assert!(
            matches!(
                with(&mut a, peer, "lan", Action::Publish, "lan", "l"),
                Decision::Allowed { .. }
            ),
            "{peer}"
        );
    }
    let d = a.check(t0, &req("192.168.1.8", "lan", Action::Publish, Presented::Nothing));
    assert_eq!(forbidden_reason(&d), &Reason::NoUserFits { action: Action::Publish });
    // hashed/** crosses segments.
    let tls = |path| Request {
        over_tls: true,
        ..req("192.0.2.1", path, Action::Publish, Presented::Nothing)
    };
    assert!(matches!(a.check(t0, &tls("hashed/a/b/c")), Decision::Challenge(_)));
}

fn d_log(d: &Decision) -> String {
    match d {
        Decision::Forbidden(r) => r.attempt.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn anonymous_user() {
    let t0 = Instant::now();
    let config =
        format!("[[user]]\nname = \"any\"\nactions = [\"read\"]\npaths = [\"public/*\"]\n{USERS}");
    let mut a = access(&config, t0);
    let d = a.check(t0, &req("203.0.113.9", "/public/x", Action::Read, Presented::Nothing));
    assert_eq!(allowed_as(&d), None);
    // Even with bad credentials: anonymous access does not read them.
    let h = Presented::Header { value: "Digest junk", method: Method::Play, uri: URI };
    assert!(matches!(
        a.check(t0, &req("203.0.113.9", "public/x", Action::Read, h)),
        Decision::Allowed { user: None }
    ));
    // Not for publishing, not elsewhere.
    assert!(matches!(
        a.check(t0, &req("203.0.113.9", "public/x", Action::Publish, Presented::Nothing)),
        Decision::Forbidden(_)
    ));
    assert!(matches!(
        a.check(t0, &req("203.0.113.9", "cam/1", Action::Read, Presented::Nothing)),
        Decision::Challenge(_)
    ));
    // "any" with a password is an ordinary user.
    let mut b = access("[[user]]\nname = \"any\"\npassword = \"p\"\nactions = [\"read\"]\n", t0);
    assert!(matches!(
        b.check(t0, &req("203.0.113.9", "x", Action::Read, Presented::Nothing)),
        Decision::Challenge(_)
    ));
}

#[test]
fn default_policy_reads_anywhere_publishes_from_loopback() {
    let t0 = Instant::now();
    let mut a = access("", t0);
    assert!(a.policy().is_default());
    assert_eq!(
        allowed_as(&a.check(t0, &req("203.0.113.9", "x", Action::Read, Presented::Nothing))),
        None
    );
    for lo in ["127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(
            allowed_as(&a.check(t0, &req(lo, "x", Action::Publish, Presented::Nothing))),
            None,
            "{lo}"
        );
    }
    let d = a.check(t0, &req("192.0.2.1", "x", Action::Publish, Presented::Nothing));
    assert_eq!(forbidden_reason(&d), &Reason::DefaultPolicyPublish);
    let line = d_log(&d);
    assert!(line.contains("[[user]]") && line.contains("actions = [\"publish\"]"), "{line}");
}

#[test]
fn failures_are_rate_limited_per_address() {
    let t0 = Instant::now();
    let mut a = access(USERS, t0);
    let r = |peer, c| req(peer, "cam/1", Action::Read, c);
    let first = a.check(t0, &r("192.0.2.1", Presented::Nothing));
    let bad = answer(&first, "viewer", "nope", Method::Describe, false);
    let bad = Presented::Header { value: &bad, method: Method::Describe, uri: URI };
    for _ in 0..3 {
        assert_eq!(
            failure_reason(&a.check(t0, &r("192.0.2.1", bad))),
            Some(&Reason::WrongPassword)
        );
    }
    // Now even the right password waits.
    let good = answer(&first, "viewer", "v", Method::Describe, false);
    let good = Presented::Header { value: &good, method: Method::Describe, uri: URI };
    match a.check(t0 + Duration::from_secs(1), &r("192.0.2.1", good)) {
        Decision::RateLimited { retry_after, attempt } => {
            assert_eq!(retry_after, Duration::from_secs(9));
            assert_eq!(attempt.user.as_deref(), Some("viewer"));
            assert_eq!(attempt.reason, Reason::RateLimited);
        }
        other => panic!("{other:?}"),
    }
    // First requests without credentials are not failures; another address is not limited.
    for _ in 0..10 {
        assert!(matches!(a.check(t0, &r("192.0.2.2", Presented::Nothing)), Decision::Challenge(_)));
    }
    // After the refill interval one attempt is back.
    let t10 = t0 + Duration::from_secs(10);
    assert_eq!(allowed_as(&a.check(t10, &r("192.0.2.1", good))), Some("viewer"));
}

const HOOK: &str = "auth_hook = \"http://127.0.0.1:9/auth\"\n";

fn needs_hook(d: Decision) -> HookCall {
    match d {
        Decision::NeedsHook(call) => call,
        other => panic!("expected a hook call, got {other:?}"),
    }
}

#[test]
fn hook_question_answer_cache_and_expiry() {
    let t0 = Instant::now();
    let mut a = access(&format!("allow_basic = true\n{HOOK}"), t0);
    let basic = "Basic dXNlcjpwYXNz"; // user:pass
    let r = req(
        "192.0.2.1",
        "/cam/1",
        Action::Publish,
        Presented::Header { value: basic, method: Method::Announce, uri: URI },
    );
    let call = needs_hook(a.check(t0, &r));
    let json: serde_json::Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"user": "user", "password": "pass", "path": "cam/1", "action": "publish", "ip": "192.0.2.1", "protocol": "rtsp"})
    );
    assert!(!format!("{call:?}").contains("pass\""), "Debug hides the body");
    let http = String::from_utf8(call.http_request()).unwrap();
    assert!(http.starts_with("POST /auth HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{http}");
    // Still unanswered: asks again.
    assert!(matches!(a.check(t0, &r), Decision::NeedsHook(_)));
    a.handle_hook_answer(t0, call.key, true);
    assert_eq!(allowed_as(&a.check(t0 + Duration::from_secs(4), &r)), Some("user"));
    // The cached answer expires after 5 s.
    assert!(matches!(a.check(t0 + Duration::from_secs(5), &r), Decision::NeedsHook(_)));
    // Another password is another question.
    let other = req(
        "192.0.2.1",
        "/cam/1",
        Action::Publish,
        Presented::Header { value: "Basic dXNlcjpwYXNx", method: Method::Announce, uri: URI },
    );
    assert_ne!(needs_hook(a.check(t0, &other)).key, call.key);
}

#[test]
fn hook_failure_denies_and_counts() {
    let t0 = Instant::now();
    let mut a = access(&format!("allow_basic = true\n{HOOK}"), t0);
    let h = Presented::Password { user: "user", password: "pass" };
    let r = req("192.0.2.1", "cam/1", Action::Read, h);
    let call = needs_hook(a.check(t0, &r));
    a.handle_hook_answer(t0, call.key, false); // a timeout, a 500 or a 403 alike
    let d = a.check(t0, &r);
    assert_eq!(failure_reason(&d), Some(&Reason::HookDenied));
    assert_eq!(challenges(&d), vec![Challenge::basic("manifold")], "a hook needs Basic");
    a.check(t0, &r);
    a.check(t0, &r);
    assert!(matches!(a.check(t0, &r), Decision::RateLimited { .. }));
}

#[test]
fn hook_anonymous_and_digest_and_basic_without_tls() {
    let t0 = Instant::now();
    let mut a = access(HOOK, t0);
    // No credentials: the hook is asked with empty user and password.
    let r = req("192.0.2.1", "cam/1", Action::Read, Presented::Nothing);
    let call = needs_hook(a.check(t0, &r));
    assert!(call.body.contains(r#""user":"","password":"""#), "{}", call.body);
    a.handle_hook_answer(t0, call.key, true);
    assert_eq!(allowed_as(&a.check(t0, &r)), None);
    // Denied anonymously, no TLS, no allow_basic: credentials could not be sent, so 403.
    let w = req("192.0.2.1", "cam/1", Action::Publish, Presented::Nothing);
    let call = needs_hook(a.check(t0, &w));
    a.handle_hook_answer(t0, call.key, false);
    assert_eq!(forbidden_reason(&a.check(t0, &w)), &Reason::HookNeedsBasic);
    // Over TLS the same denial is a 401 offering Basic.
    let tls = Request { over_tls: true, protocol: Protocol::Rtsps, ..w };
    let call = needs_hook(a.check(t0, &tls));
    a.handle_hook_answer(t0, call.key, false);
    assert_eq!(challenges(&a.check(t0, &tls)), vec![Challenge::basic("manifold")]);
    // A password in clear without TLS is refused before asking.
    let p = Request { credentials: Presented::Password { user: "u", password: "p" }, ..w };
    assert_eq!(forbidden_reason(&a.check(t0, &p)), &Reason::BasicWithoutTls);
    // Digest cannot be checked by a hook.
    let d = Presented::Header {
        value: r#"Digest username="u", realm="manifold", nonce="n", uri="/", response="00""#,
        method: Method::Play,
        uri: "/",
    };
    let d = a.check(t0, &Request { credentials: d, ..tls });
    assert_eq!(failure_reason(&d), Some(&Reason::DigestWithHook));
}

#[test]
fn config_errors_are_typed() {
    let err = |text: &str| toml::from_str::<AccessConfig>(text).unwrap().compile().unwrap_err();
    let user = |extra: &str| {
        format!("[[user]]\nname = \"u\"\npassword = \"p\"\nactions = [\"read\"]\n{extra}")
    };
    assert_eq!(
        err("[[user]]\nname = \"u\"\npassword = \"p\"\nactions = [\"watch\"]\n"),
        ConfigError::UnknownAction { name: "u".into(), action: "watch".into() }
    );
    assert_eq!(
        err("[[user]]\nname = \"u\"\npassword = \"p\"\nactions = []\n"),
        ConfigError::NoActions { name: "u".into() }
    );
    assert_eq!(
        err(&user("ips = [\"10.0.0.0/33\"]")),
        ConfigError::BadCidr { name: "u".into(), cidr: "10.0.0.0/33".into() }
    );
    assert_eq!(
        err(&user("ips = [\"cam\"]")),
        ConfigError::BadCidr { name: "u".into(), cidr: "cam".into() }
    );
    assert!(matches!(err(&user("paths = [\"cam/[\"]")), ConfigError::BadGlob { .. }));
    let hashed = |h: &str| {
        err(&format!("[[user]]\nname = \"u\"\npassword = \"sha256:{h}\"\nactions = [\"read\"]\n"))
    };
    assert!(matches!(hashed("abc"), ConfigError::BadPasswordHash { problem: "wrong length", .. }));
    assert!(matches!(
        hashed(&"g".repeat(64)),
        ConfigError::BadPasswordHash { problem: "not hex", .. }
    ));
    assert_eq!(
        err(&format!("{}{}", user(""), user(""))),
        ConfigError::DuplicateUser { name: "u".into() }
    );
    assert_eq!(
        err("[[user]]\nname = \"bob\"\nactions = [\"read\"]\n"),
        ConfigError::MissingPassword { name: "bob".into() }
    );
    assert_eq!(
        err("[[user]]\nname = \"\"\nactions = [\"read\"]\n"),
        ConfigError::EmptyName { index: 1 }
    );
    assert_eq!(err(&format!("{HOOK}{}", user(""))), ConfigError::HookAndUsers);
    assert!(matches!(
        err("auth_hook = \"https://h/\""),
        ConfigError::BadHookUrl { source: HookUrlError::Scheme, .. }
    ));
    // Unknown keys are serde errors naming the key.
    let e = toml::from_str::<AccessConfig>(
        "[[user]]\nname = \"u\"\npasword = \"p\"\nactions = [\"read\"]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("pasword"), "{e}");
    // Messages name the user and the value.
    let m = ConfigError::BadCidr { name: "u".into(), cidr: "x".into() }.to_string();
    assert!(m.contains("\"u\"") && m.contains("\"x\""), "{m}");
}

proptest::proptest! {
    /// Whatever a client sends as its Authorization header, `check` answers without panicking,
    /// and never allows a user who is not configured.
    #[test]
    fn any_header_is_decided(value in "\\PC{0,120}", tls: bool) {
        let t0 = Instant::now();
        let mut a = access(USERS, t0);
        let h = Presented::Header { value: &value, method: Method::Describe, uri: URI };
        let r = Request { over_tls: tls, ..req("192.0.2.1", "cam/1", Action::Read, h) };
        if let Decision::Allowed { user } = a.check(t0, &r) {
            proptest::prop_assert!(false, "allowed {user:?} from {value:?}");
        }
    }
}

/// The relay builds these on one thread and moves them to shards; the policy and key are
/// shared between shards.
#[test]
fn shard_types_are_send_and_shared_ones_sync() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    send::<Access>();
    send::<Decision>();
    shared::<Policy>();
    shared::<NonceKey>();
    shared::<BearerToken>();
}

//! Authorization headers as the relay's access check meets them: parsing never panics, what
//! parses writes back to the same value, and no header a client can make up gets in without
//! the password (Basic is refused without TLS; a Digest answer needs a nonce this server
//! issued, bound by HMAC to the server secret and the client's address).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use manifold_access::{
    Access, AccessConfig, Action, Decision, Limits, NonceKey, Policy, Presented, Protocol, Request,
    UserConfig,
};
use manifold_rtsp::auth::{Authorization, Secret};
use manifold_rtsp::Method;

fn policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let user = |name: &str, password: &str| UserConfig {
                name: name.into(),
                password: Some(password.into()),
                paths: None,
                actions: vec!["read".into(), "publish".into()],
                ips: None,
            };
            let config = AccessConfig {
                users: vec![
                    user("Mufasa", "Circle of Life"),
                    user(
                        "hashed",
                        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    ),
                ],
                realm: Some("http-auth@example.org".into()),
                ..AccessConfig::default()
            };
            Arc::new(config.compile().expect("the fuzz policy compiles"))
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(auth) = Authorization::parse(text) {
        let written = auth.to_string();
        let again = Authorization::parse(&written)
            .unwrap_or_else(|e| panic!("{written:?} does not parse back: {e}"));
        assert_eq!(again, auth, "changed on a write/parse round trip via {written:?}");
        let hash = [0u8; 32];
        for secret in [Secret::Password("Circle of Life"), Secret::PasswordSha256(&hash)] {
            let _ = auth.verify(Method::Describe, "/dir/index.html", "r", "n", &secret);
        }
    }
    let t0 = Instant::now();
    let mut access = Access::new(policy(), NonceKey::new([9; 32], t0), Limits::default());
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for action in [Action::Read, Action::Publish] {
        let request = Request {
            peer,
            path: "/cam/1",
            action,
            protocol: Protocol::Rtsp,
            over_tls: false,
            credentials: Presented::Header {
                value: text,
                method: Method::Describe,
                uri: "/dir/index.html",
            },
        };
        let decision = access.check(t0 + Duration::from_secs(1), &request);
        assert!(!matches!(decision, Decision::Allowed { .. }), "{text:?} got in: {decision:?}");
    }
});

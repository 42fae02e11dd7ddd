//! The relay configurations shipped in deploy/kubernetes/ are ones the relay takes: each
//! `relay.toml` (the edges' ConfigMap, the origin's Secret) parses with no unknown key, keeps
//! the ports the manifests declare and no metrics token (the probes send no header), and a
//! relay started with it (on loopback ports) answers the probes' `GET /metrics` with 200.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use manifold_relay::ServeConfig;

mod common;
use common::Relay;

const KUBERNETES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");

/// The block scalar under the one `relay.toml: |` key of a manifest, dedented.
fn relay_toml(manifest: &str) -> String {
    let text = std::fs::read_to_string(Path::new(KUBERNETES).join(manifest)).unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != "relay.toml: |");
    let key = lines.next().unwrap_or_else(|| panic!("no relay.toml in {manifest}"));
    let key_indent = key.len() - key.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > key_indent)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap();
    body.iter().map(|l| l.get(indent..).unwrap_or("")).collect::<Vec<_>>().join("\n")
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The kubelet's probe: a plain GET, no Authorization header; the status code.
fn probe(addr: SocketAddr) -> u16 {
    // The endpoint may come up just after the RTSP listeners: a few tries, as a kubelet's.
    let mut tries = 0;
    let mut c = loop {
        match TcpStream::connect(addr) {
            Ok(c) => break c,
            Err(_) if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("metrics endpoint {addr}: {e}"),
        }
    };
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: probe\r\nUser-Agent: kube-probe/1.30\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("manifold_"), "not the relay's metrics: {answer}");
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn check(manifest: &str, role: &str) {
    let toml_text = relay_toml(manifest);
    let config: ServeConfig = toml::from_str(&toml_text)
        .unwrap_or_else(|e| panic!("{manifest}'s relay.toml does not parse: {e}"));
    // The manifests' containerPorts and probes.
    let pod = std::fs::read_to_string(Path::new(KUBERNETES).join(format!("{role}.yaml"))).unwrap();
    assert_eq!(config.listen.port(), 8554);
    assert!(pod.contains("containerPort: 8554"));
    assert_eq!(config.metrics.map(|m| m.port()), Some(9090), "{manifest}: metrics on 9090");
    assert!(pod.contains("containerPort: 9090") && pod.contains("path: /metrics"));
    assert_eq!(config.metrics_token, None, "{manifest}: the probes send no bearer token");

    // The relay takes it: same file, loopback addresses instead of the pod's.
    let file = common::config_file(&format!("deploy-{role}"), &toml_text);
    let metrics = free_port();
    let (metrics_arg, rtmp_arg) = (metrics.to_string(), free_port().to_string());
    let mut args = vec!["--config", file.to_str().unwrap(), "--cores", "1"];
    args.extend(["--metrics", &metrics_arg]);
    if config.rtmp_listen.is_some() {
        args.extend(["--rtmp-listen", &rtmp_arg]);
    }
    let relay = Relay::start(&args);
    assert_eq!(probe(metrics), 200, "{manifest}: GET /metrics");
    drop(relay);
}

#[test]
fn the_edges_configmap_is_a_relay_config_the_probes_can_read() {
    check("config.yaml", "edge");
}

#[test]
fn the_origins_secret_is_a_relay_config_the_probes_can_read() {
    check("secret.yaml", "origin");
}

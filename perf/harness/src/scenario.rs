//! A scenario file (`perf/scenarios/*.toml`): the stream, the reader ladder, the transport,
//! how long, which targets, and (for the CI smoke) the gate.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// One scenario, as read from its TOML file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    /// Short name; results files and the RESULTS.md section are keyed by it.
    pub(crate) name: String,
    /// One line for people.
    pub(crate) description: String,
    pub(crate) stream: StreamSpec,
    pub(crate) readers: ReaderSpec,
    pub(crate) run: RunSpec,
    /// In-run pass/fail rules (the CI smoke); absent for plain measurements.
    #[serde(default)]
    pub(crate) gate: Option<GateSpec>,
}

/// The stream every target serves, sent by `manifold source rtp://…`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamSpec {
    /// Bit/s of whole RTP packets (the synthetic clip padded with filler NAL units).
    pub(crate) bitrate: u64,
    /// Frames per second.
    #[serde(default = "default_fps")]
    pub(crate) fps: u32,
    /// Frames per GOP.
    #[serde(default = "default_gop")]
    pub(crate) gop: u32,
    /// Largest RTP packet, bytes.
    #[serde(default = "default_mtu")]
    pub(crate) mtu: usize,
}

/// Who reads, and how many.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReaderSpec {
    /// Reader counts, one measurement per count and target.
    pub(crate) ladder: Vec<u32>,
    /// `udp`, `tcp` or `mix:P` (P% UDP), as `manifold load --transport` takes it.
    pub(crate) transport: String,
    /// Idle sessions (SETUP, no PLAY) for the memory-per-idle-session measurement; 0: none.
    #[serde(default)]
    pub(crate) idle: u32,
}

/// Timing and targets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunSpec {
    /// Seconds each generator run lasts (ramp included).
    pub(crate) duration_s: u32,
    /// Seconds over which the readers arrive (at least).
    pub(crate) ramp_s: u32,
    /// Most arrivals per second: a rung whose readers would arrive faster over `ramp_s` gets
    /// a longer ramp (readers / rate), and its run grows by as much, so that every rung has
    /// the same time with every reader playing.
    #[serde(default)]
    pub(crate) arrival_rate: Option<u32>,
    /// What is measured, in this order.
    pub(crate) targets: Vec<Target>,
    /// Rungs above this many readers skip GStreamer (its setup alone would outlast the run).
    #[serde(default)]
    pub(crate) gstreamer_max_readers: Option<u32>,
}

/// The CI gate: judged on figures from the same run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateSpec {
    /// `"relay-1/blaster-sendto" = 1.5`: packets per server CPU-second of the first target
    /// divided by the second's, at every rung, must be at least this.
    #[serde(default)]
    pub(crate) min_ratio: BTreeMap<String, f64>,
    /// Largest loss ratio any relay run may show.
    #[serde(default)]
    pub(crate) max_relay_loss: Option<f64>,
}

/// A thing that serves the stream to the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Target {
    /// The raw blaster, one `sendto` per datagram.
    BlasterSendto,
    /// The raw blaster, one packet to many readers per `sendmmsg`.
    BlasterSendmmsg,
    /// The raw blaster, a frame per reader per GSO `sendmsg`.
    BlasterGso,
    /// The raw blaster, GSO messages of up to 64 readers per `sendmmsg` (the relay's path).
    BlasterGsoMmsg,
    /// `manifold serve` with one shard.
    #[serde(rename = "relay-1")]
    Relay1,
    /// `manifold serve` with a shard on every CPU.
    RelayAll,
    /// GStreamer's RTSP server, shared media.
    Gstreamer,
}

impl Target {
    pub(crate) const ALL: [Target; 7] = [
        Target::BlasterSendto,
        Target::BlasterSendmmsg,
        Target::BlasterGso,
        Target::BlasterGsoMmsg,
        Target::Relay1,
        Target::RelayAll,
        Target::Gstreamer,
    ];

    /// The name used in files and tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::BlasterSendto => "blaster-sendto",
            Target::BlasterSendmmsg => "blaster-sendmmsg",
            Target::BlasterGso => "blaster-gso",
            Target::BlasterGsoMmsg => "blaster-gso-mmsg",
            Target::Relay1 => "relay-1",
            Target::RelayAll => "relay-all",
            Target::Gstreamer => "gstreamer",
        }
    }

    /// Parses [`Target::name`].
    pub(crate) fn from_name(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    pub(crate) fn is_relay(self) -> bool {
        matches!(self, Target::Relay1 | Target::RelayAll)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn default_fps() -> u32 {
    25
}
fn default_gop() -> u32 {
    25
}
fn default_mtu() -> usize {
    1200
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))?;
        scenario.validate().with_context(|| format!("scenario {}", path.display()))?;
        Ok(scenario)
    }

    /// Rejects what cannot be run.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            bail!("name {:?}: use letters, digits and '-'", self.name);
        }
        if self.readers.ladder.is_empty() || self.readers.ladder.contains(&0) {
            bail!("readers.ladder needs at least one count, none of them 0");
        }
        let t = self.readers.transport.as_str();
        let mix_ok =
            t.strip_prefix("mix:").and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| p <= 100);
        if !(t == "udp" || t == "tcp" || mix_ok) {
            bail!("readers.transport {t:?}: expected udp, tcp or mix:P (P from 0 to 100)");
        }
        if self.run.targets.is_empty() {
            bail!("run.targets is empty");
        }
        if self.run.duration_s < self.run.ramp_s + 3 {
            bail!(
                "run.duration_s ({}) must leave at least 3 s after the ramp ({} s) to measure",
                self.run.duration_s,
                self.run.ramp_s
            );
        }
        if self.run.arrival_rate == Some(0) {
            bail!("run.arrival_rate must be positive");
        }
        if self.stream.bitrate == 0 || self.stream.fps == 0 || self.stream.mtu < 100 {
            bail!("stream: bitrate and fps must be positive and mtu at least 100");
        }
        if let Some(gate) = &self.gate {
            for key in gate.min_ratio.keys() {
                let (a, b) = split_ratio(key)?;
                for t in [a, b] {
                    if !self.run.targets.contains(&t) {
                        bail!("gate.min_ratio {key:?}: target {t} is not in run.targets");
                    }
                }
            }
        }
        Ok(())
    }

    /// Ramp and duration of the rung with `readers` readers, seconds.
    pub(crate) fn timing(&self, readers: u32) -> (u32, u32) {
        let ramp = match self.run.arrival_rate {
            Some(rate) if rate > 0 => self.run.ramp_s.max(readers.div_ceil(rate)),
            _ => self.run.ramp_s,
        };
        (ramp, self.run.duration_s + (ramp - self.run.ramp_s))
    }

    /// RTP packets per second of the stream (nominal: bitrate over the largest packet, at
    /// least one per frame); used to size expectations in the report, never as a measurement.
    pub(crate) fn nominal_packet_rate(&self) -> f64 {
        let per_s = self.stream.bitrate as f64 / (self.stream.mtu as f64 * 8.0);
        per_s.max(self.stream.fps as f64)
    }
}

/// Splits `"relay-1/blaster-sendto"` into its two targets.
pub(crate) fn split_ratio(key: &str) -> anyhow::Result<(Target, Target)> {
    let (a, b) =
        key.split_once('/').with_context(|| format!("ratio {key:?}: expected TARGET/TARGET"))?;
    let parse = |s: &str| {
        Target::from_name(s).with_context(|| {
            let names: Vec<_> = Target::ALL.iter().map(|t| t.name()).collect();
            format!("ratio {key:?}: unknown target {s:?} (one of {})", names.join(", "))
        })
    };
    Ok((parse(a)?, parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = r#"
        name = "smoke"
        description = "CI"
        [stream]
        bitrate = 2000000
        [readers]
        ladder = [300]
        transport = "udp"
        [run]
        duration_s = 6
        ramp_s = 1
        targets = ["blaster-sendto", "relay-1"]
        [gate]
        min_ratio = { "relay-1/blaster-sendto" = 1.2 }
        max_relay_loss = 0.001
    "#;

    #[test]
    fn parses_a_scenario_with_a_gate() {
        let s: Scenario = toml::from_str(SMOKE).unwrap();
        s.validate().unwrap();
        assert_eq!(s.stream.fps, 25);
        assert_eq!(s.stream.mtu, 1200);
        assert_eq!(s.run.targets, [Target::BlasterSendto, Target::Relay1]);
        let gate = s.gate.unwrap();
        assert_eq!(gate.min_ratio["relay-1/blaster-sendto"], 1.2);
    }

    #[test]
    fn every_committed_scenario_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap();
                seen += 1;
            }
        }
        assert!(seen >= 3, "expected the committed scenarios in {}", dir.display());
    }

    #[test]
    fn refuses_what_cannot_run() {
        let bad = [
            SMOKE.replace("ladder = [300]", "ladder = []"),
            SMOKE.replace("\"udp\"", "\"sctp\""),
            SMOKE.replace("duration_s = 6", "duration_s = 3"),
            SMOKE.replace("relay-1/blaster-sendto", "relay-all/blaster-sendto"),
            SMOKE.replace("relay-1/blaster-sendto", "relay-1:blaster-sendto"),
            SMOKE.replace("name = \"smoke\"", "name = \"a b\""),
        ];
        for text in bad {
            let parsed: Result<Scenario, _> = toml::from_str(&text);
            assert!(parsed.map_err(anyhow::Error::from).and_then(|s| s.validate()).is_err());
        }
    }

    #[test]
    fn a_fast_rung_gets_a_longer_ramp_and_run() {
        let mut s: Scenario = toml::from_str(SMOKE).unwrap();
        assert_eq!(s.timing(5000), (1, 6));
        s.run.arrival_rate = Some(500);
        assert_eq!(s.timing(300), (1, 6));
        assert_eq!(s.timing(5000), (10, 15));
    }

    #[test]
    fn target_names_round_trip() {
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()), Some(t));
            let toml_name: Target =
                toml::from_str::<BTreeMap<String, Target>>(&format!("t = \"{}\"", t.name()))
                    .unwrap()["t"];
            assert_eq!(toml_name, t);
        }
    }
}

//! The SDP RTSP readers get for a publisher's tracks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use manifold_sdp::{Extmap, Fmtp, Line, Media, MediaLine, RtpMap, Sdp};

use crate::flv::VideoCodec;
use crate::media::{Tracks, AUDIO_PAYLOAD_TYPE, CAPTURE_TIME_EXT_ID, VIDEO_PAYLOAD_TYPE};
use manifold_rtp::ext::ABS_CAPTURE_TIME_URI;

fn b64_list<'a>(sets: impl IntoIterator<Item = &'a Vec<u8>>) -> String {
    sets.into_iter().map(|s| STANDARD.encode(s)).collect::<Vec<_>>().join(",")
}

fn fmtp(payload_type: u8, params: &[(&str, String)]) -> Fmtp {
    Fmtp {
        format: payload_type.to_string(),
        params: params.iter().map(|(k, v)| ((*k).to_owned(), Some(v.clone()))).collect(),
    }
}

/// An SDP describing `tracks`: session name `name`, aggregate control `*`, each media section
/// with its `rtpmap`, `fmtp` and control `trackID=N` (N its index).
pub fn describe(tracks: &Tracks, name: &str) -> Sdp {
    let mut sdp = Sdp::new();
    let session = [
        ('o', "- 0 0 IN IP4 127.0.0.1".to_owned()),
        ('s', if name.is_empty() { "-".to_owned() } else { name.to_owned() }),
        ('c', "IN IP4 0.0.0.0".to_owned()),
        ('t', "0 0".to_owned()),
    ];
    for (kind, value) in session {
        // A value with a line break cannot be a line; the name is the only outside text.
        let value = value.replace(['\r', '\n'], " ");
        if let Ok(line) = Line::new(kind, &value) {
            sdp.push_line(line);
        }
    }
    sdp.set_control("*");
    if let Some(video) = &tracks.video {
        let pt = VIDEO_PAYLOAD_TYPE;
        let config = &video.config;
        let (encoding, params) = match config.codec {
            VideoCodec::H264 => {
                let mut params = vec![("packetization-mode", "1".to_owned())];
                if let Some(id) = config.profile_level_id() {
                    params.push((
                        "profile-level-id",
                        format!("{:02X}{:02X}{:02X}", id[0], id[1], id[2]),
                    ));
                }
                params
                    .push(("sprop-parameter-sets", b64_list(config.sps.iter().chain(&config.pps))));
                ("H264", params)
            }
            VideoCodec::H265 => (
                "H265",
                vec![
                    ("sprop-vps", b64_list(&config.vps)),
                    ("sprop-sps", b64_list(&config.sps)),
                    ("sprop-pps", b64_list(&config.pps)),
                ],
            ),
        };
        let mut media = Media::new(MediaLine::new("video", 0, "RTP/AVP", &[&pt.to_string()]));
        media.set_rtpmap(&RtpMap {
            payload_type: pt,
            encoding: encoding.to_owned(),
            clock_rate: 90_000,
            channels: None,
        });
        media.set_fmtp(&fmtp(pt, &params));
        // Frames that carried a capture-time SEI have their packets stamped (see `sei`);
        // announced always, since the SDP goes out before the first frame shows whether they do.
        media.add_extmap(&Extmap::new(u16::from(CAPTURE_TIME_EXT_ID), ABS_CAPTURE_TIME_URI));
        media.set_control("trackID=0");
        sdp.push_media(media);
    }
    if let Some(audio) = &tracks.audio {
        let pt = AUDIO_PAYLOAD_TYPE;
        let config = &audio.config;
        let hex: String = config.raw.iter().map(|b| format!("{b:02X}")).collect();
        let mut media = Media::new(MediaLine::new("audio", 0, "RTP/AVP", &[&pt.to_string()]));
        media.set_rtpmap(&RtpMap {
            payload_type: pt,
            encoding: "MPEG4-GENERIC".to_owned(),
            clock_rate: config.sample_rate,
            channels: Some(u16::from(config.channels)),
        });
        media.set_fmtp(&fmtp(
            pt,
            &[
                ("streamtype", "5".to_owned()),
                ("profile-level-id", "1".to_owned()),
                ("mode", "AAC-hbr".to_owned()),
                ("sizelength", "13".to_owned()),
                ("indexlength", "3".to_owned()),
                ("indexdeltalength", "3".to_owned()),
                ("config", hex),
            ],
        ));
        media.set_control(&format!("trackID={}", usize::from(tracks.video.is_some())));
        sdp.push_media(media);
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{AacConfig, VideoConfig};

    #[test]
    fn h264_and_aac_description() {
        let video = VideoConfig {
            codec: VideoCodec::H264,
            length_size: 4,
            vps: Vec::new(),
            sps: vec![vec![0x67, 0x42, 0xc0, 0x1e]],
            pps: vec![vec![0x68, 0xce, 0x3c, 0x80]],
        };
        let audio = AacConfig::parse(&[0x12, 0x10]).unwrap();
        let tracks = Tracks::new(Some(video), Some(audio), 1200, &mut 1);
        let text = describe(&tracks, "live/cam").to_string();
        assert!(text.starts_with("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=live/cam\r\n"), "{text}");
        assert!(text.contains("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"), "{text}");
        assert!(text.contains(
            "a=fmtp:96 packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHg==,aM48gA==\r\n"
        ), "{text}");
        assert!(text.contains("a=rtpmap:97 MPEG4-GENERIC/44100/2\r\n"), "{text}");
        assert!(text.contains(&format!("a=extmap:1 {ABS_CAPTURE_TIME_URI}\r\n")), "{text}");
        assert!(
            text.contains(
                "mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210"
            ),
            "{text}"
        );
        assert!(text.contains("a=control:trackID=1\r\n"), "{text}");
        // What the relay's track reader makes of it.
        let sdp = Sdp::parse(text.as_bytes()).unwrap();
        let formats = manifold_rtp::track::TrackFormat::all_of(&sdp);
        assert_eq!(formats.len(), 2);
        assert_eq!(sdp.media()[0].sprop_parameter_sets().unwrap().unwrap().len(), 2);
    }
}

//! Following a server's redirect, as players do: an origin answers a reader's DESCRIBE with
//! `302 Moved Temporarily` and a `Location` on one of its edges (RFC 2326 §11.3; ffmpeg and
//! GStreamer follow it). A session so answered ([`ClientError::Redirected`] from the session
//! machine) starts again at the `Location` on a new connection, and so does the probe before
//! the run, up to [`MAX_HOPS`] redirects; more is an error (a loop between two servers).
//!
//! The credentials go along: the `Location`'s own `user:password@` if it has one, else those
//! of the run (`--user`/`--password`, or the run's URL). Only the first connection of a session
//! is timed as `connect` (the server the run was pointed at); every request's round trip,
//! the redirected DESCRIBE's included, is timed as usual, and `setup` runs from the intended
//! start to PLAY's answer wherever it came from.
//!
//! [`ClientError::Redirected`]: manifold_rtsp::session::client::ClientError::Redirected

use std::time::Duration;

use manifold_rtsp::auth::Credentials;
use manifold_rtsp::session::client::ClientConfig;

use crate::target::{self, Target, TrackInfo};
use crate::LoadError;

/// The most redirects one session (or the probe) follows.
pub const MAX_HOPS: u32 = 3;

/// Why a redirect cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// More than [`MAX_HOPS`] redirects in a row.
    #[error("redirected more than {MAX_HOPS} times (the last to {location})")]
    TooMany {
        /// Where the last one pointed.
        location: String,
    },
    /// The `Location` is not a URL the generator can connect to.
    #[error("redirected to {location:?}, which is unusable: {reason}")]
    Unusable {
        /// The `Location` as sent.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The client configuration for the next hop: `run`'s (the run's own, never a previous hop's)
/// pointed at `location`, with the run's credentials unless `location` names its own.
pub(crate) fn follow(run: &ClientConfig, location: &str) -> ClientConfig {
    let mut next = run.clone();
    next.url = location.to_owned();
    if Credentials::from_url(location).is_some() {
        // The Location's userinfo applies (the session machine reads it from the URL).
        next.credentials = None;
    } else if next.credentials.is_none() {
        next.credentials = Credentials::from_url(&run.url).map(|(c, _)| c);
    }
    next
}

/// Counts one more redirect to `location`: an error past [`MAX_HOPS`].
pub(crate) fn count_hop(hops: &mut u32, location: &str) -> Result<(), RedirectError> {
    *hops += 1;
    if *hops > MAX_HOPS {
        return Err(RedirectError::TooMany { location: location.to_owned() });
    }
    Ok(())
}

/// [`target::probe`], following redirects: the tracks of the presentation wherever the run's
/// URL leads.
pub(crate) fn probe(
    target: &Target,
    config: ClientConfig,
    timeout: Duration,
) -> Result<Vec<TrackInfo>, LoadError> {
    let (mut at, mut hop_config, mut hops) = (target.clone(), config.clone(), 0);
    loop {
        match target::probe(&at, hop_config, timeout) {
            Err(LoadError::Redirected { location, .. }) => {
                count_hop(&mut hops, &location)?;
                hop_config = follow(&config, &location);
                at = resolve_blocking(&location)?;
            }
            done => return done,
        }
    }
}

/// The server `location` names, resolved on this thread (for the probe, before the run).
pub(crate) fn resolve_blocking(location: &str) -> Result<Target, RedirectError> {
    Target::resolve(location).map_err(|e| RedirectError::Unusable {
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

/// The server `location` names, resolved off the shard thread (`getaddrinfo` blocks: a slow
/// DNS server would stall every session of the shard).
pub(crate) async fn resolve(location: &str) -> Result<Target, RedirectError> {
    let owned = location.to_owned();
    glommio::executor().spawn_blocking(move || resolve_blocking(&owned)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_hop_keeps_the_runs_settings_and_credentials() {
        let mut run = ClientConfig::play("rtsp://reader:secret@origin:8554/cam");
        run.response_timeout = std::time::Duration::from_secs(3);
        let next = follow(&run, "rtsp://10.0.0.2:8554/cam");
        assert_eq!(next.url, "rtsp://10.0.0.2:8554/cam");
        assert_eq!(next.response_timeout, run.response_timeout);
        let creds = next.credentials.expect("the run's credentials go along");
        assert_eq!((creds.username.as_str(), creds.password.as_str()), ("reader", "secret"));
        // Flag credentials win over the URL's, as in the run itself.
        run.credentials = Some(Credentials::new("flag", "pw"));
        let next = follow(&run, "rtsp://edge/cam");
        assert_eq!(next.credentials.map(|c| c.username), Some("flag".to_owned()));
        // A Location with its own userinfo uses it.
        let next = follow(&run, "rtsp://other:pw2@edge/cam");
        assert_eq!(next.credentials, None);
        assert_eq!(next.url, "rtsp://other:pw2@edge/cam");
        // Without any, none.
        let next = follow(&ClientConfig::play("rtsp://origin/cam"), "rtsp://edge/cam");
        assert_eq!(next.credentials, None);
    }

    #[test]
    fn hops_are_bounded_and_locations_checked() {
        let mut hops = 0;
        for _ in 0..MAX_HOPS {
            assert_eq!(count_hop(&mut hops, "rtsp://a/x"), Ok(()));
        }
        assert_eq!(
            count_hop(&mut hops, "rtsp://b/x"),
            Err(RedirectError::TooMany { location: "rtsp://b/x".to_owned() })
        );
        let target = resolve_blocking("rtsp://127.0.0.1:8600/cam").expect("an IP literal");
        assert_eq!(target.addr, "127.0.0.1:8600".parse().expect("address"));
        for bad in ["/cam", "http://127.0.0.1/cam", "rtsp://"] {
            assert!(
                matches!(resolve_blocking(bad), Err(RedirectError::Unusable { .. })),
                "{bad} accepted"
            );
        }
    }
}

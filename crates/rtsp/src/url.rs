//! Where an RTSP URL points: its host and port, with the scheme's default port. The relay's pull
//! and the load generator both connect to a URL they were given; they read its authority here so
//! that they cannot disagree about, say, an IPv6 literal or a URL without a port.
//!
//! Resolving the host is I/O and stays with the caller: `(host, port)` goes straight into
//! `std::net::ToSocketAddrs` (an IPv6 literal is returned without its brackets, which is the form
//! that takes).

/// The default port of `rtsp://` (RFC 2326 §3.2).
pub const RTSP_PORT: u16 = 554;
/// The default port of `rtsps://` (RTSP over TLS, RFC 7826 §4.2).
pub const RTSPS_PORT: u16 = 322;

/// Why a URL names no RTSP server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not `rtsp` or `rtsps` (or there is no `scheme://`).
    #[error("not an rtsp:// or rtsps:// URL")]
    Scheme,
    /// The authority has no host.
    #[error("no host")]
    NoHost,
    /// An IPv6 literal's `[` is never closed.
    #[error("unclosed [ in host")]
    UnclosedBracket,
    /// The port is not a number from 0 to 65535, or something other than `:port` follows an
    /// IPv6 literal.
    #[error("bad port {0:?}")]
    BadPort(String),
}

/// The server part of an RTSP URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    /// `rtsps://` (TLS) rather than `rtsp://`.
    pub secure: bool,
    /// The host name or address, an IPv6 literal without its brackets.
    pub host: &'a str,
    /// The port given, else the scheme's default ([`RTSP_PORT`] or [`RTSPS_PORT`]).
    pub port: u16,
}

/// Reads the host and port of `rtsp://[user[:pass]@]host[:port][/path][?query][#fragment]`
/// (userinfo is skipped; the scheme is case-insensitive).
pub fn authority(url: &str) -> Result<Authority<'_>, UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
    let secure = if scheme.eq_ignore_ascii_case("rtsp") {
        false
    } else if scheme.eq_ignore_ascii_case("rtsps") {
        true
    } else {
        return Err(UrlError::Scheme);
    };
    // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // The password may itself hold '@' only percent-encoded, but be lenient: the last '@' wins.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = split_host_port(host_port)?;
    let port = match port {
        // `rtsp://host:/path` is allowed by RFC 3986 (an empty port means the default).
        None | Some("") => {
            if secure {
                RTSPS_PORT
            } else {
                RTSP_PORT
            }
        }
        Some(p) => p.parse::<u16>().map_err(|_| UrlError::BadPort(p.to_owned()))?,
    };
    Ok(Authority { secure, host, port })
}

/// Splits `host[:port]` or `[v6][:port]` (the authority of any URL, without userinfo) into the
/// host (an IPv6 literal without its brackets) and the port text, if any; the other URL
/// schemes the project reads (`rtmp://`, `rtp://`) share it.
pub fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), UrlError> {
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, tail) = v6.split_once(']').ok_or(UrlError::UnclosedBracket)?;
        let port = match tail {
            "" => None,
            _ => Some(tail.strip_prefix(':').ok_or_else(|| UrlError::BadPort(tail.to_owned()))?),
        };
        (host, port)
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(url: &str) -> (&str, u16) {
        let a = authority(url).unwrap();
        (a.host, a.port)
    }

    #[test]
    fn no_port_is_554() {
        assert_eq!(hp("rtsp://cam.local/live"), ("cam.local", 554));
        assert_eq!(hp("rtsp://10.0.0.1"), ("10.0.0.1", 554));
        assert_eq!(hp("rtsp://10.0.0.1:/x"), ("10.0.0.1", 554));
    }

    #[test]
    fn explicit_port() {
        assert_eq!(hp("rtsp://10.0.0.1:8554/live/cam"), ("10.0.0.1", 8554));
        assert_eq!(hp("RTSP://h:1"), ("h", 1));
    }

    #[test]
    fn ipv6_literal() {
        assert_eq!(hp("rtsp://[::1]:8554/s"), ("::1", 8554));
        assert_eq!(hp("rtsp://[fe80::1]/s"), ("fe80::1", 554));
        assert_eq!(authority("rtsp://[::1/s"), Err(UrlError::UnclosedBracket));
        assert!(matches!(authority("rtsp://[::1]x/s"), Err(UrlError::BadPort(_))));
    }

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(hp("rtsp://user:pa:ss@cam:8554/s"), ("cam", 8554));
        assert_eq!(hp("rtsp://u:p@[::1]/s"), ("::1", 554));
        // An '@' after the authority is part of the path, not userinfo.
        assert_eq!(hp("rtsp://cam/s@x"), ("cam", 554));
    }

    #[test]
    fn authority_ends_at_query_or_fragment() {
        assert_eq!(hp("rtsp://cam:8554?x=1"), ("cam", 8554));
        assert_eq!(hp("rtsp://cam#udp"), ("cam", 554));
    }

    #[test]
    fn rtsps_defaults_to_322() {
        let a = authority("rtsps://cam/s").unwrap();
        assert!(a.secure);
        assert_eq!(a.port, 322);
        assert!(!authority("rtsp://cam/s").unwrap().secure);
    }

    #[test]
    fn refusals() {
        assert_eq!(authority("http://cam/s"), Err(UrlError::Scheme));
        assert_eq!(authority("cam:554"), Err(UrlError::Scheme));
        assert_eq!(authority("rtsp:///s"), Err(UrlError::NoHost));
        assert_eq!(authority("rtsp://u@:554/s"), Err(UrlError::NoHost));
        assert_eq!(authority("rtsp://cam:99999/s"), Err(UrlError::BadPort("99999".into())));
        assert_eq!(authority("rtsp://cam:x/s"), Err(UrlError::BadPort("x".into())));
    }

    #[test]
    fn every_prefix_is_an_answer_not_a_panic() {
        let url = "rtsps://user:pw@[2001:db8::1]:8554/live?a=b#c";
        for i in 0..=url.len() {
            let _ = authority(&url[..i]);
        }
    }
}

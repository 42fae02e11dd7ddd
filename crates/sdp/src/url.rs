//! Control URL resolution for RTSP (RFC 2326 §C.1.1, RFC 3986 §5.2, the subset RTSP needs).
//!
//! The one deliberate departure from RFC 3986: a relative control is resolved against the base
//! *as a directory*, as ffmpeg, GStreamer, live555 and gortsplib all do. Strict RFC 3986 would
//! drop the base's last segment (`rtsp://h/pub` + `streamid=0` = `rtsp://h/streamid=0`), but
//! servers expect `rtsp://h/pub/streamid=0` (ffmpeg's own ANNOUNCE/SETUP does exactly this).
//! And when the base carries a query (`rtsp://cam/realmonitor?channel=1&subtype=0/`, as Dahua
//! cameras send in `Content-Base`), the control is appended to the whole base string, as those
//! clients do, rather than replacing the query.

/// Picks the base URL for an SDP received in a DESCRIBE response (RFC 2326 §C.1.1): the
/// `Content-Base` header, else `Content-Location`, else the request URL.
pub fn base_url<'a>(
    content_base: Option<&'a str>,
    content_location: Option<&'a str>,
    request_url: &'a str,
) -> &'a str {
    [content_base, content_location]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(request_url)
}

/// Resolves a control `reference` (an `a=control` value) against an absolute `base` URL.
///
/// * empty or `*`: the base itself;
/// * absolute (`rtsp://...`, any `scheme:`): the reference unchanged;
/// * `//authority/...`: the base's scheme, the reference's authority;
/// * `/path`: the base's scheme and authority, the reference's path;
/// * `?query`: the base's path with the reference's query;
/// * a relative path: appended to the base as a directory (a `/` is inserted unless the base
///   already ends with one), with `.` and `..` segments removed.
///
/// A fragment of the base is dropped. A base that is not an absolute URL is treated as opaque
/// text: the reference is appended to it after a `/`.
pub fn resolve(base: &str, reference: &str) -> String {
    let base = base.trim();
    let base = base.split_once('#').map_or(base, |(b, _)| b);
    let reference = reference.trim();
    if reference.is_empty() || reference == "*" {
        return base.to_owned();
    }
    if scheme(reference).is_some() {
        return reference.to_owned();
    }
    let Some(parts) = Parts::split(base) else { return join(base, reference) };
    if reference.starts_with("//") {
        return format!("{}:{reference}", parts.scheme);
    }
    let (ref_path, ref_tail) = split_path(reference);
    let path = if ref_path.starts_with('/') {
        remove_dot_segments(ref_path)
    } else if ref_path.is_empty() {
        // `?query` or `#fragment`: keep the base path (and the base query, unless replaced).
        let query = if ref_tail.starts_with('?') { "" } else { parts.query };
        return format!("{}{}{query}{ref_tail}", parts.prefix, parts.path);
    } else if !parts.query.is_empty() {
        return join(base, reference);
    } else {
        let dir = if parts.path.is_empty() { "/" } else { parts.path };
        let sep = if dir.ends_with('/') { "" } else { "/" };
        remove_dot_segments(&format!("{dir}{sep}{ref_path}"))
    };
    format!("{}{path}{ref_tail}", parts.prefix)
}

/// Appends `reference` to `base` with exactly the `/` the common clients insert.
fn join(base: &str, reference: &str) -> String {
    let sep = if base.ends_with('/') || reference.starts_with('/') { "" } else { "/" };
    format!("{base}{sep}{reference}")
}

/// The scheme of an absolute URI (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`).
fn scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    .then_some(scheme)
}

/// Splits a relative reference into its path and the rest (`?query#fragment`).
fn split_path(s: &str) -> (&str, &str) {
    let end = s.find(['?', '#']).unwrap_or(s.len());
    s.split_at(end)
}

/// An absolute base URL cut into `scheme://authority`, path and `?query`.
struct Parts<'a> {
    scheme: &'a str,
    /// `scheme:` plus `//authority` when present.
    prefix: &'a str,
    path: &'a str,
    /// Including the `?`, or empty.
    query: &'a str,
}

impl<'a> Parts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let scheme = scheme(url)?;
        let after = scheme.len() + 1;
        let rest = &url[after..];
        let authority_len = match rest.strip_prefix("//") {
            Some(r) => 2 + r.find(['/', '?', '#']).unwrap_or(r.len()),
            None => 0,
        };
        let (prefix, rest) = url.split_at(after + authority_len);
        let (path, query) = split_path(rest);
        Some(Parts { scheme, prefix, path, query })
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').skip(usize::from(absolute)).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    if absolute {
        result.push('/');
    }
    result.push_str(&out.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_base_in_order() {
        assert_eq!(base_url(Some("rtsp://a/"), Some("rtsp://b/"), "rtsp://c"), "rtsp://a/");
        assert_eq!(base_url(None, Some("rtsp://b/"), "rtsp://c"), "rtsp://b/");
        assert_eq!(base_url(Some(" "), None, "rtsp://c"), "rtsp://c");
    }

    #[test]
    fn star_and_empty_mean_the_base() {
        assert_eq!(resolve("rtsp://h/live/", "*"), "rtsp://h/live/");
        assert_eq!(resolve("rtsp://h/live", ""), "rtsp://h/live");
        assert_eq!(resolve("rtsp://h/live#x", " * "), "rtsp://h/live");
    }

    #[test]
    fn absolute_controls_are_kept() {
        assert_eq!(
            resolve("rtsp://h/live/", "rtsp://other:554/x/track1"),
            "rtsp://other:554/x/track1"
        );
        assert_eq!(resolve("rtsp://h/", "RTSPS://h/a"), "RTSPS://h/a");
        assert_eq!(resolve("rtsp://h/live/", "//other/y"), "rtsp://other/y");
    }

    #[test]
    fn relative_paths_append_to_the_base_as_a_directory() {
        assert_eq!(
            resolve("rtsp://127.0.0.1:18554/live/", "stream=0"),
            "rtsp://127.0.0.1:18554/live/stream=0"
        );
        assert_eq!(
            resolve("rtsp://127.0.0.1:18555/pub", "streamid=1"),
            "rtsp://127.0.0.1:18555/pub/streamid=1"
        );
        assert_eq!(resolve("rtsp://h:554", "trackID=1"), "rtsp://h:554/trackID=1");
        assert_eq!(resolve("rtsp://user:pw@h/a/b/", "./c"), "rtsp://user:pw@h/a/b/c");
        assert_eq!(resolve("rtsp://h/a/b", "../c"), "rtsp://h/a/c");
        assert_eq!(resolve("rtsp://h/a/b/", "../../../c"), "rtsp://h/c");
        assert_eq!(resolve("rtsp://h/a/", "b/."), "rtsp://h/a/b/");
        assert_eq!(resolve("rtsp://h/a/", "t?x=1"), "rtsp://h/a/t?x=1");
    }

    #[test]
    fn absolute_paths_and_queries_follow_rfc_3986() {
        assert_eq!(resolve("rtsp://h:554/a/b/", "/x/./y/../z"), "rtsp://h:554/x/z");
        assert_eq!(resolve("rtsp://h/a?q=1", "?r=2"), "rtsp://h/a?r=2");
        assert_eq!(resolve("rtsp://h/a?q=1", "#f"), "rtsp://h/a?q=1#f");
        assert_eq!(resolve("rtsp://h?q", "/p"), "rtsp://h/p");
    }

    #[test]
    fn bases_with_a_query_are_appended_to() {
        assert_eq!(
            resolve("rtsp://10.0.0.2:554/cam/realmonitor?channel=1&subtype=0/", "trackID=0"),
            "rtsp://10.0.0.2:554/cam/realmonitor?channel=1&subtype=0/trackID=0"
        );
        assert_eq!(
            resolve("rtsp://h/live?token=x", "trackID=1"),
            "rtsp://h/live?token=x/trackID=1"
        );
    }

    #[test]
    fn opaque_bases_are_joined() {
        assert_eq!(resolve("/live", "track1"), "/live/track1");
        assert_eq!(resolve("", "track1"), "/track1");
    }

    #[test]
    fn dot_segments() {
        for (input, out) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("mid/content=5/../6", "mid/6"),
            ("/a/..", "/"),
            ("/a/.", "/a/"),
            ("/", "/"),
            ("/a//b", "/a//b"),
            ("/../a", "/a"),
        ] {
            assert_eq!(remove_dot_segments(input), out, "{input}");
        }
    }

    #[test]
    fn scheme_detection() {
        assert_eq!(scheme("rtsp://h"), Some("rtsp"));
        assert_eq!(scheme("a+b.c-d:x"), Some("a+b.c-d"));
        assert_eq!(scheme("trackID=0"), None);
        assert_eq!(scheme("stream=0:1"), None);
        assert_eq!(scheme("1a:x"), None);
        assert_eq!(scheme(":x"), None);
    }
}

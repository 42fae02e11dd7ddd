#!/usr/bin/python3
"""GStreamer's RTSP server as a relay, for the perf harness: one SHARED media at /perf whose
only element is a udpsrc named pay0, so the raw RTP it receives (e.g. from
`manifold source rtp://127.0.0.1:P --sdp-file s.sdp`) goes to every reader byte for byte:
header extensions (manifold's capture time and packet counter) included.

The SDP it serves is built by GStreamer from the udpsrc caps: encoding, clock rate, payload
type, the fmtp parameters (sprop-parameter-sets) and `extmap-N` fields, which become the
`a=extmap:N URI` lines the load generator looks for. With --sdp those come from the sender's
SDP file (the most faithful); without, manifold's defaults (H264/90000, payload 96, extmap
1 abs-capture-time, 2 packet-counter) with --sprop if given.

Prints `PORT <n>` on stdout once it listens, then serves until killed.
Usage: gst_rtsp_relay.py --rtp-port P [--port 0] [--sdp FILE] [--sprop SPS,PPS]
       [--rtp-address 127.0.0.1] [--address 127.0.0.1] [--path /perf]
Needs Debian's /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# The header extensions of manifold's synthetic stream (crates/synth/src/stamps.rs).
ABS_CAPTURE_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
PACKET_COUNTER_URI = "urn:manifold:rtp-hdrext:packet-counter"

# Caps fields GStreamer reads itself rather than copying into a=fmtp.
RESERVED = {"media", "payload", "clock-rate", "encoding-name", "encoding-params"}


def quote(value):
    """A caps string value, quoted so '=', ',' and ';' survive."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def read_sdp(path):
    """The first media section of an SDP file: its port, the connection address and the
    caps fields (payload, clock-rate, encoding-name, fmtp parameters, extmap-N, a-framerate)."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f.read().splitlines() if line.strip()]
    media = None
    address = None
    fields = {}
    for line in lines:
        kind, _, value = line.partition("=")
        if kind == "c":
            # c=IN IP4 239.1.2.3/1: the address, without a TTL.
            parts = value.split()
            if len(parts) == 3:
                address = parts[2].split("/")[0]
        elif kind == "m":
            if media is not None:
                break  # the first media section only
            parts = value.split()
            media = {"kind": parts[0], "port": int(parts[1]), "pt": int(parts[3])}
            fields["media"] = ("string", parts[0])
            fields["payload"] = ("int", parts[3])
        elif kind == "a" and media is not None:
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                pt, _, encoding = rest.partition(" ")
                enc = encoding.split("/")
                fields["encoding-name"] = ("string", enc[0].upper())
                fields["clock-rate"] = ("int", enc[1])
                if len(enc) > 2:
                    fields["encoding-params"] = ("string", enc[2])
            elif name == "fmtp":
                _, _, params = rest.partition(" ")
                for param in params.split(";"):
                    key, _, val = param.strip().partition("=")
                    if key and key not in RESERVED:
                        fields[key] = ("string", val)
            elif name == "extmap":
                ident, _, uri = rest.partition(" ")
                ident = ident.split("/")[0]  # a direction is not kept
                fields["extmap-%s" % ident] = ("string", uri.split()[0])
            elif name == "framerate":
                fields["a-framerate"] = ("string", rest)
    if media is None:
        raise SystemExit("ERROR %s has no media section" % path)
    return media["port"], address, fields


def default_fields(sprop):
    fields = {
        "media": ("string", "video"),
        "payload": ("int", "96"),
        "clock-rate": ("int", "90000"),
        "encoding-name": ("string", "H264"),
        "packetization-mode": ("string", "1"),
        "extmap-1": ("string", ABS_CAPTURE_TIME_URI),
        "extmap-2": ("string", PACKET_COUNTER_URI),
    }
    if sprop:
        fields["sprop-parameter-sets"] = ("string", sprop)
    return fields


def caps_of(fields):
    text = "application/x-rtp"
    for key, (kind, value) in fields.items():
        text += ", %s=(%s)%s" % (key, kind, value if kind == "int" else quote(value))
    caps = Gst.Caps.from_string(text)
    if caps is None:
        raise SystemExit("ERROR caps do not parse: %s" % text)
    return caps


class PassThrough(GstRtspServer.RTSPMediaFactory):
    """A media of one udpsrc named pay0: RTP in, RTP out, untouched."""

    def __init__(self, address, port, caps, buffer_size):
        super().__init__()
        self.address, self.port, self.caps, self.buffer_size = address, port, caps, buffer_size

    def do_create_element(self, url):
        src = Gst.ElementFactory.make("udpsrc", "pay0")
        src.set_property("address", self.address)
        src.set_property("port", self.port)
        src.set_property("caps", self.caps)
        src.set_property("buffer-size", self.buffer_size)
        media = Gst.Bin.new("media")
        media.add(src)
        return media


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtp-port", type=int, help="where the RTP arrives (default: the SDP's m= port)")
    parser.add_argument("--rtp-address", help="address udpsrc binds (default: the SDP's c=, else 127.0.0.1)")
    parser.add_argument("--port", default="0", help="RTSP port (0: any free port)")
    parser.add_argument("--address", default="127.0.0.1", help="RTSP address")
    parser.add_argument("--path", default="/perf", help="mount point")
    parser.add_argument("--sdp", help="the sender's SDP file (manifold source --sdp-file)")
    parser.add_argument("--sprop", help="sprop-parameter-sets, without --sdp")
    parser.add_argument("--buffer-size", type=int, default=4 << 20, help="udpsrc socket buffer")
    args = parser.parse_args()

    Gst.init(None)
    if args.sdp:
        sdp_port, sdp_address, fields = read_sdp(args.sdp)
        if args.sprop:
            fields["sprop-parameter-sets"] = ("string", args.sprop)
    else:
        sdp_port, sdp_address, fields = None, None, default_fields(args.sprop)
    rtp_port = args.rtp_port or sdp_port
    if not rtp_port:
        raise SystemExit("ERROR --rtp-port (or --sdp) is required")
    rtp_address = args.rtp_address or sdp_address or "127.0.0.1"

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = PassThrough(rtp_address, rtp_port, caps_of(fields), args.buffer_size)
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print("ERROR attach failed", flush=True)
        sys.exit(1)
    print("PORT %d" % server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

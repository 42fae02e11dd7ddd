#!/usr/bin/python3
"""A reference RTSP server for the load generator's tests: GStreamer's RTSP server with a
shared live H.264 test stream at /test, and at /av an H.264 and Opus stream of its own for
each client, on 127.0.0.1 and the port given (0 = any free port).

Prints `PORT <n>` on stdout once it listens, then serves until killed.
Usage: gst_rtsp_server.py [PORT [USER:PASSWORD | --tls CERT.pem KEY.pem]]
  USER:PASSWORD   Digest authentication
  --tls           RTSPS: every connection on the port is TLS with this certificate (anyone may
                  play); HTTP tunnelling (rtsph://, or over TLS) is always served
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = (
    "videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=25/1 "
    "! x264enc tune=zerolatency key-int-max=25 ! rtph264pay name=pay0 pt=96"
)
LAUNCH = "( %s )" % VIDEO
LAUNCH_AV = (
    "( %s audiotestsrc is-live=true ! opusenc ! rtpopuspay name=pay1 pt=97 )"
    % VIDEO.replace("x264enc", "x264enc speed-preset=ultrafast")
)


def main():
    Gst.init(None)
    port = sys.argv[1] if len(sys.argv) > 1 else "0"
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(True)
    if len(sys.argv) > 4 and sys.argv[2] == "--tls":
        auth = GstRtspServer.RTSPAuth()
        auth.set_tls_certificate(Gio.TlsCertificate.new_from_files(sys.argv[3], sys.argv[4]))
        # With an auth object nobody may play unless a role says so: anonymous may.
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "anonymous")
        auth.set_default_token(token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "anonymous, media.factory.access=(boolean)true, "
                "media.factory.construct=(boolean)true"
            )[0]
        )
    elif len(sys.argv) > 2:
        user, password = sys.argv[2].split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", user)
        auth.add_digest(user, password, token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "%s, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
                % user
            )[0]
        )
    server.get_mount_points().add_factory("/test", factory)
    # The same access rules. Not shared: a shared media skips sequence numbers for the readers
    # already playing when another joins, and can fail an assertion when two set up at once.
    av = GstRtspServer.RTSPMediaFactory()
    av.set_launch(LAUNCH_AV)
    av.set_shared(False)
    for role in ("anonymous",) if "--tls" in sys.argv else sys.argv[2:3]:
        av.add_role_from_structure(
            Gst.Structure.from_string(
                "%s, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
                % role.split(":", 1)[0]
            )[0]
        )
    server.get_mount_points().add_factory("/av", av)
    if server.attach(None) == 0:
        print("ERROR attach failed", flush=True)
        sys.exit(1)
    print("PORT %d" % server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

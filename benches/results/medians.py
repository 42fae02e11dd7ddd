#!/usr/bin/env python3
"""Prints the median per-iteration time of every manifold-benches bench for each saved
criterion baseline, as CSV (ns) or as the Markdown table in perf/RESULTS.md.

    medians.py [--markdown] TARGET_DIR/criterion runA runB ...

Baselines are those saved with `cargo bench -p manifold-benches -- --save-baseline NAME`.
"""
import json, os, sys

ORDER = [
    'rtsp/decode/setup_request', 'rtsp/decode/play_request', 'rtsp/decode/setup_response',
    'rtsp/decode/interleaved_rtp', 'rtsp/write/setup_response', 'rtsp/write/setup_request',
    'rtp/parse/small', 'rtp/parse/fu_a', 'rtp/parse/fu_a_ext', 'rtp/parse/fu_a_ext_read_stamps',
    'rtp/rewrite/fixed_header', 'rtp/rewrite/rewriter_and_fixed_header',
    'rtp/build/fu_a', 'rtp/build/fu_a_ext',
    'rtcp/build/sr_1_block_sdes_cname', 'rtcp/build/rr_1_block', 'rtcp/build/rr_31_blocks',
    'rtcp/parse/sr_sdes', 'rtcp/parse/sr_sdes_validated',
    'sdp/parse/gstreamer_describe', 'sdp/parse/ffmpeg_announce', 'sdp/write/ffmpeg_announce',
    'sdp/media_urls/gstreamer_describe', 'sdp/media_urls/ffmpeg_announce',
]


# What each bench is fed (sizes of the fixtures, as the benches find them).
INPUT = {
    'rtsp/decode/setup_request': 'ffmpeg SETUP, 147 B',
    'rtsp/decode/play_request': 'ffmpeg PLAY, 128 B',
    'rtsp/decode/setup_response': 'GStreamer 200 to SETUP, 225 B',
    'rtsp/decode/interleaved_rtp': '`$` frame, 4 + 1472 B',
    'rtsp/write/setup_response': '225 B out',
    'rtsp/write/setup_request': '147 B out',
    'rtp/parse/small': 'H.264 slice, 89 B',
    'rtp/parse/fu_a': 'FU-A, 1472 B',
    'rtp/parse/fu_a_ext': 'FU-A + 24 B ext, 1496 B',
    'rtp/parse/fu_a_ext_read_stamps': 'same, + read 2 elements',
    'rtp/rewrite/fixed_header': 'seq, ts, SSRC',
    'rtp/rewrite/rewriter_and_fixed_header': 'same, via `Rewriter`',
    'rtp/build/fu_a': '1472 B out',
    'rtp/build/fu_a_ext': '1496 B out',
    'rtcp/build/sr_1_block_sdes_cname': '92 B out',
    'rtcp/build/rr_1_block': '32 B out',
    'rtcp/build/rr_31_blocks': '752 B out',
    'rtcp/parse/sr_sdes': 'GStreamer SR + SDES, 80 B',
    'rtcp/parse/sr_sdes_validated': 'same, + A.2 check',
    'sdp/parse/gstreamer_describe': '529 B, 1 media',
    'sdp/parse/ffmpeg_announce': '509 B, 2 media',
    'sdp/write/ffmpeg_announce': '509 B out',
    'sdp/media_urls/gstreamer_describe': '1 URL',
    'sdp/media_urls/ffmpeg_announce': '2 URLs',
}


def t(ns):
    if ns >= 1000:
        return f'{ns / 1000:.2f} µs'
    return f'{ns:.0f} ns' if ns >= 100 else (f'{ns:.1f} ns' if ns >= 10 else f'{ns:.2f} ns')


def rate(throughput, ns):
    if 'Bytes' in throughput:
        v = throughput['Bytes'] / (ns * 1e-9)
        return f'{v / 2**30:.1f} GiB/s' if v >= 2**30 else f'{v / 2**20:.0f} MiB/s'
    v = throughput['Elements'] / (ns * 1e-9)
    unit = 'blocks' if 'rtcp/build/rr' in cur else ('URLs' if 'media_urls' in cur else 'ops')
    return f'{v / 1e6:.1f} M {unit}/s' if v >= 1e6 else f'{v / 1e3:.0f} k {unit}/s'


args = sys.argv[1:]
markdown = args[:1] == ['--markdown']
if markdown:
    args = args[1:]
root, runs = args[0], args[1:]
if markdown:
    print('| bench | input | ' + ' | '.join(runs) + ' | max / min | throughput (min … max median) |')
    print('| --- | --- | ' + ' | '.join('---:' for _ in runs) + ' | ---: | --- |')
else:
    print('bench,' + ','.join(runs))
for cur in ORDER:
    d = os.path.join(root, cur.replace('/', '_', 1))
    if not all(os.path.exists(f'{d}/{r}/estimates.json') for r in runs):
        continue  # e.g. a run of one bench file only
    meds = [json.load(open(f'{d}/{r}/estimates.json'))['median']['point_estimate'] for r in runs]
    thr = json.load(open(f'{d}/{runs[0]}/benchmark.json'))['throughput']
    if not markdown:
        print(cur + ',' + ','.join(f'{m:.2f}' for m in meds))
        continue
    print(f'| `{cur}` | {INPUT[cur]} | ' + ' | '.join(t(m) for m in meds)
          + f' | {max(meds) / min(meds):.2f}× | {rate(thr, min(meds))} … {rate(thr, max(meds))} |')
